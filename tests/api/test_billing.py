"""Usage and invoices through the API: owners and billing members only."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from billing.models import Invoice
from billing.services import invoice_finalize
from tests.api.conftest import api_client_for
from tests.api.test_generic import assert_error
from tests.factories.billing import InvoiceFactory, SegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing_api(billing_user, tenant):
    return api_client_for(billing_user, tenant)


def _last_month() -> date:
    return (timezone.now().date().replace(day=1) - timedelta(days=1)).replace(day=1)


def test_usage_month_to_date(billing_api, tenant):
    SegmentFactory(tenant=tenant, resource_name="web-1", started_at=timezone.now() - timedelta(hours=3))
    body = billing_api.get("/api/v1/usage/").json()
    assert body["period_start"] == timezone.now().date().replace(day=1).isoformat()
    assert [r["resource_name"] for r in body["resources"]] == ["web-1"]
    assert body["resources"][0]["hours"] >= 3
    assert body["currency"] == "EUR"
    assert body["cost"] == body["resources"][0]["cost"]


def test_members_without_billing_rights_get_403(member_api, viewer_api, tenant):
    invoice = InvoiceFactory(tenant=tenant)
    for client in (member_api, viewer_api):
        assert_error(client.get("/api/v1/usage/"), 403, "permission_denied")
        assert_error(client.get("/api/v1/invoices/"), 403)
        assert_error(client.get(f"/api/v1/invoices/{invoice.pk}/pdf/"), 403)


def test_invoices_list_detail_and_filters(billing_api, tenant):
    old = InvoiceFactory(tenant=tenant, period_start=date(2025, 1, 1))
    new = InvoiceFactory(tenant=tenant, period_start=date(2025, 2, 1))
    body = billing_api.get("/api/v1/invoices/").json()
    assert [row["id"] for row in body["data"]] == [str(new.pk), str(old.pk)]
    assert body["data"][0]["pdf_url"].endswith(f"/api/v1/invoices/{new.pk}/pdf/")
    assert "lines" not in body["data"][0]
    detail = billing_api.get(f"/api/v1/invoices/{old.pk}/").json()
    assert detail["lines"] == [] and detail["status"] == "draft" and detail["number"] is None
    filtered = billing_api.get("/api/v1/invoices/?period_from=2025-02-01").json()
    assert [row["id"] for row in filtered["data"]] == [str(new.pk)]
    assert_error(billing_api.get("/api/v1/invoices/?status=unpaid"), 400, "invalid")
    assert_error(billing_api.get("/api/v1/invoices/?period_from=yesterday"), 400, "invalid")


def test_download_last_months_invoice(billing_api, tenant):
    period = _last_month()
    SegmentFactory(tenant=tenant, resource_name="web-1", started_at=timezone.make_aware(
        timezone.datetime(period.year, period.month, 2)))  # fmt: skip
    invoice = InvoiceFactory(tenant=tenant, period_start=period)
    invoice = invoice_finalize(invoice=invoice, now=timezone.now())
    assert invoice.status == Invoice.Status.FINALIZED
    pdf = billing_api.get(f"/api/v1/invoices/{invoice.pk}/pdf/")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert invoice.number in pdf["Content-Disposition"]
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    csv = billing_api.get(f"/api/v1/invoices/{invoice.pk}/csv/", HTTP_ACCEPT="text/csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    assert b"web-1" in b"".join(csv.streaming_content)


def test_document_errors_stay_json_even_when_asking_for_a_pdf(billing_api):
    response = billing_api.get(
        "/api/v1/invoices/00000000-0000-0000-0000-000000000000/pdf/", HTTP_ACCEPT="application/pdf"
    )
    assert_error(response, 404, "not_found")


# --- payments ------------------------------------------------------------------------------------------------------


def test_create_a_topup_and_list_payments(billing_api, tenant):
    response = billing_api.post("/api/v1/payments/", {"amount": "50.00"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["purpose"], body["status"], body["amount"], body["currency"]) == ("topup", "pending", "50.00", "EUR")
    assert body["checkout_url"].startswith("http") and "/billing/pay/test/" in body["checkout_url"]
    assert response["Location"].endswith(f"/api/v1/payments/{body['id']}/")
    listed = billing_api.get("/api/v1/payments/?status=pending").json()
    assert listed["meta"]["total"] == 1 and listed["data"][0]["id"] == body["id"]
    assert billing_api.get(f"/api/v1/payments/{body['id']}/").json()["provider"] == "test"


def test_pay_an_invoice_through_the_api(billing_api, tenant):
    from datetime import UTC, datetime

    from billing.services.metering import invoices_refresh

    month = _last_month()
    start = datetime(month.year, month.month, 2, tzinfo=UTC)
    SegmentFactory(tenant=tenant, price="67.20", started_at=start, ended_at=start + timedelta(hours=10))
    invoices_refresh(period_start=month, as_of=timezone.now())
    invoice = invoice_finalize(invoice=Invoice.objects.get(tenant=tenant), refresh=False)
    assert invoice.payment_due
    response = billing_api.post("/api/v1/payments/", {"invoice": str(invoice.pk)}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["invoice_number"], response.json()["amount"]) == (invoice.number, "1.00")
    assert_error(billing_api.post("/api/v1/payments/", {"invoice": str(InvoiceFactory().pk)}, format="json"), 400)


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({}, 400, None),
        ({"amount": "10", "invoice": "5d0f3f1e-8a4b-4c47-9a53-1f3d2c7b9e10"}, 400, None),
        ({"invoice": "5d0f3f1e-8a4b-4c47-9a53-1f3d2c7b9e10"}, 400, None),
        ({"amount": "1.00"}, 400, "invalid"),
        ({"amount": "abc"}, 400, None),
    ],
)
def test_payment_create_refusals(billing_api, payload, status, code):
    response = billing_api.post("/api/v1/payments/", payload, format="json")
    assert_error(response, status, code) if code else assert_error(response, status)


def test_payments_need_billing_rights(member_api, viewer_api):
    for client in (member_api, viewer_api):
        assert_error(client.get("/api/v1/payments/"), 403)
        assert_error(client.post("/api/v1/payments/", {"amount": "20"}, format="json"), 403)
