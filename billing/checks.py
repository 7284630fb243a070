"""`manage.py check --deploy`: a deployment must not credit balances from test cards."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def test_payments_in_production(app_configs=None, **kwargs):
    if settings.PAYMENTS_PROVIDER != "test":
        return []
    return [
        checks.Warning(
            "The test payment provider is active: anyone can add credit with a test card number.",
            hint="Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET, or PAYMENTS_PROVIDER=none (docs/billing.md).",
            id="billing.W001",
        )
    ]
