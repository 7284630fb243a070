"""Billing endpoints: month-to-date usage and invoices with their PDF and CSV (owners and billing members)."""

import json

import django_filters
from django.conf import settings
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, renderers
from rest_framework.decorators import action
from rest_framework.response import Response

from billing import services
from billing.api import serializers as s
from billing.documents import invoice_csv, invoice_pdf
from billing.models import Invoice, Payment
from billing.pricing import cents_to_decimal
from billing.selectors import tenant_month_usage
from portal.api.filters import StableOrderingFilter, StrictFilterSet
from portal.api.views import TenantApiView, TenantViewSet
from tenants.roles import Permission


class _DocumentRenderer(renderers.BaseRenderer):
    """Lets a client ask for the document's type in Accept; errors on these URLs still render as JSON text."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes | str):
            return data
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return json.dumps(data).encode()


class PdfRenderer(_DocumentRenderer):
    media_type = "application/pdf"
    format = "pdf"


class CsvRenderer(_DocumentRenderer):
    media_type = "text/csv"
    format = "csv"


def _filename(invoice: Invoice, extension: str) -> str:
    return f"{invoice.number or f'draft-{invoice.period_start:%Y-%m}'}.{extension}"


class BillingPermissions:
    view_permission = Permission.VIEW_BILLING
    change_permission = Permission.MANAGE_BILLING


class InvoiceFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Invoice.Status.choices)
    period_from = django_filters.DateFilter(field_name="period_start", lookup_expr="gte", help_text="YYYY-MM-DD")
    period_to = django_filters.DateFilter(field_name="period_start", lookup_expr="lte", help_text="YYYY-MM-DD")
    ordering = StableOrderingFilter(fields=(("period_start", "period"), ("total_cents", "total")))

    class Meta:
        model = Invoice
        fields = ["status"]


@extend_schema_view(
    list=extend_schema(summary="List invoices, newest month first", tags=["billing"]),
    retrieve=extend_schema(summary="One invoice with its lines", tags=["billing"]),
)
class InvoiceViewSet(BillingPermissions, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    queryset = Invoice.objects.order_by("-period_start", "id")
    filterset_class = InvoiceFilter

    def get_serializer_class(self):
        return s.InvoiceDetailSerializer if self.action == "retrieve" else s.InvoiceSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.prefetch_related("lines") if self.action == "retrieve" else queryset

    def filter_queryset(self, queryset):
        return super().filter_queryset(queryset) if self.action in ("list", None) else queryset

    @extend_schema(
        summary="Download an invoice as PDF",
        tags=["billing"],
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF.")},
        filters=False,
    )
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, PdfRenderer], filterset_class=None)
    def pdf(self, request, pk=None):
        invoice = self.get_object()
        if invoice.status != Invoice.Status.DRAFT:
            if not invoice.pdf:
                invoice = services.invoice_render_documents(invoice=invoice)
            return FileResponse(
                invoice.pdf.open("rb"),
                as_attachment=True,
                filename=_filename(invoice, "pdf"),
                content_type="application/pdf",
            )
        response = HttpResponse(invoice_pdf(invoice=invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{_filename(invoice, "pdf")}"'
        return response

    @extend_schema(
        summary="Download an invoice's lines as CSV",
        tags=["billing"],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row per line, then totals.")},
        filters=False,
    )
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, CsvRenderer], filterset_class=None)
    def csv(self, request, pk=None):
        invoice = self.get_object()
        if invoice.status != Invoice.Status.DRAFT and invoice.csv:
            return FileResponse(
                invoice.csv.open("rb"), as_attachment=True, filename=_filename(invoice, "csv"), content_type="text/csv"
            )
        response = HttpResponse(invoice_csv(invoice=invoice), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{_filename(invoice, "csv")}"'
        return response


class PaymentFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Payment.Status.choices)
    purpose = django_filters.ChoiceFilter(choices=Payment.Purpose.choices)
    ordering = StableOrderingFilter(fields=(("created_at", "created"), ("amount_cents", "amount")))

    class Meta:
        model = Payment
        fields = ["status", "purpose"]


EXAMPLE_PAYMENT = {
    "id": "0b7e8c0e-2d7c-4f55-9a0e-4c1c3f1e2a10",
    "purpose": "topup",
    "status": "pending",
    "amount": "50.00",
    "currency": "EUR",
    "invoice": None,
    "invoice_number": None,
    "provider": "stripe",
    "provider_payment_id": "cs_test_a1b2c3",
    "checkout_url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
    "failure_message": "",
    "created_at": "2026-11-25T12:00:00Z",
    "completed_at": None,
}


@extend_schema_view(
    list=extend_schema(summary="List payments (top-ups and invoice payments), newest first", tags=["billing"]),
    retrieve=extend_schema(summary="One payment", tags=["billing"]),
)
class PaymentViewSet(BillingPermissions, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    queryset = Payment.objects.select_related("invoice").order_by("-created_at", "id")
    serializer_class = s.PaymentSerializer
    filterset_class = PaymentFilter

    @extend_schema(
        summary="Start a payment: a credit top-up or an issued invoice",
        description="Returns the payment, `pending`, with the `checkout_url` to send the customer's browser to. It "
        "is settled only by the provider's signed notification: poll the payment (or the credit balance) until its "
        "`status` is `succeeded` or `failed`. Top-ups are between PAYMENTS_TOPUP_MIN and PAYMENTS_TOPUP_MAX.",
        tags=["billing"],
        request=s.PaymentCreateSerializer,
        responses={201: s.PaymentSerializer},
        examples=[
            OpenApiExample("top-up", request_only=True, value={"amount": "50.00"}),
            OpenApiExample("invoice", request_only=True, value={"invoice": "5d0f3f1e-8a4b-4c47-9a53-1f3d2c7b9e10"}),
            OpenApiExample("started", response_only=True, status_codes=["201"], value=EXAMPLE_PAYMENT),
        ],
    )
    def create(self, request):
        data = self.validated(s.PaymentCreateSerializer, request.data)
        if "invoice" in data:
            payment = services.payment_invoice_start(invoice=data["invoice"], user=request.user)
        else:
            payment = services.payment_topup_start(tenant=request.tenant, user=request.user, amount=data["amount"])
        return self.created(payment, s.PaymentSerializer, context=self.get_serializer_context())


class UsageView(BillingPermissions, TenantApiView):
    """What this month has cost so far, per resource, and the month-end forecast."""

    serializer_class = s.UsageSerializer

    @extend_schema(
        operation_id="usage_retrieve",
        summary="Month-to-date usage and forecast",
        tags=["billing"],
        examples=[
            OpenApiExample(
                "usage",
                value={
                    "period_start": "2026-11-01",
                    "as_of": "2026-11-25T12:00:00Z",
                    "currency": "EUR",
                    "cost": "10.71",
                    "forecast": "12.00",
                    "resources": [
                        {
                            "resource_type": "instance",
                            "resource_id": "5d0f3f1e-8a4b-4c47-9a53-1f3d2c7b9e10",
                            "resource_name": "web-1",
                            "plans": ["s.small"],
                            "hours": 600,
                            "cost": "10.71",
                            "forecast": "12.00",
                            "running": True,
                        }
                    ],
                    "by_type": [{"resource_type": "instance", "cost": "10.71"}],
                    "traffic": {
                        "sent_bytes": 41200000000,
                        "allowance_bytes": 892857142857,
                        "billable_gb": 0,
                        "price_per_gb": "0.0100",
                        "cost": "0.00",
                    },
                },
            )
        ],
    )
    def get(self, request):
        usage = tenant_month_usage(tenant=request.tenant)
        data = {
            "period_start": usage.period_start,
            "as_of": usage.as_of,
            "currency": settings.BILLING_CURRENCY,
            "cost": usage.cost,
            "forecast": usage.forecast,
            "resources": usage.resources,
            "by_type": [{"resource_type": kind, "cost": cents_to_decimal(cents)} for kind, cents in usage.by_type],
            "traffic": usage.traffic,
        }
        return Response(s.UsageSerializer(data).data)
