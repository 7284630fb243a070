"""The credit ledger and the tenant's standing: top-ups, billing terms, credit holds, suspensions, resumption."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import (
    AccountEvent,
    BillingAccount,
    CreditEntry,
)
from billing.pricing import cents_to_decimal, to_cents
from billing.selectors import (
    credit_balance_cents,
    unbilled_cents,
)
from billing.services.events import account_event as _event
from portal.errors import Conflict, InvalidRequest, ServiceError
from tenants.models import Tenant


def _account_for_update(tenant) -> BillingAccount:
    BillingAccount.objects.bulk_create([BillingAccount(tenant=tenant)], ignore_conflicts=True)
    return BillingAccount.objects.select_for_update().select_related("tenant").get(tenant=tenant)


def credit_topup(
    *, tenant, amount: Decimal, description: str = "", actor=None, now: datetime | None = None
) -> CreditEntry:
    """Records credit an operator received for the tenant; lifts a credit hold or suspension it resolves."""
    amount_cents = to_cents(amount)
    if amount_cents <= 0:
        raise InvalidRequest("A top-up must be a positive amount.")
    with transaction.atomic():
        entry = CreditEntry.objects.create(
            tenant=tenant,
            kind=CreditEntry.Kind.TOPUP,
            amount_cents=amount_cents,
            description=description or "Top-up",
            created_by=actor,
        )
        _event(
            tenant=tenant,
            kind=AccountEvent.Kind.TOPUP,
            message=f"{entry.amount} {settings.BILLING_CURRENCY} credit added."
            + (f" {description}" if description else ""),
            actor=actor,
        )
    account_check(tenant=tenant, now=now)
    return entry


def billing_details_update(*, tenant, actor, legal_name: str, address: str, vat_id: str) -> BillingAccount:
    """Changes the name, address and VAT id printed on future invoices (issued ones keep their snapshot)."""
    with transaction.atomic():
        account = _account_for_update(tenant)
        account.legal_name, account.address, account.vat_id = legal_name.strip(), address.strip(), vat_id.strip()
        account.save(update_fields=["legal_name", "address", "vat_id"])
        _event(tenant=tenant, kind=AccountEvent.Kind.DETAILS, message="Billing details updated.", actor=actor)
    return account


def billing_terms_update(*, tenant, actor, tax_rate: Decimal, credit_limit: Decimal | None) -> BillingAccount:
    """Operators set a tenant's tax rate and credit limit; the standing is re-checked at once."""
    if not Decimal(0) <= Decimal(tax_rate) <= Decimal(100):
        raise InvalidRequest("The tax rate is a percentage between 0 and 100.")
    if credit_limit is not None and credit_limit < 0:
        raise InvalidRequest("A credit limit cannot be negative; leave it empty for no limit.")
    with transaction.atomic():
        account = _account_for_update(tenant)
        account.tax_rate = Decimal(tax_rate)
        account.credit_limit_cents = None if credit_limit is None else to_cents(credit_limit)
        account.save(update_fields=["tax_rate", "credit_limit_cents"])
        limit = "no limit" if credit_limit is None else f"{account.credit_limit} {settings.BILLING_CURRENCY}"
        _event(
            tenant=tenant,
            kind=AccountEvent.Kind.DETAILS,
            message=f"Tax rate {account.tax_rate} %, credit limit {limit}.",
            actor=actor,
        )
    account_check(tenant=tenant)
    return account


def available_credit_cents(*, tenant) -> int:
    """Credit balance minus spend not yet invoiced: what the credit limit is compared with."""
    return credit_balance_cents(tenant=tenant) - unbilled_cents(tenant=tenant)


def _set_status(*, account: BillingAccount, status: str, reason: str, now: datetime) -> None:
    tenant = account.tenant
    tenant.status = status
    tenant.save(update_fields=["status"])
    account.status_reason = reason
    if status == Tenant.Status.HOLD:
        account.hold_since, account.suspended_at = now, None
    elif status == Tenant.Status.SUSPENDED:
        account.hold_since, account.suspended_at = account.hold_since or now, now
    else:
        account.hold_since = account.suspended_at = None
    account.save(update_fields=["status_reason", "hold_since", "suspended_at"])


def _stop_machines(*, tenant) -> int:
    """Stops the tenant's running machines through compute's own service (they stay billed: capacity is held)."""
    from compute import services as compute_services
    from compute.models import Instance

    stopped = 0
    for instance in Instance.objects.for_tenant(tenant).filter(state="running").order_by("pk"):
        try:
            compute_services.instance_stop(instance=instance, user=None)
        except ServiceError:
            continue  # became busy meanwhile; the next check stops it
        stopped += 1
    return stopped


def account_check(*, tenant, now: datetime | None = None) -> str:
    """Holds, suspends (after the grace period) or releases a tenant according to its credit limit.

    Operator holds and suspensions are left alone: only an operator lifts them.
    """
    now = now or timezone.now()
    stop_machines = False
    with transaction.atomic():
        account = _account_for_update(tenant)
        tenant = account.tenant
        if account.status_reason == BillingAccount.Reason.OPERATOR:
            return tenant.status
        limit = account.credit_limit_cents
        available = available_credit_cents(tenant=tenant)
        over = limit is not None and available < -limit
        status = tenant.status
        if over and status == Tenant.Status.ACTIVE:
            _set_status(account=account, status=Tenant.Status.HOLD, reason=BillingAccount.Reason.CREDIT, now=now)
            _event(
                tenant=tenant,
                kind=AccountEvent.Kind.HOLD,
                message=f"Put on hold: credit of {cents_to_decimal(available)} {settings.BILLING_CURRENCY} is past the "
                f"limit of -{account.credit_limit}. No new resources until credit is added; running machines keep "
                f"running, and are stopped after {settings.BILLING_SUSPEND_GRACE_HOURS} hours.",
                email_subject="account on hold",
            )
        elif (
            over
            and status == Tenant.Status.HOLD
            and account.hold_since is not None
            and (account.hold_since + timedelta(hours=settings.BILLING_SUSPEND_GRACE_HOURS) <= now)
        ):
            _set_status(account=account, status=Tenant.Status.SUSPENDED, reason=BillingAccount.Reason.CREDIT, now=now)
            _event(
                tenant=tenant,
                kind=AccountEvent.Kind.SUSPEND,
                message="Suspended: the credit limit is still exceeded after the grace period. Machines are stopped "
                "(storage is still billed) until credit is added.",
                email_subject="account suspended",
            )
            stop_machines = True
        elif not over and status != Tenant.Status.ACTIVE and account.status_reason == BillingAccount.Reason.CREDIT:
            _set_status(account=account, status=Tenant.Status.ACTIVE, reason=BillingAccount.Reason.NONE, now=now)
            _event(
                tenant=tenant,
                kind=AccountEvent.Kind.RESUME,
                message="Credit restored: the account is active again. Stopped machines can be started.",
                email_subject="account active again",
            )
        status = tenant.status
    if stop_machines:
        _stop_machines(tenant=tenant)
    return status


def accounts_check(*, now: datetime | None = None) -> int:
    """The periodic credit check over every tenant with a credit limit or a credit hold; returns how many changed."""
    changed = 0
    candidates = BillingAccount.objects.filter(
        Q(credit_limit_cents__isnull=False) | Q(status_reason=BillingAccount.Reason.CREDIT)
    ).select_related("tenant")
    for account in candidates.order_by("pk").iterator(chunk_size=500):
        before = account.tenant.status
        if account_check(tenant=account.tenant, now=now) != before:
            changed += 1
    return changed


def tenant_hold(*, tenant, actor, reason: str = "", now: datetime | None = None) -> None:
    """An operator puts a tenant on hold: no new resources; lifted only by tenant_resume."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _account_for_update(tenant)
        _set_status(account=account, status=Tenant.Status.HOLD, reason=BillingAccount.Reason.OPERATOR, now=now)
        _event(
            tenant=account.tenant,
            kind=AccountEvent.Kind.HOLD,
            message="Put on hold by an operator." + (f" {reason}" if reason else ""),
            actor=actor,
            email_subject="account on hold",
        )


def tenant_suspend(*, tenant, actor, reason: str = "", now: datetime | None = None) -> int:
    """An operator suspends a tenant: its machines are stopped (still billed); returns how many were stopped."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _account_for_update(tenant)
        _set_status(account=account, status=Tenant.Status.SUSPENDED, reason=BillingAccount.Reason.OPERATOR, now=now)
        _event(
            tenant=account.tenant,
            kind=AccountEvent.Kind.SUSPEND,
            message="Suspended by an operator; machines are stopped." + (f" {reason}" if reason else ""),
            actor=actor,
            email_subject="account suspended",
        )
    return _stop_machines(tenant=account.tenant)


def tenant_resume(*, tenant, actor, now: datetime | None = None) -> str:
    """An operator lifts a hold or suspension; a credit limit still exceeded puts the tenant on hold again."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _account_for_update(tenant)
        if account.tenant.status == Tenant.Status.ACTIVE:
            raise Conflict(f"{account.tenant} is already active.")
        _set_status(account=account, status=Tenant.Status.ACTIVE, reason=BillingAccount.Reason.NONE, now=now)
        _event(
            tenant=account.tenant,
            kind=AccountEvent.Kind.RESUME,
            message="Resumed by an operator. Stopped machines can be started.",
            actor=actor,
            email_subject="account active again",
        )
    return account_check(tenant=account.tenant, now=now)
