"""The dashboard banners about the tenant's billing standing: hold, suspension, budget alerts."""

from billing.models import BudgetAlert
from billing.selectors import budget_alerts_current
from tenants.models import Tenant
from tenants.roles import Permission

_STATUS_BANNERS = {
    Tenant.Status.HOLD: (
        "warning",
        "{tenant} is on hold: its credit limit is exceeded or an operator paused it. No new machines can be launched "
        "until credit is added; running machines keep running.",
    ),
    Tenant.Status.SUSPENDED: (
        "error",
        "{tenant} is suspended: its machines have been stopped (storage is still billed). Add credit (Billing → "
        "Credit) to resume.",
    ),
}


def banners(request) -> dict:
    tenant = getattr(request, "tenant", None)
    membership = getattr(request, "membership", None)
    if tenant is None or membership is None:
        return {"tenant_banners": []}
    result = []
    if tenant.status in _STATUS_BANNERS:
        level, text = _STATUS_BANNERS[tenant.status]
        result.append({"level": level, "text": text.format(tenant=tenant.name)})
    if membership.has(Permission.VIEW_BILLING):
        for alert in budget_alerts_current(tenant=tenant):
            label = "Spend so far" if alert.basis == BudgetAlert.Basis.ACTUAL else "Forecast month-end spend"
            result.append(
                {
                    "level": "error" if alert.threshold >= 100 else "warning",
                    "text": f"{label} has reached {alert.threshold} % of this month's budget.",
                }
            )
    return {"tenant_banners": result}
