"""Reads for storage: what the pages, the API and the admin list, and what a tenant holds against its quota."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from compute.models import Host, Instance, InstanceState
from compute.storage.models import (
    MAX_VOLUMES_PER_INSTANCE,
    SNAPSHOT_TRANSITIONAL_STATES,
    VOLUME_TRANSITIONAL_STATES,
    Snapshot,
    SnapshotState,
    StorageEvent,
    Volume,
    VolumeState,
)
from tenants.models import Tenant

DEVICES = tuple(f"vd{letter}" for letter in "bcdefghijklmnopq")  # vda is the boot disk
assert len(DEVICES) == MAX_VOLUMES_PER_INSTANCE


def volume_usage(*, tenant: Tenant) -> dict[str, int]:
    """What the tenant's volumes hold against its quota: their GiB (a pending extend counts at its new size) and
    how many; every volume that is not deleted counts, errors included."""
    totals = (
        Volume.objects.for_tenant(tenant)
        .exclude(state=VolumeState.DELETED)
        .aggregate(volume_gb=Coalesce(Sum("size_gib"), Value(0)), volumes=Count("id"))
    )
    return {key: int(value) for key, value in totals.items()}


def volume_list(*, tenant: Tenant) -> QuerySet[Volume]:
    """The tenant's volumes, newest first, without deleted ones, with the machine each is attached to."""
    return (
        Volume.objects.for_tenant(tenant)
        .exclude(state=VolumeState.DELETED)
        .select_related("instance", "region", "source_snapshot")
        .order_by("-created_at", "id")
    )


def volume_get(*, tenant: Tenant, pk) -> Volume | None:
    """One volume of the tenant (deleted ones too: a client polling a delete sees `deleted`), or None."""
    return (
        Volume.objects.for_tenant(tenant)
        .select_related("instance", "region", "source_snapshot", "host")
        .filter(pk=pk)
        .first()
    )


def snapshot_list(*, tenant: Tenant) -> QuerySet[Snapshot]:
    return (
        Snapshot.objects.for_tenant(tenant)
        .exclude(state=SnapshotState.DELETED)
        .select_related("source_volume", "source_instance", "region")
        .order_by("-created_at", "id")
    )


def instance_volumes(*, instance: Instance) -> list[Volume]:
    """The volumes attached (or being attached) to a machine, in device order (read once per request: the page and
    its delete confirmation both ask)."""
    cached = getattr(instance, "_storage_volumes", None)
    if cached is None:
        cached = instance._storage_volumes = list(
            Volume.objects.filter(instance=instance).exclude(state=VolumeState.DELETED).order_by("device", "created_at")
        )
    return cached


def instance_disks(*, instance: Instance) -> tuple[list[Volume], list[Volume]]:
    """In one query: the machine's volumes (device order) and the tenant's available volumes of its region that it
    could take (by name)."""
    rows = list(
        Volume.objects.filter(
            Q(instance=instance)
            | Q(tenant_id=instance.tenant_id, state=VolumeState.AVAILABLE, region__hosts=instance.host_id)
        )
        .exclude(state=VolumeState.DELETED)
        .distinct()
    )
    attached = sorted((v for v in rows if v.instance_id == instance.pk), key=lambda v: (v.device, v.created_at))
    instance._storage_volumes = attached
    available = sorted((v for v in rows if v.instance_id != instance.pk), key=lambda v: (v.name, str(v.pk)))
    return attached, available


def attachable_instances(*, volume: Volume) -> QuerySet[Instance]:
    """The tenant's machines a volume can be attached to now: running or stopped, in its region."""
    return (
        Instance.objects.for_tenant(volume.tenant_id)
        .filter(state__in=(InstanceState.RUNNING, InstanceState.STOPPED), host__region_id=volume.region_id)
        .order_by("name", "id")
    )


def tenant_machines(*, tenant) -> QuerySet[Instance]:
    """The tenant's machines volumes can be attached to now (running or stopped), by name, with their region."""
    return (
        Instance.objects.for_tenant(tenant)
        .select_related("host")
        .filter(state__in=(InstanceState.RUNNING, InstanceState.STOPPED))
        .order_by("name", "id")
    )


def machine_hosts(*, tenant_id, region) -> list:
    """The hosts of `region` where the tenant's live machines run, the one with the most of them first: a new volume
    goes next to them, so it can attach to them."""
    rows = (
        Instance.objects.filter(tenant_id=tenant_id, region=region, host__isnull=False)
        .exclude(state=InstanceState.DELETED)
        .values("host")
        .annotate(machines=Count("pk"))
        .order_by("-machines", "host")
    )
    return [row["host"] for row in rows]


def free_device(*, instance: Instance) -> str | None:
    """The first device name the machine's volumes do not use, or None when it has MAX_VOLUMES_PER_INSTANCE."""
    taken = set(
        Volume.objects.filter(instance=instance).exclude(state=VolumeState.DELETED).values_list("device", flat=True)
    )
    return next((device for device in DEVICES if device not in taken), None)


def storage_events(*, tenant: Tenant, volume: Volume | None = None, snapshot: Snapshot | None = None, actions=None):
    """The tenant's storage log, newest first: of one volume or snapshot, or of some `actions`."""
    events = StorageEvent.objects.for_tenant(tenant).select_related("actor")
    if actions is not None:
        events = events.filter(action__in=actions)
    if volume is not None:
        events = events.filter(volume=volume)
    if snapshot is not None:
        events = events.filter(snapshot=snapshot)
    return events.order_by("-created_at", "-id")


# --- operators ------------------------------------------------------------------------------------------------


def pool_usage() -> list[dict]:
    """Per host: its pool's capacity (the host's disk after overcommit) and what volumes, snapshots and machine
    disks hold there."""
    from compute.scheduler import usage_annotations

    live = ~Q(volumes__state=VolumeState.DELETED)
    hosts = Host.objects.select_related("region").annotate(**usage_annotations()).order_by("name")
    volumes = dict(
        Host.objects.annotate(total=Coalesce(Sum("volumes__size_gib", filter=live), 0)).values_list("pk", "total")
    )
    snapshots = dict(
        Host.objects.annotate(
            total=Coalesce(Sum("snapshots__size_gib", filter=~Q(snapshots__state=SnapshotState.DELETED)), 0)
        ).values_list("pk", "total")
    )
    rows = []
    for host in hosts:
        rows.append(
            {
                "host": host,
                "capacity_gib": host.disk_gib_allocatable,
                "volumes_gib": int(volumes.get(host.pk, 0)),
                "snapshots_gib": int(snapshots.get(host.pk, 0)),
                "used_gib": int(host.used_disk_gib),
                "free_gib": host.disk_gib_allocatable - int(host.used_disk_gib),
            }
        )
    return rows


def stuck_volumes(*, now) -> QuerySet[Volume]:
    """Volumes whose work is past its deadline or that are in error: what an operator looks at first."""
    return (
        Volume.objects.filter(Q(state__in=VOLUME_TRANSITIONAL_STATES, task_deadline__lt=now) | Q(state="error"))
        .select_related("tenant", "host", "instance")
        .order_by("task_deadline", "created_at")
    )


def stuck_snapshots(*, now) -> QuerySet[Snapshot]:
    return (
        Snapshot.objects.filter(Q(state__in=SNAPSHOT_TRANSITIONAL_STATES, task_deadline__lt=now) | Q(state="error"))
        .select_related("tenant", "host")
        .order_by("task_deadline", "created_at")
    )
