"""Stripe behind the payments interface: a Checkout Session per payment, settled by Stripe's signed webhooks.

Used only when `STRIPE_SECRET_KEY` and `STRIPE_WEBHOOK_SECRET` are set (docs/billing.md#stripe). The session's id
(`cs_…`) is the payment's provider id; the events that settle it:

- `checkout.session.completed` with `payment_status` "paid" (cards), and `checkout.session.async_payment_succeeded`
  (bank debits that clear later): succeeded;
- `checkout.session.async_payment_failed`: failed; `checkout.session.expired`: failed (never paid).

Everything else Stripe sends is acknowledged and ignored.
"""

import stripe
from django.conf import settings

from billing.payments import Checkout, InvalidNotification, Notification
from portal.errors import Unprocessable

SIGNATURE_HEADER = "Stripe-Signature"

_SUCCEEDED = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
_FAILED = {
    "checkout.session.async_payment_failed": "The payment failed.",
    "checkout.session.expired": "The checkout expired before it was paid.",
}


def _client() -> stripe.StripeClient:
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, max_network_retries=2)


class StripeProvider:
    """Stripe Checkout (`PAYMENTS_PROVIDER=stripe`)."""

    name = "stripe"

    def checkout(self, *, payment, success_url: str, cancel_url: str) -> Checkout:
        params = {
            "mode": "payment",
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": str(payment.pk),
            "metadata": {"payment_id": str(payment.pk), "tenant_id": str(payment.tenant_id)},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": payment.currency.lower(),
                        "unit_amount": payment.amount_cents,
                        "product_data": {"name": payment.description},
                    },
                }
            ],
        }
        try:
            session = _client().v1.checkout.sessions.create(  # write-ok: a Stripe API call, not a model write
                params=params, options={"idempotency_key": f"hangar-payment-{payment.pk}"}
            )
        except stripe.StripeError as error:
            raise Unprocessable(
                f"The payment provider refused to open a checkout: {error.user_message or 'try again later'}.",
                code="payment_provider_error",
            ) from None
        return Checkout(provider_payment_id=session.id, url=session.url)

    def parse_notification(self, *, body: bytes, headers) -> Notification:
        try:
            event = stripe.Webhook.construct_event(
                body.decode(), headers.get(SIGNATURE_HEADER, ""), settings.STRIPE_WEBHOOK_SECRET
            )
        except stripe.SignatureVerificationError:
            raise InvalidNotification("The notification's signature does not verify.") from None
        except ValueError as error:
            raise InvalidNotification(f"The notification could not be read ({error}).") from None
        session = event.data.object
        if event.type not in _SUCCEEDED and event.type not in _FAILED:
            return Notification(event_id=event.id, outcome=Notification.IGNORED)
        if event.type == "checkout.session.completed" and session.get("payment_status") != "paid":
            # Paid later by a delayed method: async_payment_succeeded or _failed follows.
            return Notification(event_id=event.id, outcome=Notification.IGNORED)
        outcome = Notification.SUCCEEDED if event.type in _SUCCEEDED else Notification.FAILED
        return Notification(
            event_id=event.id,
            outcome=outcome,
            provider_payment_id=session["id"],
            amount_cents=session.get("amount_total"),
            currency=(session.get("currency") or "").upper(),
            message=_FAILED.get(event.type, ""),
        )
