"""Backups of machines: a daily schedule per machine (BackupPolicy) and the copies of its boot disk it makes (Backup).

A backup is a full copy of the machine's boot disk kept in its host's storage pool (libvirt: a qcow2 file
`hangar-backup-<id>.qcow2`; simulated: a SimulatedVolume row). Beat looks every minute for policies that fall due;
each machine's backup starts at its own minute of the chosen hour (`minute`, derived from the machine's id), so a
thousand machines backed up "at 3" do not all start at 03:00:00. The last `keep` backups are kept; older ones are
deleted when a new one succeeds.
"""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from compute.models import Host, Image, Instance, PoolFile, Region
from compute.storage.models import TaskFields
from tenants.models import TenantOwned

BACKUPS_KEPT = 7


def backup_minute(instance_id: uuid.UUID) -> int:
    """The minute of the hour a machine's backup starts: spread by its id, the same every day."""
    return instance_id.int % 60


class BackupPolicy(TenantOwned):
    """A machine's daily backups: on or off, at which hour (UTC), how many to keep, and when the next one is due."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, related_name="backup_policy")
    enabled = models.BooleanField(default=True)
    hour = models.PositiveSmallIntegerField(
        "hour (UTC)", default=3, validators=[MaxValueValidator(23)], help_text="The hour of the day it runs, UTC."
    )
    minute = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(59)], help_text="Its start within the hour, spread per machine."
    )
    keep = models.PositiveSmallIntegerField(
        default=BACKUPS_KEPT, validators=[MinValueValidator(1), MaxValueValidator(BACKUPS_KEPT)]
    )
    next_run_at = models.DateTimeField(null=True, blank=True, help_text="When the next backup falls due (empty: off).")
    last_run_at = models.DateTimeField(null=True, blank=True)
    # Whether billing was told the machine's backups are billable (compute.lifecycle): while backups are enabled on a
    # live machine, and afterwards while any of its backups are kept.
    billed = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "backup policies"
        ordering = ["hour", "minute", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(hour__lte=23, minute__lte=59), name="backuppolicy_time_valid"),
        ]
        indexes = [models.Index(fields=["enabled", "next_run_at"], name="backuppolicy_due")]

    def __str__(self) -> str:
        return f"Backups of {self.instance}"

    @property
    def schedule_label(self) -> str:
        return f"Daily at {self.hour:02d}:{self.minute:02d} UTC"

    def next_after(self, instant: datetime) -> datetime:
        """The first run at the policy's time of day strictly after `instant`."""
        candidate = instant.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        return candidate if candidate > instant else candidate + timedelta(days=1)


class BackupState(models.TextChoices):
    CREATING = "creating", "Creating"
    AVAILABLE = "available", "Available"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    ERROR = "error", "Error"


BACKUP_TRANSITIONAL_STATES = frozenset({BackupState.CREATING, BackupState.DELETING})


class BackupKind(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    MANUAL = "manual", "On request"


class Backup(PoolFile, TenantOwned, TaskFields):
    """One copy of a machine's boot disk, made by its daily schedule (or on request), in the machine's host pool."""

    State = BackupState
    Kind = BackupKind
    transitional_states = BACKUP_TRANSITIONAL_STATES
    driver_prefix = "hangar-backup-"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    state = models.CharField(max_length=16, choices=BackupState.choices, default=BackupState.CREATING)
    kind = models.CharField(max_length=16, choices=BackupKind.choices, default=BackupKind.SCHEDULED)
    instance = models.ForeignKey(Instance, on_delete=models.SET_NULL, null=True, blank=True, related_name="backups")
    source_name = models.CharField(max_length=63, help_text="The machine's name, kept when it is gone.")
    # What a restore as a new machine needs of the original: its size and image.
    flavor = models.ForeignKey("compute.Flavor", on_delete=models.PROTECT, related_name="+")
    image = models.ForeignKey("compute.Image", on_delete=models.PROTECT, related_name="+")
    size_gib = models.PositiveIntegerField("size (GiB)", help_text="The disk's size when it was taken.")
    crash_consistent = models.BooleanField(
        default=False, help_text="Taken while the machine ran: like after a power cut, not a clean shutdown."
    )
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="backups")
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="backups")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=BackupState.values), name="backup_state_valid"),
        ]
        indexes = [
            models.Index(fields=["tenant", "state"], name="backup_tenant_state"),
            models.Index(fields=["instance", "state"], name="backup_instance_state"),
            models.Index(fields=["state", "task_enqueued_at"], name="backup_state_enqueued"),
        ]


class PrivateImage(Image):
    """Organisations' own images, apart from the catalog, for operators' pages (a proxy: no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "private image"
