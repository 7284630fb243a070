"""The Billing section of the dashboard: owners and billing members only (others get 403 and no nav item)."""

import calendar

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.views.generic import DetailView, FormView, ListView, TemplateView

from billing import services
from billing.charts import daily_bars
from billing.documents import invoice_context, invoice_csv, invoice_pdf
from billing.forms import BillingDetailsForm, BudgetForm
from billing.models import CreditEntry, Invoice
from billing.pricing import cents_to_decimal, month_start
from billing.selectors import (
    account_events,
    billing_account,
    budget_alerts,
    credit_balance,
    tenant_budget,
    tenant_invoices,
    tenant_month_usage,
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
            balance=credit_balance(tenant=tenant), account=account, events=account_events(tenant=tenant)[:20]
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
