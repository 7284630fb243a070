"""The organisation's event log: the one function that writes it."""

from tenants.models import EventResult, Tenant, TenantEvent


def tenant_event(
    *, tenant: Tenant, action: str, message: str = "", actor=None, result: str = EventResult.SUCCEEDED
) -> TenantEvent:
    """Records a change to the organisation itself (members, invitations, tokens, standing)."""
    return TenantEvent.objects.create(tenant=tenant, action=action, message=message, actor=actor, result=result)
