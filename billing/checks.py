"""System checks: invoice PDFs need their font; a deployment (`--deploy`) must not credit balances from test cards."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


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


@checks.register()
def invoice_pdf_fonts(app_configs=None, **kwargs):
    from billing.pdf import FONT_FILES, FONT_PACKAGE, font_path

    for name in FONT_FILES.values():
        try:
            font_path(name)
        except ImproperlyConfigured as error:
            return [
                checks.Warning(
                    str(error),
                    hint=f"Workers cannot render invoice PDFs until the package {FONT_PACKAGE} is installed.",
                    id="billing.W002",
                )
            ]
    return []
