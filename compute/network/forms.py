"""Dashboard forms for networking: they check shape and ownership; the services decide the rest."""

from django import forms

from compute.forms import OwnedChoicesField
from compute.models import Region
from compute.network.rulesets import ANYWHERE, DIRECTIONS, PROTOCOLS, RuleInput, parse_ports, rule_errors
from compute.network.selectors import assignable_instances, firewall_list
from compute.selectors import region_list
from tenants.models import Tenant

NAME_HELP = "Letters, digits, spaces, dots, hyphens and underscores, up to 63 characters."


class RegionField(forms.ModelChoiceField):
    """A region by name; only offered where there is more than one (RegionChoiceMixin)."""

    def __init__(self, **kwargs):
        super().__init__(
            queryset=Region.objects.none(),
            to_field_name="name",
            required=False,
            empty_label=None,
            error_messages={"invalid_choice": "That region does not exist; pick another."},
            **kwargs,
        )


class RegionChoiceMixin:
    """Drops the region field of an installation with a single region: there is nothing to choose."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        regions = list(region_list())
        if len(regions) < 2:
            del self.fields["region"]
        else:
            self.fields["region"].queryset = region_list()
            self.fields["region"].initial = next((r.name for r in regions if r.is_default), regions[0].name)


class NetworkForm(RegionChoiceMixin, forms.Form):
    name = forms.CharField(label="Name", max_length=63, help_text=NAME_HELP)
    region = RegionField(label="Region", help_text="Machines of this region can join it.")
    cidr = forms.CharField(
        label="Range (CIDR)",
        max_length=18,
        help_text="A private range from /16 to /28 (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16), e.g. 10.20.0.0/24. "
        "The first address is the gateway.",
        widget=forms.TextInput(attrs={"placeholder": "10.20.0.0/24", "spellcheck": "false", "autocomplete": "off"}),
    )


class RenameForm(forms.Form):
    name = forms.CharField(label="New name", max_length=63, help_text=NAME_HELP)


class FirewallForm(forms.Form):
    name = forms.CharField(label="Name", max_length=63, help_text=NAME_HELP)
    description = forms.CharField(label="Description", max_length=200, required=False)


class RuleForm(forms.Form):
    """One rule as people write it: ports as "22" or "8000-8100", empty for all."""

    direction = forms.ChoiceField(label="Direction", choices=list(DIRECTIONS.items()))
    protocol = forms.ChoiceField(label="Protocol", choices=list(PROTOCOLS.items()))
    ports = forms.CharField(
        label="Ports",
        max_length=11,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "22", "spellcheck": "false", "autocomplete": "off"}),
    )
    cidr = forms.CharField(
        label="From / to",
        max_length=18,
        initial=ANYWHERE,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    description = forms.CharField(label="Note", max_length=100, required=False)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            port_min, port_max = parse_ports(cleaned.get("ports", ""))
        except ValueError as error:
            self.add_error("ports", str(error))
            return cleaned
        rule = RuleInput(
            direction=cleaned["direction"],
            protocol=cleaned["protocol"],
            port_min=port_min,
            port_max=port_max,
            cidr=cleaned["cidr"].strip(),
            description=cleaned.get("description", ""),
        )
        # The rule's checks, written once (compute.network.rulesets); both port fields are one "ports" box here.
        for field, message in rule_errors(rule).items():
            self.add_error("ports" if field in ("port_min", "port_max") else field, message)
        cleaned["rule"] = rule
        return cleaned


class AllocateForm(RegionChoiceMixin, forms.Form):
    region = RegionField(label="Region", help_text="It can reach machines of this region (a machine's own, if picked).")
    instance = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Assign to",
        empty_label="No machine for now",
        error_messages={"invalid_choice": "That machine is not one of yours, or it is being deleted."},
    )

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["instance"].queryset = assignable_instances(tenant=tenant)


class AssignForm(forms.Form):
    instance = forms.ModelChoiceField(
        queryset=None, error_messages={"invalid_choice": "That machine is not one of yours, or it is being deleted."}
    )

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["instance"].queryset = assignable_instances(tenant=tenant)
        field = self.fields["instance"]
        field.required = True
        field.empty_label = "Choose a machine"
        field.error_messages["required"] = "Choose the machine to assign the address to."


class InstanceFirewallsForm(forms.Form):
    firewalls = OwnedChoicesField(
        queryset=None,
        label="Firewalls",
        error_messages={
            "required": "A machine needs at least one firewall; the default one allows SSH.",
            "invalid_choice": "One of the firewalls is not one of yours.",
            "invalid_pk_value": "One of the firewalls is not one of yours.",
        },
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["firewalls"].queryset = firewall_list(tenant=tenant)
