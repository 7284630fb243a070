"""Operators' billing admin: prices, invoices (finalize, void, mark paid, credit notes), credit top-ups, accounts."""

from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from billing import selectors, services
from billing.models import (
    AccountEvent,
    BillingAccount,
    Budget,
    BudgetAlert,
    CreditEntry,
    CreditNote,
    Invoice,
    InvoiceLine,
    Payment,
    Price,
    ResourceType,
    Segment,
)
from billing.pricing import cents_to_decimal
from compute.models import Flavor
from portal.admin_actions import (
    AppendOnlyMixin,
    ReadOnlyAdminMixin,
    confirmed_service_action,
    extend_registered,
    service_action,
)
from portal.errors import ServiceError
from tenants.models import Tenant


class ServiceAddMixin:
    """Add forms that call a service: a refusal the form could not foresee becomes a message, not a 500."""

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except ServiceError as error:
            messages.error(request, error.message)
            return HttpResponseRedirect(request.get_full_path())


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """History is never edited: these rows are written by services only."""


# --- prices ------------------------------------------------------------------------------------------------------


class PriceForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = ["resource_type", "flavor", "monthly_price"]

    def clean(self):
        data = super().clean()
        if data.get("resource_type") == ResourceType.INSTANCE and not data.get("flavor"):
            self.add_error("flavor", "Machine prices are per flavor.")
        if data.get("resource_type") != ResourceType.INSTANCE and data.get("flavor"):
            self.add_error("flavor", "Only machine prices name a flavor.")
        price = data.get("monthly_price")
        if price is not None and price < 0:
            self.add_error("monthly_price", "A price cannot be negative.")
        elif price is not None and data.get("flavor") and price.as_tuple().exponent < -2:
            self.add_error("monthly_price", "A flavor's monthly price has at most two decimal places.")
        return data


@admin.register(Price)
class PriceAdmin(ServiceAddMixin, AppendOnlyMixin, admin.ModelAdmin):
    # A price changes by adding a dated row.
    form = PriceForm
    list_display = [
        "__str__",
        "resource_type",
        "flavor",
        "monthly_price",
        "hourly_rate",
        "effective_from",
        "created_by",
    ]
    list_filter = ["resource_type", "flavor"]
    date_hierarchy = "effective_from"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if data["resource_type"] == ResourceType.INSTANCE:
            saved = services.flavor_price_set(
                flavor=data["flavor"], monthly_price=data["monthly_price"], actor=request.user
            )
        else:
            saved = services.resource_price_set(
                resource_type=data["resource_type"], monthly_price=data["monthly_price"], actor=request.user
            )
        obj.__dict__.update(saved.__dict__)  # the admin logs and redirects with the saved row


def _register_flavor_admin() -> None:
    """Flavor.monthly_price is written only with a dated price row: read-only once the flavor exists."""
    base = type(admin.site._registry.get(Flavor)) if Flavor in admin.site._registry else admin.ModelAdmin

    class FlavorPriceAdmin(base):
        def get_readonly_fields(self, request, obj=None):
            fields = list(super().get_readonly_fields(request, obj))
            return [*fields, "monthly_price"] if obj is not None else fields

        def save_model(self, request, obj, form, change):
            super().save_model(request, obj, form, change)
            if not change:
                # The first dated price: the same service that every later price change goes through.
                services.flavor_price_set(flavor=obj, monthly_price=obj.monthly_price, actor=request.user)
                messages.info(
                    request, "Change this flavor's price later by adding a dated price under Billing, Prices."
                )

    if Flavor in admin.site._registry:
        admin.site.unregister(Flavor)
    admin.site.register(Flavor, FlavorPriceAdmin)


_register_flavor_admin()


# --- segments and invoices -------------------------------------------------------------------------------------


@admin.register(Segment)
class SegmentAdmin(ReadOnlyAdmin):
    list_display = ["resource_name", "resource_type", "plan_name", "tenant", "monthly_price", "started_at", "ended_at"]
    list_filter = ["resource_type"]
    search_fields = ["resource_name", "resource_id", "tenant__name"]
    list_select_related = ["tenant"]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = [
        "resource_name",
        "resource_type",
        "plan_name",
        "period_from",
        "period_to",
        "hours",
        "hourly_rate",
        "amount",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# The invoice actions: an operator acts on invoices they can see (name, service, description, what was done).
INVOICE_ACTIONS = [
    service_action(
        lambda invoice, user, call=call: call(invoice=invoice, actor=user),
        name=name,
        description=description,
        done_label=done_label,
        permission="view",
    )
    for name, call, description, done_label in [
        ("finalize_now", services.invoice_finalize, "Finalize now (months that have ended)", "Finalized"),
        ("mark_paid", services.invoice_mark_paid, "Mark paid", "Marked paid"),
        ("void", services.invoice_void, "Void (unpaid only)", "Voided"),
    ]
]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "tenant", "period_start", "status", "total_display", "finalized_at", "paid_at"]
    list_filter = ["status", "period_start"]
    search_fields = ["number", "tenant__name", "bill_to_name"]
    list_select_related = ["tenant"]
    inlines = [InvoiceLineInline]
    actions = [*INVOICE_ACTIONS, "issue_credit_note"]
    readonly_fields = [
        "tenant", "period_start", "status", "number", "currency", "subtotal_display", "tax_rate", "tax_display",
        "total_display", "bill_to_name", "bill_to_address", "bill_to_vat_id", "metered_at", "finalized_at", "paid_at",
        "voided_at", "pdf", "csv",
    ]  # fmt: skip

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="subtotal")
    def subtotal_display(self, obj):
        return obj.subtotal

    @admin.display(description="tax")
    def tax_display(self, obj):
        return obj.tax

    @admin.display(description="total", ordering="total_cents")
    def total_display(self, obj):
        return f"{obj.total} {obj.currency}"

    @admin.action(description="Issue a credit note", permissions=["view"])
    def issue_credit_note(self, request, queryset):
        invoice = queryset.first()
        return HttpResponseRedirect(f"{reverse('admin:billing_creditnote_add')}?invoice={invoice.pk}")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    """Payments through the provider, as its notifications settled them. Read-only: a payment changes only by the
    provider's signed notification. Refunds are not made here: refund at the provider (Stripe's dashboard) and
    issue a credit note or a negative adjustment for it."""

    list_display = [
        "created_at", "tenant", "purpose", "invoice", "amount_display", "status", "provider", "provider_payment_id",
        "completed_at",
    ]  # fmt: skip
    list_filter = ["status", "provider", "purpose"]
    search_fields = ["tenant__name", "provider_payment_id", "invoice__number"]
    list_select_related = ["tenant", "invoice"]
    readonly_fields = [
        "id", "tenant", "purpose", "invoice", "amount_display", "status", "failure_message", "provider",
        "provider_payment_id", "checkout_url", "created_by", "created_at", "completed_at", "ledger_entry_display",
    ]  # fmt: skip
    exclude = ["amount_cents", "currency"]

    @admin.display(description="amount", ordering="amount_cents")
    def amount_display(self, obj):
        return f"{obj.amount} {obj.currency}"

    @admin.display(description="ledger entry")
    def ledger_entry_display(self, obj):
        entry = CreditEntry.objects.filter(payment=obj).first()
        if entry is None:
            return "—"
        url = reverse("admin:billing_creditentry_change", args=[entry.pk])
        return format_html('<a href="{}">{}</a>', url, entry)


class CreditNoteForm(forms.ModelForm):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=2)

    class Meta:
        model = CreditNote
        fields = ["invoice", "reason"]


@admin.register(CreditNote)
class CreditNoteAdmin(ServiceAddMixin, AppendOnlyMixin, admin.ModelAdmin):
    form = CreditNoteForm
    list_display = ["number", "invoice", "tenant", "amount", "reason", "created_at", "created_by"]
    search_fields = ["number", "invoice__number", "tenant__name"]
    list_select_related = ["invoice", "tenant"]
    autocomplete_fields = ["invoice"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.base_fields["invoice"].queryset = Invoice.objects.exclude(status=Invoice.Status.DRAFT)
        return form

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        note = services.credit_note_issue(
            invoice=data["invoice"], amount=data["amount"], reason=data["reason"], actor=request.user
        )
        obj.__dict__.update(note.__dict__)


# --- credit and accounts ---------------------------------------------------------------------------------------


class TopUpForm(forms.ModelForm):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=2)

    class Meta:
        model = CreditEntry
        fields = ["tenant", "description"]


@admin.register(CreditEntry)
class CreditEntryAdmin(ServiceAddMixin, AppendOnlyMixin, admin.ModelAdmin):
    """The ledger is append-only; the add form records a top-up."""

    form = TopUpForm
    list_display = ["created_at", "tenant", "kind", "amount", "description", "created_by"]
    list_filter = ["kind"]
    search_fields = ["tenant__name", "description"]
    list_select_related = ["tenant", "created_by"]
    autocomplete_fields = ["tenant"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        entry = services.credit_topup(
            tenant=data["tenant"], amount=data["amount"], description=data["description"], actor=request.user
        )
        obj.__dict__.update(entry.__dict__)


class BillingAccountForm(forms.ModelForm):
    credit_limit = forms.DecimalField(
        required=False,
        min_value=Decimal("0"),
        max_digits=12,
        decimal_places=2,
        help_text="How far balance minus unbilled spend may go below zero before a hold; empty for no limit.",
    )

    class Meta:
        model = BillingAccount
        fields = ["tenant", "legal_name", "address", "vat_id", "tax_rate"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.credit_limit_cents is not None:
            self.fields["credit_limit"].initial = cents_to_decimal(self.instance.credit_limit_cents)


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    form = BillingAccountForm
    list_display = ["tenant", "tenant_status", "legal_name", "tax_rate", "credit_limit"]
    list_filter = ["tenant__status", "tenant__status_reason"]
    search_fields = ["tenant__name", "legal_name", "vat_id"]
    list_select_related = ["tenant"]
    readonly_fields = []
    autocomplete_fields = ["tenant"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "tenant"] if obj else self.readonly_fields

    @admin.display(description="status", ordering="tenant__status")
    def tenant_status(self, obj):
        return obj.tenant.get_status_display()

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        tenant = obj.tenant
        services.billing_details_update(
            tenant=tenant,
            actor=request.user,
            legal_name=data["legal_name"],
            address=data["address"],
            vat_id=data["vat_id"],
        )
        services.billing_terms_update(
            tenant=tenant, actor=request.user, tax_rate=data["tax_rate"], credit_limit=data.get("credit_limit")
        )
        obj.refresh_from_db()


@admin.register(Budget)
class BudgetAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "amount", "updated_at"]
    search_fields = ["tenant__name"]


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "period_start", "basis", "threshold", "spend_cents", "budget_cents", "created_at"]
    list_filter = ["basis", "threshold", "period_start"]


@admin.register(AccountEvent)
class AccountEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "action", "message", "actor"]
    list_filter = ["action"]
    search_fields = ["tenant__name", "message"]
    list_select_related = ["tenant", "actor"]


# --- the organisation's page: billing details, credit, spend -----------------------------------------------------


LEDGER_SHOWN = 20


class TopUpAmountForm(forms.Form):
    amount = forms.DecimalField(
        label=f"Amount ({settings.BILLING_CURRENCY})", min_value=Decimal("0.01"), max_digits=12, decimal_places=2
    )
    note = forms.CharField(label="Description (e.g. the bank transfer's reference)", max_length=300, required=False)


record_topup = confirmed_service_action(
    lambda tenant, user, confirmation: services.credit_topup(
        tenant=tenant, amount=confirmation["amount"], description=confirmation["note"], actor=user
    ),
    name="record_topup",
    description="Record a credit top-up…",
    title="Record a credit top-up",
    explanation="Credit the organisation received (a payment, a goodwill credit). It is added to its ledger, "
    "shown in its billing log, and lifts a credit hold or suspension it settles.",
    form_class=TopUpAmountForm,
    done_label=lambda confirmation: f"Top-up of {confirmation['amount']} {settings.BILLING_CURRENCY} recorded",
    select=lambda queryset: queryset[:1],
)


def _tenant_admin_with_billing(base):
    class TenantAdmin(base):
        actions = [*base.actions, record_topup]

        def get_readonly_fields(self, request, obj=None):
            return [*super().get_readonly_fields(request, obj), "billing_details", "credit", "spend", "ledger"]

        def get_fieldsets(self, request, obj=None):
            fieldsets = list(super().get_fieldsets(request, obj))
            if obj is None:
                return fieldsets
            return [*fieldsets, ("Billing", {"fields": ["billing_details", "credit", "spend", "ledger"]})]

        @admin.display(description="credit ledger")
        def ledger(self, obj) -> str:
            entries = list(selectors.credit_entries(tenant=obj).select_related("created_by")[:LEDGER_SHOWN])
            return render_to_string("admin/billing/credit_ledger.html", {"entries": entries, "tenant": obj})

        @admin.display(description="billing details")
        def billing_details(self, obj) -> str:
            account = selectors.billing_account(tenant=obj)
            currency = settings.BILLING_CURRENCY
            limit = "no limit" if account.credit_limit_cents is None else f"{account.credit_limit} {currency}"
            if account._state.adding:
                edit = reverse("admin:billing_billingaccount_add") + f"?tenant={obj.pk}"
            else:
                edit = reverse("admin:billing_billingaccount_change", args=[obj.pk])
            return format_html(
                '{}<br>{}<br>VAT id {} · tax {} % · credit limit {} · <a href="{}">edit</a>',
                account.legal_name or obj.name,
                account.address or "(no address)",
                account.vat_id or "—",
                account.tax_rate,
                limit,
                edit,
            )

        @admin.display(description="credit balance")
        def credit(self, obj) -> str:
            return f"{selectors.credit_balance(tenant=obj)} {settings.BILLING_CURRENCY}"

        @admin.display(description="spend this month")
        def spend(self, obj) -> str:
            usage = selectors.tenant_month_usage(tenant=obj)
            return f"{usage.cost} {settings.BILLING_CURRENCY} so far, {usage.forecast} forecast to the month's end"

    return TenantAdmin


extend_registered(Tenant, _tenant_admin_with_billing)
