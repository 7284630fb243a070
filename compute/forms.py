"""Dashboard forms for instances and SSH keys: they check shape and ownership; the services decide the rest."""

import uuid

from django import forms
from django.core.exceptions import ValidationError

from compute.models import validate_instance_name
from compute.network.cloudinit import clean_user_data
from compute.network.selectors import firewall_list, network_list
from compute.rules import image_fit_refusal
from compute.selectors import flavor_list, image_list, region_list, sshkey_list
from compute.sshkeys import parse_public_key
from portal.errors import ServiceError
from tenants.models import Tenant

NAME_HELP = "Letters, digits and hyphens, up to 63 characters; it becomes the machine's hostname."


def uuid_list(value) -> list[str]:
    """`value` as a one-element list if it is a UUID, else empty: for ids a query string or a form names (anyone's to
    write), so a malformed one reads as "none of yours"."""
    try:
        return [str(uuid.UUID(str(value)))]
    except ValueError:
        return []


def add_service_error(form: forms.Form, error: ServiceError) -> None:
    """Puts a service's refusal on the field it names (details["field"]), or on the form as a whole."""
    field = error.details.get("field")
    form.add_error(field if field in form.fields else None, error.message)


class InstanceNameField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Name")
        kwargs.setdefault("help_text", NAME_HELP)
        super().__init__(max_length=63, validators=[validate_instance_name], **kwargs)
        self.error_messages["max_length"] = "The name is too long: at most 63 characters."

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        # Browsers check the hostname rule as the user types; the server checks it again.
        attrs.update(
            {"pattern": "[A-Za-z0-9]([A-Za-z0-9\\-]{0,61}[A-Za-z0-9])?", "autocomplete": "off", "spellcheck": "false"}
        )
        return attrs


class CatalogChoiceField(forms.ModelChoiceField):
    """A flavor or image by id; an id that is not even a UUID gets the same message as an unknown one."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError as error:
            if error.code == "invalid_choice":
                raise
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice") from None


class OwnedChoicesField(forms.ModelMultipleChoiceField):
    """The tenant's SSH keys, networks or firewalls by id; a malformed id gets the same message as another tenant's."""

    def _check_values(self, value):
        try:
            return super()._check_values(value)
        except ValidationError as error:
            if error.code in ("invalid_choice", "invalid_pk_value", "invalid_list"):
                raise
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice") from None


class LaunchForm(forms.Form):
    name = InstanceNameField()
    region = CatalogChoiceField(
        queryset=None,
        to_field_name="name",
        required=False,  # left out: the default region
        label="Region",
        error_messages={"invalid_choice": "That region does not exist; pick another."},
    )
    flavor = CatalogChoiceField(
        queryset=None,
        label="Size",
        error_messages={"required": "Choose a size.", "invalid_choice": "That size is not available; pick another."},
    )
    image = CatalogChoiceField(
        queryset=None,
        label="Image",
        error_messages={"required": "Choose an image.", "invalid_choice": "That image is not available; pick another."},
    )
    keys = OwnedChoicesField(
        queryset=None,
        required=False,
        label="SSH keys",
        error_messages={
            "invalid_choice": "One of the SSH keys is not one of yours.",
            "invalid_pk_value": "One of the SSH keys is not one of yours.",
        },
    )
    networks = OwnedChoicesField(
        queryset=None,
        required=False,
        label="Networks",
        error_messages={
            "invalid_choice": "One of the networks is not one of yours.",
            "invalid_pk_value": "One of the networks is not one of yours.",
        },
    )
    firewalls = OwnedChoicesField(
        queryset=None,
        required=False,
        label="Firewalls",
        error_messages={
            "invalid_choice": "One of the firewalls is not one of yours.",
            "invalid_pk_value": "One of the firewalls is not one of yours.",
        },
    )
    public_ip = forms.BooleanField(required=False, label="Assign a new public IPv4 address")
    user_data = forms.CharField(
        required=False,
        label="User-data (cloud-init)",
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 6, "spellcheck": "false", "placeholder": "#cloud-config\npackages:\n  - nginx"}
        ),
        help_text="Optional, run on the first boot: a #cloud-config document, or a script starting with #! (at most "
        "32 KiB).",
    )

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = region_list()
        self.fields["region"].initial = getattr(region_list().default(), "name", None)
        self.fields["flavor"].queryset = flavor_list()
        self.fields["image"].queryset = image_list(tenant=tenant)
        self.fields["keys"].queryset = sshkey_list(tenant=tenant)
        self.fields["networks"].queryset = network_list(tenant=tenant)
        self.fields["firewalls"].queryset = firewall_list(tenant=tenant)

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("region") and "region" not in self.errors:
            cleaned["region"] = region_list().default()
        flavor, image, region = cleaned.get("flavor"), cleaned.get("image"), cleaned.get("region")
        if flavor is not None and image is not None:
            refusal = image_fit_refusal(image=image, flavor=flavor)
            if refusal is not None:
                self.add_error("flavor", refusal.message)
        if image is not None and region is not None and not image.available_in(region):
            self.add_error("image", f"{image.name} is not available in {region.label}; pick another image or region.")
        if "user_data" in cleaned:
            try:
                cleaned["user_data"] = clean_user_data(cleaned["user_data"])
            except ServiceError as error:
                self.add_error("user_data", error.message)
        return cleaned


class SSHKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="e.g. the laptop it lives on.")
    public_key = forms.CharField(
        label="Public key",
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "ssh-ed25519 AAAA… you@laptop", "spellcheck": "false"}),
        help_text="The contents of your .pub file: ed25519 (recommended), ECDSA, or RSA of at least 2048 bits.",
    )

    def clean_public_key(self) -> str:
        text = self.cleaned_data["public_key"]
        try:
            parse_public_key(text)
        except ValidationError as error:
            raise forms.ValidationError(error.messages[0]) from None
        return text


class RenameForm(forms.Form):
    name = InstanceNameField(label="New name")


class ResizeForm(forms.Form):
    flavor = CatalogChoiceField(
        queryset=None,
        label="New size",
        error_messages={"required": "Choose a size.", "invalid_choice": "That size is not available; pick another."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["flavor"].queryset = flavor_list()


class DeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the instance's name to confirm", max_length=200)
    # Offered only to a machine with backups: left out (or "keep"), they are kept.
    backups = forms.ChoiceField(
        choices=[("keep", "Keep its backups"), ("delete", "Delete its backups too")], required=False
    )

    def __init__(self, *args, instance, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance = instance

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"].strip()
        if typed != self.instance.name:
            raise forms.ValidationError(f"Type {self.instance.name} exactly to confirm the deletion.")
        return typed
