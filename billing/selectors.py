"""Reads for the billing dashboard, the API and the periodic checks; every one takes `tenant=`."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from billing.models import (
    AccountEvent,
    BillingAccount,
    Budget,
    BudgetAlert,
    CreditEntry,
    Invoice,
    Payment,
    Price,
    ResourceType,
    Segment,
)
from billing.pricing import (
    GB,
    allowance_bytes,
    billable_gb,
    cents_to_decimal,
    line_cents,
    month_bounds,
    month_start,
    started_hours,
    traffic_cents,
)
from compute.network.selectors import tenant_outbound_bytes
from tenants.models import Tenant

# Volumes, snapshots, public addresses and outbound traffic (per GB) before an operator has priced them.
DEFAULT_PRICES = {
    ResourceType.VOLUME: Decimal("0.0500"),
    ResourceType.SNAPSHOT: Decimal("0.0300"),
    ResourceType.IPV4: Decimal("1.0000"),
    ResourceType.TRAFFIC: Decimal("0.0100"),
    ResourceType.IMAGE: Decimal("0.0500"),
    ResourceType.BACKUP: Decimal("20.0000"),  # percent of the machine's monthly price
}


def resource_price_current(*, resource_type: str, at: datetime) -> Decimal:
    """The monthly price of one GiB of volume or snapshot or of one public IPv4 address, or the price of one GB of
    outbound traffic, at `at`: the latest dated price (billing.services.prices adds them)."""
    price = (
        Price.objects.filter(resource_type=resource_type, flavor=None, effective_from__lte=at)
        .order_by("-effective_from")
        .values_list("monthly_price", flat=True)
        .first()
    )
    return DEFAULT_PRICES[resource_type] if price is None else Decimal(price)


@dataclass
class ResourceUsage:
    """One resource's month-to-date hours and cost (all its segments in the month)."""

    resource_type: str
    resource_id: str
    resource_name: str
    plans: list[str] = field(default_factory=list)
    hours: int = 0
    cost_cents: int = 0
    forecast_cents: int = 0
    running: bool = False

    @property
    def cost(self) -> Decimal:
        return cents_to_decimal(self.cost_cents)

    @property
    def forecast(self) -> Decimal:
        return cents_to_decimal(self.forecast_cents)

    @property
    def type_label(self) -> str:
        return ResourceType(self.resource_type).label


@dataclass(frozen=True)
class TrafficSummary:
    """A tenant's outbound traffic in one month against its pooled allowance, as the traffic line bills it."""

    sent_bytes: int
    allowance_bytes: int
    full_allowance_bytes: int  # if every machine running now runs to the month's end
    price_per_gb: Decimal
    billable_gb: int
    cost_cents: int

    @property
    def sent_gb(self) -> Decimal:
        return (Decimal(self.sent_bytes) / GB).quantize(Decimal("0.01"))

    @property
    def allowance_gb(self) -> int:
        return self.allowance_bytes // GB

    @property
    def full_allowance_gb(self) -> int:
        return self.full_allowance_bytes // GB

    @property
    def cost(self) -> Decimal:
        return cents_to_decimal(self.cost_cents)

    @property
    def percent(self) -> int:
        """How much of the allowance earned so far has been used, 0 to 100."""
        if not self.allowance_bytes:
            return 100 if self.sent_bytes else 0
        return min(100, self.sent_bytes * 100 // self.allowance_bytes)


@dataclass
class MonthUsage:
    """A tenant's spend in one month: month to date, forecast to month end, per resource, per type, per day."""

    period_start: date
    as_of: datetime
    cost_cents: int
    forecast_cents: int
    resources: list[ResourceUsage]
    by_type: list[tuple[str, int]]
    daily_cents: list[tuple[date, int]]
    traffic: TrafficSummary | None = None

    @property
    def cost(self) -> Decimal:
        return cents_to_decimal(self.cost_cents)

    @property
    def forecast(self) -> Decimal:
        return cents_to_decimal(self.forecast_cents)

    @property
    def by_type_display(self) -> list[tuple[str, Decimal]]:
        return [(ResourceType(kind).label, cents_to_decimal(cents)) for kind, cents in self.by_type]


def _segment_cents(segment: Segment, start: datetime, end: datetime, as_of: datetime) -> tuple[int, int]:
    hours = started_hours(
        start=segment.started_at, end=segment.ended_at, period_start=start, period_end=end, as_of=as_of
    )
    return hours, line_cents(
        hours=hours,
        hourly_rate_units=segment.hourly_rate_units,
        monthly_price_units=segment.monthly_price_units,
    )


def tenant_month_usage(
    *, tenant: Tenant, period_start: date | None = None, as_of: datetime | None = None
) -> MonthUsage:
    """Live usage computed from the segments with the metering job's arithmetic (so it matches the draft invoice).

    The forecast assumes every resource running now keeps running to the month's end.
    """
    as_of = as_of or timezone.now()
    period_start = period_start or month_start(as_of)
    start, end = month_bounds(period_start)
    segments = list(Segment.objects.for_tenant(tenant).overlapping(start, min(end, as_of)))
    resources: dict[str, ResourceUsage] = {}
    days = []
    day = start
    while day < end:
        days.append(day)
        day += timedelta(days=1)
    cumulative = [0] * len(days)
    allowance = full_allowance = 0
    for segment in segments:
        hours, cents = _segment_cents(segment, start, end, as_of)
        full_hours, forecast = _segment_cents(segment, start, end, end)
        if segment.resource_type == ResourceType.INSTANCE:
            allowance += allowance_bytes(allowance_gb=segment.traffic_allowance_gb, hours=hours)
            full_allowance += allowance_bytes(allowance_gb=segment.traffic_allowance_gb, hours=full_hours)
        usage = resources.setdefault(
            str(segment.resource_id),
            ResourceUsage(segment.resource_type, str(segment.resource_id), segment.resource_name),
        )
        usage.resource_name = segment.resource_name
        if segment.plan_name and segment.plan_name not in usage.plans:
            usage.plans.append(segment.plan_name)
        usage.hours += hours
        usage.cost_cents += cents
        usage.forecast_cents += forecast
        usage.running = usage.running or segment.ended_at is None
        # The month's cost as of each day's end: the chart shows the differences, so the days add up exactly.
        for index, day_start in enumerate(days):
            day_end = min(day_start + timedelta(days=1), as_of)
            if day_end <= start or day_start > as_of:
                continue
            cumulative[index] += _segment_cents(segment, start, end, day_end)[1]
    daily = []
    previous = 0
    for index, day_start in enumerate(days):
        if day_start > as_of:
            break
        daily.append((day_start.date(), cumulative[index] - previous))
        previous = cumulative[index]
    traffic = _traffic_summary(
        tenant=tenant, start=start, end=end, as_of=as_of, allowance=allowance, full_allowance=full_allowance
    )
    if traffic.sent_bytes:
        resources[ResourceType.TRAFFIC] = _traffic_usage(tenant, traffic, start=start, end=end, as_of=as_of)
        if daily and traffic.cost_cents:
            # A month's charge, not an hourly one: it shows on the latest day, so the days still add up.
            daily[-1] = (daily[-1][0], daily[-1][1] + traffic.cost_cents)
    by_type: dict[str, int] = defaultdict(int)
    for usage in resources.values():
        by_type[usage.resource_type] += usage.cost_cents
    ordered = sorted(resources.values(), key=lambda u: (-u.cost_cents, u.resource_name))
    return MonthUsage(
        period_start=period_start,
        as_of=as_of,
        cost_cents=sum(u.cost_cents for u in ordered),
        forecast_cents=sum(u.forecast_cents for u in ordered),
        resources=ordered,
        by_type=sorted(by_type.items(), key=lambda item: -item[1]),
        daily_cents=daily,
        traffic=traffic,
    )


def _traffic_summary(*, tenant, start, end, as_of, allowance: int, full_allowance: int) -> TrafficSummary:
    """The metering job's traffic line, in Python: bytes sent in the hours begun before `as_of`."""
    sent = tenant_outbound_bytes(tenant=tenant, start=start, end=min(end, as_of))
    price = resource_price_current(resource_type=ResourceType.TRAFFIC, at=start)
    gb = billable_gb(sent_bytes=sent, allowance=allowance)
    return TrafficSummary(
        sent_bytes=sent,
        allowance_bytes=allowance,
        full_allowance_bytes=full_allowance,
        price_per_gb=price,
        billable_gb=gb,
        cost_cents=traffic_cents(gb=gb, price_per_gb=price),
    )


def _traffic_usage(tenant, traffic: TrafficSummary, *, start, end, as_of) -> ResourceUsage:
    # The forecast assumes the month goes on sending at the rate it has so far, against the full allowance.
    elapsed = (min(as_of, end) - start).total_seconds()
    projected = int(traffic.sent_bytes * (end - start).total_seconds() / elapsed) if elapsed > 0 else 0
    projected_gb = billable_gb(sent_bytes=projected, allowance=traffic.full_allowance_bytes)
    return ResourceUsage(
        resource_type=ResourceType.TRAFFIC,
        resource_id=str(tenant.pk),
        resource_name="Outbound traffic",
        plans=[f"{traffic.sent_bytes // GB} GB sent, {traffic.allowance_gb} GB included"],
        cost_cents=traffic.cost_cents,
        forecast_cents=max(traffic.cost_cents, traffic_cents(gb=projected_gb, price_per_gb=traffic.price_per_gb)),
    )


def credit_balance_cents(*, tenant: Tenant) -> int:
    return CreditEntry.objects.for_tenant(tenant).aggregate(total=Sum("amount_cents"))["total"] or 0


def credit_balance(*, tenant: Tenant) -> Decimal:
    return cents_to_decimal(credit_balance_cents(tenant=tenant))


def unbilled_cents(*, tenant: Tenant) -> int:
    """Spend not yet on a finalized invoice: the totals of the tenant's draft invoices (refreshed by metering)."""
    drafts = Invoice.objects.for_tenant(tenant).filter(status=Invoice.Status.DRAFT)
    return drafts.aggregate(total=Sum("total_cents"))["total"] or 0


def credit_entries(*, tenant: Tenant) -> QuerySet[CreditEntry]:
    return CreditEntry.objects.for_tenant(tenant).select_related("invoice", "credit_note", "created_by")


def tenant_payments(*, tenant: Tenant) -> QuerySet[Payment]:
    return Payment.objects.for_tenant(tenant).select_related("invoice", "created_by").order_by("-created_at", "id")


def tenant_invoices(*, tenant: Tenant) -> QuerySet[Invoice]:
    return Invoice.objects.for_tenant(tenant).order_by("-period_start")


def account_events(*, tenant: Tenant) -> QuerySet[AccountEvent]:
    return AccountEvent.objects.for_tenant(tenant).select_related("actor")


def billing_account(*, tenant: Tenant) -> BillingAccount:
    """The tenant's billing account, or an unsaved default one (nothing is written on read)."""
    try:
        return tenant.billing_account
    except BillingAccount.DoesNotExist:
        return BillingAccount(tenant=tenant)


def tenant_budget(*, tenant: Tenant) -> Budget | None:
    return Budget.objects.filter(tenant=tenant).first()


def budget_alerts(*, tenant: Tenant, period_start: date) -> QuerySet[BudgetAlert]:
    return BudgetAlert.objects.for_tenant(tenant).filter(period_start=period_start).order_by("-threshold", "basis")


def billing_contacts(*, tenant: Tenant) -> list[str]:
    """E-mail addresses of the owners and billing members: they receive every billing notice."""
    from tenants.models import Membership
    from tenants.roles import Role

    memberships = Membership.objects.for_tenant(tenant).filter(
        Q(role=Role.OWNER) | Q(role=Role.BILLING), user__is_active=True
    )
    return sorted(memberships.values_list("user__email", flat=True))


def budget_alerts_current(*, tenant: Tenant, now: datetime | None = None) -> list[BudgetAlert]:
    """This month's budget alerts to show: the highest threshold reached, per basis (actual, forecast)."""
    alerts = BudgetAlert.objects.for_tenant(tenant).filter(period_start=month_start(now or timezone.now()))
    shown: dict[str, BudgetAlert] = {}
    for alert in alerts.order_by("-threshold", "basis"):
        shown.setdefault(alert.basis, alert)
    return list(shown.values())


@dataclass(frozen=True)
class Revenue:
    """For operators: this month's metered spend of every tenant so far, and what last month's invoices came to."""

    month_to_date: Decimal
    last_month_invoiced: Decimal
    last_month_open: int  # last month's invoices not finalized yet (still drafts)


def revenue_overview(*, now: datetime | None = None) -> Revenue:
    """Sums of the invoices (drafts are refreshed from the segments by metering every few minutes)."""
    now = now or timezone.now()
    this_month = month_start(now)
    last_month = month_start(this_month - timedelta(days=1))
    current = Invoice.objects.filter(period_start=this_month).exclude(status=Invoice.Status.VOID)
    previous = Invoice.objects.filter(period_start=last_month)
    totals = previous.aggregate(
        invoiced=Sum("total_cents", filter=Q(status__in=[Invoice.Status.FINALIZED, Invoice.Status.PAID])),
        open=Count("pk", filter=Q(status=Invoice.Status.DRAFT)),
    )
    return Revenue(
        month_to_date=cents_to_decimal(current.aggregate(total=Sum("total_cents"))["total"] or 0),
        last_month_invoiced=cents_to_decimal(totals["invoiced"] or 0),
        last_month_open=totals["open"],
    )
