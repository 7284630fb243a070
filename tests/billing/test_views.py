from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import Budget, Invoice
from billing.pricing import month_start
from billing.services import credit_topup
from billing.services.metering import invoices_refresh
from tenants.roles import Role
from tests.conftest import login_client
from tests.factories import MembershipFactory
from tests.factories.billing import InvoiceFactory, SegmentFactory

PAGES = ["billing:overview", "billing:invoices", "billing:credits", "billing:budget", "billing:details"]


@pytest.fixture
def billing_client(billing_user):
    return login_client(billing_user)


@pytest.fixture
def usage(tenant):
    now = timezone.now()
    SegmentFactory(tenant=tenant, resource_name="web-1", started_at=now - timedelta(hours=5), price="67.20")
    SegmentFactory(tenant=tenant, resource_name="db-1", started_at=now - timedelta(hours=2), ended_at=now, price="6.72")
    invoices_refresh(period_start=month_start(now), as_of=now)


@pytest.mark.parametrize("name", PAGES)
def test_owner_and_billing_see_every_page(owner_client, billing_client, usage, name, django_assert_max_num_queries):
    for client in (owner_client, billing_client):
        with django_assert_max_num_queries(20):
            response = client.get(reverse(name))
        assert response.status_code == 200


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MEMBER, Role.VIEWER])
def test_other_roles_get_403_and_no_nav_item(tenant, role):
    client = login_client(MembershipFactory(tenant=tenant, role=role).user)
    for name in PAGES:
        assert client.get(reverse(name)).status_code == 403
    page = client.get(reverse("team")).content.decode()
    assert reverse("billing:overview") not in page


def test_nav_item_for_billing_members(billing_client):
    assert reverse("billing:overview") in billing_client.get(reverse("team")).content.decode()


def test_overview_shows_month_to_date_and_chart(owner_client, usage):
    page = owner_client.get(reverse("billing:overview")).content.decode()
    # web-1: 5 started hours (maybe 6 at an hour boundary) at 0.10, db-1: 2 hours at 0.01
    assert "web-1" in page and "db-1" in page
    assert "<svg" in page and "<rect" in page
    assert "style=" not in page and "<script>" not in page


def test_invoice_detail_pdf_and_csv(owner_client, tenant, usage):
    invoice = Invoice.objects.get(tenant=tenant)
    detail = owner_client.get(reverse("billing:invoice-detail", args=[invoice.pk]))
    assert detail.status_code == 200 and "web-1" in detail.content.decode()
    pdf = owner_client.get(reverse("billing:invoice-pdf", args=[invoice.pk]))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    csv = owner_client.get(reverse("billing:invoice-csv", args=[invoice.pk]))
    assert csv.status_code == 200 and b"web-1" in csv.content and csv["Content-Type"].startswith("text/csv")


def test_outsider_cannot_see_an_invoice(outsider_client, tenant):
    invoice = InvoiceFactory(tenant=tenant)
    for name in ("billing:invoice-detail", "billing:invoice-pdf", "billing:invoice-csv"):
        assert outsider_client.get(reverse(name, args=[invoice.pk])).status_code == 404


def test_budget_form_sets_and_removes(billing_client, tenant):
    response = billing_client.post(reverse("billing:budget"), {"amount": "100.00"})
    assert response.status_code == 302
    assert Budget.objects.get(tenant=tenant).amount == Decimal("100.00")
    bad = billing_client.post(reverse("billing:budget"), {"amount": "-3"})
    assert bad.status_code == 200 and "errorlist" in bad.content.decode()
    billing_client.post(reverse("billing:budget"), {"remove": "1"})
    assert not Budget.objects.filter(tenant=tenant).exists()


def test_billing_details_form(owner_client, tenant):
    response = owner_client.post(
        reverse("billing:details"), {"legal_name": "Acme GmbH", "address": "Hauptstr. 1", "vat_id": "DE123"}
    )
    assert response.status_code == 302
    assert tenant.billing_account.legal_name == "Acme GmbH"


def test_credits_page_lists_ledger(owner_client, tenant):
    credit_topup(tenant=tenant, amount=Decimal("25.00"), description="Bank transfer")
    page = owner_client.get(reverse("billing:credits")).content.decode()
    assert "Bank transfer" in page and "25.00" in page


def test_issued_invoice_downloads_stored_files_and_survives_a_lost_file(owner_client, tenant, settings):
    from datetime import UTC, datetime
    from pathlib import Path

    from billing.services import invoice_finalize, invoice_render_documents

    SegmentFactory(
        tenant=tenant, started_at=datetime(2026, 3, 1, tzinfo=UTC), ended_at=datetime(2026, 3, 2, tzinfo=UTC)
    )
    invoices_refresh(period_start=datetime(2026, 3, 1).date(), as_of=datetime(2026, 3, 5, tzinfo=UTC))
    invoice = invoice_finalize(invoice=Invoice.objects.get(tenant=tenant), now=datetime(2026, 4, 3, tzinfo=UTC))
    invoice = invoice_render_documents(invoice=invoice)
    pdf = owner_client.get(reverse("billing:invoice-pdf", args=[invoice.pk]))
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF")
    assert invoice.number in pdf["Content-Disposition"]
    Path(settings.MEDIA_ROOT, invoice.pdf.name).unlink()
    again = owner_client.get(reverse("billing:invoice-pdf", args=[invoice.pk]))
    assert again.status_code == 200 and again.content.startswith(b"%PDF")
    csv = owner_client.get(reverse("billing:invoice-csv", args=[invoice.pk]))
    assert b"".join(csv.streaming_content).startswith(b"invoice,period")


def test_money_filter_writes_every_amount_with_its_currency(settings):
    from portal.templatetags.hangar import money

    assert money(Decimal("1234.5")) == "1,234.50 EUR"
    assert money(Decimal("0.0267857143"), 4) == "0.0268 EUR"
    assert money(Decimal("-3.005"), "usd") == "-3.01 USD"
    assert money(None) == ""
    settings.BILLING_CURRENCY = "CHF"
    assert money(Decimal("2")) == "2.00 CHF"


def test_billing_pages_show_the_currency_with_every_amount(owner_client, tenant, usage):
    credit_topup(tenant=tenant, amount=Decimal("12.34"))
    for name, amount in (("billing:overview", "12.34 EUR"), ("billing:credits", "12.34 EUR")):
        assert amount in owner_client.get(reverse(name)).content.decode()


def test_the_invoice_sender_comes_from_the_operator_settings(settings, owner_client, tenant):
    settings.BILLING_PROVIDER_NAME = "Nimbus Hosting GmbH"
    settings.BILLING_PROVIDER_ADDRESS = "Wolkenweg 7\n10115 Berlin"
    settings.BILLING_PROVIDER_VAT_ID = "DE123456789"
    settings.BILLING_PROVIDER_REGISTRATION = "HRB 4711"
    settings.BILLING_PROVIDER_EMAIL = "invoices@nimbus.example"
    invoice = InvoiceFactory(tenant=tenant)
    page = owner_client.get(reverse("billing:invoice-detail", args=[invoice.pk])).content.decode()
    for text in (
        "Nimbus Hosting GmbH",
        "Wolkenweg 7<br>10115 Berlin",
        "VAT id DE123456789",
        "HRB 4711",
        "invoices@nimbus.example",
    ):
        assert text in page
    import io

    from pypdf import PdfReader

    from billing.documents import invoice_pdf

    pdf_text = PdfReader(io.BytesIO(invoice_pdf(invoice=invoice))).pages[0].extract_text()
    assert "Nimbus Hosting GmbH" in pdf_text and "VAT id DE123456789" in pdf_text
