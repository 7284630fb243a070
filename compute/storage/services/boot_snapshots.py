"""Snapshots of a machine's boot disk: a stopped machine's disk as it is, a running one's as it was at one instant
(crash-consistent: like after a power cut; the request says so and the snapshot keeps the flag). The snapshot is a
standalone copy in the machine's host pool: it can make new volumes, or a private image."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from compute.models import Instance, InstanceState
from compute.storage.models import STORAGE_TASK_DEADLINES, Snapshot, SnapshotState, StorageEventAction, StorageTask
from compute.storage.services.backups import BACKUP_FROM, storage_log
from portal.errors import Conflict, InvalidRequest
from tenants.models import ActivityEntry, EventResult

SNAPSHOT_RESOURCE = ActivityEntry.ResourceType.SNAPSHOT
CRASH_CONSISTENT_WARNING = (
    "The machine is running: the snapshot is crash-consistent, like the disk after a power cut. Data the guest has "
    "not written out yet is not in it; stop the machine first for a clean copy."
)


def _dispatch(snapshot_id: str) -> None:
    from compute.storage.backup_tasks import enqueue_boot_snapshot

    try:
        enqueue_boot_snapshot(snapshot_id=snapshot_id)
    except Exception:  # the reconciler sends it again
        import logging

        logging.getLogger(__name__).exception("Could not enqueue the boot-disk snapshot %s", snapshot_id)


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 63 or any(ord(char) < 32 for char in name):
        raise InvalidRequest(
            "Give the snapshot a name of 1 to 63 printable characters.", code="invalid_name", details={"field": "name"}
        )
    return name


def instance_snapshot(*, instance: Instance, user, name: str) -> Snapshot:
    """Starts a snapshot of the machine's boot disk; a running machine's is crash-consistent (see the warning)."""
    name = _name(name)
    with transaction.atomic():
        locked = Instance.objects.select_for_update().select_related("flavor", "host").get(pk=instance.pk)
        if locked.state not in BACKUP_FROM or locked.host_id is None:
            state = locked.get_state_display().lower()
            refusal = Conflict(
                f"{locked.name} is {state}; only a running or stopped machine's disk can be snapshotted.",
                code="instance_busy",
                details={"state": locked.state},
            )
        else:
            refusal = None
            now = timezone.now()
            running = locked.state == InstanceState.RUNNING
            snapshot = Snapshot(
                tenant_id=locked.tenant_id,
                name=name,
                state=SnapshotState.CREATING,
                size_gib=locked.flavor.disk_gib,
                source_instance=locked,
                source_name=locked.name,
                crash_consistent=running,
                region_id=locked.region_id or locked.host.region_id,
                host_id=locked.host_id,
                created_by=user,
                created_at=now,
                task=StorageTask.CREATE,
                task_enqueued_at=now,
                task_deadline=now + STORAGE_TASK_DEADLINES[StorageTask.CREATE],
            )
            try:
                with transaction.atomic():
                    snapshot.save(force_insert=True)
            except IntegrityError:
                raise InvalidRequest(
                    f"You already have a snapshot called {name}; pick another name.",
                    code="name_taken",
                    details={"field": "name"},
                ) from None
            storage_log(
                tenant_id=locked.tenant_id,
                action=StorageEventAction.SNAPSHOT_CREATE,
                result=EventResult.REQUESTED,
                subject=name,
                resource_id=snapshot.pk,
                resource_type=SNAPSHOT_RESOURCE,
                user=user,
                message=f"Of the disk of {locked.name}. " + (CRASH_CONSISTENT_WARNING if running else ""),
                at=now,
            )
            snapshot_id = str(snapshot.pk)
            transaction.on_commit(lambda: _dispatch(snapshot_id))
    if refusal is not None:
        raise refusal
    return snapshot
