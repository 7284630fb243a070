"""Invoice documents: the PDF (drawn by `billing.pdf` from the data the HTML view shows) and the CSV of the lines."""

import csv
import io

from django.conf import settings

from billing.models import Invoice

CSV_HEADER = [
    "invoice",
    "period",
    "resource_type",
    "resource_id",
    "resource",
    "plan",
    "quantity",
    "from",
    "to",
    "hours",
    "hourly_rate",
    "monthly_price",
    "amount",
    "currency",
]


def invoice_sender() -> dict:
    """The provider's legal details printed as the sender of every invoice (settings: BILLING_PROVIDER_*)."""
    return {
        "name": settings.BILLING_PROVIDER_NAME,
        "address": settings.BILLING_PROVIDER_ADDRESS,
        "registration": settings.BILLING_PROVIDER_REGISTRATION,
        "vat_id": settings.BILLING_PROVIDER_VAT_ID,
        "email": settings.BILLING_PROVIDER_EMAIL,
    }


def invoice_context(*, invoice: Invoice) -> dict:
    lines = list(invoice.lines.all())
    return {
        "sender": invoice_sender(),
        "invoice": invoice,
        "lines": lines,
        "has_traffic": any(line.is_traffic for line in lines),
        "credit_notes": list(invoice.credit_notes.all()),
        "currency": invoice.currency,
    }


def invoice_pdf(*, invoice: Invoice) -> bytes:
    from billing.pdf import render_invoice

    return render_invoice(invoice_context(invoice=invoice))


def invoice_csv(*, invoice: Invoice) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for line in invoice.lines.all():
        writer.writerow(
            [
                invoice.number or "draft",
                f"{invoice.period_start:%Y-%m}",
                line.resource_type,
                line.resource_id,
                line.resource_name,
                line.plan_name,
                line.quantity,
                line.period_from.isoformat(),
                line.period_to.isoformat(),
                line.hours,
                line.hourly_rate,
                line.monthly_price,
                line.amount,
                invoice.currency,
            ]
        )
    for label, value in (
        ("subtotal", invoice.subtotal),
        (f"tax {invoice.tax_rate} %", invoice.tax),
        ("total", invoice.total),
    ):
        writer.writerow(
            [invoice.number or "draft", f"{invoice.period_start:%Y-%m}", label, *[""] * 9, value, invoice.currency]
        )
    return buffer.getvalue()
