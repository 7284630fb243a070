from rest_framework import serializers

from billing.models import Invoice, InvoiceLine, Payment

MONEY = {"max_digits": 14, "decimal_places": 2, "read_only": True}


class InvoiceLineSerializer(serializers.ModelSerializer):
    amount = serializers.DecimalField(**MONEY)

    class Meta:
        model = InvoiceLine
        fields = [
            "resource_type",
            "resource_id",
            "resource_name",
            "plan_name",
            "quantity",
            "period_from",
            "period_to",
            "hours",
            "hourly_rate",
            "monthly_price",
            "amount",
        ]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    number = serializers.CharField(read_only=True, allow_null=True, help_text="Null while the invoice is a draft.")
    subtotal = serializers.DecimalField(**MONEY)
    tax = serializers.DecimalField(**MONEY)
    total = serializers.DecimalField(**MONEY)
    pdf_url = serializers.SerializerMethodField()
    csv_url = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "period_start",
            "currency",
            "subtotal",
            "tax_rate",
            "tax",
            "total",
            "created_at",
            "finalized_at",
            "paid_at",
            "voided_at",
            "pdf_url",
            "csv_url",
        ]
        read_only_fields = fields

    def _url(self, invoice, kind: str) -> str:
        request = self.context.get("request")
        path = f"/api/v1/invoices/{invoice.pk}/{kind}/"
        return request.build_absolute_uri(path) if request is not None else path

    def get_pdf_url(self, invoice) -> str:
        return self._url(invoice, "pdf")

    def get_csv_url(self, invoice) -> str:
        return self._url(invoice, "csv")


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "lines"]
        read_only_fields = fields


class ResourceUsageSerializer(serializers.Serializer):
    resource_type = serializers.CharField()
    resource_id = serializers.UUIDField()
    resource_name = serializers.CharField()
    plans = serializers.ListField(child=serializers.CharField())
    hours = serializers.IntegerField(help_text="Started hours this month.")
    cost = serializers.DecimalField(**MONEY)
    forecast = serializers.DecimalField(**MONEY, help_text="Cost by the month's end if it keeps running.")
    running = serializers.BooleanField(help_text="Still billed now.")


class TypeCostSerializer(serializers.Serializer):
    resource_type = serializers.CharField()
    cost = serializers.DecimalField(**MONEY)


class TrafficSerializer(serializers.Serializer):
    sent_bytes = serializers.IntegerField(help_text="Outbound bytes of all your machines this month.")
    allowance_bytes = serializers.IntegerField(
        help_text="What your machines include so far: each flavor's allowance, pro rata by hours, pooled."
    )
    billable_gb = serializers.IntegerField(help_text="Started GB above the allowance.")
    price_per_gb = serializers.DecimalField(max_digits=12, decimal_places=4, read_only=True)
    cost = serializers.DecimalField(**MONEY)


class UsageSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    as_of = serializers.DateTimeField()
    currency = serializers.CharField()
    cost = serializers.DecimalField(**MONEY, help_text="Month to date.")
    forecast = serializers.DecimalField(**MONEY, help_text="Month-end estimate.")
    resources = ResourceUsageSerializer(many=True)
    by_type = TypeCostSerializer(many=True)
    traffic = TrafficSerializer(help_text="Outbound traffic against the pooled allowance (included in `cost`).")


class PaymentSerializer(serializers.ModelSerializer):
    amount = serializers.DecimalField(**MONEY)
    invoice = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True, help_text="Invoice payments only.")
    invoice_number = serializers.CharField(source="invoice.number", read_only=True, allow_null=True, default=None)
    checkout_url = serializers.SerializerMethodField(
        help_text="Where to pay while the payment is open (send the customer's browser there); null once settled."
    )

    class Meta:
        model = Payment
        fields = [
            "id",
            "purpose",
            "status",
            "amount",
            "currency",
            "invoice",
            "invoice_number",
            "provider",
            "provider_payment_id",
            "checkout_url",
            "failure_message",
            "created_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_checkout_url(self, payment) -> str | None:
        return payment.checkout_url if payment.is_open and payment.checkout_url else None


class PaymentCreateSerializer(serializers.Serializer):
    """A top-up (`amount`) or the payment of an issued invoice (`invoice`): exactly one of the two."""

    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, required=False, help_text="Credit to add, in the deployment's currency."
    )
    invoice = serializers.UUIDField(required=False, help_text="An issued invoice awaiting payment.")

    def validate(self, attrs):
        if ("amount" in attrs) == ("invoice" in attrs):
            raise serializers.ValidationError({"non_field_errors": ["Give either `amount` (a top-up) or `invoice`."]})
        if "invoice" in attrs:
            invoice = Invoice.objects.for_tenant(self.context["tenant"]).filter(pk=attrs["invoice"]).first()
            if invoice is None:
                raise serializers.ValidationError({"invoice": ["No such invoice."]})
            attrs["invoice"] = invoice
        return attrs
