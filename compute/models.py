"""Hypervisor hosts, the catalog (flavors, images), SSH keys, instances and their event log.

Also the simulated hypervisor's own state (SimulatedDomain: kept in the database so that web, worker and beat
processes all see the same "hardware") and what the reconciler finds on hosts that Hangar does not know
(OrphanDomain).
"""

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from compute.drivers import DRIVERS
from compute.drivers.base import ImageSource, PowerState
from compute.lifecycle import IMAGE, INSTANCE, BillableResource
from compute.prices import hourly_rate
from tenants.labels import validate_labels
from tenants.models import Event, TenantOwned, TenantQuerySet, held_totals_kept


def default_driver() -> str:
    return settings.HYPERVISOR_DRIVER


class RegionQuerySet(models.QuerySet):
    def default(self):
        """The region a launch goes to unless the user picks another (None only before any region exists)."""
        return self.filter(is_default=True).first() or self.order_by("name").first()

    def default_or_create(self):
        """The default region; the first thing of an installation that needs one (a host, a network, a pool) brings
        it with it."""
        return (
            self.default()
            or self.get_or_create(  # write-ok: the first region
                name="default", defaults={"label": "Default region", "is_default": True}
            )[0]
        )


class Region(models.Model):
    """A place where hosts stand: users pick one at launch and the scheduler places only on its hosts.

    Whatever must live next to the machines (hosts, images' base disks, networks, public-IP pools) names its region
    with `region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name=...)`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(
        max_length=32, unique=True, help_text="Short identifier users and the API see, e.g. fsn1 or eu-central."
    )
    label = models.CharField(max_length=100, help_text="How pages name it, e.g. Falkenstein, Germany.")
    is_default = models.BooleanField(
        "default", default=False, help_text="Preselected on the launch form and used by the API when none is named."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = RegionQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="region_one_default"
            )
        ]

    def __str__(self) -> str:
        return self.name


class FailureKind(models.TextChoices):
    TRANSIENT = "transient", "Transient (the task retries)"
    PERMANENT = "permanent", "Permanent (the instance goes to error)"


class Host(models.Model):
    """A hypervisor host that instances are scheduled onto."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, related_name="hosts", blank=True, help_text="Empty: the default region."
    )
    driver = models.CharField(
        max_length=32, choices=[(name, name) for name in DRIVERS], default=default_driver, help_text="How to reach it."
    )
    uri = models.CharField(
        "connection URI",
        max_length=255,
        blank=True,
        help_text="For libvirt: qemu:///system or qemu+ssh://host/system. Unused by the simulated driver.",
    )
    storage_pool = models.SlugField(
        "libvirt storage pool",
        max_length=64,
        default="hangar",
        blank=True,
        help_text="Where instance disks live on a libvirt host (empty: hangar). Hosts sharing one libvirt daemon need "
        "different pools.",
    )
    vcpus = models.PositiveIntegerField("vCPUs", validators=[MinValueValidator(1)])
    ram_mib = models.PositiveIntegerField("RAM (MiB)", validators=[MinValueValidator(256)])
    disk_gib = models.PositiveIntegerField("disk (GiB)", validators=[MinValueValidator(1)])
    cpu_allocation_ratio = models.DecimalField(
        "vCPU overcommit", max_digits=5, decimal_places=2, default=4, validators=[MinValueValidator(1)]
    )
    ram_allocation_ratio = models.DecimalField(
        "RAM overcommit", max_digits=5, decimal_places=2, default=1, validators=[MinValueValidator(1)]
    )
    disk_allocation_ratio = models.DecimalField(
        "disk overcommit", max_digits=5, decimal_places=2, default=1, validators=[MinValueValidator(1)]
    )
    enabled = models.BooleanField(default=True, help_text="Disabled hosts get no new instances.")
    draining = models.BooleanField(
        default=False, help_text="Draining hosts keep their instances but get no new ones (before maintenance)."
    )
    # Simulated driver knobs: a demo shows progress, tests set them to 0.
    boot_seconds = models.PositiveIntegerField(
        default=5, help_text="Simulated driver: how long a domain takes to boot or reboot."
    )
    stop_seconds = models.PositiveIntegerField(
        default=3, help_text="Simulated driver: how long a graceful shutdown takes."
    )
    fail_next_creates = models.PositiveIntegerField(
        default=0, help_text="Simulated driver: make the next N creates fail (failure injection)."
    )
    failure_kind = models.CharField(max_length=16, choices=FailureKind.choices, default=FailureKind.TRANSIENT)
    traffic_bytes_per_second = models.PositiveIntegerField(
        default=20000,
        help_text="Simulated driver: how much a running domain sends per second (it receives twice that).",
    )
    # Bumped by every claim of room on the host (compute.scheduler): a launch that read an older value looks again.
    claim_version = models.PositiveBigIntegerField(default=0, editable=False)
    # What its live instances (and those moving to it) hold, kept by compute.services.usage in the transactions that
    # place, resize, move and delete them, so the scheduler reads one row instead of summing every machine.
    held_vcpus = models.BigIntegerField(default=0, editable=False)
    held_ram_mib = models.BigIntegerField(default=0, editable=False)
    held_disk_gib = models.BigIntegerField(default=0, editable=False)
    held_instances = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if self.region_id is None:
            # A host made without naming a region (the admin's empty choice, scripts, tests) joins the default one;
            # the first host of an installation without any region brings the default region with it.
            self.region = Region.objects.default_or_create()
        # Saving a host loaded a while ago (the admin) must not write back the totals it read.
        kwargs = held_totals_kept(self, kwargs)
        super().save(*args, **kwargs)  # write-ok: Django's own save, after filling in the default region

    def clean(self) -> None:
        if self.driver == "libvirt" and not self.uri:
            raise ValidationError({"uri": "A libvirt host needs its connection URI, e.g. qemu+ssh://host/system."})

    @property
    def schedulable(self) -> bool:
        return self.enabled and not self.draining

    @property
    def vcpus_allocatable(self) -> int:
        return int(self.vcpus * self.cpu_allocation_ratio)

    @property
    def ram_mib_allocatable(self) -> int:
        return int(self.ram_mib * self.ram_allocation_ratio)

    @property
    def disk_gib_allocatable(self) -> int:
        return int(self.disk_gib * self.disk_allocation_ratio)


class CatalogQuerySet(models.QuerySet):
    def active(self):
        return self.filter(active=True)


class ImageQuerySet(TenantQuerySet, CatalogQuerySet):
    def in_region(self, region: "Region"):
        """Images whose files the region's hosts have: those limited to it, and those limited to no region."""
        return self.filter(models.Q(regions=region) | models.Q(regions__isnull=True)).distinct()

    def public(self):
        """The provider's catalog: images of no tenant."""
        return self.filter(tenant__isnull=True)

    def private(self):
        return self.filter(tenant__isnull=False)

    def visible_to(self, tenant):
        """What a tenant may see and launch from: the catalog and its own private images that are not deleted."""
        return self.filter(models.Q(tenant__isnull=True) | models.Q(tenant=tenant)).exclude(state=ImageState.DELETED)


class Flavor(models.Model):
    """An instance size with its monthly price."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=50, unique=True)
    vcpus = models.PositiveIntegerField("vCPUs", validators=[MinValueValidator(1), MaxValueValidator(256)])
    ram_mib = models.PositiveIntegerField("RAM (MiB)", validators=[MinValueValidator(128)])
    disk_gib = models.PositiveIntegerField("disk (GiB)", validators=[MinValueValidator(1)])
    monthly_price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)])
    included_traffic_gb = models.PositiveIntegerField(
        "included outbound traffic (GB)",
        default=1000,
        help_text="Outbound traffic a machine of this size includes per month (pro rata by hours, pooled per "
        "organisation); billing charges per GB above the pool.",
    )
    active = models.BooleanField(default=True, help_text="Inactive flavors cannot be launched; running ones stay.")

    objects = CatalogQuerySet.as_manager()

    class Meta:
        ordering = ["vcpus", "ram_mib", "disk_gib", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def ram_gib(self) -> float:
        return self.ram_mib / 1024

    @property
    def hourly_price(self):
        return hourly_rate(self.monthly_price)

    @property
    def size_label(self) -> str:
        """ "2 vCPU / 4 GiB": how the scheduler's refusal and the dashboard name a size."""
        ram = f"{self.ram_mib // 1024} GiB" if self.ram_mib % 1024 == 0 else f"{self.ram_mib} MiB"
        return f"{self.vcpus} vCPU / {ram}"


class StatefulResource:
    """What machines, private images and the storage app's items answer alike (a mixin with no fields): their name,
    whether work on them is in progress (a state of their kind's `transitional_states`), whether they are gone."""

    transitional_states: frozenset[str] = frozenset()

    def __str__(self) -> str:
        return self.name

    @property
    def is_transitional(self) -> bool:
        return self.state in self.transitional_states

    @property
    def is_deleted(self) -> bool:
        return self.state == "deleted"


class PoolFile(StatefulResource):
    """An item kept as a file in a host's storage pool, named there `<driver_prefix><id>` (libvirt: `<name>.qcow2`)."""

    driver_prefix = ""

    @property
    def driver_name(self) -> str:
        return f"{self.driver_prefix}{self.pk}"


class WorkFields(models.Model):
    """Work in progress, for the reconciler: its parameters, when it was (re-)enqueued, when a worker last showed
    progress, when it must be finished by, and why it failed. Each model adds its own `task` field (what is pending,
    from its own choices)."""

    task_params = models.JSONField(default=dict, blank=True)
    task_enqueued_at = models.DateTimeField(null=True, blank=True)
    task_progress_at = models.DateTimeField(null=True, blank=True)
    task_deadline = models.DateTimeField(null=True, blank=True)
    task_requeues = models.PositiveIntegerField(default=0)
    error_reason = models.TextField(blank=True)

    class Meta:
        abstract = True


class DiskFormat(models.TextChoices):
    RAW = "raw", "raw"
    QCOW2 = "qcow2", "qcow2"


class ImageState(models.TextChoices):
    """Catalog images are always available; a tenant's private image is made from a snapshot, then deleted."""

    CREATING = "creating", "Creating"
    AVAILABLE = "available", "Available"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    ERROR = "error", "Error"


IMAGE_TRANSITIONAL_STATES = frozenset({ImageState.CREATING, ImageState.DELETING})
# How long making a private image (a copy of a snapshot) or deleting one may take before the reconciler fails it.
IMAGE_TASK_DEADLINE = timedelta(minutes=30)


class Image(PoolFile, models.Model):
    """An operating system image: a base disk, or a kernel + initrd pair, that the driver boots.

    Images of no tenant are the provider's catalog; an image with a tenant is that tenant's private image, made from
    a snapshot of a boot disk and kept as a file in one host's storage pool (`host`): machines launched from it are
    placed on that host.
    """

    State = ImageState
    transitional_states = IMAGE_TRANSITIONAL_STATES
    driver_prefix = "hangar-image-"  # a private image's file

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: the public catalog. Set: the organisation's private image.",
    )
    state = models.CharField(max_length=16, choices=ImageState.choices, default=ImageState.AVAILABLE)
    size_gib = models.PositiveIntegerField(
        "size (GiB)", default=0, help_text="Private images: the size billed per GiB-month (the snapshot's size)."
    )
    host = models.ForeignKey(
        Host,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="private_images",
        help_text="Private images: the host whose storage pool holds the file.",
    )
    source_snapshot_id = models.UUIDField(null=True, blank=True, help_text="The snapshot it was made from.")
    source_name = models.CharField(max_length=100, blank=True, help_text="What it was made from, as people read it.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Work in progress of a private image (its copy or its removal), for the reconciler.
    task_enqueued_at = models.DateTimeField(null=True, blank=True)
    task_deadline = models.DateTimeField(null=True, blank=True)
    error_reason = models.TextField(blank=True)
    os = models.CharField("operating system", max_length=50, help_text="e.g. Debian, Ubuntu, Rocky Linux")
    version = models.CharField(max_length=50)
    min_disk_gib = models.PositiveIntegerField("minimum disk (GiB)", default=1)
    min_ram_mib = models.PositiveIntegerField("minimum RAM (MiB)", default=256)
    disk_path = models.CharField(max_length=500, blank=True, help_text="Base disk on the hosts.")
    disk_format = models.CharField(max_length=8, choices=DiskFormat.choices, default=DiskFormat.RAW)
    kernel_path = models.CharField(max_length=500, blank=True, help_text="Direct kernel boot (instead of a disk).")
    initrd_path = models.CharField(max_length=500, blank=True)
    kernel_cmdline = models.CharField(max_length=500, blank=True)
    active = models.BooleanField(default=True, help_text="Inactive images cannot be launched; running ones stay.")
    regions = models.ManyToManyField(
        Region,
        blank=True,
        related_name="images",
        help_text="The regions whose hosts have its files; none selected: every region.",
    )

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["os", "-version", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(tenant__isnull=True), name="image_unique_public_name"
            ),
            models.UniqueConstraint(
                Lower("name"),
                "tenant",
                condition=models.Q(tenant__isnull=False) & ~models.Q(state=ImageState.DELETED),
                name="image_unique_live_private_name",
            ),
            models.CheckConstraint(condition=models.Q(state__in=ImageState.values), name="image_state_valid"),
        ]

    @property
    def is_private(self) -> bool:
        return self.tenant_id is not None

    def billable(self) -> BillableResource:
        """A private image as billing meters it: its GiB (compute.lifecycle)."""
        return BillableResource(
            tenant_id=self.tenant_id, resource_type=IMAGE, resource_id=self.pk, name=self.name, quantity=self.size_gib
        )

    def clean(self) -> None:
        if self.is_private:
            return
        if not self.disk_path and not self.kernel_path:
            raise ValidationError("Give either a base disk path or a kernel path.")
        if self.initrd_path and not self.kernel_path:
            raise ValidationError({"initrd_path": "An initrd needs a kernel path."})

    def available_in(self, region: "Region") -> bool:
        if self.host_id is not None:
            return self.host.region_id == region.pk
        regions = [r.pk for r in self.regions.all()]
        return not regions or region.pk in regions

    @property
    def source(self) -> ImageSource:
        return ImageSource(
            disk_path="" if self.is_private else self.disk_path,
            disk_format=DiskFormat.QCOW2 if self.is_private else self.disk_format,
            kernel_path=self.kernel_path,
            initrd_path=self.initrd_path,
            kernel_cmdline=self.kernel_cmdline,
            pool_file=self.driver_name if self.is_private else "",
        )


def validate_public_key(value: str) -> None:
    """Model and form validator: the text must be one supported OpenSSH public key."""
    from compute.sshkeys import parse_public_key

    parse_public_key(value)


class SSHKey(TenantOwned):
    """A tenant's SSH public key; copied into instances at launch."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    public_key = models.TextField(validators=[validate_public_key])
    fingerprint = models.CharField(max_length=100, editable=False)
    key_type = models.CharField(max_length=40, editable=False)
    bits = models.PositiveIntegerField(editable=False)
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "SSH key"
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "fingerprint"], name="sshkey_unique_fingerprint_per_tenant"),
            models.UniqueConstraint(fields=["tenant", "name"], name="sshkey_unique_name_per_tenant"),
        ]

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> dict:
        """What an instance keeps of this key: deleting the key later never touches the instance."""
        return {"name": self.name, "fingerprint": self.fingerprint, "public_key": self.public_key}


HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
validate_instance_name = RegexValidator(
    HOSTNAME_RE,
    "Use 1 to 63 letters, digits and hyphens, starting and ending with a letter or digit (it becomes the hostname).",
    code="invalid_name",
)


class InstanceState(models.TextChoices):
    PENDING = "pending", "Pending"
    BUILDING = "building", "Building"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    STARTING = "starting", "Starting"
    REBOOTING = "rebooting", "Rebooting"
    RESIZING = "resizing", "Resizing"
    MIGRATING = "migrating", "Moving to another host"
    RESTORING = "restoring", "Restoring a backup"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    ERROR = "error", "Error"


TRANSITIONAL_STATES = frozenset(
    {
        InstanceState.PENDING,
        InstanceState.BUILDING,
        InstanceState.STARTING,
        InstanceState.STOPPING,
        InstanceState.REBOOTING,
        InstanceState.RESIZING,
        InstanceState.MIGRATING,
        InstanceState.RESTORING,
        InstanceState.DELETING,
    }
)


class InstanceTask(models.TextChoices):
    """The work a transitional instance is waiting for; the reconciler re-enqueues it if its message was lost."""

    NONE = "", "none"
    BUILD = "build", "build"
    START = "start", "start"
    STOP = "stop", "stop"
    REBOOT = "reboot", "reboot"
    RESIZE = "resize", "resize"
    MIGRATE = "migrate", "migrate"
    RESTORE = "restore", "restore"
    DELETE = "delete", "delete"


# How long each kind of work may take, from the request, before the reconciler fails it.
TASK_DEADLINES = {
    InstanceTask.BUILD: timedelta(minutes=15),
    InstanceTask.START: timedelta(minutes=10),
    InstanceTask.STOP: timedelta(minutes=10),
    InstanceTask.REBOOT: timedelta(minutes=10),
    InstanceTask.RESIZE: timedelta(minutes=15),
    # A cold migration copies the disk between hosts.
    InstanceTask.MIGRATE: timedelta(minutes=60),
    # Overwriting the disk with a backup copies the whole disk.
    InstanceTask.RESTORE: timedelta(minutes=60),
    InstanceTask.DELETE: timedelta(minutes=10),
}

# The state each task moves an instance into while it runs, and the state it leaves it in on success.
TASK_STATES = {
    InstanceTask.BUILD: (InstanceState.BUILDING, InstanceState.RUNNING),
    InstanceTask.START: (InstanceState.STARTING, InstanceState.RUNNING),
    InstanceTask.STOP: (InstanceState.STOPPING, InstanceState.STOPPED),
    InstanceTask.REBOOT: (InstanceState.REBOOTING, InstanceState.RUNNING),
    InstanceTask.RESIZE: (InstanceState.RESIZING, InstanceState.STOPPED),
    # A migrated machine ends as it was (running or stopped): instance_migrate_succeeded decides.
    InstanceTask.MIGRATE: (InstanceState.MIGRATING, InstanceState.STOPPED),
    # Likewise a restored machine runs again if it ran before.
    InstanceTask.RESTORE: (InstanceState.RESTORING, InstanceState.STOPPED),
    InstanceTask.DELETE: (InstanceState.DELETING, InstanceState.DELETED),
}


@dataclass(frozen=True)
class Transition:
    """One user action on an instance: the states it is allowed from and the task it starts (None: immediate)."""

    from_states: frozenset[str]
    task: str | None
    # How a refusal names the states it is allowed from: "only a stopped instance can be resized".
    allowed_label: str
    operator_only: bool = False  # offered in the admin, not to tenants
    listed: bool = True  # in `allowed_actions`; False: requested elsewhere (a restore, through one of its backups)


_LIVE = frozenset(InstanceState.values) - {InstanceState.DELETING, InstanceState.DELETED}

# The one table of what each action needs: read by Instance.can(), the services' guards, the dashboard's buttons
# and the API's `allowed_actions`. The operator-only actions (force stop, mark as error) are in it too.
INSTANCE_ACTIONS = {
    "start": Transition(frozenset({InstanceState.STOPPED}), InstanceTask.START, "a stopped"),
    "stop": Transition(frozenset({InstanceState.RUNNING}), InstanceTask.STOP, "a running"),
    # Cutting the power may also take over a graceful shutdown that hangs.
    "force_stop": Transition(
        frozenset({InstanceState.RUNNING, InstanceState.STOPPING}), InstanceTask.STOP, "a running", operator_only=True
    ),
    "reboot": Transition(frozenset({InstanceState.RUNNING}), InstanceTask.REBOOT, "a running"),
    "resize": Transition(frozenset({InstanceState.STOPPED}), InstanceTask.RESIZE, "a stopped"),
    "delete": Transition(
        frozenset({InstanceState.RUNNING, InstanceState.STOPPED, InstanceState.ERROR}),
        InstanceTask.DELETE,
        "a running, stopped or failed",
    ),
    "rename": Transition(_LIVE, None, "a live"),
    "mark_error": Transition(
        frozenset(InstanceState.values) - {InstanceState.DELETED}, None, "a live", operator_only=True
    ),
    # Cold migration to another host of the region (host evacuation): stop, move the disk, start again.
    "migrate": Transition(
        frozenset({InstanceState.RUNNING, InstanceState.STOPPED}),
        InstanceTask.MIGRATE,
        "a running or stopped",
        operator_only=True,
    ),
    # Overwrite the boot disk with one of its backups (compute.storage): stop, replace the disk, start if it ran.
    "restore": Transition(
        frozenset({InstanceState.RUNNING, InstanceState.STOPPED}),
        InstanceTask.RESTORE,
        "a running or stopped",
        listed=False,
    ),
    # Build again an instance whose provisioning failed (it never ran, so nothing of it is billed).
    "retry": Transition(frozenset({InstanceState.ERROR}), InstanceTask.BUILD, "a failed", operator_only=True),
}


# What InstanceQuerySet.live() selects, as the condition of the partial indexes that serve it.
_LIVE_ROWS = ~models.Q(state=InstanceState.DELETED)
# A tenant's live machines have different names (case aside); a launch that takes a used name breaks this index.
INSTANCE_NAME_CONSTRAINT = "instance_unique_live_name_per_tenant"


# The fields that decide what an instance holds against its tenant's quota and its hosts' room.
USAGE_FIELDS = ("tenant_id", "state", "flavor_id", "resize_flavor_id", "host_id", "migration_host_id")
DEFERRED_FIELD = object()


class InstanceQuerySet(TenantQuerySet):
    def live(self):
        """Everything but deleted instances (which stay in the database for billing and the event log)."""
        return self.exclude(state=InstanceState.DELETED)

    def transitional(self):
        return self.filter(state__in=TRANSITIONAL_STATES)


class Instance(StatefulResource, TenantOwned, WorkFields):
    """A virtual machine rented by a tenant."""

    State = InstanceState
    Task = InstanceTask
    transitional_states = TRANSITIONAL_STATES

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=63, validators=[validate_instance_name])
    flavor = models.ForeignKey(Flavor, on_delete=models.PROTECT, related_name="instances")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="instances")
    region = models.ForeignKey(Region, on_delete=models.PROTECT, null=True, blank=True, related_name="instances")
    host = models.ForeignKey(Host, on_delete=models.PROTECT, null=True, blank=True, related_name="instances")
    # The host a migration in progress moves it to; its capacity is held there too until the move finishes.
    migration_host = models.ForeignKey(
        Host, on_delete=models.PROTECT, null=True, blank=True, related_name="incoming_instances"
    )
    state = models.CharField(max_length=16, choices=InstanceState.choices, default=InstanceState.PENDING)
    power_state = models.CharField(max_length=16, choices=[(s, s) for s in PowerState], default=PowerState.NOSTATE)
    private_ip = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    ssh_keys = models.JSONField(default=list, blank=True, help_text="Keys copied at launch: name, fingerprint, key.")
    user_data = models.TextField(
        blank=True, help_text="The cloud-init user-data given at launch (cloud-config or script)."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # The size a requested resize moves to; counted against quota and host capacity until it finishes.
    resize_flavor = models.ForeignKey(Flavor, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # The work in progress (WorkFields has the rest of it).
    task = models.CharField(max_length=16, choices=InstanceTask.choices, default=InstanceTask.NONE, blank=True)
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    deleted_at = models.DateTimeField(null=True, blank=True)
    # A machine restored from a backup: its first disk was copied from that file of its host's pool, not made from
    # the image (kept, so an operator's retry of a failed build copies it again).
    disk_source = models.JSONField(
        default=dict, blank=True, help_text="What the boot disk was copied from at build: kind, id, name, file."
    )

    objects = InstanceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "tenant",
                condition=~models.Q(state=InstanceState.DELETED),
                name=INSTANCE_NAME_CONSTRAINT,
            ),
            models.CheckConstraint(condition=models.Q(state__in=InstanceState.values), name="instance_state_valid"),
        ]
        indexes = [
            # The tenant's live machines in the list's order: its first page is the index's first rows, whatever the
            # tenant's size; the filter bar asks which sizes and images the tenant's live machines use.
            models.Index(fields=["tenant", "-created_at", "id"], condition=_LIVE_ROWS, name="instance_live_newest"),
            models.Index(fields=["tenant", "flavor"], condition=_LIVE_ROWS, name="instance_live_flavor"),
            models.Index(fields=["tenant", "image"], condition=_LIVE_ROWS, name="instance_live_image"),
            models.Index(fields=["tenant", "state"], name="instance_tenant_state"),
            models.Index(fields=["host", "state"], name="instance_host_state"),
            models.Index(fields=["state", "task_enqueued_at"], name="instance_state_enqueued"),
            # The dashboard list's staleness token: the tenant's last change, one probe (selectors).
            models.Index(fields=["tenant", "updated_at"], name="instance_tenant_updated"),
        ]
        # What support staff may do besides reading (the "support" group): operators have them too.
        permissions = [
            ("reconcile", "Can run the reconciler now"),
            ("retry_instance", "Can retry a failed provisioning"),
        ]

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # What it held when read: compute.services.usage applies the difference when a save changes it.
        fields = instance.__dict__
        instance._usage_read = tuple(fields.get(name, DEFERRED_FIELD) for name in USAGE_FIELDS)
        return instance

    def can(self, action: str) -> bool:
        """Whether the instance's state allows `action` (a key of INSTANCE_ACTIONS)."""
        return self.state in INSTANCE_ACTIONS[action].from_states

    def can_start(self) -> bool:
        return self.can("start")

    def can_stop(self) -> bool:
        return self.can("stop")

    def can_force_stop(self) -> bool:
        return self.can("force_stop")

    def can_reboot(self) -> bool:
        return self.can("reboot")

    def can_resize(self) -> bool:
        return self.can("resize")

    def can_delete(self) -> bool:
        return self.can("delete")

    def can_rename(self) -> bool:
        return self.can("rename")

    def can_restore(self) -> bool:
        return self.can("restore")

    @property
    def allowed_actions(self) -> list[str]:
        """The actions the dashboard offers and the API lists for this instance now (tenants' actions only)."""
        return [
            action
            for action, transition in INSTANCE_ACTIONS.items()
            if not transition.operator_only and transition.listed and self.state in transition.from_states
        ]

    def billable(self) -> BillableResource:
        """The instance as billing meters it (compute.lifecycle)."""
        return BillableResource(
            tenant_id=self.tenant_id,
            resource_type=INSTANCE,
            resource_id=self.pk,
            name=self.name,
            flavor_id=self.flavor_id,
        )

    @property
    def key_fingerprints(self) -> list[str]:
        return [key.get("fingerprint", "") for key in self.ssh_keys]


class EventAction(models.TextChoices):
    LAUNCH = "launch", "Launch"
    BUILD = "build", "Build"
    START = "start", "Start"
    STOP = "stop", "Stop"
    FORCE_STOP = "force_stop", "Force stop"
    REBOOT = "reboot", "Reboot"
    RESIZE = "resize", "Resize"
    DELETE = "delete", "Delete"
    RENAME = "rename", "Rename"
    MARK_ERROR = "mark_error", "Mark as error"
    MIGRATE = "migrate", "Move to another host"
    RETRY = "retry", "Retry provisioning"
    RESTORE = "restore", "Restore a backup"
    RECONCILE = "reconcile", "Reconcile"


class InstanceEvent(Event):
    """One entry of an instance's action log: a request or an outcome, by whom (None: the system), when."""

    Action = EventAction

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=32, choices=EventAction.choices)

    class Meta(Event.Meta):
        indexes = [models.Index(fields=["instance", "-created_at"], name="instanceevent_instance_time")]

    def __str__(self) -> str:
        return f"{self.instance} {self.action} {self.result}"


class SimulatedDomain(models.Model):
    """A domain on a simulated host: the simulated hypervisor's state, shared by every process via the database."""

    uuid = models.UUIDField(primary_key=True)
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="simulated_domains")
    name = models.CharField(max_length=100)
    vcpus = models.PositiveIntegerField()
    ram_mib = models.PositiveIntegerField()
    disk_gib = models.PositiveIntegerField()
    image = models.CharField(max_length=500, blank=True)
    power = models.CharField(max_length=16, choices=[(s, s) for s in PowerState], default=PowerState.BOOTING)
    # When a booting domain becomes running, or a stopping one shuts off.
    settles_at = models.DateTimeField(null=True, blank=True)
    # The primary NIC's address: isolated tenant networks may use the same range, so it is not unique on a host.
    private_ip = models.GenericIPAddressField(protocol="IPv4")
    nics = models.JSONField(default=list, blank=True, help_text="The NICs it was created with: mac, network, ip.")
    seed = models.JSONField(default=dict, blank=True, help_text="The cloud-init seed it was created with.")
    firewall = models.JSONField(default=list, blank=True, help_text="The firewall rules on its interfaces.")
    # Interface counters as of counters_at; they restart from zero when the domain (re)starts, like a real NIC's.
    rx_bytes = models.BigIntegerField(default=0)
    tx_bytes = models.BigIntegerField(default=0)
    counters_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["host", "created_at"]

    def __str__(self) -> str:
        return f"{self.name} on {self.host}"


class OrphanDomain(models.Model):
    """A domain the reconciler found on a host that matches no live instance there: for operators to resolve."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="orphan_domains")
    uuid = models.CharField(max_length=64)
    power_state = models.CharField(max_length=16, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="Set when the domain is gone from the host.")
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [models.UniqueConstraint(fields=["host", "uuid"], name="orphandomain_unique_host_uuid")]

    def __str__(self) -> str:
        return f"{self.uuid} on {self.host}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
