"""The organisation's networking log: the one function that writes it."""

from compute.network.models import NetworkEvent
from tenants.models import ActivityEntry, EventResult
from tenants.services import activity_from_event

# The activity log's kind of thing each networking action is about.
RESOURCE_TYPES = {
    "network": ActivityEntry.ResourceType.NETWORK,
    "ip": ActivityEntry.ResourceType.PUBLIC_IP,
    "firewall": ActivityEntry.ResourceType.FIREWALL,
    "firewalls": ActivityEntry.ResourceType.INSTANCE,  # a machine's set of firewalls changed
}


def network_event(
    *,
    tenant_id,
    action: str,
    subject: str,
    resource_id="",
    message: str = "",
    actor=None,
    result: str = EventResult.SUCCEEDED,
) -> NetworkEvent:
    """Records a change to a network, a public address or a firewall (who, what, about which, the outcome); what a
    person did also goes to the organisation's activity log."""
    event = NetworkEvent.objects.create(
        tenant_id=tenant_id, action=action, subject=subject[:120], message=message, actor=actor, result=result
    )
    if actor is not None:
        resource_type = RESOURCE_TYPES[action.split("_", 1)[0]]
        activity_from_event(event, resource_type=resource_type, resource_id=resource_id, resource_name=subject)
    return event
