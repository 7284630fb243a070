"""Invoices: gap-free numbers, finalizing (one or many), payment, void, credit notes, rendered documents."""

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.models import (
    AccountEvent,
    BillingAccount,
    CreditEntry,
    CreditNote,
    DocumentSequence,
    Invoice,
    InvoiceLine,
)
from billing.pricing import cents_to_decimal, month_bounds, month_start, tax_cents, to_cents
from billing.services.accounts import account_check
from billing.services.events import account_event as _event
from billing.services.events import account_event_activity
from billing.services.metering import invoices_refresh, lock_month
from portal.errors import Conflict, InvalidRequest


def _reserve_numbers(*, kind: str, year: int, count: int) -> list[str]:
    """The next `count` gap-free numbers of `kind` in `year`; the caller's transaction holds the sequence row.

    Numbers are only ever taken inside the transaction that uses them, so a rollback returns them too.
    """
    DocumentSequence.objects.bulk_create([DocumentSequence(kind=kind, year=year)], ignore_conflicts=True)
    sequence = DocumentSequence.objects.select_for_update().get(kind=kind, year=year)
    first = sequence.last_number + 1
    sequence.last_number += count
    sequence.save(update_fields=["last_number"])
    return [f"{kind}-{year}-{number:06d}" for number in range(first, first + count)]


def _next_number(*, kind: str, year: int) -> str:
    return _reserve_numbers(kind=kind, year=year, count=1)[0]


def _month_has_ended(period_start: date, now: datetime) -> bool:
    return month_bounds(period_start)[1] <= now


def _issue_rows(*, invoices: list[Invoice], now: datetime, chunk: int = 500) -> None:
    """Writes issued drafts with one UPDATE ... FROM (VALUES ...) per chunk (Django's bulk_update is slow here).

    Drafts are not frozen yet, so the triggers let these rows change; VALUES columns are named column1...columnN on
    both SQLite and PostgreSQL.
    """
    ops = connection.ops
    table = Invoice._meta.db_table
    moment = ops.adapt_datetimefield_value(now)
    for start in range(0, len(invoices), chunk):
        part = invoices[start : start + chunk]
        values = []
        for invoice in part:
            values += [
                invoice.pk if connection.vendor == "postgresql" else invoice.pk.hex,
                invoice.number,
                invoice.subtotal_cents,
                ops.adapt_decimalfield_value(invoice.tax_rate, 5, 2),
                invoice.tax_cents,
                invoice.total_cents,
                invoice.bill_to_name,
                invoice.bill_to_address,
                invoice.bill_to_vat_id,
                invoice.status,
            ]
        rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(part))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table} SET number = v.column2, subtotal_cents = v.column3, tax_rate = v.column4,
                    tax_cents = v.column5, total_cents = v.column6, bill_to_name = v.column7,
                    bill_to_address = v.column8, bill_to_vat_id = v.column9, status = v.column10,
                    currency = %s, finalized_at = %s,
                    paid_at = CASE WHEN v.column10 = 'paid' THEN %s ELSE NULL END
                FROM (VALUES {rows}) AS v
                WHERE {table}.id = v.column1 AND {table}.status = 'draft'
                """,
                [settings.BILLING_CURRENCY, moment, moment, *values],
            )
            if cursor.rowcount != len(part):
                # The rows are locked by the caller, so this means a bug: refuse rather than skip a number.
                raise Conflict("Some invoices changed while they were being finalized; nothing was issued.")


def _finalize_locked(*, invoices: list[Invoice], now: datetime, actor=None) -> None:
    """Issues locked drafts in pk order, a few queries for the whole list: the caller holds the locks."""
    if not invoices:
        return
    invoices.sort(key=lambda invoice: str(invoice.pk))
    ids = [invoice.pk for invoice in invoices]
    tenant_ids = {invoice.tenant_id for invoice in invoices}
    subtotals = dict(
        InvoiceLine.objects.filter(invoice_id__in=ids).values_list("invoice_id").annotate(total=Sum("amount_cents"))
    )
    balances = dict(
        CreditEntry.objects.filter(tenant_id__in=tenant_ids)
        .values_list("tenant_id")
        .annotate(total=Sum("amount_cents"))
    )
    accounts = {account.tenant_id: account for account in BillingAccount.objects.filter(tenant_id__in=tenant_ids)}
    numbers = _reserve_numbers(kind="INV", year=now.year, count=len(invoices))
    entries, events = [], []
    for invoice, number in zip(invoices, numbers, strict=True):
        account = accounts.get(invoice.tenant_id) or BillingAccount(tenant=invoice.tenant)
        subtotal = subtotals.get(invoice.pk) or 0
        invoice.number = number
        invoice.subtotal_cents = subtotal
        invoice.tax_rate = account.tax_rate
        invoice.tax_cents = tax_cents(subtotal_cents=subtotal, tax_rate=account.tax_rate)
        invoice.total_cents = subtotal + invoice.tax_cents
        invoice.currency = settings.BILLING_CURRENCY
        invoice.bill_to_name = account.legal_name or invoice.tenant.name
        invoice.bill_to_address = account.address
        invoice.bill_to_vat_id = account.vat_id
        invoice.finalized_at = now
        # Nothing due (zero total), or prepaid credit covers it: the invoice is settled as it is issued.
        balance = balances.get(invoice.tenant_id) or 0
        settled = invoice.total_cents == 0 or balance >= invoice.total_cents
        invoice.status = Invoice.Status.PAID if settled else Invoice.Status.FINALIZED
        invoice.paid_at = now if settled else None
        if invoice.total_cents:
            balances[invoice.tenant_id] = balance - invoice.total_cents
            entries.append(
                CreditEntry(
                    tenant_id=invoice.tenant_id,
                    kind=CreditEntry.Kind.INVOICE,
                    amount_cents=-invoice.total_cents,
                    invoice=invoice,
                    description=f"Invoice {invoice.number}",
                    created_by=actor,
                    created_at=now,
                )
            )
        state = "no payment due" if invoice.total_cents == 0 else ("paid from credit" if settled else "payment due")
        events.append(
            AccountEvent(
                tenant_id=invoice.tenant_id,
                action=AccountEvent.Action.INVOICE,
                message=f"Invoice {invoice.number} for {invoice.period_start:%B %Y} issued: "
                f"{invoice.total} {invoice.currency} ({state}).",
                actor=actor,
                created_at=now,
            )
        )
    _issue_rows(invoices=invoices, now=now)
    CreditEntry.objects.bulk_create(entries, batch_size=1000)
    events = AccountEvent.objects.bulk_create(events, batch_size=1000)
    if actor is not None:  # an operator issued them; the monthly run is the system's own routine
        for event in events:
            account_event_activity(event)
    from billing.tasks import render_invoice_documents, send_account_email

    notices = [
        (str(inv.pk), str(inv.tenant_id), ev.pk, f"invoice {inv.number}")
        for inv, ev in zip(invoices, events, strict=True)
    ]

    def enqueue():
        for invoice_id, tenant_id, event_id, subject in notices:
            render_invoice_documents.delay(invoice_id=invoice_id)
            send_account_email.delay(tenant_id=tenant_id, event_id=event_id, subject=subject)

    transaction.on_commit(enqueue)


def invoice_finalize(*, invoice: Invoice, actor=None, now: datetime | None = None, refresh: bool = True) -> Invoice:
    """Issues a draft invoice of a month that has ended: number, billing snapshot, tax once, ledger debit, freeze.

    The PDF and CSV are rendered by a worker after the commit.
    """
    now = now or timezone.now()
    if refresh:
        # The last metering pass for this tenant and month: the lines become final with the month over.
        invoices_refresh(period_start=invoice.period_start, as_of=now, tenant_ids=[invoice.tenant_id])
    with transaction.atomic():
        lock_month(invoice.period_start)
        invoice = Invoice.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=invoice.pk)
        if invoice.status != Invoice.Status.DRAFT:
            raise Conflict(f"Invoice {invoice.number} is already {invoice.get_status_display().lower()}.")
        if not _month_has_ended(invoice.period_start, now):
            raise Conflict(f"{invoice.period_start:%B %Y} has not ended yet; its invoice stays a draft until then.")
        _finalize_locked(invoices=[invoice], now=now, actor=actor)
    return invoice


def invoices_finalize_batch(*, period_start: date, invoice_ids: list, now: datetime) -> int:
    """Issues many drafts of one ended month in one transaction; returns how many (finalized ones are skipped)."""
    if not _month_has_ended(period_start, now):
        raise Conflict(f"{period_start:%B %Y} has not ended yet.")
    with transaction.atomic():
        lock_month(period_start)
        invoices = list(
            Invoice.objects.select_for_update(of=("self",))
            .select_related("tenant")
            .filter(pk__in=invoice_ids, period_start=period_start, status=Invoice.Status.DRAFT)
            .order_by("pk")
        )
        _finalize_locked(invoices=invoices, now=now)
    return len(invoices)


def invoices_finalize_due(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Finalizes every draft of a month that ended more than the grace period ago; returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.BILLING_FINALIZE_GRACE_HOURS)
    last_due = month_start(cutoff) - timedelta(days=1)  # the latest month whose end + grace has passed
    months = (
        Invoice.objects.filter(status=Invoice.Status.DRAFT, period_start__lte=month_start(last_due))
        .values_list("period_start", flat=True)
        .distinct()
        .order_by("period_start")
    )
    count = 0
    for period_start in list(months):
        invoices_refresh(period_start=period_start, as_of=now)
        pending = Invoice.objects.filter(status=Invoice.Status.DRAFT, period_start=period_start).order_by("pk")
        batch = []
        for invoice_id in pending.values_list("pk", flat=True).iterator(chunk_size=batch_size):
            batch.append(invoice_id)
            if len(batch) == batch_size:
                count += invoices_finalize_batch(period_start=period_start, invoice_ids=batch, now=now)
                batch = []
        count += invoices_finalize_batch(period_start=period_start, invoice_ids=batch, now=now)
    return count


def _lock_issued(invoice: Invoice) -> Invoice:
    invoice = Invoice.objects.select_for_update().select_related("tenant").get(pk=invoice.pk)
    if invoice.status == Invoice.Status.DRAFT:
        raise Conflict("A draft invoice has not been issued yet.")
    return invoice


def invoice_mark_paid(*, invoice: Invoice, actor=None, now: datetime | None = None, payment=None) -> Invoice:
    """Records that a finalized invoice was paid outside the credit balance (bank transfer, card).

    `payment`: the provider payment that paid it (billing/services/payments.py), linked to the ledger entry.
    """
    now = now or timezone.now()
    with transaction.atomic():
        invoice = _lock_issued(invoice)
        if invoice.status != Invoice.Status.FINALIZED:
            raise Conflict(f"Invoice {invoice.number} is {invoice.get_status_display().lower()}, not awaiting payment.")
        invoice.status = Invoice.Status.PAID
        invoice.paid_at = now
        invoice.save(update_fields=["status", "paid_at"])
        if invoice.total_cents:
            CreditEntry.objects.create(
                tenant=invoice.tenant,
                kind=CreditEntry.Kind.PAYMENT,
                amount_cents=invoice.total_cents,
                invoice=invoice,
                description=f"Payment of {invoice.number}" + (" by card" if payment is not None else ""),
                created_by=actor,
                payment=payment,
            )
        _event(
            tenant=invoice.tenant,
            action=AccountEvent.Action.INVOICE,
            message=f"Invoice {invoice.number} paid"
            + (f" ({payment.amount} {payment.currency} through the payment provider)." if payment is not None else "."),
            actor=actor,
        )
    account_check(tenant=invoice.tenant, now=now)
    return invoice


def invoice_void(*, invoice: Invoice, actor=None, reason: str = "", now: datetime | None = None) -> Invoice:
    """Cancels an unpaid finalized invoice; its number stays used and its debit is reversed."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = _lock_issued(invoice)
        if invoice.status != Invoice.Status.FINALIZED:
            raise Conflict(
                f"Invoice {invoice.number} is {invoice.get_status_display().lower()}; only an unpaid invoice can be "
                "voided (issue a credit note instead)."
            )
        invoice.status = Invoice.Status.VOID
        invoice.voided_at = now
        invoice.save(update_fields=["status", "voided_at"])
        if invoice.total_cents:
            CreditEntry.objects.create(
                tenant=invoice.tenant,
                kind=CreditEntry.Kind.ADJUSTMENT,
                amount_cents=invoice.total_cents,
                invoice=invoice,
                description=f"{invoice.number} voided" + (f": {reason}" if reason else ""),
                created_by=actor,
            )
        _event(
            tenant=invoice.tenant,
            action=AccountEvent.Action.INVOICE,
            message=f"Invoice {invoice.number} voided." + (f" {reason}" if reason else ""),
            actor=actor,
            email_subject=f"invoice {invoice.number} voided",
        )
    account_check(tenant=invoice.tenant, now=now)
    return invoice


def credit_note_issue(
    *, invoice: Invoice, amount: Decimal, reason: str, actor=None, now: datetime | None = None
) -> CreditNote:
    """Corrects an issued invoice with a numbered credit note, credited to the tenant's balance."""
    now = now or timezone.now()
    amount_cents = to_cents(amount)
    if amount_cents <= 0:
        raise InvalidRequest("A credit note must be for a positive amount.")
    if not reason.strip():
        raise InvalidRequest("Say why the credit note is issued; it is printed on it.")
    with transaction.atomic():
        invoice = _lock_issued(invoice)
        if invoice.status == Invoice.Status.VOID:
            raise Conflict(f"Invoice {invoice.number} is void; there is nothing to correct.")
        credited = invoice.credit_notes.aggregate(total=Sum("amount_cents"))["total"] or 0
        if credited + amount_cents > invoice.total_cents:
            left = cents_to_decimal(invoice.total_cents - credited)
            raise InvalidRequest(f"Credit notes on {invoice.number} cannot exceed its total; at most {left} is left.")
        note = CreditNote.objects.create(
            tenant=invoice.tenant,
            invoice=invoice,
            number=_next_number(kind="CN", year=now.year),
            amount_cents=amount_cents,
            reason=reason.strip(),
            created_at=now,
            created_by=actor,
        )
        CreditEntry.objects.create(
            tenant=invoice.tenant,
            kind=CreditEntry.Kind.CREDIT_NOTE,
            amount_cents=amount_cents,
            credit_note=note,
            description=f"Credit note {note.number} on {invoice.number}",
            created_by=actor,
        )
        _event(
            tenant=invoice.tenant,
            action=AccountEvent.Action.CREDIT_NOTE,
            message=f"Credit note {note.number} of {note.amount} {invoice.currency} on {invoice.number}: {note.reason}",
            actor=actor,
            email_subject=f"credit note {note.number}",
        )
    account_check(tenant=invoice.tenant, now=now)
    return note


def invoice_render_documents(*, invoice: Invoice) -> Invoice:
    """Renders and stores the PDF and CSV of an issued invoice (idempotent: existing files are kept)."""
    from billing.documents import invoice_csv, invoice_pdf

    invoice = Invoice.objects.select_related("tenant").get(pk=invoice.pk)
    if invoice.status == Invoice.Status.DRAFT:
        raise Conflict("Drafts are rendered on request, not stored.")
    changed = []
    if not invoice.pdf:
        invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(invoice_pdf(invoice=invoice)), save=False)
        changed.append("pdf")
    if not invoice.csv:
        invoice.csv.save(f"{invoice.number}.csv", ContentFile(invoice_csv(invoice=invoice).encode()), save=False)
        changed.append("csv")
    if changed:
        # A conditional update: a second worker rendering the same invoice does not overwrite the first's files.
        Invoice.objects.filter(pk=invoice.pk, **{f"{name}": "" for name in changed}).update(
            **{name: getattr(invoice, name).name for name in changed}
        )
    return invoice
