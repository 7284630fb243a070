"""The Billing section of the dashboard: owners and billing members only (others get 403 and no nav item)."""

import calendar
import contextlib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.generic import DetailView, FormView, ListView, TemplateView

from billing import services
from billing.charts import daily_bars
from billing.documents import invoice_context, invoice_csv, invoice_pdf
from billing.forms import BillingDetailsForm, BudgetForm, CardForm, TopUpForm
from billing.models import CreditEntry, Invoice, Payment
from billing.payments import payments_enabled, testmode
from billing.pricing import cents_to_decimal, month_start
from billing.selectors import (
    account_events,
    billing_account,
    budget_alerts,
    credit_balance,
    tenant_budget,
    tenant_invoices,
    tenant_month_usage,
    tenant_payments,
)
from portal.errors import ServiceError
from tenants.roles import Permission
from tenants.scoping import TenantScopedMixin


class BillingViewMixin(TenantScopedMixin):
    view_permission = Permission.VIEW_BILLING
    change_permission = Permission.MANAGE_BILLING


class OverviewView(BillingViewMixin, TemplateView):
    template_name = "billing/overview.html"

    def get_context_data(self, **kwargs):
        tenant = self.request.tenant
        now = timezone.now()
        usage = tenant_month_usage(tenant=tenant, as_of=now)
        budget = tenant_budget(tenant=tenant)
        days = calendar.monthrange(now.year, now.month)[1]
        context = super().get_context_data(**kwargs)
        context.update(
            usage=usage,
            chart=daily_bars(usage.daily_cents, days),
            balance=credit_balance(tenant=tenant),
            account=billing_account(tenant=tenant),
            budget=budget,
            budget_percent=(usage.cost_cents * 100 / budget.amount_cents) if budget else None,
            forecast_percent=(usage.forecast_cents * 100 / budget.amount_cents) if budget else None,
            alerts=budget_alerts(tenant=tenant, period_start=month_start(now)),
            invoices=tenant_invoices(tenant=tenant)[:3],
            events=account_events(tenant=tenant)[:8],
            payments=tenant_payments(tenant=tenant)[:5],
            payments_enabled=payments_enabled(),
            currency=settings.BILLING_CURRENCY,
        )
        return context


class InvoiceListView(BillingViewMixin, ListView):
    model = Invoice
    template_name = "billing/invoice_list.html"
    context_object_name = "invoices"
    paginate_by = 24

    def get_queryset(self):
        return super().get_queryset().order_by("-period_start")


class InvoiceDetailView(BillingViewMixin, DetailView):
    model = Invoice
    template_name = "billing/invoice_detail.html"
    context_object_name = "invoice"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(invoice_context(invoice=self.object))
        context.update(
            payments=tenant_payments(tenant=self.request.tenant).filter(invoice=self.object),
            payments_enabled=payments_enabled(),
        )
        return context


def _filename(invoice: Invoice, extension: str) -> str:
    return f"{invoice.number or f'draft-{invoice.period_start:%Y-%m}'}.{extension}"


class InvoicePdfView(BillingViewMixin, DetailView):
    """Issued invoices serve the stored PDF (rendering it now if the worker has not yet); drafts render live."""

    model = Invoice

    def get(self, request, *args, **kwargs):
        invoice = self.get_object()
        if invoice.status != Invoice.Status.DRAFT:
            if not invoice.pdf:
                invoice = services.invoice_render_documents(invoice=invoice)
            try:
                return FileResponse(invoice.pdf.open("rb"), as_attachment=True, filename=_filename(invoice, "pdf"))
            except OSError:
                pass  # the stored file is gone (storage moved or wiped): the frozen invoice renders the same again
        response = HttpResponse(invoice_pdf(invoice=invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{_filename(invoice, "pdf")}"'
        return response


class InvoiceCsvView(BillingViewMixin, DetailView):
    model = Invoice

    def get(self, request, *args, **kwargs):
        invoice = self.get_object()
        if invoice.status != Invoice.Status.DRAFT and invoice.csv:
            try:
                return FileResponse(invoice.csv.open("rb"), as_attachment=True, filename=_filename(invoice, "csv"))
            except OSError:
                pass  # the stored file is gone: the frozen invoice renders the same again
        response = HttpResponse(invoice_csv(invoice=invoice), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{_filename(invoice, "csv")}"'
        return response


class CreditsView(BillingViewMixin, ListView):
    model = CreditEntry
    template_name = "billing/credits.html"
    context_object_name = "entries"
    paginate_by = 50

    def get_queryset(self):
        return (
            super().get_queryset().select_related("invoice", "credit_note", "created_by").order_by("-created_at", "-id")
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant = self.request.tenant
        account = billing_account(tenant=tenant)
        context.update(
            balance=credit_balance(tenant=tenant),
            account=account,
            events=account_events(tenant=tenant)[:20],
            payments_enabled=payments_enabled(),
        )
        return context


class BudgetView(BillingViewMixin, FormView):
    template_name = "billing/budget.html"
    form_class = BudgetForm

    def get_initial(self):
        budget = tenant_budget(tenant=self.request.tenant)
        return {"amount": budget.amount} if budget else {}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["budget"] = tenant_budget(tenant=self.request.tenant)
        return context

    def post(self, request, *args, **kwargs):
        if request.POST.get("remove"):
            services.budget_set(tenant=request.tenant, actor=request.user, amount=None)
            messages.success(request, "Budget removed.")
            return HttpResponseRedirect(reverse("billing:budget"))
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            services.budget_set(tenant=self.request.tenant, actor=self.request.user, amount=form.cleaned_data["amount"])
        except ServiceError as error:
            form.add_error("amount", error.message)
            return self.form_invalid(form)
        services.budget_check(tenant=self.request.tenant)
        messages.success(self.request, "Budget saved.")
        return HttpResponseRedirect(reverse("billing:budget"))


class BillingDetailsView(BillingViewMixin, FormView):
    template_name = "billing/details.html"
    form_class = BillingDetailsForm

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["instance"] = billing_account(tenant=self.request.tenant)
        return kwargs

    def form_valid(self, form):
        services.billing_details_update(tenant=self.request.tenant, actor=self.request.user, **form.cleaned_data)
        messages.success(self.request, "Billing details saved; they appear on invoices issued from now on.")
        return HttpResponseRedirect(reverse("billing:details"))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        account = billing_account(tenant=self.request.tenant)
        context["account"] = account
        context["credit_limit"] = (
            None if account.credit_limit_cents is None else cents_to_decimal(account.credit_limit_cents)
        )
        return context


class PaymentListView(BillingViewMixin, ListView):
    """Payment history: every top-up and invoice payment, paid, failed or still open."""

    model = Payment
    template_name = "billing/payment_list.html"
    context_object_name = "payments"
    paginate_by = 50

    def get_queryset(self):
        return super().get_queryset().select_related("invoice", "created_by").order_by("-created_at", "id")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["payments_enabled"] = payments_enabled()
        return context


class PaymentDetailView(BillingViewMixin, DetailView):
    """Where a checkout sends the customer back: the payment's state, refreshed until the provider has spoken."""

    model = Payment
    template_name = "billing/payment_detail.html"
    context_object_name = "payment"

    def get_queryset(self):
        return super().get_queryset().select_related("invoice", "created_by")

    def get_template_names(self):
        if self.request.htmx:
            return ["billing/_payment_status.html"]
        return [self.template_name]


class TopUpView(BillingViewMixin, FormView):
    """Add credit: an amount, then the provider's checkout."""

    template_name = "billing/topup.html"
    form_class = TopUpForm
    change_permission = Permission.MANAGE_BILLING

    def get_form_kwargs(self):
        return {
            **super().get_form_kwargs(),
            "currency": settings.BILLING_CURRENCY,
            "minimum": settings.PAYMENTS_TOPUP_MIN,
            "maximum": settings.PAYMENTS_TOPUP_MAX,
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            balance=credit_balance(tenant=self.request.tenant),
            payments_enabled=payments_enabled(),
            test_mode=settings.PAYMENTS_PROVIDER == "test",
        )
        return context

    def form_valid(self, form):
        try:
            payment = services.payment_topup_start(
                tenant=self.request.tenant, user=self.request.user, amount=form.cleaned_data["amount"]
            )
        except ServiceError as error:
            form.add_error(None, error.message)
            return self.form_invalid(form)
        return HttpResponseRedirect(payment.checkout_url)


class InvoicePayView(BillingViewMixin, DetailView):
    """Pay an issued invoice: straight to the provider's checkout for its total."""

    model = Invoice
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        invoice = self.get_object()
        try:
            payment = services.payment_invoice_start(invoice=invoice, user=request.user)
        except ServiceError as error:
            messages.error(request, error.message)
            return HttpResponseRedirect(reverse("billing:invoice-detail", args=[invoice.pk]))
        return HttpResponseRedirect(payment.checkout_url)


# --- The test provider's hosted pages (public: the signed token in the URL is the key, as at a provider) --------


class _TestCheckoutMixin:
    def dispatch(self, request, *args, **kwargs):
        payment_id = testmode.payment_id_from_token(kwargs["token"])
        self.payment = payment_id and Payment.objects.select_related("tenant", "invoice").filter(pk=payment_id).first()
        if not self.payment or self.payment.provider != Payment.Provider.TEST:
            raise Http404("This checkout link is not valid (or has expired).")
        return super().dispatch(request, *args, **kwargs)

    def back(self):
        return HttpResponseRedirect(settings.SITE_URL + reverse("billing:payment-detail", args=[self.payment.pk]))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            payment=self.payment, token=self.kwargs["token"], cards=TEST_CARDS, merchant=settings.BILLING_PROVIDER_NAME
        )
        return context


TEST_CARDS = [
    ("4242 4242 4242 4242", "paid"),
    ("4000 0000 0000 3220", "asks for a 3-D Secure confirmation"),
    ("4000 0000 0000 0002", "declined"),
    ("4000 0000 0000 9995", "declined: insufficient funds"),
]


@method_decorator([login_not_required, never_cache], name="dispatch")
class TestCheckoutView(_TestCheckoutMixin, FormView):
    template_name = "billing/test_checkout.html"
    form_class = CardForm

    def get(self, request, *args, **kwargs):
        if self.payment.status == Payment.Status.REQUIRES_ACTION:
            return HttpResponseRedirect(reverse("billing:test-confirm", args=[kwargs["token"]]))
        if not self.payment.is_open:
            return self.back()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        if request.POST.get("cancel"):
            services.payment_card_cancel(payment=self.payment)
            return self.back()
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            result = services.payment_card_submit(payment=self.payment, **form.cleaned_data)
        except ServiceError as error:
            for field, message in error.details.items():
                form.add_error(field if field in form.fields else None, message)
            if not error.details:
                form.add_error(None, error.message)
            return self.form_invalid(form)
        if result.outcome == testmode.CardResult.CONFIRM:
            return HttpResponseRedirect(reverse("billing:test-confirm", args=[self.kwargs["token"]]))
        return self.back()


@method_decorator([login_not_required, never_cache], name="dispatch")
class TestConfirmView(_TestCheckoutMixin, TemplateView):
    """The simulated issuer's 3-D Secure page: approve or deny."""

    template_name = "billing/test_confirm.html"

    def get(self, request, *args, **kwargs):
        if self.payment.status != Payment.Status.REQUIRES_ACTION:
            return self.back()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        # Answered already (a second tab, a double click): the payment page shows the outcome.
        with contextlib.suppress(ServiceError):
            services.payment_card_confirm(payment=self.payment, approve=request.POST.get("decision") == "approve")
        return self.back()


@csrf_exempt
@login_not_required
@require_POST
def payment_webhook(request, provider: str):
    """Where providers post their signed notifications; answers 200 once applied (or already applied), 400 for a
    notification that does not verify (the provider retries until it gets a 2xx)."""
    if provider not in Payment.Provider.values:
        raise Http404("No such payment provider.")
    try:
        services.payment_notification_receive(provider=provider, body=request.body, headers=request.headers)
    except ServiceError as error:
        return JsonResponse({"error": {"code": error.code, "message": error.message, "details": {}}}, status=400)
    return JsonResponse({"received": True})
