"""Finalizing, numbering, frozen invoices, credit notes, the credit ledger, holds, suspensions and budget alerts."""

import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.db import IntegrityError, connection, connections, transaction

from billing import services
from billing.models import AccountEvent, BillingAccount, BudgetAlert, CreditEntry, Invoice, InvoiceLine
from billing.selectors import credit_balance
from billing.services.metering import invoices_refresh
from portal.errors import Conflict, InvalidRequest
from tenants.models import Tenant
from tenants.roles import Role
from tenants.services import tenant_hold, tenant_resume, tenant_suspend
from tests.factories import MembershipFactory, TenantFactory
from tests.factories.billing import SegmentFactory
from tests.factories.compute import InstanceFactory

MARCH = date(2026, 3, 1)
AFTER_MARCH = datetime(2026, 4, 3, tzinfo=UTC)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _draft(tenant, price="67.20", hours=10) -> Invoice:
    SegmentFactory(tenant=tenant, price=price, started_at=at(2026, 3, 10), ended_at=at(2026, 3, 10, hours))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 20))
    return Invoice.objects.get(tenant=tenant, period_start=MARCH)


def test_finalize_numbers_snapshots_taxes_and_debits(tenant, owner, billing_user, django_capture_on_commit_callbacks):
    BillingAccount.objects.create(
        tenant=tenant, legal_name="Acme GmbH", address="Hauptstr. 1", vat_id="DE1", tax_rate="19"
    )
    draft = _draft(tenant)
    with django_capture_on_commit_callbacks(execute=True):
        invoice = services.invoice_finalize(invoice=draft, now=AFTER_MARCH)
    assert invoice.number == "INV-2026-000001"
    assert invoice.status == Invoice.Status.FINALIZED
    assert (invoice.subtotal, invoice.tax, invoice.total) == (Decimal("1.00"), Decimal("0.19"), Decimal("1.19"))
    assert (invoice.bill_to_name, invoice.bill_to_vat_id) == ("Acme GmbH", "DE1")
    assert credit_balance(tenant=tenant) == Decimal("-1.19")
    invoice.refresh_from_db()
    assert invoice.pdf.name.endswith(".pdf") and invoice.csv.name.endswith(".csv")  # rendered by the (eager) worker
    assert sorted(mail.outbox[0].to) == sorted([owner.email, billing_user.email])
    # later billing details do not change the issued invoice
    services.billing_details_update(tenant=tenant, actor=owner, legal_name="Other", address="", vat_id="")
    invoice.refresh_from_db()
    assert invoice.bill_to_name == "Acme GmbH"


def test_draft_of_a_running_month_cannot_be_finalized(tenant):
    with pytest.raises(Conflict):
        services.invoice_finalize(invoice=_draft(tenant), now=at(2026, 3, 25))


def test_zero_total_invoice_is_still_issued_with_nothing_due(tenant):
    SegmentFactory(tenant=tenant, started_at=at(2026, 3, 10), ended_at=at(2026, 3, 10))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 20))
    invoice = services.invoice_finalize(invoice=Invoice.objects.get(tenant=tenant), now=AFTER_MARCH)
    assert invoice.number == "INV-2026-000001" and invoice.total == Decimal("0.00")
    assert invoice.status == Invoice.Status.PAID and not invoice.payment_due


def test_prepaid_credit_settles_the_invoice(tenant):
    services.credit_topup(tenant=tenant, amount=Decimal("5"))
    invoice = services.invoice_finalize(invoice=_draft(tenant), now=AFTER_MARCH)
    assert invoice.status == Invoice.Status.PAID
    assert credit_balance(tenant=tenant) == Decimal("4.00")


def test_finalize_due_respects_the_grace_period(tenant, settings):
    settings.BILLING_FINALIZE_GRACE_HOURS = 24
    _draft(tenant)
    assert services.invoices_finalize_due(now=at(2026, 4, 1, 12)) == 0
    assert services.invoices_finalize_due(now=at(2026, 4, 2, 1)) == 1
    assert services.invoices_finalize_due(now=at(2026, 4, 2, 2)) == 0


def test_numbers_are_consecutive_and_credit_notes_have_their_own_sequence(db):
    invoices = []
    for _ in range(3):
        invoices.append(services.invoice_finalize(invoice=_draft(TenantFactory()), now=AFTER_MARCH))
    assert [i.number for i in invoices] == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    note = services.credit_note_issue(invoice=invoices[0], amount=Decimal("0.40"), reason="Outage", now=AFTER_MARCH)
    assert note.number == "CN-2026-000001"
    assert credit_balance(tenant=invoices[0].tenant) == Decimal("-0.60")
    with pytest.raises(InvalidRequest):
        services.credit_note_issue(invoice=invoices[0], amount=Decimal("0.61"), reason="Too much", now=AFTER_MARCH)


def test_a_finalized_invoice_is_refused_by_the_model(tenant):
    invoice = services.invoice_finalize(invoice=_draft(tenant), now=AFTER_MARCH)
    invoice.total_cents = 1
    with pytest.raises(Conflict):
        invoice.save()
    invoice.refresh_from_db()
    with pytest.raises(Conflict):
        invoice.delete()
    line = invoice.lines.first()
    line.amount_cents = 0
    with pytest.raises(Conflict):
        line.save()


def test_a_finalized_invoice_is_refused_by_the_database(tenant):
    invoice = services.invoice_finalize(invoice=_draft(tenant), now=AFTER_MARCH)
    for statement in (
        "UPDATE billing_invoice SET total_cents = 1 WHERE id = %s",
        "UPDATE billing_invoice SET status = 'draft' WHERE id = %s",
        "DELETE FROM billing_invoice WHERE id = %s",
        "UPDATE billing_invoiceline SET amount_cents = 0 WHERE invoice_id = %s",
        "DELETE FROM billing_invoiceline WHERE invoice_id = %s",
    ):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [invoice.pk.hex if connection.vendor == "sqlite" else invoice.pk])
    # the allowed moves: paid (or void), with the documents attached
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.VOID)
    assert InvoiceLine.objects.filter(invoice=invoice).count() == 1


def test_metering_leaves_finalized_invoices_alone(tenant):
    invoice = services.invoice_finalize(invoice=_draft(tenant), now=AFTER_MARCH)
    SegmentFactory(tenant=tenant, started_at=at(2026, 3, 12), ended_at=at(2026, 3, 13))
    invoices_refresh(period_start=MARCH, as_of=AFTER_MARCH)
    invoice.refresh_from_db()
    assert invoice.total == Decimal("1.00") and invoice.lines.count() == 1


def test_void_and_mark_paid(tenant):
    first = services.invoice_finalize(invoice=_draft(tenant), now=AFTER_MARCH)
    services.invoice_mark_paid(invoice=first)
    assert credit_balance(tenant=tenant) == Decimal("0.00")
    with pytest.raises(Conflict):
        services.invoice_void(invoice=first)
    other = TenantFactory()
    second = services.invoice_finalize(invoice=_draft(other), now=AFTER_MARCH)
    services.invoice_void(invoice=second, reason="duplicate")
    second.refresh_from_db()
    assert second.status == Invoice.Status.VOID and credit_balance(tenant=other) == Decimal("0.00")
    assert CreditEntry.objects.filter(tenant=other).count() == 2


# --- hold, suspend, resume ---------------------------------------------------------------------------------------


def test_credit_limit_hold_then_suspend_then_topup_lifts(
    tenant, owner, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.BILLING_SUSPEND_GRACE_HOURS = 72
    running = InstanceFactory(tenant=tenant)
    services.billing_terms_update(tenant=tenant, actor=None, tax_rate=Decimal("0"), credit_limit=Decimal("0.50"))
    _draft(tenant)  # 1.00 unbilled, no credit: 0.50 past the limit
    with django_capture_on_commit_callbacks(execute=True):
        assert services.account_check(tenant=tenant, now=at(2026, 3, 20)) == Tenant.Status.HOLD
    tenant.refresh_from_db()
    assert not tenant.accepts_new_resources
    assert services.account_check(tenant=tenant, now=at(2026, 3, 22)) == Tenant.Status.HOLD  # still in grace
    with django_capture_on_commit_callbacks(execute=True):
        assert services.account_check(tenant=tenant, now=at(2026, 3, 23, 0, 1)) == Tenant.Status.SUSPENDED
    running.refresh_from_db()
    assert running.events.filter(action="stop", result="requested").exists()  # compute stopped it on the announcement
    with django_capture_on_commit_callbacks(execute=True):
        services.credit_topup(tenant=tenant, amount=Decimal("0.60"), now=at(2026, 3, 24))
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    kinds = list(AccountEvent.objects.filter(tenant=tenant).order_by("id").values_list("action", flat=True))
    assert kinds == ["details", "hold", "suspend", "topup", "resume"]
    subjects = [m.subject for m in mail.outbox]
    assert any("on hold" in s for s in subjects) and any("suspended" in s for s in subjects)
    assert any("active again" in s for s in subjects)


def test_no_credit_limit_never_holds(tenant):
    _draft(tenant)
    assert services.account_check(tenant=tenant, now=at(2026, 3, 20)) == Tenant.Status.ACTIVE


def test_operator_hold_is_not_lifted_by_a_topup(tenant, django_capture_on_commit_callbacks):
    tenant_hold(tenant=tenant, actor=None)
    services.credit_topup(tenant=tenant, amount=Decimal("100"))
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.HOLD
    tenant_suspend(tenant=tenant, actor=None)
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.SUSPENDED
    with django_capture_on_commit_callbacks(execute=True):
        tenant_resume(tenant=tenant, actor=None)
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE  # the credit re-check after an operator's resume finds it fine


# --- budgets -----------------------------------------------------------------------------------------------------


def test_budget_alerts_fire_once_each_for_the_highest_threshold(tenant, django_capture_on_commit_callbacks):
    MembershipFactory(tenant=tenant, role=Role.OWNER)
    services.budget_set(tenant=tenant, actor=None, amount=Decimal("10.00"))
    # 67.20/month = 0.10/h, running since 1 March 00:00
    SegmentFactory(tenant=tenant, price="67.20", started_at=at(2026, 3, 1), ended_at=None)
    # 3 March 01:30: 50 h = 5.00 actual (50 %); forecast 67.20 (capped) ≥ 100 %, which implies 50 and 80 %
    with django_capture_on_commit_callbacks(execute=True):
        fired = services.budget_check(tenant=tenant, now=at(2026, 3, 3, 1, 30))
    assert sorted((a.basis, a.threshold) for a in fired) == [("actual", 50), ("forecast", 100)]
    assert services.budget_check(tenant=tenant, now=at(2026, 3, 3, 1, 45)) == []
    with django_capture_on_commit_callbacks(execute=True):
        fired = services.budget_check(tenant=tenant, now=at(2026, 3, 5, 4))  # 100 h = 10.00, past 80 % as well
    assert [(a.basis, a.threshold) for a in fired] == [("actual", 100)]
    assert services.budget_check(tenant=tenant, now=at(2026, 3, 25)) == []
    assert BudgetAlert.objects.filter(tenant=tenant).count() == 3
    assert len(mail.outbox) == 3


def test_a_budget_already_exceeded_sends_one_alert(tenant, django_capture_on_commit_callbacks):
    MembershipFactory(tenant=tenant, role=Role.OWNER)
    # 0.10/h since 1 March: by 6 March 00:00, 120 h = 12.00, 120 % of the budget about to be set
    SegmentFactory(tenant=tenant, price="67.20", started_at=at(2026, 3, 1), ended_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        services.budget_set(tenant=tenant, actor=None, amount=Decimal("10.00"))
        fired = services.budget_check(tenant=tenant, now=at(2026, 3, 6))
    # 100 % of the actual spend implies 50 and 80 %, and the same thresholds of the forecast.
    assert [(a.basis, a.threshold) for a in fired] == [("actual", 100)]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.budget_check(tenant=tenant, now=at(2026, 3, 6, 1)) == []
        assert services.budget_check(tenant=tenant, now=at(2026, 3, 31, 23)) == []
    assert list(BudgetAlert.objects.filter(tenant=tenant).values_list("basis", "threshold")) == [("actual", 100)]
    assert AccountEvent.objects.filter(tenant=tenant, message__startswith="Budget alert").count() == 1
    assert [message.subject for message in mail.outbox] == [
        f"[Hangar] {tenant.name}: 100 % of your budget (spend so far)"
    ]


# --- concurrency (PostgreSQL) -------------------------------------------------------------------------------------


def _in_threads(count: int, work) -> list:
    errors, barrier = [], threading.Barrier(count)

    def run(index):
        try:
            barrier.wait()
            work(index)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_finalization_gives_consecutive_numbers():
    drafts = [_draft(TenantFactory()) for _ in range(12)]
    errors = _in_threads(
        len(drafts), lambda i: services.invoice_finalize(invoice=drafts[i], now=AFTER_MARCH, refresh=False)
    )
    assert errors == []
    numbers = sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 13)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_metering_gives_identical_invoices():
    tenants = [TenantFactory() for _ in range(5)]
    for tenant in tenants:
        for day in range(1, 6):
            SegmentFactory(
                tenant=tenant, price="9.99", started_at=at(2026, 3, day, 3, 17), ended_at=at(2026, 3, day + 3)
            )
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 20))
    expected = sorted(InvoiceLine.objects.values_list("invoice__tenant_id", "segment_id", "hours", "amount_cents"))
    totals = sorted(Invoice.objects.values_list("tenant_id", "total_cents"))
    errors = _in_threads(6, lambda i: invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 20)))
    assert errors == []
    assert (
        sorted(InvoiceLine.objects.values_list("invoice__tenant_id", "segment_id", "hours", "amount_cents")) == expected
    )
    assert sorted(Invoice.objects.values_list("tenant_id", "total_cents")) == totals
    assert Invoice.objects.count() == 5
