"""Monthly budgets and their alerts."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import (
    AccountEvent,
    Budget,
    BudgetAlert,
)
from billing.pricing import cents_to_decimal, to_cents
from billing.selectors import tenant_month_usage
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


def budget_check(*, tenant, now: datetime | None = None) -> list[BudgetAlert]:
    """Raises the alerts newly crossed this month (actual and forecast, 50/80/100 %); each fires once per month."""
    now = now or timezone.now()
    budget = Budget.objects.filter(tenant=tenant).first()
    if budget is None:
        return []
    usage = tenant_month_usage(tenant=tenant, as_of=now)
    fired = []
    for basis, spend in (
        (BudgetAlert.Basis.ACTUAL, usage.cost_cents),
        (BudgetAlert.Basis.FORECAST, usage.forecast_cents),
    ):
        for threshold in BUDGET_THRESHOLDS:
            if spend * 100 < budget.amount_cents * threshold:
                continue
            try:
                with transaction.atomic():
                    alert = BudgetAlert.objects.create(
                        tenant=tenant,
                        period_start=usage.period_start,
                        basis=basis,
                        threshold=threshold,
                        spend_cents=spend,
                        budget_cents=budget.amount_cents,
                    )
                    label = "spend so far" if basis == BudgetAlert.Basis.ACTUAL else "forecast month-end spend"
                    _event(
                        tenant=tenant,
                        action=AccountEvent.Action.BUDGET,
                        message=f"Budget alert: {label} of {cents_to_decimal(spend)} {settings.BILLING_CURRENCY} "
                        f"reached {threshold} % of the {budget.amount} budget for {usage.period_start:%B %Y}.",
                        email_subject=f"{threshold} % of your budget ({label})",
                    )
            except IntegrityError:
                continue  # already fired this month
            fired.append(alert)
    return fired


def budgets_check(*, now: datetime | None = None) -> int:
    """The periodic budget check over every tenant with a budget; returns how many alerts fired."""
    fired = 0
    for budget in Budget.objects.select_related("tenant").order_by("pk").iterator(chunk_size=500):
        fired += len(budget_check(tenant=budget.tenant, now=now))
    return fired
