"""Forms of the Billing dashboard."""

from decimal import Decimal

from django import forms

from billing.models import BillingAccount


class BudgetForm(forms.Form):
    amount = forms.DecimalField(
        label="Monthly budget",
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        help_text="Alerts at 50, 80 and 100 % of actual and of forecast month-end spend (before tax).",
    )


class BillingDetailsForm(forms.ModelForm):
    class Meta:
        model = BillingAccount
        fields = ["legal_name", "address", "vat_id"]
        widgets = {"address": forms.Textarea(attrs={"rows": 3})}
