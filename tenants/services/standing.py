"""An organisation's standing: active, on hold (no new resources) or suspended (machines stopped).

The one place it changes. Billing's credit checks and operators (admin actions) both come here; what follows from
a change — machines stopped, billing contacts e-mailed — is done by the apps that own it, through
tenants.lifecycle.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from portal.errors import Conflict
from tenants.lifecycle import announce_standing_changed
from tenants.models import Tenant, TenantEvent
from tenants.services.events import tenant_event

DEFAULT_NOTES = {
    Tenant.Status.HOLD: "Put on hold: no new resources until it is lifted.",
    Tenant.Status.SUSPENDED: "Suspended: machines are stopped (storage is still billed) until it is lifted.",
    Tenant.Status.ACTIVE: "Active again: stopped machines can be started.",
}
EVENT_ACTIONS = {
    Tenant.Status.HOLD: TenantEvent.Action.HOLD,
    Tenant.Status.SUSPENDED: TenantEvent.Action.SUSPEND,
    Tenant.Status.ACTIVE: TenantEvent.Action.RESUME,
}


def _change_standing(*, tenant: Tenant, status: str, reason: str, actor, note: str, now: datetime | None) -> Tenant:
    now = now or timezone.now()
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        previous = locked.status
        if previous == status:
            raise Conflict(f"{locked} is already {locked.get_status_display().lower()}.", code="same_status")
        locked.status = status
        locked.status_reason = reason
        if status == Tenant.Status.HOLD:
            locked.hold_since, locked.suspended_at = now, None
        elif status == Tenant.Status.SUSPENDED:
            locked.hold_since, locked.suspended_at = locked.hold_since or now, now
        else:
            locked.hold_since = locked.suspended_at = None
        locked.save(update_fields=["status", "status_reason", "hold_since", "suspended_at"])
        note = note.strip() or DEFAULT_NOTES[status]
        if actor is not None and reason == Tenant.StatusReason.OPERATOR:
            note = f"{note} (by an operator)"
        tenant_event(tenant=locked, action=EVENT_ACTIONS[status], message=note, actor=actor)
        announce_standing_changed(tenant=locked, previous=previous, actor=actor, note=note)
    return locked


def tenant_hold(
    *, tenant: Tenant, actor=None, reason: str = Tenant.StatusReason.OPERATOR, note: str = "", now=None
) -> Tenant:
    """No new resources (launches, resizes, volumes); what runs keeps running."""
    return _change_standing(tenant=tenant, status=Tenant.Status.HOLD, reason=reason, actor=actor, note=note, now=now)


def tenant_suspend(
    *, tenant: Tenant, actor=None, reason: str = Tenant.StatusReason.OPERATOR, note: str = "", now=None
) -> Tenant:
    """Stops every running machine (compute does, as `actor`); they stay billed and cannot be started."""
    return _change_standing(
        tenant=tenant, status=Tenant.Status.SUSPENDED, reason=reason, actor=actor, note=note, now=now
    )


def tenant_resume(*, tenant: Tenant, actor=None, note: str = "", now=None) -> Tenant:
    """Lifts a hold or suspension; billing re-checks the credit limit afterwards."""
    return _change_standing(
        tenant=tenant, status=Tenant.Status.ACTIVE, reason=Tenant.StatusReason.NONE, actor=actor, note=note, now=now
    )
