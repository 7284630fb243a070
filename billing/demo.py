"""Demo billing data: a dated price row for every flavor, the demo tenant's billing details and credit, then a
billing history for the demo machines: three finalized months (one paid by a test payment) and a budget near its
limit.

Safe to run again: only what is missing is added; the history is written once (an organisation with an issued
invoice is left alone).
"""

# write-ok-file: the demo's backdated segments, written once by `manage.py seed_demo` before anything meters them

import math
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from billing import services
from billing.models import BillingAccount, Budget, CreditEntry, Invoice, Price, ResourceType, Segment
from billing.pricing import cents_to_decimal, month_bounds, month_start
from billing.selectors import tenant_month_usage
from billing.services.metering import invoices_refresh
from compute import demo as compute_demo
from compute.models import Flavor
from compute.network.models import PublicIP

HISTORY_MONTHS = 3
WELCOME_CREDIT = Decimal("30.00")
# Resources that are not a demo machine (its public addresses, later its volumes) are billed this long.
DEFAULT_AGE_DAYS = 100
# The budget is set so the forecast month-end spend is about this share of it: near its limit.
BUDGET_SHARE = Decimal("0.9")


def seed(*, tenant, stdout) -> None:
    added = []
    unpriced = Flavor.objects.exclude(pk__in=Price.objects.filter(flavor__isnull=False).values("flavor_id"))
    for flavor in unpriced.order_by("name"):
        # The flavor's current price becomes its first dated row, so history starts where billing does.
        services.flavor_price_set(flavor=flavor, monthly_price=flavor.monthly_price)
        added.append(f"price of {flavor.name}")
    if not BillingAccount.objects.filter(tenant=tenant).exists():
        services.billing_details_update(
            tenant=tenant, actor=None, legal_name=f"{tenant.name} Ltd", address="1 Demo Street\nDemo City", vat_id=""
        )
        added.append("billing details")
    if not CreditEntry.objects.for_tenant(tenant).exists():
        # Given when the organisation started, before its first machine; it pays the first invoice.
        since = timezone.now() - timedelta(days=max(m.age_days for m in compute_demo.MACHINES) + 1)
        services.credit_topup(tenant=tenant, amount=WELCOME_CREDIT, description="Welcome credit", now=since)
        added.append(f"{WELCOME_CREDIT} credit")
    if added:
        stdout.write(f"  billing: {', '.join(added)}")


def seed_history(*, tenant, stdout, now: datetime | None = None) -> None:
    """Backdates the demo's open segments to when each resource was launched, then issues the past months' invoices
    through the billing services and pays one through the test provider."""
    now = now or timezone.now()
    if Invoice.objects.filter(tenant=tenant).exclude(status=Invoice.Status.DRAFT).exists():
        stdout.write("Billing: the demo's invoices are in place.")
        return
    _backdate_segments(tenant=tenant, now=now)
    issued = _issue_past_months(tenant=tenant, now=now)
    paid = _pay_one(tenant=tenant, invoices=issued)
    issued = [Invoice.objects.get(pk=invoice.pk) for invoice in issued]
    numbers = ", ".join(f"{invoice.number} ({invoice.get_status_display().lower()})" for invoice in issued)
    stdout.write(
        f"Billing: issued {numbers or 'no invoices'}" + (f"; {paid.number} paid by a test payment." if paid else ".")
    )


def seed_budget(*, tenant, stdout, now: datetime | None = None) -> None:
    """A budget near its limit, set last so the forecast counts everything the demo runs (its storage too)."""
    budget = _budget_near_limit(tenant=tenant, now=now or timezone.now())
    if budget:
        stdout.write(f"Billing: a budget of {budget} {settings.BILLING_CURRENCY}.")


def _backdate_segments(*, tenant, now: datetime) -> None:
    """Each open segment starts when its resource was launched (the demo machines' ages; others DEFAULT_AGE_DAYS).

    Only segments opened moments ago by this seeding are moved, before any invoice line refers to them.
    """
    ages = {machine.name: machine.age_days for machine in compute_demo.MACHINES}
    # A public address is as old as the machine it was launched with.
    holders = dict(PublicIP.objects.filter(tenant=tenant, instance__isnull=False).values_list("pk", "instance__name"))
    for segment in Segment.objects.for_tenant(tenant).open().filter(lines__isnull=True):
        name = segment.resource_name
        if segment.resource_type == ResourceType.IPV4:
            name = holders.get(segment.resource_id, "")
        age = ages.get(name, DEFAULT_AGE_DAYS)
        if not age:
            continue
        # On the hour and a few minutes, like a launch someone clicked.
        started = (now - timedelta(days=age)).replace(minute=17, second=0, microsecond=0)
        Segment.objects.filter(pk=segment.pk).update(started_at=min(started, segment.started_at))


def _issue_past_months(*, tenant, now: datetime) -> list[Invoice]:
    """Meters and finalizes each of the last HISTORY_MONTHS months on the 2nd of the month after, at 09:00 UTC."""
    issued = []
    first = month_start(now)
    months = []
    for _ in range(HISTORY_MONTHS):
        first = month_start(first - timedelta(days=1))
        months.append(first)
    for period_start in reversed(months):
        end = month_bounds(period_start)[1]
        issued_at = end + timedelta(days=1, hours=9)
        invoices_refresh(period_start=period_start, as_of=end, tenant_ids=[tenant.pk])
        invoice = Invoice.objects.filter(tenant=tenant, period_start=period_start, status=Invoice.Status.DRAFT).first()
        if invoice is not None:
            issued.append(services.invoice_finalize(invoice=invoice, now=issued_at, refresh=False))
    return issued


def _pay_one(*, tenant, invoices: list[Invoice]) -> Invoice | None:
    """The oldest invoice still due is paid by card through the test provider (its signed notification settles
    it, as in the dashboard); a newer one stays due, so the dashboard offers to pay it."""
    due = [invoice for invoice in invoices if invoice.payment_due]
    if not due or settings.PAYMENTS_PROVIDER != "test":
        return None
    owner = tenant.memberships.filter(role="owner").select_related("user").first().user
    payment = services.payment_invoice_start(invoice=due[0], user=owner)
    services.payment_notification_send(payment_id=payment.pk, outcome="succeeded")
    return Invoice.objects.get(pk=due[0].pk)


def _budget_near_limit(*, tenant, now: datetime) -> Decimal | None:
    """A budget the month-end forecast nearly reaches (its 80 % alert fires), unless the tenant has one already."""
    if Budget.objects.filter(tenant=tenant).exists():
        return None
    forecast = cents_to_decimal(tenant_month_usage(tenant=tenant, as_of=now).forecast_cents)
    amount = Decimal(max(5, math.ceil(forecast / BUDGET_SHARE / 5) * 5))
    services.budget_set(tenant=tenant, actor=None, amount=amount)
    services.budget_check(tenant=tenant, now=now)
    return amount
