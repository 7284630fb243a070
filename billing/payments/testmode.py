"""The test provider: a simulated hosted card form inside Hangar that needs no network and no account.

It behaves like a real provider from billing's point of view: `checkout()` returns the URL of its payment page
(signed, so it works without a Hangar session, like a provider's hosted page), the page takes a card number,
expiry and CVC, and the result reaches billing only as a signed notification to the webhook handler. Test card
numbers (any future expiry, any 3-digit CVC):

    4242 4242 4242 4242   paid
    4000 0000 0000 0002   declined
    4000 0000 0000 9995   declined: insufficient funds
    4000 0000 0000 3220   asks for a 3-D-Secure-like confirmation first (approve or deny)

Any other number that passes the Luhn check is paid too, like a real test mode.
"""

import json
import secrets
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.crypto import salted_hmac

from billing.payments import Checkout, InvalidNotification, Notification
from billing.payments.signing import signature_header, signature_valid

SIGNATURE_HEADER = "Hangar-Signature"
_TOKEN_SALT = "billing.payments.test.checkout"
# A checkout page stays valid for a day, like a provider's checkout session.
CHECKOUT_MAX_AGE = 24 * 3600

DECLINED = {
    "4000000000000002": "Your card was declined.",
    "4000000000009995": "Your card has insufficient funds.",
}
NEEDS_CONFIRMATION = {"4000000000003220"}


def webhook_secret() -> str:
    """The test provider's signing secret, derived from SECRET_KEY (nothing to configure, nothing to leak)."""
    return salted_hmac("billing.payments.test.webhook", "signing-secret", algorithm="sha256").hexdigest()


def checkout_token(payment_id) -> str:
    return signing.dumps(str(payment_id), salt=_TOKEN_SALT)


def payment_id_from_token(token: str) -> str | None:
    try:
        return signing.loads(token, salt=_TOKEN_SALT, max_age=CHECKOUT_MAX_AGE)
    except signing.BadSignature:
        return None


@dataclass(frozen=True)
class CardResult:
    """What the simulated issuer says about a card: paid, declined (with why) or confirm (3-D Secure)."""

    outcome: str
    message: str = ""

    PAID = "paid"
    DECLINED = "declined"
    CONFIRM = "confirm"


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_errors(*, number: str, expiry: str, cvc: str, today: date) -> dict[str, str]:
    """Field errors of a card form, as a card form shows them (number, expiry MM/YY, CVC)."""
    errors = {}
    digits = number.replace(" ", "").replace("-", "")
    if not digits.isdigit() or not 13 <= len(digits) <= 19 or not _luhn_valid(digits):
        errors["number"] = "Your card number is invalid."
    month, _, year = expiry.replace(" ", "").partition("/")
    if not (month.isdigit() and year.isdigit() and 1 <= int(month) <= 12 and len(year) in (2, 4)):
        errors["expiry"] = "Enter the expiry date as MM/YY."
    else:
        full_year = int(year) + (2000 if len(year) == 2 else 0)
        if (full_year, int(month)) < (today.year, today.month):
            errors["expiry"] = "Your card's expiry date is in the past."
    if not cvc.isdigit() or len(cvc) not in (3, 4):
        errors["cvc"] = "Your card's security code is invalid."
    return errors


def card_result(number: str) -> CardResult:
    digits = number.replace(" ", "").replace("-", "")
    if digits in DECLINED:
        return CardResult(CardResult.DECLINED, DECLINED[digits])
    if digits in NEEDS_CONFIRMATION:
        return CardResult(CardResult.CONFIRM)
    return CardResult(CardResult.PAID)


def notification_body(*, payment, outcome: str, message: str = "") -> bytes:
    """The JSON the test provider posts to the webhook: one event about one payment."""
    event = {
        "id": f"evt_test_{secrets.token_hex(12)}",
        "type": f"payment.{outcome}",
        "data": {
            "payment_id": payment.provider_payment_id,
            "amount": payment.amount_cents,
            "currency": payment.currency,
            "message": message,
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


def sign(body: bytes) -> dict[str, str]:
    """The headers the test provider sends with a notification."""
    return {SIGNATURE_HEADER: signature_header(body=body, secret=webhook_secret())}


class TestProvider:
    """The offline provider (`PAYMENTS_PROVIDER=test`)."""

    name = "test"

    def checkout(self, *, payment, success_url: str, cancel_url: str) -> Checkout:
        url = settings.SITE_URL + reverse("billing:test-checkout", args=[checkout_token(payment.pk)])
        return Checkout(provider_payment_id=f"tp_{payment.pk.hex}", url=url)

    def parse_notification(self, *, body: bytes, headers) -> Notification:
        header = headers.get(SIGNATURE_HEADER, "")
        if not signature_valid(body=body, header=header, secret=webhook_secret()):
            raise InvalidNotification("The notification's signature does not verify.")
        try:
            event = json.loads(body)
            kind, data = event["type"], event["data"]
            outcome = {"payment.succeeded": Notification.SUCCEEDED, "payment.failed": Notification.FAILED}[kind]
            return Notification(
                event_id=str(event["id"]),
                outcome=outcome,
                provider_payment_id=str(data["payment_id"]),
                amount_cents=int(data["amount"]),
                currency=str(data["currency"]),
                message=str(data.get("message", "")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidNotification(f"The notification could not be read ({error}).") from None
