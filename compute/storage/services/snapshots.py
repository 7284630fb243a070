"""Snapshot requests and the outcome recorders the worker tasks call (the same shape as volumes).

A snapshot is a copy of a volume kept in the pool of the host that keeps the volume; it outlives the volume and
makes new volumes (compute.storage.services.volumes.volume_create with `snapshot`). Taken from a volume attached to
a running machine, it is crash-consistent: like the disk after a power cut. Snapshots of a machine's boot disk use
the same model (`source_instance`) and the same worker (the boot disk's file is the source).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from compute import lifecycle
from compute.models import InstanceState
from compute.scheduler import place_storage
from compute.storage.models import Snapshot, SnapshotState, StorageEventAction, StorageTask, Volume, VolumeState
from compute.storage.services.common import (
    TASK_FIELDS,
    busy,
    check_accepts_new_spending,
    clean_labels,
    clean_name,
    clear_task,
    item_update,
    name_taken,
    set_task,
)
from compute.storage.services.events import storage_event
from portal.errors import Conflict, InvalidRequest
from tenants.models import EventResult
from tenants.services import user_check_verified

A = StorageEventAction
TASK_STATES = {
    StorageTask.CREATE: (SnapshotState.CREATING, SnapshotState.AVAILABLE),
    StorageTask.DELETE: (SnapshotState.DELETING, SnapshotState.DELETED),
}
TASK_ACTIONS = {StorageTask.CREATE: A.SNAPSHOT_CREATE, StorageTask.DELETE: A.SNAPSHOT_DELETE}


def _lock(snapshot: Snapshot | str) -> Snapshot:
    pk = snapshot.pk if isinstance(snapshot, Snapshot) else snapshot
    return Snapshot.objects.select_for_update().get(pk=pk)


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
        set_task(snapshot, StorageTask.CREATE, params=params, now=now)
        try:
            with transaction.atomic():
                snapshot.save(force_insert=True)
        except IntegrityError:
            raise InvalidRequest(
                f"You already have a snapshot called {name}; pick another name.",
                code="name_taken",
                details={"field": "name"},
            ) from None
        message = f"of {locked.name} ({locked.size_gib} GiB)"
        if running:
            message += f", crash-consistent: {locked.instance.name} is running"
        storage_event(
            tenant_id=locked.tenant_id,
            action=A.SNAPSHOT_CREATE,
            snapshot=snapshot,
            message=message,
            actor=user,
            result=EventResult.REQUESTED,
            at=now,
        )
    return snapshot


def snapshot_delete(*, snapshot: Snapshot, user) -> Snapshot:
    """Stops billing at once and enqueues the deletion; volumes made from it keep their data."""
    refusal = None
    with transaction.atomic():
        locked = _lock(snapshot)
        if not locked.can_delete():
            refusal = busy(locked, "delete", "an available or failed")
        elif locked.volumes_made.filter(state=VolumeState.CREATING).exists():
            refusal = Conflict(
                f"A volume is being made from {locked.name}; delete it when that has finished.", code="snapshot_busy"
            )
        else:
            now = timezone.now()
            lifecycle.announce_ended(resource_type=lifecycle.SNAPSHOT, resource_id=locked.pk, at=now)
            locked.state = TASK_STATES[StorageTask.DELETE][0]
            set_task(locked, StorageTask.DELETE, now=now)
            locked.save(update_fields=["state", "updated_at", *TASK_FIELDS])
            storage_event(
                tenant_id=locked.tenant_id,
                action=A.SNAPSHOT_DELETE,
                snapshot=locked,
                actor=user,
                result=EventResult.REQUESTED,
                at=now,
            )
    if refusal is not None:
        storage_event(
            tenant_id=locked.tenant_id,
            action=A.SNAPSHOT_DELETE,
            snapshot=locked,
            message=refusal.message,
            actor=user,
            result=EventResult.REFUSED,
        )
        raise refusal
    return locked


def snapshot_update(*, snapshot: Snapshot, user, name: str | None = None, labels: dict | None = None) -> Snapshot:
    """Renames the snapshot and/or replaces its labels."""
    return item_update(
        item=snapshot, user=user, name=name, labels=labels, action=A.SNAPSHOT_RENAME, resource_type=lifecycle.SNAPSHOT
    )


# --- outcomes ---------------------------------------------------------------------------------------------------


def _pending(snapshot_id: str, task: str) -> Snapshot | None:
    snapshot = Snapshot.objects.select_for_update().filter(pk=snapshot_id).first()
    if snapshot is None or snapshot.task != task or snapshot.state != TASK_STATES[task][0]:
        return None
    return snapshot


def snapshot_task_succeeded(*, snapshot_id: str, task: str) -> Snapshot | None:
    with transaction.atomic():
        snapshot = _pending(snapshot_id, task)
        if snapshot is None:
            return None
        now = timezone.now()
        fields = ["state", "updated_at", *TASK_FIELDS]
        if task == StorageTask.CREATE:
            lifecycle.announce_billable(resource=snapshot.billable(), at=now)
        else:
            snapshot.deleted_at = now
            fields.append("deleted_at")
        snapshot.state = TASK_STATES[task][1]
        clear_task(snapshot)
        snapshot.save(update_fields=fields)
        storage_event(tenant_id=snapshot.tenant_id, action=TASK_ACTIONS[task], snapshot=snapshot, at=now)
    return snapshot


def snapshot_task_failed(*, snapshot_id: str, task: str, reason: str) -> Snapshot | None:
    with transaction.atomic():
        snapshot = _pending(snapshot_id, task)
        if snapshot is None:
            return None
        snapshot.state = SnapshotState.ERROR
        snapshot.error_reason = reason
        clear_task(snapshot)
        snapshot.save(update_fields=["state", "updated_at", "error_reason", *TASK_FIELDS])
        storage_event(
            tenant_id=snapshot.tenant_id,
            action=TASK_ACTIONS[task],
            snapshot=snapshot,
            message=reason,
            result=EventResult.FAILED,
        )
    return snapshot


def snapshot_vanished(*, snapshot_id: str, host_name: str) -> bool:
    with transaction.atomic():
        snapshot = Snapshot.objects.select_for_update().filter(pk=snapshot_id, state=SnapshotState.AVAILABLE).first()
        if snapshot is None:
            return False
        now = timezone.now()
        lifecycle.announce_ended(resource_type=lifecycle.SNAPSHOT, resource_id=snapshot.pk, at=now)
        snapshot.state = SnapshotState.ERROR
        snapshot.error_reason = f"Its data is gone from host {host_name}."
        snapshot.save(update_fields=["state", "error_reason", "updated_at"])
        storage_event(
            tenant_id=snapshot.tenant_id,
            action=A.SNAPSHOT_ERROR,
            snapshot=snapshot,
            message=snapshot.error_reason,
            result=EventResult.FAILED,
            at=now,
        )
    return True
