from django.utils import timezone
from django.utils.functional import cached_property
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from compute import catalog
from compute.models import Flavor, Image, Instance, InstanceEvent, Region, SSHKey
from compute.network.cloudinit import MAX_USER_DATA_BYTES
from compute.network.models import Firewall, Network
from compute.network.selectors import instance_firewall_ids, instance_ports, instance_public_address
from compute.sshkeys import MAX_KEY_LENGTH
from portal.api.fields import LabelsField, StrictBooleanField, StrictCharField


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
    visibility = serializers.SerializerMethodField(help_text="`public` (the catalog) or `private` (your own).")
    region = serializers.SerializerMethodField(help_text="Private images: the region that keeps it (launch there).")
    source_snapshot = serializers.UUIDField(source="source_snapshot_id", read_only=True, allow_null=True)

    class Meta:
        model = Image
        fields = [
            "id",
            "name",
            "os",
            "version",
            "min_disk_gib",
            "min_ram_mib",
            "visibility",
            "state",
            "size_gib",
            "region",
            "source_snapshot",
            "source_name",
            "error_reason",
            "created_at",
        ]
        read_only_fields = fields

    def get_visibility(self, image: Image) -> str:
        return "private" if image.is_private else "public"

    def get_region(self, image: Image) -> str | None:
        return image.host.region.name if image.host_id else None


class ImageCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    snapshot = serializers.UUIDField(help_text="An available snapshot of yours (of a boot disk or of a volume).")


class SSHKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = SSHKey
        fields = ["id", "name", "public_key", "fingerprint", "key_type", "bits", "labels", "created_at"]
        read_only_fields = fields


class SSHKeyCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    public_key = StrictCharField(
        max_length=MAX_KEY_LENGTH, help_text="One OpenSSH public key line, e.g. `ssh-ed25519 AAAA… me@laptop`."
    )
    labels = LabelsField(required=False, default=dict)


class LabelsUpdateSerializer(serializers.Serializer):
    labels = LabelsField(help_text="Replaces all of the resource's labels (`{}` removes them).")


class InstanceKeySerializer(serializers.Serializer):
    name = serializers.CharField()
    fingerprint = serializers.CharField()


class InstanceAddressSerializer(serializers.Serializer):
    interface = serializers.CharField(help_text="eth0 is the primary: its address is the one public IPs map onto.")
    network = serializers.UUIDField(source="network_id")
    ip = serializers.IPAddressField(source="address")
    prefix = serializers.IntegerField(source="network.prefix")
    mac = serializers.CharField()


class InstanceTrafficSerializer(serializers.Serializer):
    rx_bytes = serializers.IntegerField(source="rx_total", help_text="Received since launch, across restarts.")
    tx_bytes = serializers.IntegerField(source="tx_total", help_text="Sent since launch: what billing meters.")
    sampled_at = serializers.DateTimeField(allow_null=True, help_text="When the counters were last read.")


class InstanceSerializer(serializers.ModelSerializer):
    region = serializers.SlugRelatedField(slug_field="name", read_only=True, help_text="Where the machine runs.")
    flavor = serializers.UUIDField(source="flavor_id", read_only=True)
    image = serializers.UUIDField(source="image_id", read_only=True)
    resize_flavor = serializers.UUIDField(
        source="resize_flavor_id", read_only=True, allow_null=True, help_text="The size a resize in progress moves to."
    )
    ssh_keys = InstanceKeySerializer(many=True, read_only=True, help_text="The keys copied in at launch.")
    private_ip = serializers.IPAddressField(read_only=True, allow_null=True, help_text="The primary address.")
    addresses = serializers.SerializerMethodField(help_text="One per network the machine is on, eth0 first.")
    public_ip = serializers.SerializerMethodField(help_text="The public IPv4 address assigned to it, if any.")
    firewalls = serializers.SerializerMethodField(help_text="Ids of the firewalls whose rules apply to it.")
    traffic = serializers.SerializerMethodField(help_text="Bytes through its interfaces, as last sampled.")
    user_data = serializers.CharField(read_only=True, help_text="The cloud-init user-data it was launched with.")
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
            "addresses",
            "public_ip",
            "firewalls",
            "ssh_keys",
            "user_data",
            "traffic",
            "error_reason",
            "labels",
            "allowed_actions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @cached_property
    def _timezone(self):
        return timezone.get_current_timezone()

    def _datetime(self, value) -> str:
        """What DRF's DateTimeField gives (ISO 8601 in the current time zone, UTC as Z), minus its per-call lookups."""
        text = value.astimezone(self._timezone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    @staticmethod
    def _region_name(instance: Instance) -> str | None:
        if instance.region_id is None:
            return None
        annotated = getattr(instance, "region_name", None)  # the list's rows carry it (no Region object per row)
        return annotated if annotated is not None else instance.region.name

    def to_representation(self, instance: Instance) -> dict:
        """The declared fields' output, built directly: a 200-row page spent most of its time in DRF's per-field
        dispatch (tests/perf compare both ways)."""
        iso = self._datetime
        return {
            "id": str(instance.id),
            "name": instance.name,
            "state": instance.state,
            "power_state": instance.power_state,
            "region": self._region_name(instance),
            "flavor": str(instance.flavor_id),
            "image": str(instance.image_id),
            "resize_flavor": None if instance.resize_flavor_id is None else str(instance.resize_flavor_id),
            "private_ip": instance.private_ip,
            "addresses": self.get_addresses(instance),
            "public_ip": self.get_public_ip(instance),
            "firewalls": self.get_firewalls(instance),
            "ssh_keys": [{"name": str(k["name"]), "fingerprint": str(k["fingerprint"])} for k in instance.ssh_keys],
            "user_data": instance.user_data,
            "traffic": self.get_traffic(instance),
            "error_reason": instance.error_reason,
            "labels": instance.labels,
            "allowed_actions": instance.allowed_actions,
            "created_at": iso(instance.created_at),
            "updated_at": iso(instance.updated_at),
        }

    # The list prefetches these (compute.api.views.InstanceViewSet); a single instance reads them directly.

    @extend_schema_field(InstanceAddressSerializer(many=True))
    def get_addresses(self, instance) -> list:
        # InstanceAddressSerializer's fields, written out: a serializer per row cost more than the rest of the row.
        return [
            {
                "interface": port.interface,
                "network": str(port.network_id),
                "ip": port.address,
                "prefix": port.network.prefix,
                "mac": port.mac,
            }
            for port in instance_ports(instance)
        ]

    @extend_schema_field(serializers.IPAddressField(allow_null=True))
    def get_public_ip(self, instance) -> str | None:
        return instance_public_address(instance)

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_firewalls(self, instance) -> list[str]:
        return [str(pk) for pk in instance_firewall_ids(instance)]

    @extend_schema_field(InstanceTrafficSerializer(allow_null=True))
    def get_traffic(self, instance) -> dict | None:
        counter = getattr(instance, "traffic", None)
        if counter is None:
            return None
        # InstanceTrafficSerializer's fields, written out (see get_addresses).
        sampled_at = counter.sampled_at
        return {
            "rx_bytes": counter.rx_total,
            "tx_bytes": counter.tx_total,
            "sampled_at": None if sampled_at is None else self._datetime(sampled_at),
        }


def _uuid_key():
    return serializers.UUIDField(format="hex_verbose")


class CatalogField(serializers.PrimaryKeyRelatedField):
    """The id of an active flavor or image, found in the process's catalog (compute.catalog) instead of a query."""

    def __init__(self, model, **kwargs):
        self.model = model
        self.lookup = {Flavor: catalog.flavor, Image: catalog.image}[model]
        # The manager, not a queryset: a serializer makes its fields again for every request (see OwnedObjectField).
        super().__init__(queryset=model.objects, pk_field=_uuid_key(), **kwargs)

    def get_queryset(self):
        return self.model.objects.active()

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("incorrect_type", data_type=type(data).__name__)
        pk = self.pk_field.to_internal_value(data)
        found = self.lookup(pk)
        if found is None or not found.active:
            self.fail("does_not_exist", pk_value=pk)
        return found


class RegionNameField(serializers.SlugRelatedField):
    """A region's name, found in the process's catalog (compute.catalog) instead of a query."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="name", queryset=Region.objects, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        found = catalog.region(data)
        if found is None:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return found


class OwnedObjectField(serializers.PrimaryKeyRelatedField):
    """The id of one of the caller's own objects of `model` (many=True: a list of them), looked up among the objects
    of the tenant in the serializer's context only: another tenant's id reads as "does not exist".

    The queryset is made when an id is looked up, not with the field: a serializer makes its fields again for every
    request, and three querysets per launch cost more CPU than its quota check."""

    def __init__(self, model, **kwargs):
        self.model = model
        super().__init__(queryset=model.objects, pk_field=_uuid_key(), **kwargs)

    def get_queryset(self):
        tenant = self.context.get("tenant")
        return self.model.objects.none() if tenant is None else self.model.objects.for_tenant(tenant)


def _owned_ids(model, **kwargs) -> serializers.ManyRelatedField:
    return OwnedObjectField(model, many=True, required=False, **kwargs)


class InstanceCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63, help_text="Becomes the hostname: letters, digits and hyphens.")
    region = RegionNameField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The region's name (see /regions/); the default region when left out.",
    )
    flavor = CatalogField(Flavor)
    image = CatalogField(Image)
    ssh_keys = _owned_ids(SSHKey, default=list)
    networks = _owned_ids(
        Network,
        default=list,
        help_text="The networks it joins, the first as eth0 (its primary address); empty: your default network.",
    )
    firewalls = _owned_ids(
        Firewall,
        default=list,
        help_text="Their rules apply to it; empty: your default firewall (SSH and ping in, everything out).",
    )
    public_ip = StrictBooleanField(
        required=False, default=False, help_text="Allocate a new public IPv4 address and assign it to the machine."
    )
    labels = LabelsField(required=False, default=dict)
    user_data = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=8 * MAX_USER_DATA_BYTES,  # a guard only: the service measures bytes and says how many
        trim_whitespace=False,
        help_text="cloud-init user-data: a `#cloud-config` document or a script starting with `#!`, at most 32 KiB.",
    )


class InstanceUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63, required=False)
    firewalls = _owned_ids(
        Firewall, help_text="Replaces its firewalls (at least one); the host applies the new rules live."
    )
    labels = LabelsField(required=False, help_text="Replaces all of its labels (`{}` removes them).")

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"non_field_errors": ["Give a new name, firewalls, labels, or more."]})
        return attrs


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
