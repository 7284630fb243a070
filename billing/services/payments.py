"""Self-service payments: opening a checkout, the test provider's card page, and settling a payment exactly once.

A payment is settled only by its provider's signed notification (`payment_notification_receive`), never by the
browser coming back from the checkout. Settling claims the row with a conditional UPDATE: of two deliveries of the
same notification, sequential or concurrent, one changes the row and credits the ledger; the other finds it
settled and does nothing. `CreditEntry.payment` is unique as well, so the database refuses a second credit even if
that claim were bypassed.
"""

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from billing.models import AccountEvent, CreditEntry, Invoice, Payment
from billing.payments import Notification, active_provider, provider_for, testmode
from billing.pricing import to_cents
from billing.services.accounts import account_check
from billing.services.events import account_event as _event
from billing.services.invoices import invoice_mark_paid
from portal.errors import Conflict, InvalidRequest, Unprocessable

logger = logging.getLogger(__name__)


def _provider():
    provider = active_provider()
    if provider is None:
        raise Unprocessable(
            "Online payment is not available here; ask the operator to add credit.", code="payments_disabled"
        )
    return provider


def _open(*, tenant, user, purpose: str, amount_cents: int, invoice: Invoice | None = None) -> Payment:
    """Records the payment, then asks the provider for its checkout (outside the transaction: it may be remote)."""
    provider = _provider()
    with transaction.atomic():
        payment = Payment.objects.create(
            tenant=tenant,
            provider=provider.name,
            purpose=purpose,
            invoice=invoice,
            amount_cents=amount_cents,
            currency=settings.BILLING_CURRENCY,
            created_by=user,
        )
        _event(
            tenant=tenant,
            action=AccountEvent.Action.PAYMENT,
            message=f"{payment.description}: {payment.amount} {payment.currency} started.",
            actor=user,
            result=AccountEvent.Result.REQUESTED,
        )
    back = settings.SITE_URL + reverse("billing:payment-detail", args=[payment.pk])
    try:
        checkout = provider.checkout(payment=payment, success_url=back, cancel_url=back)
    except Unprocessable as error:
        Payment.objects.filter(pk=payment.pk).update(
            status=Payment.Status.FAILED, failure_message=error.message[:300], completed_at=timezone.now()
        )
        raise
    payment.provider_payment_id, payment.checkout_url = checkout.provider_payment_id, checkout.url
    payment.save(update_fields=["provider_payment_id", "checkout_url"])
    return payment


def payment_topup_start(*, tenant, user, amount: Decimal) -> Payment:
    """Opens a checkout that adds `amount` of credit once paid; returns the payment with its checkout URL."""
    amount = Decimal(amount)
    low, high = settings.PAYMENTS_TOPUP_MIN, settings.PAYMENTS_TOPUP_MAX
    if not low <= amount <= high:
        raise InvalidRequest(
            f"A top-up is between {low} and {high} {settings.BILLING_CURRENCY}.",
            details={"amount": [f"Between {low} and {high}."]},
        )
    if to_cents(amount) != amount * 100:
        raise InvalidRequest("A top-up is a whole number of cents.", details={"amount": ["At most 2 decimals."]})
    return _open(tenant=tenant, user=user, purpose=Payment.Purpose.TOPUP, amount_cents=to_cents(amount))


def payment_invoice_start(*, invoice: Invoice, user) -> Payment:
    """Opens a checkout for an issued invoice awaiting payment (its whole total)."""
    if not invoice.payment_due:
        raise Conflict(f"Invoice {invoice.number or invoice.title} is not awaiting payment.", code="not_payable")
    return _open(
        tenant=invoice.tenant,
        user=user,
        purpose=Payment.Purpose.INVOICE,
        amount_cents=invoice.total_cents,
        invoice=invoice,
    )


# --- The test provider's hosted card page --------------------------------------------------------------------


def _deliver_later(payment: Payment, outcome: str, message: str = "") -> None:
    from billing.tasks import deliver_test_notification

    payment_id = str(payment.pk)
    transaction.on_commit(
        lambda: deliver_test_notification.delay(payment_id=payment_id, outcome=outcome, message=message)
    )


def _test_payment(payment: Payment) -> Payment:
    if payment.provider != Payment.Provider.TEST:
        raise Conflict("This payment is not taken by the test provider.")
    return payment


def payment_card_submit(
    *, payment: Payment, number: str, expiry: str, cvc: str, today: date | None = None
) -> testmode.CardResult:
    """The test card form was sent: field errors raise InvalidRequest (details per field); a decline or a payment
    is sent to the webhook as the provider's notification; a 3-D-Secure card waits for its confirmation."""
    _test_payment(payment)
    errors = testmode.card_errors(number=number, expiry=expiry, cvc=cvc, today=today or timezone.now().date())
    if errors:
        raise InvalidRequest("Check the card details.", details=errors)
    result = testmode.card_result(number)
    with transaction.atomic():
        claimed = Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING)
        if result.outcome == testmode.CardResult.CONFIRM:
            if not claimed.update(status=Payment.Status.REQUIRES_ACTION):
                raise Conflict("This payment is no longer waiting for a card.")
        else:
            if not claimed.exists():
                raise Conflict("This payment is no longer waiting for a card.")
            outcome = Notification.SUCCEEDED if result.outcome == testmode.CardResult.PAID else Notification.FAILED
            _deliver_later(payment, outcome, result.message)
    return result


def payment_card_confirm(*, payment: Payment, approve: bool) -> None:
    """The 3-D-Secure-like step was answered: the payment waits for the provider's word again, which pays it if
    approved and fails it if denied (both through the webhook)."""
    _test_payment(payment)
    with transaction.atomic():
        answered = Payment.objects.filter(pk=payment.pk, status=Payment.Status.REQUIRES_ACTION).update(
            status=Payment.Status.PENDING
        )
        if not answered:
            raise Conflict("This payment is not waiting for a confirmation.")
        if approve:
            _deliver_later(payment, Notification.SUCCEEDED)
        else:
            _deliver_later(payment, Notification.FAILED, "The card's issuer could not confirm it was you (3-D Secure).")


def payment_card_cancel(*, payment: Payment) -> None:
    """The customer left the test card page with Cancel: the provider reports the payment as failed."""
    _test_payment(payment)
    if payment.is_open:
        _deliver_later(payment, Notification.FAILED, "You cancelled the payment.")


def payment_notification_send(*, payment_id, outcome: str, message: str = "") -> Payment | None:
    """The test provider's delivery: signs its notification and hands it to the webhook handler, exactly as the
    HTTP endpoint does (the worker need not reach the web server over the network)."""
    payment = Payment.objects.filter(pk=payment_id, provider=Payment.Provider.TEST).first()
    if payment is None:
        return None
    body = testmode.notification_body(payment=payment, outcome=outcome, message=message)
    return payment_notification_receive(provider=payment.provider, body=body, headers=testmode.sign(body))


def payments_expire_abandoned(*, now: datetime | None = None) -> int:
    """The test provider expires checkouts nobody finished within a day, as Stripe does (its `expired` event):
    it reports them failed through its notification. Returns how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=testmode.CHECKOUT_MAX_AGE)
    abandoned = Payment.objects.filter(
        provider=Payment.Provider.TEST, status__in=Payment.OPEN_STATUSES, created_at__lt=cutoff
    ).values_list("pk", flat=True)
    expired = 0
    for payment_id in list(abandoned.order_by("created_at")[:500]):
        if payment_notification_send(
            payment_id=payment_id, outcome=Notification.FAILED, message="The checkout expired before it was paid."
        ):
            expired += 1
    return expired


# --- Settling: the webhook -------------------------------------------------------------------------------------


def payment_notification_receive(*, provider: str, body: bytes, headers, now: datetime | None = None) -> Payment | None:
    """Verifies and applies one provider notification; returns the payment it settled, or None when it changed
    nothing (an event we ignore, a payment we do not know, or one already settled). Raises InvalidNotification."""
    notification = provider_for(provider).parse_notification(body=body, headers=headers)
    if notification.outcome == Notification.IGNORED:
        return None
    payment = Payment.objects.filter(provider=provider, provider_payment_id=notification.provider_payment_id).first()
    if payment is None:
        logger.warning("Payment notification %s names no payment we know.", notification.event_id)
        return None
    if notification.outcome == Notification.SUCCEEDED:
        return payment_succeed(payment=payment, notification=notification, now=now)
    return payment_fail(payment=payment, message=notification.message or "The payment failed.", now=now)


def payment_succeed(*, payment: Payment, notification: Notification | None = None, now: datetime | None = None):
    """Credits a paid payment once: a top-up adds credit, an invoice payment pays the invoice.

    Returns None if another delivery settled it first.
    """
    now = now or timezone.now()
    if notification and notification.amount_cents not in (None, payment.amount_cents):
        logger.error(
            "Payment %s: the provider reports %s cents, not %s.",
            payment.pk,
            notification.amount_cents,
            payment.amount_cents,
        )
    with transaction.atomic():
        # The claim: of concurrent deliveries, the first UPDATE wins; PostgreSQL makes the others wait for its
        # commit and then re-check the condition, which no longer matches.
        claimed = (
            Payment.objects.filter(pk=payment.pk)
            .exclude(status=Payment.Status.SUCCEEDED)
            .update(status=Payment.Status.SUCCEEDED, completed_at=now, failure_message="")
        )
        if not claimed:
            return None
        payment = Payment.objects.select_related("tenant", "invoice", "created_by").get(pk=payment.pk)
        invoice = payment.invoice
        if invoice is not None:
            invoice = Invoice.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=invoice.pk)
        if invoice is not None and invoice.status == Invoice.Status.FINALIZED:
            invoice_mark_paid(invoice=invoice, actor=payment.created_by, now=now, payment=payment)
            return payment
        note = "" if invoice is None else f" for invoice {invoice.number}, which was already settled,"
        CreditEntry.objects.create(
            tenant=payment.tenant,
            kind=CreditEntry.Kind.TOPUP,
            amount_cents=payment.amount_cents,
            description="Card payment" + (f" for {invoice.number} (already settled)" if invoice else ""),
            payment=payment,
            created_by=payment.created_by,
            created_at=now,
        )
        _event(
            tenant=payment.tenant,
            action=AccountEvent.Action.PAYMENT,
            message=f"Payment of {payment.amount} {payment.currency}{note} received: added to your credit.",
            actor=payment.created_by,
        )
    account_check(tenant=payment.tenant, now=now)
    return payment


def payment_fail(*, payment: Payment, message: str, now: datetime | None = None) -> Payment | None:
    """Records a declined, cancelled or expired payment (once); nothing is credited."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = Payment.objects.filter(pk=payment.pk, status__in=Payment.OPEN_STATUSES).update(
            status=Payment.Status.FAILED, completed_at=now, failure_message=message[:300]
        )
        if not claimed:
            return None
        payment = Payment.objects.select_related("tenant", "invoice", "created_by").get(pk=payment.pk)
        _event(
            tenant=payment.tenant,
            action=AccountEvent.Action.PAYMENT,
            message=f"{payment.description}: {payment.amount} {payment.currency} failed. {message}",
            actor=payment.created_by,
            result=AccountEvent.Result.FAILED,
        )
    return payment
