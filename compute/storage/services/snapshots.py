"""Snapshot requests and the outcome recorders the worker tasks call (the same shape as volumes).

A snapshot is a copy of a volume kept in the pool of the host that keeps the volume; it outlives the volume and
makes new volumes (compute.storage.services.volumes.volume_create with `snapshot`). Taken from a volume attached to
a running machine, it is crash-consistent: like the disk after a power cut. Snapshots of a machine's boot disk use
the same model (`source_instance`) and the same worker (the boot disk's file is the source).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compute import lifecycle
from compute.models import InstanceState
from compute.scheduler import place_storage
from compute.storage.models import Snapshot, SnapshotState, StorageEventAction, StorageTask, Volume, VolumeState
from compute.storage.services.common import (
    busy,
    check_accepts_new_spending,
    clean_labels,
    clean_name,
    create_requested,
    delete_refusal,
    finish_task,
    item_delete,
    item_update,
    item_vanished,
    name_taken,
    pending,
)
from tenants.models import EventResult
from tenants.services import user_check_verified

A = StorageEventAction
TASK_STATES = {
    StorageTask.CREATE: (SnapshotState.CREATING, SnapshotState.AVAILABLE),
    StorageTask.DELETE: (SnapshotState.DELETING, SnapshotState.DELETED),
}
TASK_ACTIONS = {StorageTask.CREATE: A.SNAPSHOT_CREATE, StorageTask.DELETE: A.SNAPSHOT_DELETE}


def snapshot_create(*, volume: Volume, user, name: str, labels: dict | None = None) -> Snapshot:
    """Takes a snapshot of an available or in-use volume, in the pool of the host that keeps it. A volume attached
    to a running machine gives a crash-consistent snapshot (the answer says so)."""
    user_check_verified(user=user, verb="take a snapshot")
    check_accepts_new_spending(volume.tenant_id)
    name = clean_name(name, what="snapshot")
    labels = clean_labels(labels)
    with transaction.atomic():
        locked = Volume.objects.select_for_update(of=("self",)).select_related("instance").get(pk=volume.pk)
        if not locked.can_snapshot():
            raise busy(locked, "snapshot", "an available or in-use")
        if (taken := name_taken(Snapshot, tenant_id=locked.tenant_id, name=name, what="snapshot")) is not None:
            raise taken
        host = place_storage(size_gib=locked.size_gib, region=locked.region, host=locked.host)
        running = locked.state == VolumeState.IN_USE and locked.instance.state != InstanceState.STOPPED
        now = timezone.now()
        snapshot = Snapshot(
            tenant_id=locked.tenant_id,
            name=name,
            size_gib=locked.size_gib,
            source_volume=locked,
            source_name=locked.name,
            crash_consistent=running,
            region_id=locked.region_id,
            host=host,
            labels=labels,
            created_by=user,
            created_at=now,
        )
        params = {"source": locked.driver_name}
        if running:
            params |= {"domain": str(locked.instance_id), "device": locked.device}
        message = f"of {locked.name} ({locked.size_gib} GiB)"
        if running:
            message += f", crash-consistent: {locked.instance.name} is running"
        create_requested(snapshot, user=user, action=A.SNAPSHOT_CREATE, message=message, now=now, params=params)
    return snapshot


def snapshot_delete(*, snapshot: Snapshot, user) -> Snapshot:
    """Stops billing at once and enqueues the deletion; volumes made from it keep their data."""
    return item_delete(
        snapshot,
        user=user,
        refusal_of=lambda locked: delete_refusal(
            locked,
            making=locked.volumes_made.filter(state=VolumeState.CREATING),
            happening=f"A volume is being made from {locked.name}",
        ),
        state=TASK_STATES[StorageTask.DELETE][0],
        action=A.SNAPSHOT_DELETE,
        resource_type=lifecycle.SNAPSHOT,
    )


def snapshot_update(*, snapshot: Snapshot, user, name: str | None = None, labels: dict | None = None) -> Snapshot:
    """Renames the snapshot and/or replaces its labels."""
    return item_update(
        item=snapshot, user=user, name=name, labels=labels, action=A.SNAPSHOT_RENAME, resource_type=lifecycle.SNAPSHOT
    )


# --- outcomes ---------------------------------------------------------------------------------------------------


def snapshot_task_succeeded(*, snapshot_id: str, task: str) -> Snapshot | None:
    with transaction.atomic():
        snapshot = pending(Snapshot, snapshot_id, task, TASK_STATES)
        if snapshot is None:
            return None
        now = timezone.now()
        fields = []
        if task == StorageTask.CREATE:
            lifecycle.announce_billable(resource=snapshot.billable(), at=now)
        else:
            snapshot.deleted_at = now
            fields.append("deleted_at")
        snapshot.state = TASK_STATES[task][1]
        finish_task(snapshot, action=TASK_ACTIONS[task], fields=fields, at=now)
    return snapshot


def snapshot_task_failed(*, snapshot_id: str, task: str, reason: str) -> Snapshot | None:
    with transaction.atomic():
        snapshot = pending(Snapshot, snapshot_id, task, TASK_STATES)
        if snapshot is None:
            return None
        snapshot.state = SnapshotState.ERROR
        snapshot.error_reason = reason
        finish_task(
            snapshot, action=TASK_ACTIONS[task], fields=["error_reason"], message=reason, result=EventResult.FAILED
        )
    return snapshot


def snapshot_vanished(*, snapshot_id: str, host_name: str) -> bool:
    return item_vanished(
        Snapshot,
        pk=snapshot_id,
        state=SnapshotState.AVAILABLE,
        host_name=host_name,
        resource_type=lifecycle.SNAPSHOT,
        action=A.SNAPSHOT_ERROR,
    )
