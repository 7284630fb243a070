"""Monthly budgets and their alerts."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from billing.models import (
    AccountEvent,
    Budget,
    BudgetAlert,
)
from billing.pricing import cents_to_decimal, to_cents
from billing.selectors import MonthUsage, tenant_month_usage
from billing.services.events import account_event as _event
from portal.errors import InvalidRequest

BUDGET_THRESHOLDS = (50, 80, 100)


def budget_set(*, tenant, actor, amount: Decimal | None) -> Budget | None:
    """Sets (or with None, removes) the tenant's monthly budget."""
    with transaction.atomic():
        if amount is None:
            Budget.objects.filter(tenant=tenant).delete()
            _event(tenant=tenant, action=AccountEvent.Action.BUDGET, message="Monthly budget removed.", actor=actor)
            return None
        amount_cents = to_cents(amount)
        if amount_cents <= 0:
            raise InvalidRequest("A budget must be a positive amount.")
        budget, _ = Budget.objects.update_or_create(
            tenant=tenant, defaults={"amount_cents": amount_cents, "updated_at": timezone.now()}
        )
        _event(
            tenant=tenant,
            action=AccountEvent.Action.BUDGET,
            message=f"Monthly budget set to {budget.amount} {settings.BILLING_CURRENCY}.",
            actor=actor,
        )
    return budget


def _highest_crossed(*, spend_cents: int, budget_cents: int) -> int:
    """The highest threshold (percent) that `spend_cents` has reached, or 0 for none."""
    return max((t for t in BUDGET_THRESHOLDS if spend_cents * 100 >= budget_cents * t), default=0)


def budget_check(*, tenant, now: datetime | None = None) -> list[BudgetAlert]:
    """Raises the budget alerts newly crossed this month: at most one per basis (actual, forecast), for the highest
    threshold reached (50/80/100 %).

    A threshold implies the lower ones, and actual spend implies the same share of the forecast (which is never
    less), so an alert fires only above what was already reported this month; each fires once per month.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # Locking the budget serializes checks of one tenant, so each reads the alerts the previous one raised.
        budget = Budget.objects.select_for_update().filter(tenant=tenant).first()
        if budget is None:
            return []
        usage = tenant_month_usage(tenant=tenant, as_of=now)
        reported = dict(
            BudgetAlert.objects.for_tenant(tenant)
            .filter(period_start=usage.period_start)
            .order_by()
            .values("basis")
            .annotate(highest=Max("threshold"))
            .values_list("basis", "highest")
        )
        actual = _highest_crossed(spend_cents=usage.cost_cents, budget_cents=budget.amount_cents)
        forecast = _highest_crossed(spend_cents=usage.forecast_cents, budget_cents=budget.amount_cents)
        reported_actual = reported.get(BudgetAlert.Basis.ACTUAL, 0)
        reported_forecast = max(reported.get(BudgetAlert.Basis.FORECAST, 0), reported_actual, actual)
        fired = []
        for basis, threshold, already in (
            (BudgetAlert.Basis.ACTUAL, actual, reported_actual),
            (BudgetAlert.Basis.FORECAST, forecast, reported_forecast),
        ):
            if threshold > already:
                fired.append(_alert(tenant=tenant, budget=budget, usage=usage, basis=basis, threshold=threshold))
    return fired


def _alert(*, tenant, budget: Budget, usage: MonthUsage, basis: str, threshold: int) -> BudgetAlert:
    spend_cents = usage.cost_cents if basis == BudgetAlert.Basis.ACTUAL else usage.forecast_cents
    alert = BudgetAlert.objects.create(
        tenant=tenant,
        period_start=usage.period_start,
        basis=basis,
        threshold=threshold,
        spend_cents=spend_cents,
        budget_cents=budget.amount_cents,
    )
    label = "spend so far" if basis == BudgetAlert.Basis.ACTUAL else "forecast month-end spend"
    _event(
        tenant=tenant,
        action=AccountEvent.Action.BUDGET,
        message=f"Budget alert: {label} of {cents_to_decimal(spend_cents)} {settings.BILLING_CURRENCY} "
        f"reached {threshold} % of the {budget.amount} budget for {usage.period_start:%B %Y}.",
        email_subject=f"{threshold} % of your budget ({label})",
        activity=False,
    )
    return alert


def budgets_check(*, now: datetime | None = None) -> int:
    """The periodic budget check over every tenant with a budget; returns how many alerts fired."""
    fired = 0
    for budget in Budget.objects.select_related("tenant").order_by("pk").iterator(chunk_size=500):
        fired += len(budget_check(tenant=budget.tenant, now=now))
    return fired
