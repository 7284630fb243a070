"""The organisation's event log: the one function that writes it (and, with it, the activity log)."""

from tenants.models import ActivityEntry, EventResult, Tenant, TenantEvent
from tenants.services.activity import activity_from_event

Resource = ActivityEntry.ResourceType
RESOURCE_OF_ACTION = {
    TenantEvent.Action.RENAME: Resource.ORGANISATION,
    TenantEvent.Action.TWO_FACTOR: Resource.ORGANISATION,
    TenantEvent.Action.HOLD: Resource.ORGANISATION,
    TenantEvent.Action.SUSPEND: Resource.ORGANISATION,
    TenantEvent.Action.RESUME: Resource.ORGANISATION,
    TenantEvent.Action.QUOTA_CHANGE: Resource.ORGANISATION,
    TenantEvent.Action.ROLE_CHANGE: Resource.MEMBER,
    TenantEvent.Action.MEMBER_REMOVE: Resource.MEMBER,
    TenantEvent.Action.INVITE_ACCEPT: Resource.MEMBER,
    TenantEvent.Action.INVITE: Resource.INVITATION,
    TenantEvent.Action.INVITE_REVOKE: Resource.INVITATION,
    TenantEvent.Action.TOKEN_CREATE: Resource.API_TOKEN,
    TenantEvent.Action.TOKEN_REVOKE: Resource.API_TOKEN,
    TenantEvent.Action.TOKEN_REFUSED: Resource.API_TOKEN,
}


def tenant_event(
    *,
    tenant: Tenant,
    action: str,
    message: str = "",
    actor=None,
    result: str = EventResult.SUCCEEDED,
    resource_id="",
    resource_name: str = "",
) -> TenantEvent:
    """Records a change to the organisation itself (members, invitations, tokens, standing, security rules).

    `resource_id`/`resource_name` name what changed (a member's address, a token's name) in the activity log;
    changes to the organisation itself name it.
    """
    event = TenantEvent.objects.create(tenant=tenant, action=action, message=message, actor=actor, result=result)
    resource_type = RESOURCE_OF_ACTION[action]
    if resource_type == Resource.ORGANISATION and not resource_id:
        resource_id, resource_name = tenant.pk, tenant.name
    activity_from_event(event, resource_type=resource_type, resource_id=resource_id, resource_name=resource_name)
    return event
