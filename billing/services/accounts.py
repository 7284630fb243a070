"""The credit ledger and the credit checks: top-ups, billing terms, and when the credit limit calls for a hold."""

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
from portal.errors import InvalidRequest
from tenants.models import Tenant
from tenants.services import tenant_hold, tenant_resume, tenant_suspend


def _account_for_update(tenant) -> BillingAccount:
    BillingAccount.objects.bulk_create([BillingAccount(tenant=tenant)], ignore_conflicts=True)
    return BillingAccount.objects.select_for_update().select_related("tenant").get(tenant=tenant)


def credit_topup(
    *, tenant, amount: Decimal, description: str = "", actor=None, now: datetime | None = None
) -> CreditEntry:
    """Records credit an operator received for the tenant (at `now`, default now); lifts a credit hold or suspension
    it resolves."""
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
            created_at=now or timezone.now(),
        )
        _event(
            tenant=tenant,
            action=AccountEvent.Action.TOPUP,
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
        _event(tenant=tenant, action=AccountEvent.Action.DETAILS, message="Billing details updated.", actor=actor)
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
            action=AccountEvent.Action.DETAILS,
            message=f"Tax rate {account.tax_rate} %, credit limit {limit}.",
            actor=actor,
        )
    account_check(tenant=tenant)
    return account


def available_credit_cents(*, tenant) -> int:
    """Credit balance minus spend not yet invoiced: what the credit limit is compared with."""
    return credit_balance_cents(tenant=tenant) - unbilled_cents(tenant=tenant)


def account_check(*, tenant, now: datetime | None = None) -> str:
    """Holds, suspends (after the grace period) or releases a tenant according to its credit limit.

    The standing itself belongs to tenants (tenants.services); this decides when the credit limit calls for a
    change. Operator holds and suspensions are left alone: only an operator lifts them.
    """
    now = now or timezone.now()
    with transaction.atomic():
        account = _account_for_update(tenant)
        tenant = account.tenant
        if tenant.status_reason == Tenant.StatusReason.OPERATOR:
            return tenant.status
        limit = account.credit_limit_cents
        available = available_credit_cents(tenant=tenant)
        over = limit is not None and available < -limit
        status = tenant.status
        grace = timedelta(hours=settings.BILLING_SUSPEND_GRACE_HOURS)
        credit = Tenant.StatusReason.CREDIT
        if over and status == Tenant.Status.ACTIVE:
            tenant = tenant_hold(
                tenant=tenant,
                reason=credit,
                now=now,
                note=f"Put on hold: credit of {cents_to_decimal(available)} {settings.BILLING_CURRENCY} is past the "
                f"limit of -{account.credit_limit}. No new resources until credit is added; running machines keep "
                f"running, and are stopped after {settings.BILLING_SUSPEND_GRACE_HOURS} hours.",
            )
        elif over and status == Tenant.Status.HOLD and tenant.hold_since and tenant.hold_since + grace <= now:
            tenant = tenant_suspend(
                tenant=tenant,
                reason=credit,
                now=now,
                note="Suspended: the credit limit is still exceeded after the grace period. Machines are stopped "
                "(storage is still billed) until credit is added.",
            )
        elif not over and status != Tenant.Status.ACTIVE and tenant.status_reason == credit:
            tenant = tenant_resume(
                tenant=tenant,
                now=now,
                note="Credit restored: the account is active again. Stopped machines can be started.",
            )
        return tenant.status


def accounts_check(*, now: datetime | None = None) -> int:
    """The periodic credit check over every tenant with a credit limit or a credit hold; returns how many changed."""
    changed = 0
    candidates = BillingAccount.objects.filter(
        Q(credit_limit_cents__isnull=False) | Q(tenant__status_reason=Tenant.StatusReason.CREDIT)
    ).select_related("tenant")
    for account in candidates.order_by("pk").iterator(chunk_size=500):
        before = account.tenant.status
        if account_check(tenant=account.tenant, now=now) != before:
            changed += 1
    return changed
