"""Billing: dated prices, billable segments, invoices and their lines, credit notes, the credit ledger, budgets.

Stored money is integer cents (`*_cents`) wherever SQL adds it up: SQLite has no decimal type, and integers keep
the metering query exact on both SQLite and PostgreSQL. Decimal properties give templates and code the amounts.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from billing.pricing import RATE_SCALE, cents_to_decimal, hourly_rate
from portal.errors import Conflict
from tenants.models import Event, Tenant, TenantOwned, TenantQuerySet


class ResourceType(models.TextChoices):
    INSTANCE = "instance", "Machine"
    VOLUME = "volume", "Volume storage (per GiB)"
    SNAPSHOT = "snapshot", "Snapshot storage (per GiB)"
    IPV4 = "ipv4", "Public IPv4 address"
    # Priced per GB sent above the tenant's pooled allowance (a usage line, not a segment): the Price row's
    # monthly_price is the price of one GB.
    TRAFFIC = "traffic", "Outbound traffic (per GB)"
    IMAGE = "image", "Private image storage (per GiB)"
    # A machine's backups cost a share of the machine's own price: the Price row's monthly_price is that share in
    # percent (20 by default), dated like every price.
    BACKUP = "backup", "Backups (% of the machine's price)"


class Price(models.Model):
    """A dated monthly price of one item: applies to segments opened at or after effective_from."""

    resource_type = models.CharField(max_length=16, choices=ResourceType.choices)
    # Machines are priced per flavor; volumes and snapshots (per GiB-month) and public IPv4 addresses have one price
    # each.
    flavor = models.ForeignKey("compute.Flavor", on_delete=models.PROTECT, null=True, blank=True, related_name="prices")
    monthly_price = models.DecimalField(max_digits=12, decimal_places=4)
    effective_from = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["resource_type", "flavor__name", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["resource_type", "flavor", "effective_from"], name="price_unique_item_effective_from"
            ),
            models.CheckConstraint(condition=models.Q(monthly_price__gte=0), name="price_not_negative"),
            models.CheckConstraint(
                condition=models.Q(resource_type=ResourceType.INSTANCE, flavor__isnull=False)
                | (~models.Q(resource_type=ResourceType.INSTANCE) & models.Q(flavor__isnull=True)),
                name="price_flavor_only_for_instances",
            ),
        ]

    def __str__(self) -> str:
        item = self.flavor.name if self.flavor_id else self.get_resource_type_display()
        return f"{item}: {self.monthly_price} from {self.effective_from:%Y-%m-%d %H:%M}"

    @property
    def hourly_rate(self) -> Decimal:
        return hourly_rate(self.monthly_price)


class SegmentQuerySet(TenantQuerySet):
    def open(self):
        return self.filter(ended_at__isnull=True)

    def overlapping(self, start, end):
        return self.filter(started_at__lt=end).filter(models.Q(ended_at__isnull=True) | models.Q(ended_at__gt=start))


class Segment(TenantOwned):
    """One billable stretch of one resource at one price, with a snapshot of what it bills."""

    resource_type = models.CharField(max_length=16, choices=ResourceType.choices)
    resource_id = models.UUIDField()
    resource_name = models.CharField(max_length=100)
    plan_name = models.CharField(max_length=100, blank=True, help_text="Flavor name, or the size of a volume.")
    quantity = models.PositiveIntegerField(default=1, help_text="GiB for volumes, 1 otherwise.")
    traffic_allowance_gb = models.PositiveIntegerField(
        default=0, help_text="Machines: the outbound GB per month their flavor includes (pro rata by hours)."
    )
    unit_monthly_price = models.DecimalField(max_digits=12, decimal_places=4)
    monthly_price = models.DecimalField(max_digits=14, decimal_places=4)
    hourly_rate = models.DecimalField(max_digits=18, decimal_places=10)
    # The same two prices as integers of 1e-10 units: the metering SQL multiplies and compares these exactly.
    hourly_rate_units = models.BigIntegerField(editable=False)
    monthly_price_units = models.BigIntegerField(editable=False)
    # Exact instants (microseconds): every started hour counts, however short; SQL counts them in integers.
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = SegmentQuerySet.as_manager()

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "started_at"], name="segment_tenant_started"),
            models.Index(fields=["resource_type", "resource_id"], name="segment_resource"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["resource_type", "resource_id"],
                condition=models.Q(ended_at__isnull=True),
                name="segment_one_open_per_resource",
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True) | models.Q(ended_at__gte=models.F("started_at")),
                name="segment_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_name} ({self.plan_name}) from {self.started_at:%Y-%m-%d %H:%M}"

    def set_price(self, *, unit_monthly_price: Decimal, quantity: int = 1) -> None:
        self.unit_monthly_price = Decimal(unit_monthly_price)
        self.quantity = quantity
        self.monthly_price = self.unit_monthly_price * quantity
        self.hourly_rate = hourly_rate(self.monthly_price)
        self.hourly_rate_units = int(self.hourly_rate * RATE_SCALE)
        self.monthly_price_units = int(self.monthly_price * RATE_SCALE)


class BillingAccount(models.Model):
    """A tenant's billing details, tax rate and credit limit (its standing is the tenant's own)."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, primary_key=True, related_name="billing_account")
    legal_name = models.CharField(max_length=200, blank=True, help_text="Defaults to the organisation's name.")
    address = models.TextField(blank=True)
    vat_id = models.CharField("VAT id", max_length=40, blank=True)
    tax_rate = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("0.00"), help_text="Percent, applied once to the subtotal."
    )
    credit_limit_cents = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="How far (in cents) balance minus unbilled spend may go below zero; empty means no limit.",
    )

    class Meta:
        ordering = ["tenant__name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(tax_rate__gte=0, tax_rate__lte=100), name="billingaccount_tax_rate_percent"
            ),
            models.CheckConstraint(
                condition=models.Q(credit_limit_cents__isnull=True) | models.Q(credit_limit_cents__gte=0),
                name="billingaccount_credit_limit_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"Billing account of {self.tenant}"

    @property
    def credit_limit(self) -> Decimal | None:
        return None if self.credit_limit_cents is None else cents_to_decimal(self.credit_limit_cents)

    @property
    def bill_to_name(self) -> str:
        return self.legal_name or self.tenant.name


class Invoice(TenantOwned):
    """One tenant's bill for one calendar month (UTC); frozen once finalized."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        FINALIZED = "finalized", "Finalized"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    # Fields a finalized invoice may still change: its payment state and the rendered documents.
    MUTABLE_AFTER_FINALIZING = frozenset({"status", "paid_at", "voided_at", "pdf", "csv"})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    period_start = models.DateField(help_text="First day of the billed month.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    number = models.CharField(max_length=32, null=True, blank=True, unique=True)
    currency = models.CharField(max_length=3, default="EUR")
    subtotal_cents = models.BigIntegerField(default=0)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0.00"))
    tax_cents = models.BigIntegerField(default=0)
    total_cents = models.BigIntegerField(default=0)
    bill_to_name = models.CharField(max_length=200, blank=True)
    bill_to_address = models.TextField(blank=True)
    bill_to_vat_id = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    metered_at = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    pdf = models.FileField(upload_to="invoices/pdf/", blank=True)
    csv = models.FileField(upload_to="invoices/csv/", blank=True)

    class Meta:
        ordering = ["-period_start", "tenant_id"]
        indexes = [models.Index(fields=["period_start", "status"], name="invoice_period_status")]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "period_start"], name="invoice_one_per_tenant_month"),
            models.CheckConstraint(
                condition=models.Q(status="draft") | models.Q(number__isnull=False), name="invoice_issued_has_number"
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft {self.period_start:%B %Y} · {self.tenant_id}"

    @property
    def is_frozen(self) -> bool:
        return self.status != self.Status.DRAFT

    @property
    def subtotal(self) -> Decimal:
        return cents_to_decimal(self.subtotal_cents)

    @property
    def tax(self) -> Decimal:
        return cents_to_decimal(self.tax_cents)

    @property
    def total(self) -> Decimal:
        return cents_to_decimal(self.total_cents)

    @property
    def payment_due(self) -> bool:
        return self.status == self.Status.FINALIZED and self.total_cents > 0

    @property
    def title(self) -> str:
        return self.number or f"Draft · {self.period_start:%B %Y}"

    def save(self, *args, **kwargs):
        self._refuse_frozen_changes(kwargs.get("update_fields"))
        super().save(*args, **kwargs)  # write-ok: guards frozen documents

    def delete(self, *args, **kwargs):
        if type(self).objects.filter(pk=self.pk).exclude(status=self.Status.DRAFT).exists():
            raise Conflict("A finalized invoice cannot be deleted; void it or issue a credit note.", code="frozen")
        return super().delete(*args, **kwargs)  # write-ok: guards frozen documents

    def _refuse_frozen_changes(self, update_fields) -> None:
        stored = type(self).objects.filter(pk=self.pk).first() if not self._state.adding else None
        if stored is None or stored.status == self.Status.DRAFT:
            return
        fields = update_fields or [f.attname for f in self._meta.concrete_fields]
        for name in fields:
            field = self._meta.get_field(name)
            if field.name in self.MUTABLE_AFTER_FINALIZING:
                continue
            if getattr(stored, field.attname) != getattr(self, field.attname):
                raise Conflict(f"Invoice {stored.number} is finalized; its {field.name} cannot change.", code="frozen")
        if self.status != stored.status and not (
            stored.status == self.Status.FINALIZED and self.status in (self.Status.PAID, self.Status.VOID)
        ):
            raise Conflict(
                f"Invoice {stored.number} cannot go from {stored.status} to {self.status}.", code="invalid_transition"
            )


class InvoiceLine(models.Model):
    """One segment in one month on an invoice: started hours at the hourly rate, capped at the monthly price.

    Or the month's outbound traffic above the tenant's allowance (no segment): `quantity` GB at `hourly_rate` (the
    price of one GB), `plan_name` saying how much was sent and included.
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, null=True, blank=True, related_name="lines")
    resource_type = models.CharField(max_length=16, choices=ResourceType.choices)
    resource_id = models.UUIDField()
    resource_name = models.CharField(max_length=100)
    plan_name = models.CharField(max_length=100, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    period_from = models.DateTimeField()
    period_to = models.DateTimeField()
    hours = models.PositiveIntegerField()
    hourly_rate = models.DecimalField(max_digits=18, decimal_places=10)
    monthly_price = models.DecimalField(max_digits=14, decimal_places=4)
    amount_cents = models.BigIntegerField()

    class Meta:
        ordering = ["resource_type", "resource_name", "period_from", "id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "segment"], name="invoiceline_one_per_segment"),
            models.CheckConstraint(
                condition=models.Q(segment__isnull=True, resource_type="traffic")
                | (models.Q(segment__isnull=False) & ~models.Q(resource_type="traffic")),
                name="invoiceline_segment_unless_traffic",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_name}: {self.hours} h = {self.amount}"

    def save(self, *args, **kwargs):
        if Invoice.objects.filter(pk=self.invoice_id).exclude(status=Invoice.Status.DRAFT).exists():
            raise Conflict("Lines of a finalized invoice cannot change.", code="frozen")
        super().save(*args, **kwargs)  # write-ok: guards frozen documents

    def delete(self, *args, **kwargs):
        if Invoice.objects.filter(pk=self.invoice_id).exclude(status=Invoice.Status.DRAFT).exists():
            raise Conflict("Lines of a finalized invoice cannot change.", code="frozen")
        return super().delete(*args, **kwargs)  # write-ok: guards frozen documents

    @property
    def amount(self) -> Decimal:
        return cents_to_decimal(self.amount_cents)

    @property
    def capped(self) -> bool:
        return not self.is_traffic and self.hours * self.hourly_rate > self.monthly_price

    @property
    def is_traffic(self) -> bool:
        return self.resource_type == ResourceType.TRAFFIC


class DocumentSequence(models.Model):
    """The last number issued per document kind and year; locked while a number is taken, so none is skipped."""

    kind = models.CharField(max_length=8)  # "INV" or "CN"
    year = models.PositiveIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "year"], name="documentsequence_unique_kind_year")]

    def __str__(self) -> str:
        return f"{self.kind}-{self.year}: {self.last_number}"


class CreditNote(TenantOwned):
    """A correction to a finalized invoice: its own number sequence, credited to the tenant's balance."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=32, unique=True)
    amount_cents = models.BigIntegerField()
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(amount_cents__gt=0), name="creditnote_positive")]

    def __str__(self) -> str:
        return self.number

    @property
    def amount(self) -> Decimal:
        return cents_to_decimal(self.amount_cents)


class Payment(TenantOwned):
    """One attempt to pay through a payment provider: a credit top-up or an open invoice.

    The provider's id of the payment is unique per provider: the notification that settles it claims the row with a
    conditional UPDATE, so a notification delivered twice (or twice at once) credits the ledger once.
    """

    class Provider(models.TextChoices):
        TEST = "test", "Test provider"
        STRIPE = "stripe", "Stripe"

    class Purpose(models.TextChoices):
        TOPUP = "topup", "Credit top-up"
        INVOICE = "invoice", "Invoice payment"

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting payment"
        REQUIRES_ACTION = "requires_action", "Awaiting confirmation"
        SUCCEEDED = "succeeded", "Paid"
        FAILED = "failed", "Failed"

    OPEN_STATUSES = (Status.PENDING, Status.REQUIRES_ACTION)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="payments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    provider_payment_id = models.CharField(
        max_length=255, null=True, blank=True, help_text="The provider's id (a Stripe Checkout Session id: cs_…)."
    )
    checkout_url = models.URLField(max_length=2000, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="payment_tenant_created")]
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_payment_id"], name="payment_unique_provider_id"),
            models.CheckConstraint(condition=models.Q(amount_cents__gt=0), name="payment_positive"),
            models.CheckConstraint(
                condition=models.Q(purpose="topup", invoice__isnull=True)
                | models.Q(purpose="invoice", invoice__isnull=False),
                name="payment_invoice_only_for_invoice_payments",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.amount} {self.currency} ({self.get_status_display().lower()})"

    @property
    def amount(self) -> Decimal:
        return cents_to_decimal(self.amount_cents)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def description(self) -> str:
        if self.purpose == self.Purpose.INVOICE and self.invoice_id:
            return f"Payment of invoice {self.invoice.number}"
        return "Credit top-up"


class CreditEntry(TenantOwned):
    """One movement on a tenant's credit balance (top-up, invoice debit, credit note, payment); balance = sum."""

    class Kind(models.TextChoices):
        TOPUP = "topup", "Top-up"
        INVOICE = "invoice", "Invoice"
        PAYMENT = "payment", "Payment received"
        CREDIT_NOTE = "credit_note", "Credit note"
        ADJUSTMENT = "adjustment", "Adjustment"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount_cents = models.BigIntegerField(help_text="Positive adds credit, negative uses it.")
    description = models.CharField(max_length=300, blank=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    credit_note = models.OneToOneField(
        CreditNote, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entry"
    )
    # One ledger entry per provider payment, enforced by the database: the last guard of "credited exactly once".
    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entry"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "credit entries"
        indexes = [models.Index(fields=["tenant", "created_at"], name="creditentry_tenant_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "kind"],
                condition=models.Q(invoice__isnull=False),
                name="creditentry_one_per_invoice_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount}"

    @property
    def amount(self) -> Decimal:
        return cents_to_decimal(self.amount_cents)


class Budget(TenantOwned):
    """A tenant's monthly spending budget; alerts fire at 50/80/100 % of actual and forecast spend."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="budget")
    amount_cents = models.BigIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(amount_cents__gt=0), name="budget_positive")]

    def __str__(self) -> str:
        return f"Budget of {self.tenant}: {self.amount}"

    @property
    def amount(self) -> Decimal:
        return cents_to_decimal(self.amount_cents)


class BudgetAlert(TenantOwned):
    """A budget threshold crossed in one month; the unique constraint makes each alert fire once per month."""

    class Basis(models.TextChoices):
        ACTUAL = "actual", "Actual spend"
        FORECAST = "forecast", "Forecast month-end spend"

    period_start = models.DateField()
    basis = models.CharField(max_length=16, choices=Basis.choices)
    threshold = models.PositiveSmallIntegerField()
    spend_cents = models.BigIntegerField()
    budget_cents = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "period_start", "basis", "threshold"], name="budgetalert_once_per_month"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_basis_display()} reached {self.threshold} % in {self.period_start:%B %Y}"


class AccountEvent(Event):
    """The tenant's billing event log: holds, suspensions, resumptions, top-ups, invoices, budget alerts."""

    class Action(models.TextChoices):
        HOLD = "hold", "Put on hold"
        SUSPEND = "suspend", "Suspended"
        RESUME = "resume", "Resumed"
        TOPUP = "topup", "Credit added"
        PAYMENT = "payment", "Payment"
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"
        BUDGET = "budget", "Budget alert"
        DETAILS = "details", "Billing details changed"

    action = models.CharField(max_length=32, choices=Action.choices)

    class Meta(Event.Meta):
        indexes = [models.Index(fields=["tenant", "created_at"], name="accountevent_tenant_created")]
