"""Demo billing data: a dated price row for every flavor, the demo tenant's billing details, credit and a budget.

Safe to run again: only what is missing is added.
"""

from decimal import Decimal

from billing import services
from billing.models import BillingAccount, Budget, CreditEntry, Price
from compute.models import Flavor


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
        services.credit_topup(tenant=tenant, amount=Decimal("100.00"), description="Welcome credit")
        added.append("100.00 credit")
    if not Budget.objects.filter(tenant=tenant).exists():
        services.budget_set(tenant=tenant, actor=None, amount=Decimal("50.00"))
        added.append("a 50.00 monthly budget")
    if added:
        stdout.write(f"  billing: {', '.join(added)}")
