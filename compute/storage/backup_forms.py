"""Dashboard forms for backups, boot-disk snapshots and private images: shape only; the services decide the rest."""

from django import forms

from compute.forms import CatalogChoiceField, InstanceNameField
from compute.selectors import flavor_list

HOURS = [(hour, f"{hour:02d}:00 UTC") for hour in range(24)]


class BackupPolicyForm(forms.Form):
    enabled = forms.BooleanField(required=False)
    hour = forms.TypedChoiceField(choices=HOURS, coerce=int, initial=3, label="Every day at")
    delete_backups = forms.BooleanField(required=False, label="Delete the backups made so far too")


class RestoreNewForm(forms.Form):
    name = InstanceNameField(label="New machine's name")
    flavor = CatalogChoiceField(
        queryset=None,
        required=False,
        label="Size",
        error_messages={"invalid_choice": "That size is not available; pick another."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["flavor"].queryset = flavor_list()


class RestoreOverwriteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the machine's name to confirm", max_length=200)


class NameForm(forms.Form):
    """A boot-disk snapshot's or a private image's name."""

    name = forms.CharField(label="Name", max_length=100)
