"""Billing's side of an organisation's standing (tenants.lifecycle): the billing log and e-mails to its contacts."""

from django.db import transaction

from billing.models import AccountEvent
from billing.services.accounts import account_check
from billing.services.events import account_event
from tenants.models import Tenant

ACTIONS = {
    Tenant.Status.HOLD: (AccountEvent.Action.HOLD, "account on hold"),
    Tenant.Status.SUSPENDED: (AccountEvent.Action.SUSPEND, "account suspended"),
    Tenant.Status.ACTIVE: (AccountEvent.Action.RESUME, "account active again"),
}


def _on_standing_changed(*, tenant: Tenant, previous: str, actor, note: str, **_) -> None:
    action, subject = ACTIONS[tenant.status]
    # The organisation's own log (tenants) has this change in its activity already.
    account_event(tenant=tenant, action=action, message=note, actor=actor, email_subject=subject, activity=False)
    if tenant.status == Tenant.Status.ACTIVE:
        # When an operator lifts it, a credit limit that is still exceeded puts the tenant on hold again (after a
        # credit resume the check finds nothing to do).
        tenant_id = tenant.pk
        transaction.on_commit(lambda: account_check(tenant=Tenant.objects.get(pk=tenant_id)))


def subscribe() -> None:
    """Called once from BillingConfig.ready()."""
    from tenants.lifecycle import tenant_standing_changed

    tenant_standing_changed.connect(_on_standing_changed, dispatch_uid="billing.standing")
