from django.utils import timezone
from django.utils.functional import cached_property
from rest_framework import serializers

from compute.models import Flavor, Image, Instance, InstanceEvent, Region, SSHKey
from compute.sshkeys import MAX_KEY_LENGTH
from portal.api.fields import StrictCharField


class FlavorSerializer(serializers.ModelSerializer):
    hourly_price = serializers.DecimalField(
        max_digits=20, decimal_places=10, read_only=True, help_text="monthly_price / 672, charged per started hour."
    )

    class Meta:
        model = Flavor
        fields = ["id", "name", "vcpus", "ram_mib", "disk_gib", "monthly_price", "hourly_price"]
        read_only_fields = fields


class RegionSerializer(serializers.ModelSerializer):
    default = serializers.BooleanField(source="is_default", read_only=True, help_text="Used when a launch names none.")

    class Meta:
        model = Region
        fields = ["id", "name", "label", "default"]
        read_only_fields = fields


class ImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Image
        fields = ["id", "name", "os", "version", "min_disk_gib", "min_ram_mib"]
        read_only_fields = fields


class SSHKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = SSHKey
        fields = ["id", "name", "public_key", "fingerprint", "key_type", "bits", "created_at"]
        read_only_fields = fields


class SSHKeyCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    public_key = StrictCharField(
        max_length=MAX_KEY_LENGTH, help_text="One OpenSSH public key line, e.g. `ssh-ed25519 AAAA… me@laptop`."
    )


class InstanceKeySerializer(serializers.Serializer):
    name = serializers.CharField()
    fingerprint = serializers.CharField()


class InstanceSerializer(serializers.ModelSerializer):
    region = serializers.SlugRelatedField(slug_field="name", read_only=True, help_text="Where the machine runs.")
    flavor = serializers.UUIDField(source="flavor_id", read_only=True)
    image = serializers.UUIDField(source="image_id", read_only=True)
    resize_flavor = serializers.UUIDField(
        source="resize_flavor_id", read_only=True, allow_null=True, help_text="The size a resize in progress moves to."
    )
    ssh_keys = InstanceKeySerializer(many=True, read_only=True, help_text="The keys copied in at launch.")
    private_ip = serializers.IPAddressField(read_only=True, allow_null=True)
    allowed_actions = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="What the instance's state allows now: start, stop, reboot, resize, delete, rename.",
    )

    class Meta:
        model = Instance
        fields = [
            "id",
            "name",
            "state",
            "power_state",
            "region",
            "flavor",
            "image",
            "resize_flavor",
            "private_ip",
            "ssh_keys",
            "error_reason",
            "allowed_actions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
        # The instance columns those fields read (what the list loads), and its region's name.
        columns = [
            "id",
            "name",
            "state",
            "power_state",
            "region",
            "region__name",
            "flavor_id",
            "image_id",
            "resize_flavor_id",
            "private_ip",
            "ssh_keys",
            "error_reason",
            "created_at",
            "updated_at",
        ]

    @cached_property
    def _timezone(self):
        return timezone.get_current_timezone()

    def _datetime(self, value) -> str:
        """What DRF's DateTimeField gives (ISO 8601 in the current time zone, UTC as Z), minus its per-call lookups."""
        text = value.astimezone(self._timezone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def to_representation(self, instance: Instance) -> dict:
        """The declared fields' output, built directly: a 200-row page spent most of its time in DRF's per-field
        dispatch (tests/perf compare both ways)."""
        iso = self._datetime
        return {
            "id": str(instance.id),
            "name": instance.name,
            "state": instance.state,
            "power_state": instance.power_state,
            "region": None if instance.region_id is None else instance.region.name,
            "flavor": str(instance.flavor_id),
            "image": str(instance.image_id),
            "resize_flavor": None if instance.resize_flavor_id is None else str(instance.resize_flavor_id),
            "private_ip": instance.private_ip,
            "ssh_keys": [{"name": str(k["name"]), "fingerprint": str(k["fingerprint"])} for k in instance.ssh_keys],
            "error_reason": instance.error_reason,
            "allowed_actions": instance.allowed_actions,
            "created_at": iso(instance.created_at),
            "updated_at": iso(instance.updated_at),
        }


def _uuid_key():
    return serializers.UUIDField(format="hex_verbose")


class InstanceCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63, help_text="Becomes the hostname: letters, digits and hyphens.")
    region = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Region.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="The region's name (see /regions/); the default region when left out.",
    )
    flavor = serializers.PrimaryKeyRelatedField(queryset=Flavor.objects.active(), pk_field=_uuid_key())
    image = serializers.PrimaryKeyRelatedField(queryset=Image.objects.active(), pk_field=_uuid_key())
    ssh_keys = serializers.PrimaryKeyRelatedField(
        queryset=SSHKey.objects.none(), pk_field=_uuid_key(), many=True, required=False, default=list
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tenant = self.context.get("tenant")
        if tenant is not None:
            # Only the caller's own keys resolve; another tenant's key id reads as "does not exist".
            self.fields["ssh_keys"].child_relation.queryset = SSHKey.objects.for_tenant(tenant)


class InstanceUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63)


class InstanceActionSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["start", "stop", "reboot", "resize"])
    flavor = serializers.PrimaryKeyRelatedField(
        queryset=Flavor.objects.active(),
        pk_field=_uuid_key(),
        required=False,
        allow_null=True,
        help_text="For `resize` only: the new size. The instance must be stopped.",
    )

    def validate(self, attrs):
        if attrs["type"] == "resize" and not attrs.get("flavor"):
            raise serializers.ValidationError({"flavor": ["A resize needs the new flavor."]})
        if attrs["type"] != "resize" and attrs.get("flavor"):
            raise serializers.ValidationError({"flavor": ["Only a resize takes a flavor."]})
        return attrs


class InstanceEventSerializer(serializers.ModelSerializer):
    user = serializers.EmailField(source="actor.email", read_only=True, allow_null=True, default=None)

    class Meta:
        model = InstanceEvent
        fields = ["id", "action", "result", "message", "user", "created_at"]
        read_only_fields = fields


class ConsoleSerializer(serializers.Serializer):
    lines = serializers.IntegerField(help_text="How many lines were asked for.")
    output = serializers.CharField(help_text="The last lines of the serial console; empty until the machine exists.")
