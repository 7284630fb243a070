from rest_framework import serializers

from compute.api.serializers import OwnedObjectField
from compute.models import Instance, Region
from compute.network.models import Firewall, Network, PublicIP
from compute.network.rulesets import ANYWHERE, DIRECTIONS, PROTOCOLS, RuleInput, rule_errors
from portal.api.fields import LabelsField, StrictCharField

# --- networks -----------------------------------------------------------------------------------------------------


def _region_field(**kwargs):
    return serializers.SlugRelatedField(slug_field="name", queryset=Region.objects.all(), **kwargs)


class NetworkSerializer(serializers.ModelSerializer):
    region = serializers.SlugRelatedField(slug_field="name", read_only=True, help_text="Where its machines run.")
    gateway_ip = serializers.IPAddressField(read_only=True, help_text="The host's address on it (DHCP server).")
    capacity = serializers.IntegerField(read_only=True, help_text="How many machines fit.")
    machine_count = serializers.IntegerField(read_only=True, default=0, help_text="Machines on it now.")

    class Meta:
        model = Network
        fields = [
            "id",
            "name",
            "region",
            "cidr",
            "gateway_ip",
            "capacity",
            "machine_count",
            "is_default",
            "labels",
            "created_at",
        ]
        read_only_fields = fields


class NetworkCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63, help_text="Letters, digits, spaces, dots, hyphens and underscores.")
    region = _region_field(
        required=False,
        allow_null=True,
        default=None,
        help_text="The region's name (see /regions/): machines of that region join it. The default region when "
        "left out.",
    )
    cidr = StrictCharField(
        max_length=18,
        help_text="A private (RFC 1918) range from /16 to /28, e.g. `10.20.0.0/24`, overlapping none of yours.",
    )
    labels = LabelsField(required=False, default=dict)


def _something_given(attrs: dict, what: str) -> dict:
    if not attrs:
        raise serializers.ValidationError({"non_field_errors": [f"Give {what}."]})
    return attrs


class NetworkUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63, required=False)
    labels = LabelsField(required=False, help_text="Replaces all of its labels (`{}` removes them).")

    def validate(self, attrs):
        return _something_given(attrs, "a new name, labels, or both")


# --- public addresses ---------------------------------------------------------------------------------------------


class PublicIPSerializer(serializers.ModelSerializer):
    region = serializers.CharField(
        source="pool.region.name", read_only=True, help_text="It reaches machines of this region only."
    )
    instance = serializers.UUIDField(
        source="instance_id", read_only=True, allow_null=True, help_text="The machine it maps onto, if assigned."
    )

    class Meta:
        model = PublicIP
        fields = ["id", "address", "region", "state", "instance", "labels", "allocated_at", "assigned_at"]
        read_only_fields = fields


class PublicIPCreateSerializer(serializers.Serializer):
    instance = OwnedObjectField(
        Instance,
        required=False,
        allow_null=True,
        help_text="Assign the new address to this machine at once (it comes from the machine's region).",
    )
    region = _region_field(
        required=False,
        allow_null=True,
        default=None,
        help_text="Without a machine: the region whose machines it may reach (the default region when left out).",
    )
    labels = LabelsField(required=False, default=dict)

    def validate(self, attrs):
        instance, region = attrs.get("instance"), attrs.get("region")
        if instance is not None and region is not None and instance.region_id != region.pk:
            raise serializers.ValidationError({"region": ["The machine runs in another region; leave this out."]})
        return attrs


class PublicIPActionSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["assign", "unassign"])
    instance = OwnedObjectField(
        Instance,
        required=False,
        allow_null=True,
        help_text="For `assign`: the machine. Assigning an address that is on another machine moves it.",
    )

    def validate(self, attrs):
        if attrs["type"] == "assign" and not attrs.get("instance"):
            raise serializers.ValidationError({"instance": ["Name the machine to assign the address to."]})
        if attrs["type"] == "unassign" and attrs.get("instance"):
            raise serializers.ValidationError({"instance": ["Unassigning takes no machine."]})
        return attrs


# --- firewalls ----------------------------------------------------------------------------------------------------


class FirewallRuleSerializer(serializers.Serializer):
    direction = serializers.ChoiceField(choices=list(DIRECTIONS.items()))
    protocol = serializers.ChoiceField(choices=list(PROTOCOLS.items()))
    port_min = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="TCP and UDP only; leave out for every port."
    )
    port_max = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="The last port of a range; defaults to port_min."
    )
    cidr = StrictCharField(
        required=False,
        default=ANYWHERE,
        max_length=18,
        help_text="Where inbound traffic comes from, or outbound goes to; `0.0.0.0/0` is anywhere.",
    )
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=100)

    def validate(self, attrs):
        errors = rule_errors(RuleInput(**attrs))
        if errors:
            raise serializers.ValidationError({field: [message] for field, message in errors.items()})
        return attrs


def rule_inputs(rules: list[dict]) -> list[RuleInput]:
    return [RuleInput(**rule) for rule in rules]


class FirewallSerializer(serializers.ModelSerializer):
    rules = FirewallRuleSerializer(many=True, read_only=True)
    instances = serializers.SerializerMethodField(help_text="The live machines it applies to.")

    class Meta:
        model = Firewall
        fields = [
            "id",
            "name",
            "description",
            "is_default",
            "rules",
            "instances",
            "labels",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_instances(self, firewall) -> list[str]:
        return [str(instance.pk) for instance in firewall.instances.all() if instance.state != "deleted"]


class FirewallCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63)
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=200)
    rules = FirewallRuleSerializer(
        many=True, required=False, default=list, help_text="Allow rules; everything else is dropped."
    )
    labels = LabelsField(required=False, default=dict)


class FirewallUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63, required=False)
    description = StrictCharField(required=False, allow_blank=True, max_length=200)
    rules = FirewallRuleSerializer(
        many=True, required=False, help_text="The whole new rule set; its machines get it live."
    )
    labels = LabelsField(required=False, help_text="Replaces all of its labels (`{}` removes them).")
