"""The demo organisation's billing history: three issued months, one paid by a test payment, a budget near its
limit, all through the billing services (so the totals are what metering computes)."""

import io
from decimal import Decimal

from django.core.management import call_command
from django.utils import timezone

from billing.models import BudgetAlert, CreditEntry, Invoice, Payment, Segment
from billing.pricing import month_start
from billing.selectors import credit_balance_cents, tenant_month_usage
from billing.services.metering import invoices_refresh
from tenants.models import Tenant


def _demo_tenant():
    return Tenant.objects.get(name="Demo Company")


def test_three_issued_months_one_paid_by_a_test_payment(db):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())  # again: nothing more
    tenant = _demo_tenant()

    invoices = list(Invoice.objects.filter(tenant=tenant).exclude(status="draft").order_by("period_start"))
    assert len(invoices) == 3
    this_month = month_start(timezone.now())
    assert all(invoice.period_start < this_month for invoice in invoices)
    assert [invoice.status for invoice in invoices] == ["paid", "paid", "finalized"]  # credit, card, due
    assert all(invoice.total_cents > 0 and invoice.lines.exists() for invoice in invoices)

    payment = Payment.objects.get(tenant=tenant)
    assert (payment.status, payment.provider, payment.invoice) == ("succeeded", "test", invoices[1])
    assert CreditEntry.objects.get(payment=payment).amount_cents == invoices[1].total_cents

    # The totals are the segments' charges: metering the same months again changes nothing.
    totals = {invoice.pk: invoice.total_cents for invoice in invoices}
    for invoice in invoices:
        invoices_refresh(period_start=invoice.period_start, tenant_ids=[tenant.pk])
    assert {i.pk: i.total_cents for i in Invoice.objects.filter(pk__in=totals)} == totals
    # The oldest machines were billed from their launch day, in each of the three months.
    web = Segment.objects.get(tenant=tenant, resource_name="web-1")
    assert web.started_at < timezone.now().replace(day=1) and web.ended_at is None
    assert {line.invoice_id for line in web.lines.all()} >= set(totals)

    # The ledger: welcome credit, three invoice debits, one card payment.
    kinds = sorted(CreditEntry.objects.filter(tenant=tenant).values_list("kind", flat=True))
    assert kinds == ["invoice", "invoice", "invoice", "payment", "topup"]
    expected = 3000 - sum(totals.values()) + invoices[1].total_cents
    assert credit_balance_cents(tenant=tenant) == expected


def test_the_budget_is_near_its_limit(db):
    call_command("seed_demo", stdout=io.StringIO())
    tenant = _demo_tenant()
    budget = tenant.budget
    forecast = tenant_month_usage(tenant=tenant).forecast_cents
    assert Decimal("0.8") <= Decimal(forecast) / budget.amount_cents < 1
    # Its 80 % alert has fired: on the forecast, or (late in the month) on the spend so far, which implies it.
    alert = BudgetAlert.objects.get(tenant=tenant)
    assert alert.threshold == 80 and alert.basis in {"forecast", "actual"}
