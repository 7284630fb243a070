"""Storage: block volumes a tenant attaches to its machines, and snapshots of volumes and of boot disks.

A volume lives in one host's storage pool (libvirt: a qcow2 file in the host's `hangar` pool; simulated: a row of
SimulatedVolume), so it attaches only to machines of that host. A snapshot is a copy of a volume (or of a machine's
boot disk) kept in the same pool; new volumes can be made from it.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from compute.lifecycle import SNAPSHOT, VOLUME, BillableResource
from compute.models import Host, Instance, PoolFile, Region, WorkFields
from tenants.models import Event, TenantOwned

MIN_VOLUME_GIB = 1
MAX_VOLUME_GIB = 16_384
MAX_VOLUMES_PER_INSTANCE = 16


class VolumeState(models.TextChoices):
    CREATING = "creating", "Creating"
    AVAILABLE = "available", "Available"
    ATTACHING = "attaching", "Attaching"
    IN_USE = "in-use", "In use"
    DETACHING = "detaching", "Detaching"
    EXTENDING = "extending", "Extending"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    ERROR = "error", "Error"


VOLUME_TRANSITIONAL_STATES = frozenset(
    {
        VolumeState.CREATING,
        VolumeState.ATTACHING,
        VolumeState.DETACHING,
        VolumeState.EXTENDING,
        VolumeState.DELETING,
    }
)


class StorageTask(models.TextChoices):
    """The work a transitional volume or snapshot waits for; the reconciler re-enqueues it if its message was lost."""

    NONE = "", "none"
    CREATE = "create", "create"
    ATTACH = "attach", "attach"
    DETACH = "detach", "detach"
    EXTEND = "extend", "extend"
    DELETE = "delete", "delete"


# How long each kind of work may take, from the request, before the reconciler fails it. Copies (a volume from a
# snapshot, a snapshot) take longest.
STORAGE_TASK_DEADLINES = {
    StorageTask.CREATE: timedelta(minutes=30),
    StorageTask.ATTACH: timedelta(minutes=5),
    StorageTask.DETACH: timedelta(minutes=5),
    StorageTask.EXTEND: timedelta(minutes=10),
    StorageTask.DELETE: timedelta(minutes=10),
}


class TaskFields(WorkFields):
    """Work in progress, for the reconciler (the same bookkeeping as compute.Instance): what is pending, and the
    rest of WorkFields."""

    task = models.CharField(max_length=16, choices=StorageTask.choices, default=StorageTask.NONE, blank=True)

    class Meta:
        abstract = True


def validate_labels(value) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError("Labels are a map of text keys to text values.")


class StorageItem(PoolFile, TenantOwned, TaskFields):
    """What volumes and snapshots share: a named, labelled file of a tenant in one host's pool of a region, billed by
    its GiB (`resource_type`), whose actions (`actions`) each have a `can_<action>` guard. Each kind declares its own
    `region` and `host` (their reverse names are migrated as they are)."""

    Task = StorageTask
    resource_type = ""
    actions: tuple[str, ...] = ()

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=63)
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "tenant",
                condition=~models.Q(state="deleted"),
                name="%(class)s_unique_live_name_per_tenant",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "state"], name="%(class)s_tenant_state"),
            models.Index(fields=["host", "state"], name="%(class)s_host_state"),
            models.Index(fields=["state", "task_enqueued_at"], name="%(class)s_state_enqueued"),
        ]

    def can_rename(self) -> bool:
        return self.state != "deleted"

    @property
    def allowed_actions(self) -> list[str]:
        """What the dashboard offers and the API lists for this item now."""
        return [action for action in self.actions if getattr(self, f"can_{action}")()]

    def billable(self) -> BillableResource:
        kind = self.resource_type
        return BillableResource(
            tenant_id=self.tenant_id, resource_type=kind, resource_id=self.pk, name=self.name, quantity=self.size_gib
        )


VOLUME_ACTIONS = ("attach", "detach", "extend", "snapshot", "rename", "delete")


class Volume(StorageItem):
    """A block device a tenant rents: created empty or from a snapshot, attached to one machine at a time."""

    State = VolumeState
    transitional_states = VOLUME_TRANSITIONAL_STATES
    driver_prefix = "hangar-vol-"
    resource_type = VOLUME
    actions = VOLUME_ACTIONS

    size_gib = models.PositiveIntegerField(
        "size (GiB)", validators=[MinValueValidator(MIN_VOLUME_GIB), MaxValueValidator(MAX_VOLUME_GIB)]
    )
    state = models.CharField(max_length=16, choices=VolumeState.choices, default=VolumeState.CREATING)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="volumes")
    # Whose storage pool holds it: set when it is placed (at creation), kept until it is deleted.
    host = models.ForeignKey(Host, on_delete=models.PROTECT, null=True, blank=True, related_name="volumes")
    instance = models.ForeignKey(Instance, on_delete=models.SET_NULL, null=True, blank=True, related_name="volumes")
    device = models.CharField(max_length=16, blank=True, help_text="The guest's device name while attached: vdb…")
    source_snapshot = models.ForeignKey(
        "Snapshot", on_delete=models.SET_NULL, null=True, blank=True, related_name="volumes_made"
    )

    class Meta(StorageItem.Meta):
        constraints = [
            *StorageItem.Meta.constraints,
            models.UniqueConstraint(
                fields=["instance", "device"],
                condition=models.Q(instance__isnull=False) & ~models.Q(device=""),
                name="volume_unique_device_per_instance",
            ),
            models.CheckConstraint(condition=models.Q(state__in=VolumeState.values), name="volume_state_valid"),
            models.CheckConstraint(
                condition=models.Q(size_gib__gte=MIN_VOLUME_GIB, size_gib__lte=MAX_VOLUME_GIB),
                name="volume_size_in_range",
            ),
        ]

    @property
    def guest_id(self) -> str:
        """How the guest names the disk whatever its order: /dev/disk/by-id/virtio-<guest_id>."""
        return self.driver_name.rsplit("-vol-", 1)[-1].replace("-", "")[:20]

    def can_attach(self) -> bool:
        return self.state == VolumeState.AVAILABLE

    def can_detach(self) -> bool:
        return self.state == VolumeState.IN_USE

    def can_extend(self) -> bool:
        return self.state in (VolumeState.AVAILABLE, VolumeState.IN_USE)

    def can_snapshot(self) -> bool:
        return self.state in (VolumeState.AVAILABLE, VolumeState.IN_USE)

    def can_delete(self) -> bool:
        return self.state in (VolumeState.AVAILABLE, VolumeState.ERROR)


class SnapshotState(models.TextChoices):
    CREATING = "creating", "Creating"
    AVAILABLE = "available", "Available"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    ERROR = "error", "Error"


SNAPSHOT_TRANSITIONAL_STATES = frozenset({SnapshotState.CREATING, SnapshotState.DELETING})


class Snapshot(StorageItem):
    """A point-in-time copy of a volume, or of a machine's boot disk, kept in the source's host pool."""

    State = SnapshotState
    transitional_states = SNAPSHOT_TRANSITIONAL_STATES
    driver_prefix = "hangar-snap-"
    resource_type = SNAPSHOT
    actions = ("restore", "rename", "delete")

    state = models.CharField(max_length=16, choices=SnapshotState.choices, default=SnapshotState.CREATING)
    size_gib = models.PositiveIntegerField("size (GiB)", help_text="The source's size when it was taken.")
    source_volume = models.ForeignKey(
        Volume, on_delete=models.SET_NULL, null=True, blank=True, related_name="snapshots"
    )
    source_instance = models.ForeignKey(
        Instance,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="snapshots",
        help_text="A snapshot of this machine's boot disk.",
    )
    source_name = models.CharField(max_length=63, blank=True, help_text="The source's name, kept when it is gone.")
    crash_consistent = models.BooleanField(
        default=False, help_text="Taken while the disk was in use: like after a power cut, not a clean shutdown."
    )
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="snapshots")
    host = models.ForeignKey(Host, on_delete=models.PROTECT, null=True, blank=True, related_name="snapshots")

    class Meta(StorageItem.Meta):
        constraints = [
            *StorageItem.Meta.constraints,
            models.CheckConstraint(condition=models.Q(state__in=SnapshotState.values), name="snapshot_state_valid"),
        ]

    def can_restore(self) -> bool:
        """Whether new volumes can be made from it."""
        return self.state == SnapshotState.AVAILABLE

    def can_delete(self) -> bool:
        return self.state in (SnapshotState.AVAILABLE, SnapshotState.ERROR)


class StorageEventAction(models.TextChoices):
    VOLUME_CREATE = "volume_create", "Volume created"
    VOLUME_RENAME = "volume_rename", "Volume renamed"
    VOLUME_ATTACH = "volume_attach", "Volume attached"
    VOLUME_DETACH = "volume_detach", "Volume detached"
    VOLUME_EXTEND = "volume_extend", "Volume extended"
    VOLUME_DELETE = "volume_delete", "Volume deleted"
    VOLUME_ERROR = "volume_error", "Volume failed"
    SNAPSHOT_CREATE = "snapshot_create", "Snapshot taken"
    SNAPSHOT_RENAME = "snapshot_rename", "Snapshot renamed"
    SNAPSHOT_DELETE = "snapshot_delete", "Snapshot deleted"
    SNAPSHOT_ERROR = "snapshot_error", "Snapshot failed"
    BACKUPS_ENABLE = "backups_enable", "Backups enabled"
    BACKUPS_DISABLE = "backups_disable", "Backups disabled"
    BACKUP_CREATE = "backup_create", "Backup made"
    BACKUP_DELETE = "backup_delete", "Backup deleted"
    BACKUP_RESTORE = "backup_restore", "Backup restored"
    BACKUP_ERROR = "backup_error", "Backup failed"
    IMAGE_CREATE = "image_create", "Private image made"
    IMAGE_DELETE = "image_delete", "Private image deleted"
    IMAGE_ERROR = "image_error", "Private image failed"


class StorageEvent(Event):
    """The organisation's storage log: volumes and snapshots, who changed what and when, and how it went."""

    Action = StorageEventAction

    action = models.CharField(max_length=32, choices=StorageEventAction.choices)
    subject = models.CharField(max_length=120, help_text="What it was about, as people read it (a name).")
    volume = models.ForeignKey(Volume, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")

    class Meta(Event.Meta):
        indexes = [models.Index(fields=["tenant", "-created_at"], name="storageevent_tenant_time")]


class SimulatedVolume(models.Model):
    """A volume or snapshot file in a simulated host's pool (what libvirt keeps as a qcow2 volume), shared by every
    process via the database like the simulated domains; the pool's capacity is the host's disk."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="simulated_volumes")
    name = models.CharField(max_length=100)
    size_gib = models.PositiveIntegerField()
    # The domain it is attached to (its uuid) and as which device; empty while detached.
    domain = models.CharField(max_length=64, blank=True)
    device = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=100, blank=True, help_text="The file it was copied from, if any.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["host", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="simulatedvolume_unique_per_host")]

    def __str__(self) -> str:
        return f"{self.name} on {self.host}"


# Backups and their schedules (compute/storage/backup_models.py): imported here so Django registers them with the app.
from compute.storage.backup_models import Backup, BackupPolicy, PrivateImage  # noqa: E402,F401
