"""Forms of the Billing dashboard."""

from decimal import Decimal

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

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


class TopUpForm(forms.Form):
    amount = forms.DecimalField(label="Amount", max_digits=12, decimal_places=2)

    def __init__(self, *args, currency: str, minimum: int, maximum: int, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["amount"]
        field.validators += [MinValueValidator(Decimal(minimum)), MaxValueValidator(Decimal(maximum))]
        field.label = f"Amount ({currency})"
        field.help_text = f"Between {minimum} and {maximum} {currency}. Credit is added as soon as the payment clears."
        field.widget.attrs.update(min=minimum, max=maximum, step="0.01", inputmode="decimal")


class CardForm(forms.Form):
    """The test provider's card form (its own page, like a provider's hosted checkout)."""

    number = forms.CharField(
        label="Card number",
        max_length=23,
        widget=forms.TextInput(
            attrs={"autocomplete": "cc-number", "inputmode": "numeric", "placeholder": "4242 4242 4242 4242"}
        ),
    )
    expiry = forms.CharField(
        label="Expiry (MM/YY)",
        max_length=7,
        widget=forms.TextInput(attrs={"autocomplete": "cc-exp", "placeholder": "12/30"}),
    )
    cvc = forms.CharField(
        label="CVC",
        max_length=4,
        widget=forms.TextInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric", "placeholder": "123"}),
    )
