"""Payment providers: one interface, a test provider that works offline and Stripe.

A provider does two things for billing: it opens a checkout for a `Payment` (a page where the customer pays,
returned as a URL), and it turns the notification it later sends to our webhook into a `Notification` after
verifying its signature. Billing's services (billing/services/payments.py) do everything else: the ledger, the
invoice, the event log. Which provider is used is decided by settings (`PAYMENTS_PROVIDER`, docs/billing.md).
"""

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from portal.errors import InvalidRequest


class InvalidNotification(InvalidRequest):
    """A webhook body that is not signed by the provider, too old, or not understood."""

    code = "invalid_notification"


@dataclass(frozen=True)
class Checkout:
    """Where the customer pays: the provider's id of this payment and the page to send them to."""

    provider_payment_id: str
    url: str


@dataclass(frozen=True)
class Notification:
    """What a verified webhook says about one payment. `outcome` is succeeded, failed, or ignored (other events)."""

    event_id: str
    outcome: str
    provider_payment_id: str = ""
    amount_cents: int | None = None
    currency: str = ""
    message: str = ""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    IGNORED = "ignored"


class PaymentProvider(Protocol):
    name: str

    def checkout(self, *, payment, success_url: str, cancel_url: str) -> Checkout:
        """Opens the provider's payment page for `payment`; raises ServiceError if the provider refuses."""

    def parse_notification(self, *, body: bytes, headers) -> Notification:
        """Verifies a webhook's signature and reads it; raises InvalidNotification otherwise."""


def provider_for(name: str) -> PaymentProvider:
    """The provider of that name (a payment is always settled by the provider that opened it)."""
    if name == "test":
        from billing.payments.testmode import TestProvider

        return TestProvider()
    if name == "stripe":
        from billing.payments.stripe_checkout import StripeProvider

        return StripeProvider()
    raise InvalidNotification(f"There is no payment provider called {name!r}.")


def payments_enabled() -> bool:
    return settings.PAYMENTS_PROVIDER != "none"


def active_provider() -> PaymentProvider | None:
    """The provider new payments go to, or None when self-service payment is switched off."""
    return None if settings.PAYMENTS_PROVIDER == "none" else provider_for(settings.PAYMENTS_PROVIDER)
