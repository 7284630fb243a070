"""Every change to billing state goes through these functions."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.template.loader import render_to_string
from django.utils import timezone

from billing.metering import invoices_refresh, lock_month
from billing.models import (
    AccountEvent,
    BillingAccount,
    Budget,
    BudgetAlert,
    CreditEntry,
    CreditNote,
    DocumentSequence,
    Invoice,
    InvoiceLine,
    ResourceType,
    Segment,
)
from billing.pricing import cents_to_decimal, month_bounds, month_start, tax_cents, to_cents
from billing.selectors import (
    billing_contacts,
    credit_balance_cents,
    tenant_month_usage,
    unbilled_cents,
)
from portal.errors import Conflict, InvalidRequest, ServiceError
from tenants.models import Tenant


def _to_second(at: datetime) -> datetime:
    # Segments are timed to the whole second so the metering SQL counts started hours with integers.
    return at.replace(microsecond=0)


# --- segments ----------------------------------------------------------------------------------------------------


def segment_open(
    *,
    tenant,
    resource_type: str,
    resource_id: UUID,
    resource_name: str,
    plan_name: str,
    unit_monthly_price: Decimal,
    quantity: int = 1,
    at: datetime,
) -> Segment:
    """Opens the billable segment of a resource; refuses a second open segment for the same resource."""
    segment = Segment(
        tenant=tenant,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_name=resource_name,
        plan_name=plan_name,
        started_at=_to_second(at),
    )
    segment.set_price(unit_monthly_price=unit_monthly_price, quantity=quantity)
    try:
        # A savepoint keeps the caller's transaction usable if the unique constraint refuses the row.
        with transaction.atomic():
            segment.save()
    except IntegrityError:
        raise Conflict(f"{resource_name} already has an open billable segment.", code="segment_open") from None
    return segment


def segment_close(*, resource_type: str, resource_id: UUID, at: datetime) -> Segment | None:
    """Closes the open segment of a resource, if any (closing twice is harmless: the second finds none)."""
    segment = Segment.objects.select_for_update().filter(resource_type=resource_type, resource_id=resource_id).open()
    segment = segment.first()
    if segment is None:
        return None
    segment.ended_at = max(_to_second(at), segment.started_at)
    segment.save(update_fields=["ended_at"])
    return segment


def instance_segment_open(*, instance, at) -> None:
    """Opens the billable segment of an instance that became billable (provisioned) or changed price (resized)."""
    from billing.prices import flavor_price_current

    flavor = instance.flavor
    segment_open(
        tenant=instance.tenant,
        resource_type=ResourceType.INSTANCE,
        resource_id=instance.pk,
        resource_name=instance.name,
        plan_name=flavor.name,
        unit_monthly_price=flavor_price_current(flavor=flavor, at=at),
        at=at,
    )


def instance_segment_close(*, instance, at) -> None:
    """Closes the open billable segment of an instance (delete requested, or before a resize re-opens it)."""
    segment_close(resource_type=ResourceType.INSTANCE, resource_id=instance.pk, at=at)


# --- documents: numbers, finalizing, payment, void, credit notes ----------------------------------------------


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


def _event(*, tenant, kind: str, message: str, actor=None, email_subject: str = "") -> AccountEvent:
    event = AccountEvent.objects.create(tenant=tenant, kind=kind, message=message, actor=actor)
    if email_subject:
        from billing.tasks import send_account_email

        tenant_id, event_id = str(tenant.pk), event.pk
        transaction.on_commit(
            lambda: send_account_email.delay(tenant_id=tenant_id, event_id=event_id, subject=email_subject)
        )
    return event


def account_notify(*, tenant_id, event_id: int, subject: str) -> int:
    """E-mails one account event to the tenant's owners and billing members; returns how many were sent to."""
    event = AccountEvent.objects.select_related("tenant").filter(pk=event_id, tenant_id=tenant_id).first()
    if event is None:
        return 0
    recipients = billing_contacts(tenant=event.tenant)
    if not recipients:
        return 0
    body = render_to_string(
        "billing/email/account_event.txt",
        {"event": event, "tenant": event.tenant, "site_url": settings.SITE_URL},
    )
    send_mail(f"[Hangar] {event.tenant.name}: {subject}", body, None, recipients)
    return len(recipients)


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
                kind=AccountEvent.Kind.INVOICE,
                message=f"Invoice {invoice.number} for {invoice.period_start:%B %Y} issued: "
                f"{invoice.total} {invoice.currency} ({state}).",
                actor=actor,
                created_at=now,
            )
        )
    _issue_rows(invoices=invoices, now=now)
    CreditEntry.objects.bulk_create(entries, batch_size=1000)
    events = AccountEvent.objects.bulk_create(events, batch_size=1000)
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


def invoice_mark_paid(*, invoice: Invoice, actor=None, now: datetime | None = None) -> Invoice:
    """Records that a finalized invoice was paid outside the credit balance (bank transfer, card)."""
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
                description=f"Payment of {invoice.number}",
                created_by=actor,
            )
        _event(
            tenant=invoice.tenant,
            kind=AccountEvent.Kind.INVOICE,
            message=f"Invoice {invoice.number} paid.",
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
            kind=AccountEvent.Kind.INVOICE,
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
            kind=AccountEvent.Kind.CREDIT_NOTE,
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


# --- credit ledger and the account's standing --------------------------------------------------------------------


def _account_for_update(tenant) -> BillingAccount:
    BillingAccount.objects.bulk_create([BillingAccount(tenant=tenant)], ignore_conflicts=True)
    return BillingAccount.objects.select_for_update().select_related("tenant").get(tenant=tenant)


def credit_topup(
    *, tenant, amount: Decimal, description: str = "", actor=None, now: datetime | None = None
) -> CreditEntry:
    """Records credit an operator received for the tenant; lifts a credit hold or suspension it resolves."""
    amount_cents = to_cents(amount)
    if amount_cents <= 0:
        raise InvalidRequest("A top-up must be a positive amount.")
    with transaction.atomic():
        entry = CreditEntry.objects.create(
            tenant=tenant,
            kind=CreditEntry.Kind.TOPUP,
            amount_cents=amount_cents,
            description=description or "Top-up",
            created_by=actor,
        )
        _event(
            tenant=tenant,
            kind=AccountEvent.Kind.TOPUP,
            message=f"{entry.amount} {settings.BILLING_CURRENCY} credit added."
            + (f" {description}" if description else ""),
            actor=actor,
        )
    account_check(tenant=tenant, now=now)
    return entry


def billing_details_update(*, tenant, actor, legal_name: str, address: str, vat_id: str) -> BillingAccount:
    """Changes the name, address and VAT id printed on future invoices (issued ones keep their snapshot)."""
    with transaction.atomic():
        account = _account_for_update(tenant)
        account.legal_name, account.address, account.vat_id = legal_name.strip(), address.strip(), vat_id.strip()
        account.save(update_fields=["legal_name", "address", "vat_id"])
        _event(tenant=tenant, kind=AccountEvent.Kind.DETAILS, message="Billing details updated.", actor=actor)
    return account


def billing_terms_update(*, tenant, actor, tax_rate: Decimal, credit_limit: Decimal | None) -> BillingAccount:
    """Operators set a tenant's tax rate and credit limit; the standing is re-checked at once."""
    if not Decimal(0) <= Decimal(tax_rate) <= Decimal(100):
        raise InvalidRequest("The tax rate is a percentage between 0 and 100.")
    if credit_limit is not None and credit_limit < 0:
        raise InvalidRequest("A credit limit cannot be negative; leave it empty for no limit.")
    with transaction.atomic():
        account = _account_for_update(tenant)
        account.tax_rate = Decimal(tax_rate)
        account.credit_limit_cents = None if credit_limit is None else to_cents(credit_limit)
        account.save(update_fields=["tax_rate", "credit_limit_cents"])
        limit = "no limit" if credit_limit is None else f"{account.credit_limit} {settings.BILLING_CURRENCY}"
        _event(
            tenant=tenant,
            kind=AccountEvent.Kind.DETAILS,
            message=f"Tax rate {account.tax_rate} %, credit limit {limit}.",
            actor=actor,
        )
    account_check(tenant=tenant)
    return account


def available_credit_cents(*, tenant) -> int:
    """Credit balance minus spend not yet invoiced: what the credit limit is compared with."""
    return credit_balance_cents(tenant=tenant) - unbilled_cents(tenant=tenant)


def _set_status(*, account: BillingAccount, status: str, reason: str, now: datetime) -> None:
    tenant = account.tenant
    tenant.status = status
    tenant.save(update_fields=["status"])
    account.status_reason = reason
    if status == Tenant.Status.HOLD:
        account.hold_since, account.suspended_at = now, None
    elif status == Tenant.Status.SUSPENDED:
        account.hold_since, account.suspended_at = account.hold_since or now, now
    else:
        account.hold_since = account.suspended_at = None
    account.save(update_fields=["status_reason", "hold_since", "suspended_at"])


def _stop_machines(*, tenant) -> int:
    """Stops the tenant's running machines through compute's own service (they stay billed: capacity is held)."""
    from compute import services as compute_services
    from compute.models import Instance

    stopped = 0
    for instance in Instance.objects.for_tenant(tenant).filter(state="running").order_by("pk"):
        try:
            compute_services.instance_stop(instance=instance, user=None)
        except ServiceError:
            continue  # became busy meanwhile; the next check stops it
        stopped += 1
    return stopped


def account_check(*, tenant, now: datetime | None = None) -> str:
    """Holds, suspends (after the grace period) or releases a tenant according to its credit limit.

    Operator holds and suspensions are left alone: only an operator lifts them.
    """
    now = now or timezone.now()
    stop_machines = False
    with transaction.atomic():
        account = _account_for_update(tenant)
        tenant = account.tenant
        if account.status_reason == BillingAccount.Reason.OPERATOR:
            return tenant.status
        limit = account.credit_limit_cents
        available = available_credit_cents(tenant=tenant)
        over = limit is not None and available < -limit
        status = tenant.status
        if over and status == Tenant.Status.ACTIVE:
            _set_status(account=account, status=Tenant.Status.HOLD, reason=BillingAccount.Reason.CREDIT, now=now)
            _event(
                tenant=tenant,
                kind=AccountEvent.Kind.HOLD,
                message=f"Put on hold: credit of {cents_to_decimal(available)} {settings.BILLING_CURRENCY} is past the "
                f"limit of -{account.credit_limit}. No new resources until credit is added; running machines keep "
                f"running, and are stopped after {settings.BILLING_SUSPEND_GRACE_HOURS} hours.",
                email_subject="account on hold",
            )
        elif (
            over
            and status == Tenant.Status.HOLD
            and account.hold_since is not None
            and (account.hold_since + timedelta(hours=settings.BILLING_SUSPEND_GRACE_HOURS) <= now)
        ):
            _set_status(account=account, status=Tenant.Status.SUSPENDED, reason=BillingAccount.Reason.CREDIT, now=now)
            _event(
                tenant=tenant,
                kind=AccountEvent.Kind.SUSPEND,
                message="Suspended: the credit limit is still exceeded after the grace period. Machines are stopped "
                "(storage is still billed) until credit is added.",
                email_subject="account suspended",
            )
            stop_machines = True
        elif not over and status != Tenant.Status.ACTIVE and account.status_reason == BillingAccount.Reason.CREDIT:
            _set_status(account=account, status=Tenant.Status.ACTIVE, reason=BillingAccount.Reason.NONE, now=now)
            _event(
                tenant=tenant,
                kind=AccountEvent.Kind.RESUME,
                message="Credit restored: the account is active again. Stopped machines can be started.",
                email_subject="account active again",
            )
        status = tenant.status
    if stop_machines:
        _stop_machines(tenant=tenant)
    return status


def accounts_check(*, now: datetime | None = None) -> int:
    """The periodic credit check over every tenant with a credit limit or a credit hold; returns how many changed."""
    changed = 0
    candidates = BillingAccount.objects.filter(
        Q(credit_limit_cents__isnull=False) | Q(status_reason=BillingAccount.Reason.CREDIT)
    ).select_related("tenant")
    for account in candidates.order_by("pk").iterator(chunk_size=500):
        before = account.tenant.status
        if account_check(tenant=account.tenant, now=now) != before:
            changed += 1
    return changed


def tenant_hold(*, tenant, actor, reason: str = "", now: datetime | None = None) -> None:
    """An operator puts a tenant on hold: no new resources; lifted only by tenant_resume."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _account_for_update(tenant)
        _set_status(account=account, status=Tenant.Status.HOLD, reason=BillingAccount.Reason.OPERATOR, now=now)
        _event(
            tenant=account.tenant,
            kind=AccountEvent.Kind.HOLD,
            message="Put on hold by an operator." + (f" {reason}" if reason else ""),
            actor=actor,
            email_subject="account on hold",
        )


def tenant_suspend(*, tenant, actor, reason: str = "", now: datetime | None = None) -> int:
    """An operator suspends a tenant: its machines are stopped (still billed); returns how many were stopped."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _account_for_update(tenant)
        _set_status(account=account, status=Tenant.Status.SUSPENDED, reason=BillingAccount.Reason.OPERATOR, now=now)
        _event(
            tenant=account.tenant,
            kind=AccountEvent.Kind.SUSPEND,
            message="Suspended by an operator; machines are stopped." + (f" {reason}" if reason else ""),
            actor=actor,
            email_subject="account suspended",
        )
    return _stop_machines(tenant=account.tenant)


def tenant_resume(*, tenant, actor, now: datetime | None = None) -> str:
    """An operator lifts a hold or suspension; a credit limit still exceeded puts the tenant on hold again."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _account_for_update(tenant)
        if account.tenant.status == Tenant.Status.ACTIVE:
            raise Conflict(f"{account.tenant} is already active.")
        _set_status(account=account, status=Tenant.Status.ACTIVE, reason=BillingAccount.Reason.NONE, now=now)
        _event(
            tenant=account.tenant,
            kind=AccountEvent.Kind.RESUME,
            message="Resumed by an operator. Stopped machines can be started.",
            actor=actor,
            email_subject="account active again",
        )
    return account_check(tenant=account.tenant, now=now)


# --- budgets -----------------------------------------------------------------------------------------------------

BUDGET_THRESHOLDS = (50, 80, 100)


def budget_set(*, tenant, actor, amount: Decimal | None) -> Budget | None:
    """Sets (or with None, removes) the tenant's monthly budget."""
    with transaction.atomic():
        if amount is None:
            Budget.objects.filter(tenant=tenant).delete()
            _event(tenant=tenant, kind=AccountEvent.Kind.BUDGET, message="Monthly budget removed.", actor=actor)
            return None
        amount_cents = to_cents(amount)
        if amount_cents <= 0:
            raise InvalidRequest("A budget must be a positive amount.")
        budget, _ = Budget.objects.update_or_create(
            tenant=tenant, defaults={"amount_cents": amount_cents, "updated_at": timezone.now()}
        )
        _event(
            tenant=tenant,
            kind=AccountEvent.Kind.BUDGET,
            message=f"Monthly budget set to {budget.amount} {settings.BILLING_CURRENCY}.",
            actor=actor,
        )
    return budget


def budget_check(*, tenant, now: datetime | None = None) -> list[BudgetAlert]:
    """Raises the alerts newly crossed this month (actual and forecast, 50/80/100 %); each fires once per month."""
    now = now or timezone.now()
    budget = Budget.objects.filter(tenant=tenant).first()
    if budget is None:
        return []
    usage = tenant_month_usage(tenant=tenant, as_of=now)
    fired = []
    for basis, spend in (
        (BudgetAlert.Basis.ACTUAL, usage.cost_cents),
        (BudgetAlert.Basis.FORECAST, usage.forecast_cents),
    ):
        for threshold in BUDGET_THRESHOLDS:
            if spend * 100 < budget.amount_cents * threshold:
                continue
            try:
                with transaction.atomic():
                    alert = BudgetAlert.objects.create(
                        tenant=tenant,
                        period_start=usage.period_start,
                        basis=basis,
                        threshold=threshold,
                        spend_cents=spend,
                        budget_cents=budget.amount_cents,
                    )
                    label = "spend so far" if basis == BudgetAlert.Basis.ACTUAL else "forecast month-end spend"
                    _event(
                        tenant=tenant,
                        kind=AccountEvent.Kind.BUDGET,
                        message=f"Budget alert: {label} of {cents_to_decimal(spend)} {settings.BILLING_CURRENCY} "
                        f"reached {threshold} % of the {budget.amount} budget for {usage.period_start:%B %Y}.",
                        email_subject=f"{threshold} % of your budget ({label})",
                    )
            except IntegrityError:
                continue  # already fired this month
            fired.append(alert)
    return fired


def budgets_check(*, now: datetime | None = None) -> int:
    """The periodic budget check over every tenant with a budget; returns how many alerts fired."""
    fired = 0
    for budget in Budget.objects.select_related("tenant").order_by("pk").iterator(chunk_size=500):
        fired += len(budget_check(tenant=budget.tenant, now=now))
    return fired


# --- other resource types -------------------------------------------------------------------------------------


def volume_segment_open(*, volume, at: datetime) -> Segment:
    """Opens the segment of a volume (billed per GiB-month); a resize is close + open like a machine's."""
    from billing.prices import resource_price_current

    return segment_open(
        tenant=volume.tenant,
        resource_type=ResourceType.VOLUME,
        resource_id=volume.pk,
        resource_name=volume.name,
        plan_name=f"{volume.size_gib} GiB",
        unit_monthly_price=resource_price_current(resource_type=ResourceType.VOLUME, at=at),
        quantity=volume.size_gib,
        at=at,
    )


def volume_segment_close(*, volume, at: datetime) -> None:
    segment_close(resource_type=ResourceType.VOLUME, resource_id=volume.pk, at=at)


def ipv4_segment_open(*, address, at: datetime) -> Segment:
    """Opens the segment of a public IPv4 address allocated to the tenant."""
    from billing.prices import resource_price_current

    return segment_open(
        tenant=address.tenant,
        resource_type=ResourceType.IPV4,
        resource_id=address.pk,
        resource_name=str(address),
        plan_name="IPv4",
        unit_monthly_price=resource_price_current(resource_type=ResourceType.IPV4, at=at),
        at=at,
    )


def ipv4_segment_close(*, address, at: datetime) -> None:
    segment_close(resource_type=ResourceType.IPV4, resource_id=address.pk, at=at)
