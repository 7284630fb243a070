from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from compute.api.serializers import OwnedObjectField
from compute.models import Region
from compute.storage.models import MAX_VOLUME_GIB, MIN_VOLUME_GIB, Snapshot, StorageEvent, Volume
from portal.api.fields import StrictCharField

LABELS_HELP = 'Your own key/value labels (text to text), e.g. `{"env": "prod"}`.'


def _labels_field(**kwargs):
    return serializers.DictField(
        child=StrictCharField(max_length=255, allow_blank=True), help_text=LABELS_HELP, **kwargs
    )


class AttachmentSerializer(serializers.Serializer):
    instance = serializers.UUIDField(source="instance_id", help_text="The machine it is attached to.")
    instance_name = serializers.CharField(source="instance.name")
    device = serializers.CharField(help_text="The disk as the machine sees it (vdb…); see also `guest_id`.")


# What volumes and snapshots show alike (a comment, not a docstring: a docstring would become the subclasses'
# description in the schema); each lists its own fields between HEAD and TAIL.
class _StorageItemSerializer(serializers.ModelSerializer):
    HEAD = ["id", "name", "size_gib", "state", "region"]
    TAIL = ["labels", "allowed_actions", "error_reason", "created_at", "updated_at"]

    region = serializers.SlugRelatedField(slug_field="name", read_only=True)
    allowed_actions = serializers.ListField(child=serializers.CharField(), read_only=True)


class VolumeSerializer(_StorageItemSerializer):
    attachment = serializers.SerializerMethodField(
        help_text="The machine it is attached to (or being attached to / detached from); null when unattached."
    )
    source_snapshot = serializers.UUIDField(source="source_snapshot_id", read_only=True, allow_null=True)
    guest_id = serializers.CharField(
        read_only=True, help_text="Inside the machine the disk is /dev/disk/by-id/virtio-<guest_id>."
    )

    class Meta:
        model = Volume
        fields = [
            *_StorageItemSerializer.HEAD,
            "attachment",
            "guest_id",
            "source_snapshot",
            *_StorageItemSerializer.TAIL,
        ]
        read_only_fields = fields

    @extend_schema_field(AttachmentSerializer(allow_null=True))
    def get_attachment(self, volume):
        return AttachmentSerializer(volume).data if volume.instance_id else None


class VolumeCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63)
    size_gib = serializers.IntegerField(
        min_value=MIN_VOLUME_GIB,
        max_value=MAX_VOLUME_GIB,
        required=False,
        allow_null=True,
        default=None,
        help_text=f"{MIN_VOLUME_GIB} to {MAX_VOLUME_GIB:,} GiB. From a snapshot: at least its size (the default).",
    )
    snapshot = OwnedObjectField(
        Snapshot, required=False, allow_null=True, default=None, help_text="Make it from this snapshot of yours."
    )
    region = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Region.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="The region's name; the default region (or the snapshot's) when left out.",
    )
    labels = _labels_field(required=False, default=dict)


class VolumeUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63, required=False)
    labels = _labels_field(required=False)


class VolumeAttachSerializer(serializers.Serializer):
    instance = serializers.UUIDField(help_text="One of your machines, running or stopped, in the volume's region.")


class VolumeExtendSerializer(serializers.Serializer):
    size_gib = serializers.IntegerField(
        help_text="The new size in GiB: larger than the current one (volumes grow only)."
    )


class SnapshotSerializer(_StorageItemSerializer):
    source_volume = serializers.UUIDField(source="source_volume_id", read_only=True, allow_null=True)
    source_instance = serializers.UUIDField(
        source="source_instance_id", read_only=True, allow_null=True, help_text="Set for a snapshot of a boot disk."
    )
    source_name = serializers.CharField(read_only=True, help_text="The source's name (kept when it is gone).")

    class Meta:
        model = Snapshot
        fields = [
            *_StorageItemSerializer.HEAD,
            "source_volume",
            "source_instance",
            "source_name",
            "crash_consistent",
            *_StorageItemSerializer.TAIL,
        ]
        read_only_fields = fields


class SnapshotCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63)
    volume = OwnedObjectField(Volume, help_text="The volume to snapshot (available or in use).")
    labels = _labels_field(required=False, default=dict)


class SnapshotUpdateSerializer(VolumeUpdateSerializer):
    pass


class SnapshotVolumeSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63, help_text="The new volume's name.")
    size_gib = serializers.IntegerField(
        min_value=MIN_VOLUME_GIB,
        max_value=MAX_VOLUME_GIB,
        required=False,
        allow_null=True,
        default=None,
        help_text="At least the snapshot's size (the default).",
    )
    labels = _labels_field(required=False, default=dict)


class StorageEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.email", default=None, allow_null=True)

    class Meta:
        model = StorageEvent
        fields = ["id", "action", "result", "subject", "message", "actor", "created_at"]
        read_only_fields = fields
