"""The invoice PDF: what a reader finds in it (text extracted from the rendered file) and the fonts it needs."""

import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from pypdf import PdfReader

from billing import pdf as invoice_pdf_module
from billing import services
from billing.checks import invoice_pdf_fonts
from billing.documents import invoice_pdf
from billing.models import BillingAccount, Invoice
from billing.services.metering import invoices_refresh
from portal.templatetags.hangar import money
from tests.factories import TenantFactory
from tests.factories.billing import InvoiceFactory, SegmentFactory

MARCH = date(2026, 3, 1)
AFTER_MARCH = datetime(2026, 4, 3, tzinfo=UTC)


def _pages(document: bytes) -> list[str]:
    assert document.startswith(b"%PDF")
    return [page.extract_text() for page in PdfReader(io.BytesIO(document)).pages]


def _flat(text: str) -> str:
    """Extracted text with line breaks and runs of spaces made single spaces (cells wrap, columns are spaced)."""
    return re.sub(r"\s+", " ", text)


def _invoice(tenant, names: list[str], *, finalize: bool = True) -> Invoice:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for index, name in enumerate(names):
        SegmentFactory(
            tenant=tenant,
            resource_name=name,
            price=f"{4.99 + index:.2f}",
            started_at=start + timedelta(hours=index),
            ended_at=None if index % 3 == 0 else start + timedelta(days=10 + index % 15),
        )
    invoices_refresh(period_start=MARCH, as_of=datetime(2026, 3, 31, 12, tzinfo=UTC))
    invoice = Invoice.objects.get(tenant=tenant, period_start=MARCH)
    return services.invoice_finalize(invoice=invoice, now=AFTER_MARCH) if finalize else invoice


@pytest.fixture
def sender(settings):
    settings.BILLING_PROVIDER_NAME = "Nimbus Hosting GmbH"
    settings.BILLING_PROVIDER_ADDRESS = "Wolkenweg 7\n10115 Berlin"
    settings.BILLING_PROVIDER_VAT_ID = "DE123456789"
    settings.BILLING_PROVIDER_REGISTRATION = "HRB 4711"
    settings.BILLING_PROVIDER_EMAIL = "invoices@nimbus.example"


def test_a_long_invoice_reads_in_full_over_two_pages(tenant, sender):
    BillingAccount.objects.create(
        tenant=tenant, legal_name="Acme Straße GmbH", address="Hauptstr. 1\n80331 München", vat_id="DE1", tax_rate="19"
    )
    names = ["büro-€", *(f"web-{index:02d}" for index in range(1, 30))]
    invoice = _invoice(tenant, names)

    pages = _pages(invoice_pdf(invoice=invoice))

    assert len(pages) == 2
    assert "Page 1 of 2" in pages[0] and "Page 2 of 2" in pages[1]
    text = _flat(" ".join(pages))
    for detail in ("Nimbus Hosting GmbH", "Wolkenweg 7", "10115 Berlin", "Registration no. HRB 4711"):
        assert detail in text
    assert "VAT id DE123456789" in text and "invoices@nimbus.example" in text
    assert "Acme Straße GmbH" in text and "80331 München" in text and "VAT id DE1" in text
    assert f"Invoice {invoice.number}" in text and "March 2026 · Finalized" in text and "3 Apr 2026" in text
    lines = list(invoice.lines.all())
    assert len(lines) == len(names)
    for line in lines:
        assert f"{line.resource_name} " in text
        assert money(line.amount, "EUR") in text
    assert "Subtotal " + money(invoice.subtotal, "EUR") in text
    assert "Tax (19.00 %) " + money(invoice.tax, "EUR") in text
    assert "Total " + money(invoice.total, "EUR") in text
    # The column headings start the second page again.
    assert _flat(pages[1]).startswith("RESOURCE PLAN PERIOD USAGE RATE MONTHLY CAP AMOUNT")


def test_rates_usage_period_and_capped_lines_are_written_as_the_html_does(tenant):
    invoice = _invoice(tenant, ["web-1"])
    line = invoice.lines.get()

    text = _flat(_pages(invoice_pdf(invoice=invoice))[0])

    assert f"{line.hours} h" in text and money(line.hourly_rate, 4) + "/h" in text
    assert money(line.monthly_price, "EUR") in text
    assert f"{line.period_from:%-d %b %H:%M} \N{EN DASH} {line.period_to:%-d %b %H:%M}" in text
    assert "(capped)" in text  # a machine that ran the whole month costs its monthly price
    assert "Payment due." in text


def test_a_draft_says_it_is_an_estimate_for_the_organisation(tenant):
    invoice = _invoice(tenant, ["db-1"], finalize=False)

    text = _flat(_pages(invoice_pdf(invoice=invoice))[0])

    assert "Draft invoice" in text and "not yet (estimate)" in text
    assert f"{money(invoice.total, 'EUR')} so far" in text
    assert tenant.name in text and "Estimate: this draft is refreshed" in text


def test_a_month_without_usage_says_so(tenant):
    invoice = InvoiceFactory(tenant=tenant, period_start=MARCH)

    text = _flat(_pages(invoice_pdf(invoice=invoice))[0])

    assert "No usage in this month." in text and "Total 0.00 EUR" in text and "Page 1 of 1" in text


def test_credit_notes_are_listed(tenant):
    invoice = _invoice(tenant, ["web-1"])
    services.credit_note_issue(invoice=invoice, amount=Decimal("1.25"), reason="Outage on 3 March", now=AFTER_MARCH)

    text = _flat(_pages(invoice_pdf(invoice=Invoice.objects.get(pk=invoice.pk)))[0])

    assert "Credit notes" in text
    assert "(3 Apr 2026): 1.25 EUR — Outage on 3 March" in text


def test_characters_beyond_the_usual_scripts_get_the_whole_font(tenant):
    # Armenian and Hebrew are in DejaVu Sans but not in the cut-down font most invoices are drawn with.
    invoice = _invoice(tenant, ["սերվեր-1", "büro-€"])

    text = _flat(_pages(invoice_pdf(invoice=invoice))[0])

    assert "սերվեր-1" in text and "büro-€" in text


def test_documents_drawn_one_after_another_keep_their_own_glyphs(tenant, other_tenant):
    first = _invoice(tenant, ["ÆØÅ-first"])
    second = _invoice(other_tenant, ["Ωmega-second"])

    documents = [invoice_pdf(invoice=invoice) for invoice in (first, second, first)]

    first_text, second_text = (_flat(_pages(document)[0]) for document in documents[:2])
    assert "ÆØÅ-first" in first_text and "Ωmega-second" in second_text
    assert documents[2] == documents[0]  # a frozen invoice renders to the same file again


def test_a_long_name_without_spaces_wraps_inside_its_column(tenant):
    name = "a-very-long-machine-name-with-no-spaces-at-all-0123456789"
    invoice = _invoice(tenant, [name])

    text = _pages(invoice_pdf(invoice=invoice))[0]

    assert name not in text  # broken over lines, not drawn over the next column
    assert name in re.sub(r"\s+", "", text)


def test_a_missing_font_names_the_package_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(invoice_pdf_module, "FONT_DIRS", (tmp_path,))

    with pytest.raises(ImproperlyConfigured, match="fonts-dejavu-core"):
        invoice_pdf_module.font_path("DejaVuSans.ttf")
    assert [warning.id for warning in invoice_pdf_fonts()] == ["billing.W002"]


def test_the_system_check_is_quiet_when_the_font_is_installed():
    assert invoice_pdf_fonts() == []


@pytest.fixture
def other_tenant(db):
    return TenantFactory()
