"""The organisation's networking log: the one function that writes it."""

from compute.network.models import NetworkEvent
from tenants.models import EventResult


def network_event(
    *, tenant_id, action: str, subject: str, message: str = "", actor=None, result: str = EventResult.SUCCEEDED
) -> NetworkEvent:
    """Records a change to a network, a public address or a firewall (who, what, about which, the outcome)."""
    return NetworkEvent.objects.create(
        tenant_id=tenant_id, action=action, subject=subject[:120], message=message, actor=actor, result=result
    )
