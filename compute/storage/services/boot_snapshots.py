"""Snapshots of a machine's boot disk: a stopped machine's disk as it is, a running one's as it was at one instant
(crash-consistent: like after a power cut; the request says so and the snapshot keeps the flag). The snapshot is a
standalone copy in the machine's host pool, made, billed, listed and deleted like any snapshot: it can make new
volumes, or a private image."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compute.models import Instance, InstanceState
from compute.scheduler import place_storage
from compute.storage.models import Snapshot, StorageEventAction
from compute.storage.services.common import (
    check_accepts_new_spending,
    clean_labels,
    clean_name,
    create_requested,
    name_taken,
)
from portal.errors import Conflict
from tenants.services import user_check_verified

CRASH_CONSISTENT_WARNING = (
    "The machine is running: the snapshot is crash-consistent, like the disk after a power cut. What the guest has "
    "not written to disk yet is not in it; stop the machine first for a clean copy."
)
SNAPSHOT_FROM = frozenset({InstanceState.RUNNING, InstanceState.STOPPED})


def instance_snapshot(*, instance: Instance, user, name: str, labels: dict | None = None) -> Snapshot:
    """Starts a snapshot of the machine's boot disk in its host's pool; a running machine's is crash-consistent."""
    user_check_verified(user=user, verb="take a snapshot")
    check_accepts_new_spending(instance.tenant_id)
    name = clean_name(name, what="snapshot")
    labels = clean_labels(labels)
    with transaction.atomic():
        locked = Instance.objects.select_for_update(of=("self",)).select_related("flavor", "host").get(pk=instance.pk)
        if locked.state not in SNAPSHOT_FROM or locked.host_id is None:
            raise Conflict(
                f"{locked.name} is {locked.get_state_display().lower()}; only a running or stopped machine's disk "
                "can be snapshotted.",
                code="instance_busy",
                details={"state": locked.state},
            )
        if (taken := name_taken(Snapshot, tenant_id=locked.tenant_id, name=name, what="snapshot")) is not None:
            raise taken
        region = locked.region or locked.host.region
        host = place_storage(size_gib=locked.flavor.disk_gib, region=region, host=locked.host)
        running = locked.state == InstanceState.RUNNING
        now = timezone.now()
        snapshot = Snapshot(
            tenant_id=locked.tenant_id,
            name=name,
            size_gib=locked.flavor.disk_gib,
            source_instance=locked,
            source_name=locked.name,
            crash_consistent=running,
            region=region,
            host=host,
            labels=labels,
            created_by=user,
            created_at=now,
        )
        message = f"of the disk of {locked.name} ({locked.flavor.disk_gib} GiB)"
        if running:
            message += f". {CRASH_CONSISTENT_WARNING}"
        create_requested(
            snapshot,
            user=user,
            action=StorageEventAction.SNAPSHOT_CREATE,
            message=message,
            now=now,
            params={"boot_disk_of": str(locked.pk)},
        )
    return snapshot
