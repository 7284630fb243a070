"""The billing card on the dashboard's home page (owners and billing members)."""

from django.conf import settings
from django.urls import reverse

from billing.models import Budget
from billing.selectors import tenant_month_usage
from tenants.models import Tenant


def billing_card(*, tenant: Tenant) -> dict:
    usage = tenant_month_usage(tenant=tenant)
    budget = Budget.objects.filter(tenant=tenant).first()
    percent = usage.cost_cents * 100 / budget.amount_cents if budget else None
    return {
        "label": "Spend this month",
        "value": f"{usage.cost:,} {settings.BILLING_CURRENCY}",
        "url": reverse("billing:overview"),
        "sub": f"forecast {usage.forecast:,}" + (f" of a {budget.amount:,} budget" if budget else ""),
        "percent": percent,
    }
