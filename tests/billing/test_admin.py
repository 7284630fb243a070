from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import CreditEntry, Invoice, Price
from billing.services.metering import invoices_refresh
from tests.conftest import login_client
from tests.factories import UserFactory
from tests.factories.billing import SegmentFactory
from tests.factories.compute import FlavorFactory

MODELS = [
    "price",
    "segment",
    "invoice",
    "creditnote",
    "creditentry",
    "billingaccount",
    "budget",
    "budgetalert",
    "accountevent",
    "payment",
]


@pytest.fixture
def operator_client(db):
    return login_client(UserFactory(is_staff=True, is_superuser=True))


@pytest.mark.parametrize("model", MODELS)
def test_admin_pages_load(operator_client, tenant, model):
    SegmentFactory(
        tenant=tenant, started_at=datetime(2026, 3, 1, tzinfo=UTC), ended_at=datetime(2026, 3, 2, tzinfo=UTC)
    )
    invoices_refresh(period_start=date(2026, 3, 1), as_of=datetime(2026, 3, 5, tzinfo=UTC))
    assert operator_client.get(reverse(f"admin:billing_{model}_changelist")).status_code == 200


def test_admin_top_up_and_finalize_action(operator_client, tenant):
    response = operator_client.post(
        reverse("admin:billing_creditentry_add"), {"tenant": tenant.pk, "amount": "12.50", "description": "Wire"}
    )
    assert response.status_code == 302
    assert CreditEntry.objects.get(tenant=tenant).amount == Decimal("12.50")
    SegmentFactory(
        tenant=tenant, started_at=datetime(2026, 3, 1, tzinfo=UTC), ended_at=datetime(2026, 3, 2, tzinfo=UTC)
    )
    invoices_refresh(period_start=date(2026, 3, 1), as_of=datetime(2026, 3, 5, tzinfo=UTC))
    invoice = Invoice.objects.get(tenant=tenant)
    operator_client.post(
        reverse("admin:billing_invoice_changelist"), {"action": "finalize_now", "_selected_action": [invoice.pk]}
    )
    invoice.refresh_from_db()
    assert invoice.number and invoice.status == Invoice.Status.PAID  # the 12.50 credit covers 0.72


def test_admin_price_keeps_flavor_in_step(operator_client):
    flavor = FlavorFactory(monthly_price=Decimal("10.00"))
    response = operator_client.post(
        reverse("admin:billing_price_add"), {"resource_type": "instance", "flavor": flavor.pk, "monthly_price": "12.00"}
    )
    assert response.status_code == 302
    flavor.refresh_from_db()
    assert flavor.monthly_price == Decimal("12.00")
    assert Price.objects.get(flavor=flavor).monthly_price == Decimal("12.00")
    form = operator_client.get(reverse("admin:compute_flavor_change", args=[flavor.pk])).content.decode()
    assert 'name="monthly_price"' not in form


def test_admin_price_form_refuses_bad_input(operator_client):
    flavor = FlavorFactory(monthly_price=Decimal("10.00"))
    for price in ("-1", "1.005", "abc"):
        response = operator_client.post(
            reverse("admin:billing_price_add"),
            {"resource_type": "instance", "flavor": flavor.pk, "monthly_price": price},
        )
        assert response.status_code == 200, price
    response = operator_client.post(
        reverse("admin:billing_price_add"), {"resource_type": "volume", "monthly_price": "0.044"}
    )
    assert response.status_code == 302
    assert Price.objects.get(resource_type="volume").monthly_price == Decimal("0.0440")


def test_admin_credit_note_too_large_is_a_message_not_a_500(operator_client, tenant):
    SegmentFactory(
        tenant=tenant, started_at=datetime(2026, 3, 1, tzinfo=UTC), ended_at=datetime(2026, 3, 2, tzinfo=UTC)
    )
    invoices_refresh(period_start=date(2026, 3, 1), as_of=datetime(2026, 3, 5, tzinfo=UTC))
    invoice = Invoice.objects.get(tenant=tenant)
    operator_client.post(
        reverse("admin:billing_invoice_changelist"), {"action": "finalize_now", "_selected_action": [invoice.pk]}
    )
    url = reverse("admin:billing_creditnote_add")
    response = operator_client.post(url, {"invoice": invoice.pk, "amount": "999", "reason": "x"}, follow=True)
    assert response.status_code == 200 and "cannot exceed" in response.content.decode()
    response = operator_client.post(url, {"invoice": invoice.pk, "amount": "0.50", "reason": "Outage"})
    assert response.status_code == 302
    assert invoice.credit_notes.get().number.startswith("CN-")


def test_payment_admin_is_read_only_and_links_the_ledger_entry(operator_client, tenant):
    from billing.payments import testmode
    from billing.services import payment_notification_receive
    from tests.factories.billing import PaymentFactory

    payment = PaymentFactory(tenant=tenant)
    body = testmode.notification_body(payment=payment, outcome="succeeded")
    payment_notification_receive(provider="test", body=body, headers=testmode.sign(body))
    page = operator_client.get(reverse("admin:billing_payment_change", args=[payment.pk])).content.decode()
    entry = CreditEntry.objects.get(payment=payment)
    assert "20.00 EUR" in page and reverse("admin:billing_creditentry_change", args=[entry.pk]) in page
    assert operator_client.get(reverse("admin:billing_payment_add")).status_code == 403
    listing = operator_client.get(reverse("admin:billing_payment_changelist") + "?status__exact=succeeded")
    assert payment.provider_payment_id in listing.content.decode()
