"""Self-service payments: the test provider's card page, the webhook, exactly-once credit, invoices, the API."""

import json
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from billing import services
from billing.models import AccountEvent, CreditEntry, Invoice, Payment
from billing.payments import testmode
from billing.payments.signing import signature_header
from billing.selectors import credit_balance_cents
from billing.services.metering import invoices_refresh
from portal.errors import InvalidRequest
from tenants.models import ActivityEntry
from tenants.roles import Role
from tests.concurrency import race
from tests.conftest import login_client
from tests.factories import MembershipFactory, TenantFactory
from tests.factories.billing import PaymentFactory, SegmentFactory

WEBHOOK_TEST = "/billing/payments/webhook/test/"
WEBHOOK_STRIPE = "/billing/payments/webhook/stripe/"


def _path(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def checkout(owner_client):
    """Starts a top-up from the dashboard; returns the path of the test provider's card page."""

    def start(amount="20.00"):
        response = owner_client.post(reverse("billing:topup"), {"amount": amount})
        assert response.status_code == 302, response.content
        return _path(response.url)

    return start


def _pay(client, page: str, number: str, capture, **extra):
    """Sends the card form; runs the test provider's notification delivery (after the commit)."""
    with capture(execute=True):
        return client.post(page, {"number": number, "expiry": "12/40", "cvc": "123", **extra})


def test_a_topup_paid_by_card_credits_the_ledger_once(
    tenant, owner, owner_client, checkout, django_capture_on_commit_callbacks
):
    page = checkout("20.00")
    payment = Payment.objects.get()
    assert (payment.status, payment.amount_cents, payment.provider) == ("pending", 2000, "test")
    assert "Test mode" in owner_client.get(page).content.decode()

    anonymous = login_client(MembershipFactory(tenant=TenantFactory()).user)  # the page needs no Hangar session
    response = _pay(anonymous, page, "4242 4242 4242 4242", django_capture_on_commit_callbacks)

    assert _path(response.url) == reverse("billing:payment-detail", args=[payment.pk])
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED and payment.completed_at is not None
    entry = CreditEntry.objects.get(payment=payment)
    assert (entry.kind, entry.amount_cents, entry.created_by) == (CreditEntry.Kind.TOPUP, 2000, owner)
    assert credit_balance_cents(tenant=tenant) == 2000
    assert AccountEvent.objects.filter(action="payment", result="succeeded").count() == 1
    assert ActivityEntry.objects.filter(tenant=tenant, action="payment", outcome="succeeded").exists()
    detail = owner_client.get(reverse("billing:payment-detail", args=[payment.pk])).content.decode()
    assert "added to your credit" in detail and "20.00 EUR" in detail
    # The link is spent: coming back to it shows the payment, not the form again.
    assert _path(anonymous.get(page).url) == reverse("billing:payment-detail", args=[payment.pk])


def test_a_declined_card_is_recorded_and_shown_and_credits_nothing(
    tenant, owner_client, checkout, django_capture_on_commit_callbacks
):
    page = checkout()
    _pay(owner_client, page, "4000 0000 0000 0002", django_capture_on_commit_callbacks)

    payment = Payment.objects.get()
    assert (payment.status, payment.failure_message) == ("failed", "Your card was declined.")
    assert credit_balance_cents(tenant=tenant) == 0
    assert AccountEvent.objects.filter(action="payment", result="failed").count() == 1
    history = owner_client.get(reverse("billing:payments")).content.decode()
    assert "Failed" in history and "Your card was declined." in history
    detail = owner_client.get(reverse("billing:payment-detail", args=[payment.pk])).content.decode()
    assert "Nothing was charged" in detail and "Try again" in detail


def test_three_d_secure_asks_first_then_approve_pays_and_deny_fails(
    tenant, owner_client, checkout, django_capture_on_commit_callbacks
):
    page = checkout("30.00")
    response = _pay(owner_client, page, "4000000000003220", django_capture_on_commit_callbacks)
    confirm = _path(response.url)
    assert confirm == page + "confirm/"
    assert Payment.objects.get().status == Payment.Status.REQUIRES_ACTION
    assert CreditEntry.objects.count() == 0
    assert "Approve payment" in owner_client.get(confirm).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(confirm, {"decision": "approve"})
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED
    assert credit_balance_cents(tenant=tenant) == 3000

    page = checkout("5.00")
    _pay(owner_client, page, "4000 0000 0000 3220", django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(page + "confirm/", {"decision": "deny"})
    denied = Payment.objects.get(amount_cents=500)
    assert denied.status == Payment.Status.FAILED and "3-D Secure" in denied.failure_message
    assert credit_balance_cents(tenant=tenant) == 3000


def test_card_form_errors_keep_the_payment_open(owner_client, checkout, django_capture_on_commit_callbacks):
    page = checkout()
    response = _pay(owner_client, page, "4242 4242 4242 4241", django_capture_on_commit_callbacks, expiry="01/20")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Your card number is invalid." in body and "expiry date is in the past" in body
    assert Payment.objects.get().status == Payment.Status.PENDING


def test_cancel_on_the_card_page_fails_the_payment(owner_client, checkout, django_capture_on_commit_callbacks):
    page = checkout()
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(page, {"cancel": "1"})
    assert Payment.objects.get().failure_message == "You cancelled the payment."


def test_checkouts_nobody_finished_expire_after_a_day(tenant):
    from datetime import timedelta

    from django.utils import timezone

    old = PaymentFactory(tenant=tenant, created_at=timezone.now() - timedelta(hours=25))
    fresh = PaymentFactory(tenant=tenant)
    assert services.payments_expire_abandoned() == 1
    old.refresh_from_db(), fresh.refresh_from_db()
    assert (old.status, old.failure_message) == ("failed", "The checkout expired before it was paid.")
    assert fresh.status == "pending"
    assert services.payments_expire_abandoned() == 0


def test_a_forged_or_spent_checkout_link_is_404(client, db):
    assert client.get(reverse("billing:test-checkout", args=["not-a-token"])).status_code == 404
    stripe_payment = PaymentFactory(provider="stripe")
    token = testmode.checkout_token(stripe_payment.pk)
    assert client.get(reverse("billing:test-checkout", args=[token])).status_code == 404


@pytest.mark.parametrize(("amount", "form_error"), [("4.99", "greater than or equal to 5"), ("5000.01", "less than")])
def test_topup_amount_limits(tenant, owner, owner_client, amount, form_error):
    response = owner_client.post(reverse("billing:topup"), {"amount": amount})
    assert response.status_code == 200 and form_error in response.content.decode()
    with pytest.raises(InvalidRequest, match="between 5 and 5000 EUR"):
        services.payment_topup_start(tenant=tenant, user=owner, amount=Decimal(amount))
    with pytest.raises(InvalidRequest, match="whole number of cents"):
        services.payment_topup_start(tenant=tenant, user=owner, amount=Decimal("10.005"))
    assert Payment.objects.count() == 0


def test_members_without_billing_rights_cannot_pay(tenant):
    client = login_client(MembershipFactory(tenant=tenant, role=Role.MEMBER).user)
    assert client.post(reverse("billing:topup"), {"amount": "20"}).status_code == 403
    viewer_of_billing = login_client(MembershipFactory(tenant=tenant, role=Role.BILLING).user)
    assert viewer_of_billing.post(reverse("billing:topup"), {"amount": "20"}).status_code == 302


def test_payments_switched_off(settings, owner_client):
    settings.PAYMENTS_PROVIDER = "none"
    page = owner_client.get(reverse("billing:credits")).content.decode()
    assert reverse("billing:topup") not in page and "added by the operator" in page
    response = owner_client.post(reverse("billing:topup"), {"amount": "20"})
    assert "Online payment is not available here" in response.content.decode()


# --- the webhook ---------------------------------------------------------------------------------------------------


def _test_notification(payment, outcome="succeeded", message=""):
    body = testmode.notification_body(payment=payment, outcome=outcome, message=message)
    return body, testmode.sign(body)[testmode.SIGNATURE_HEADER]


def test_the_same_notification_twice_credits_once(client, tenant):
    payment = PaymentFactory(tenant=tenant, amount_cents=4500)
    body, signature = _test_notification(payment)
    for _ in range(2):
        response = client.post(
            WEBHOOK_TEST, body, content_type="application/json", headers={"Hangar-Signature": signature}
        )
        assert response.status_code == 200 and response.json() == {"received": True}
    assert CreditEntry.objects.filter(tenant=tenant).count() == 1
    assert credit_balance_cents(tenant=tenant) == 4500
    assert AccountEvent.objects.filter(action="payment", result="succeeded").count() == 1
    # A late failure notice does not undo a settled payment.
    body, signature = _test_notification(payment, "failed", "late")
    client.post(WEBHOOK_TEST, body, content_type="application/json", headers={"Hangar-Signature": signature})
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "t=1,v1=00",
        signature_header(body=b"{}", secret=testmode.webhook_secret()),  # signs another body
        "old",
    ],
    ids=["unsigned", "malformed", "another-body", "stale"],  # the signed one holds the time: ids stay fixed
)
def test_unsigned_or_stale_notifications_are_refused(client, tenant, signature):
    payment = PaymentFactory(tenant=tenant)
    body, _ = _test_notification(payment)
    if signature == "old":
        signature = signature_header(body=body, secret=testmode.webhook_secret(), timestamp=int(time.time()) - 3600)
    response = client.post(WEBHOOK_TEST, body, content_type="application/json", headers={"Hangar-Signature": signature})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_notification"
    assert CreditEntry.objects.count() == 0


def test_unknown_provider_and_get_are_refused(client, db):
    assert client.post("/billing/payments/webhook/paypal/", b"{}", content_type="application/json").status_code == 404
    assert client.get(WEBHOOK_TEST).status_code == 405


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_credit_once():
    tenant = TenantFactory()
    payment = PaymentFactory(tenant=tenant, amount_cents=1234)
    body, signature = _test_notification(payment)
    results = race(
        8,
        lambda n: services.payment_notification_receive(
            provider="test", body=body, headers={"Hangar-Signature": signature}
        ),
    )
    assert results == ["ok"] * 8
    assert CreditEntry.objects.filter(payment=payment).count() == 1
    assert credit_balance_cents(tenant=tenant) == 1234
    assert AccountEvent.objects.filter(tenant=tenant, action="payment", result="succeeded").count() == 1


def test_the_ledger_refuses_a_second_entry_for_one_payment(tenant):
    from django.db import IntegrityError, transaction

    payment = PaymentFactory(tenant=tenant)
    CreditEntry.objects.create(tenant=tenant, kind="topup", amount_cents=2000, payment=payment)
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditEntry.objects.create(tenant=tenant, kind="topup", amount_cents=2000, payment=payment)


# --- invoices ------------------------------------------------------------------------------------------------------


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def due_invoice(tenant):
    SegmentFactory(tenant=tenant, price="67.20", started_at=at(2026, 3, 10), ended_at=at(2026, 3, 10, 10))
    invoices_refresh(period_start=date(2026, 3, 1), as_of=at(2026, 3, 20))
    invoice = Invoice.objects.get(tenant=tenant)
    return services.invoice_finalize(invoice=invoice, now=at(2026, 4, 3), refresh=False)


def test_paying_an_invoice_by_card_marks_it_paid(tenant, owner_client, due_invoice, django_capture_on_commit_callbacks):
    assert due_invoice.status == Invoice.Status.FINALIZED and due_invoice.total_cents == 100
    detail = owner_client.get(reverse("billing:invoice-detail", args=[due_invoice.pk])).content.decode()
    assert "Pay 1.00 EUR" in detail
    response = owner_client.post(reverse("billing:invoice-pay", args=[due_invoice.pk]))
    page = _path(response.url)
    _pay(owner_client, page, "4242424242424242", django_capture_on_commit_callbacks)

    due_invoice.refresh_from_db()
    assert due_invoice.status == Invoice.Status.PAID
    payment = Payment.objects.get()
    assert (payment.purpose, payment.invoice, payment.status) == ("invoice", due_invoice, "succeeded")
    entry = CreditEntry.objects.get(payment=payment)
    assert (entry.kind, entry.amount_cents, entry.invoice) == (CreditEntry.Kind.PAYMENT, 100, due_invoice)
    assert credit_balance_cents(tenant=tenant) == 0  # the invoice's debit, then its payment
    detail = owner_client.get(reverse("billing:invoice-detail", args=[due_invoice.pk])).content.decode()
    assert "Pay 1.00" not in detail and "Paid" in detail


def test_a_payment_for_an_invoice_settled_meanwhile_becomes_credit(tenant, owner, due_invoice):
    payment = services.payment_invoice_start(invoice=due_invoice, user=owner)
    services.invoice_mark_paid(invoice=due_invoice)  # e.g. a bank transfer the operator recorded
    body, signature = _test_notification(payment)
    services.payment_notification_receive(provider="test", body=body, headers={"Hangar-Signature": signature})
    entry = CreditEntry.objects.get(payment=payment)
    assert entry.kind == CreditEntry.Kind.TOPUP and "already settled" in entry.description
    assert credit_balance_cents(tenant=tenant) == 100


def test_only_an_invoice_awaiting_payment_can_be_paid(tenant, owner, owner_client, due_invoice):
    services.invoice_mark_paid(invoice=due_invoice)
    response = owner_client.post(reverse("billing:invoice-pay", args=[due_invoice.pk]), follow=True)
    assert "is not awaiting payment" in response.content.decode()
    assert Payment.objects.count() == 0


# --- Stripe (no network: the client is replaced, notifications are signed here) ------------------------------------


@pytest.fixture
def stripe_settings(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_hangar"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_hangar"
    settings.PAYMENTS_PROVIDER = "stripe"
    return settings


@pytest.fixture
def stripe_sessions(monkeypatch):
    """Records the Checkout Sessions Hangar asks Stripe for, and answers like Stripe does."""
    import stripe

    created = []

    class Sessions:
        def create(self, params, options=None):
            created.append((params, options))
            session_id = f"cs_test_{len(created)}"
            return stripe.checkout.Session.construct_from(
                {"id": session_id, "url": f"https://checkout.stripe.com/c/pay/{session_id}"}, "sk_test_hangar"
            )

    class Client:
        def __init__(self, *args, **kwargs):
            self.v1 = type("V1", (), {"checkout": type("Checkout", (), {"sessions": Sessions()})()})()

    monkeypatch.setattr(stripe, "StripeClient", Client)
    return created


def _stripe_event(event_type: str, session_id: str, **session) -> tuple[bytes, str]:
    event = {
        "id": f"evt_{event_type.replace('.', '_')}",
        "object": "event",
        "type": event_type,
        "data": {"object": {"id": session_id, "object": "checkout.session", **session}},
    }
    body = json.dumps(event).encode()
    return body, signature_header(body=body, secret="whsec_hangar")


def test_stripe_checkout_and_a_signed_completed_event(stripe_settings, stripe_sessions, tenant, owner_client, client):
    response = owner_client.post(reverse("billing:topup"), {"amount": "25.50"})
    assert response.url == "https://checkout.stripe.com/c/pay/cs_test_1"
    ((params, options),) = stripe_sessions
    assert params["mode"] == "payment" and params["line_items"][0]["price_data"]["unit_amount"] == 2550
    assert params["line_items"][0]["price_data"]["currency"] == "eur"
    payment = Payment.objects.get()
    assert (payment.provider, payment.provider_payment_id) == ("stripe", "cs_test_1")
    assert options == {"idempotency_key": f"hangar-payment-{payment.pk}"}

    body, signature = _stripe_event(
        "checkout.session.completed", "cs_test_1", payment_status="paid", amount_total=2550, currency="eur"
    )
    for _ in range(2):
        response = client.post(
            WEBHOOK_STRIPE, body, content_type="application/json", headers={"Stripe-Signature": signature}
        )
        assert response.status_code == 200
    assert credit_balance_cents(tenant=tenant) == 2550
    assert CreditEntry.objects.filter(payment=payment).count() == 1


def test_stripe_events_that_fail_ignore_or_do_not_verify(stripe_settings, stripe_sessions, tenant, owner, client):
    payment = services.payment_topup_start(tenant=tenant, user=owner, amount="10")
    unpaid, signature = _stripe_event(
        "checkout.session.completed", payment.provider_payment_id, payment_status="unpaid"
    )
    client.post(WEBHOOK_STRIPE, unpaid, content_type="application/json", headers={"Stripe-Signature": signature})
    assert Payment.objects.get().status == Payment.Status.PENDING  # a delayed method: wait for its outcome

    other, signature = _stripe_event("customer.created", "cus_1")
    assert (
        client.post(
            WEBHOOK_STRIPE, other, content_type="application/json", headers={"Stripe-Signature": signature}
        ).status_code
        == 200
    )

    expired, _ = _stripe_event("checkout.session.expired", payment.provider_payment_id)
    forged = signature_header(body=expired, secret="whsec_someone_else")
    response = client.post(
        WEBHOOK_STRIPE, expired, content_type="application/json", headers={"Stripe-Signature": forged}
    )
    assert response.status_code == 400
    assert Payment.objects.get().status == Payment.Status.PENDING

    expired, signature = _stripe_event("checkout.session.expired", payment.provider_payment_id)
    client.post(WEBHOOK_STRIPE, expired, content_type="application/json", headers={"Stripe-Signature": signature})
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED and "expired" in payment.failure_message
    assert credit_balance_cents(tenant=tenant) == 0


def test_stripe_refusing_a_checkout_is_a_clear_error(stripe_settings, monkeypatch, tenant, owner_client):
    import stripe

    class Sessions:
        def create(self, params, options=None):
            raise stripe.APIConnectionError("network down")

    class Client:
        def __init__(self, *args, **kwargs):
            self.v1 = type("V1", (), {"checkout": type("Checkout", (), {"sessions": Sessions()})()})()

    monkeypatch.setattr(stripe, "StripeClient", Client)
    response = owner_client.post(reverse("billing:topup"), {"amount": "20"})
    assert response.status_code == 200
    assert "refused to open a checkout" in response.content.decode()
    assert Payment.objects.get().status == Payment.Status.FAILED
