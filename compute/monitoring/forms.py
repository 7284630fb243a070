from django import forms

from compute.monitoring.models import Comparison, Metric
from portal.errors import ServiceError


class AlertPolicyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Shown in e-mails and webhooks.")
    metric = forms.ChoiceField(choices=Metric.choices)
    comparison = forms.ChoiceField(choices=Comparison.choices, initial=Comparison.ABOVE, label="When it is")
    threshold = forms.FloatField(min_value=0, help_text="CPU in percent; disk and network in bytes per second.")
    duration_minutes = forms.IntegerField(
        min_value=1, max_value=1440, initial=5, label="For (minutes)", help_text="Every minute of it, 1 to 1440."
    )
    instance = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Every machine of the organisation", label="Machine"
    )
    label_selector = forms.CharField(
        required=False,
        max_length=127,
        label="…or the machines with the label",
        help_text="key=value or key; with “Every machine” above. Machines gaining the label are watched at once.",
        widget=forms.TextInput(attrs={"placeholder": "team=web"}),
    )
    notify_email = forms.BooleanField(required=False, initial=True, label="E-mail the owners and admins")
    webhook_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Webhook URL",
        help_text="Optional. Receives a signed JSON POST when the alert fires and when it recovers.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, instances, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["instance"].queryset = instances


def add_policy_errors(form: forms.Form, error: ServiceError) -> None:
    """The service names the fields it refuses in `details`; anything else goes on the form."""
    placed = False
    for field, message in error.details.items():
        if field in form.fields:
            form.add_error(field, message)
            placed = True
    if not placed:
        form.add_error(None, error.message)
