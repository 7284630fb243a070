"""The worker side of volumes and snapshots: claim the work, drive the host's pool, report the outcome; and the
reconciler's writes (overdue work failed, lost work sent again).

Every step is safe to repeat: the claim only stamps progress on work the item still waits for, every driver call is
idempotent on the file's name (a create after a crash keeps what the first attempt made, a delete of a file that is
gone succeeds), and the outcome recorders ignore outcomes of work the item no longer waits for.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compute.drivers import driver_for
from compute.drivers.base import DomainNotFound, PermanentDriverError, VolumeNotFound
from compute.models import Host
from compute.storage.models import STORAGE_TASK_DEADLINES, Snapshot, StorageTask, Volume
from compute.storage.services import snapshots, volumes
from compute.storage.services.common import MODELS, dispatch
from compute.storage.services.events import item_event
from tenants.models import EventResult

TASK_STATES = {"volume": volumes.TASK_STATES, "snapshot": snapshots.TASK_STATES}
SUCCEEDED = {"volume": volumes.volume_task_succeeded, "snapshot": snapshots.snapshot_task_succeeded}
FAILED = {"volume": volumes.volume_task_failed, "snapshot": snapshots.snapshot_task_failed}


def _succeeded(kind: str, pk: str, task: str):
    return SUCCEEDED[kind](**{f"{kind}_id": pk, "task": task})


def storage_task_failed(*, kind: str, pk: str, task: str, reason: str):
    return FAILED[kind](**{f"{kind}_id": pk, "task": task, "reason": reason})


def storage_task_claim(*, kind: str, pk: str, task: str) -> Volume | Snapshot | None:
    """Stamps progress on the work if the item still waits for it (None: nothing to do, a duplicate delivery)."""
    model = MODELS[kind]
    in_progress = TASK_STATES[kind][task][0]
    if not model.objects.filter(pk=pk, task=task, state=in_progress).update(task_progress_at=timezone.now()):
        return None
    return model.objects.select_related("host").get(pk=pk)


def _drive_volume(volume: Volume, task: str) -> None:
    driver = driver_for(volume.host)
    name = volume.driver_name
    machine = str(volume.instance_id) if volume.instance_id else ""
    if task == StorageTask.CREATE:
        source = volume.source_snapshot.driver_name if volume.source_snapshot_id else ""
        driver.volume_create(name, size_gib=volume.size_gib, source=source)
    elif task == StorageTask.ATTACH:
        if source_id := volume.task_params.get("move_from"):
            driver_for(Host.objects.get(pk=source_id)).volume_move_to(name, driver)
            volumes.volume_moved(volume_id=str(volume.pk))
        driver.volume_attach(machine, name, device=volume.device)
    elif task == StorageTask.DETACH:
        if machine:
            driver.volume_detach(machine, name)
    elif task == StorageTask.EXTEND:
        driver.volume_extend(name, size_gib=volume.size_gib, uuid=machine, device=volume.device)
    elif task == StorageTask.DELETE:
        if machine:
            driver.volume_detach(machine, name)
        driver.volume_delete(name)
    else:  # pragma: no cover - TASK_STATES and this function list the same tasks
        raise ValueError(f"Unknown task {task!r}")


def _drive_snapshot(snapshot: Snapshot, task: str) -> None:
    driver = driver_for(snapshot.host)
    if task == StorageTask.CREATE and snapshot.task_params.get("boot_disk_of"):
        # A machine's boot disk (compute.storage.services.boot_snapshots).
        driver.disk_snapshot(snapshot.task_params["boot_disk_of"], name=snapshot.driver_name)
    elif task == StorageTask.CREATE:
        params = snapshot.task_params
        driver.volume_snapshot(
            snapshot.driver_name,
            source=params["source"],
            domain=params.get("domain", ""),
            device=params.get("device", ""),
        )
    elif task == StorageTask.DELETE:
        driver.volume_delete(snapshot.driver_name)
    else:  # pragma: no cover
        raise ValueError(f"Unknown task {task!r}")


def storage_task_perform(*, kind: str, pk: str, task: str) -> None:
    """Runs one piece of volume or snapshot work end to end. TransientDriverError propagates (the task retries)."""
    item = storage_task_claim(kind=kind, pk=pk, task=task)
    if item is None:
        return
    if item.host is None:
        if task == StorageTask.DELETE:
            _succeeded(kind, pk, task)
        else:
            storage_task_failed(kind=kind, pk=pk, task=task, reason=f"The {kind} has no host.")
        return
    try:
        (_drive_volume if kind == "volume" else _drive_snapshot)(item, task)
    except VolumeNotFound as error:
        if task == StorageTask.DELETE:
            _succeeded(kind, pk, task)  # gone already: what a delete wants
        else:
            storage_task_failed(kind=kind, pk=pk, task=task, reason=f"Its data is gone from its host ({error}).")
        return
    except DomainNotFound as error:
        storage_task_failed(kind=kind, pk=pk, task=task, reason=f"The machine is gone from its host ({error}).")
        return
    except PermanentDriverError as error:
        storage_task_failed(kind=kind, pk=pk, task=task, reason=str(error))
        return
    _succeeded(kind, pk, task)


# --- the reconciler's writes ------------------------------------------------------------------------------------


def storage_task_requeue(*, kind: str, pk: str, seen_enqueued_at, seen_progress_at, reason: str) -> bool:
    """Sends work that shows no progress to the workers again; False if someone else already did, if it moved on, or
    if a worker has claimed it or shown progress since it was seen (its `task_progress_at` changed)."""
    with transaction.atomic():
        item = MODELS[kind].objects.select_for_update().filter(pk=pk).first()
        if item is None or not item.is_transitional or not item.task or item.task_enqueued_at != seen_enqueued_at:
            return False
        if item.task_progress_at != seen_progress_at:
            return False
        now = timezone.now()
        item.task_enqueued_at = now
        item.task_progress_at = None
        item.task_requeues += 1
        item.save(update_fields=["task_enqueued_at", "task_progress_at", "task_requeues", "updated_at"])
        item_event(item, TASK_ACTIONS_OF[kind][item.task], EventResult.REQUESTED, message=reason, at=now)
        task = item.task
        transaction.on_commit(lambda: dispatch(kind, pk, task))
    return True


def storage_task_overdue(*, kind: str, pk: str, now) -> bool:
    """Fails work that is past its deadline, naming what did not finish and for how long it was tried."""
    item = MODELS[kind].objects.filter(pk=pk).first()
    if item is None or not item.is_transitional or not item.task or not item.task_deadline or item.task_deadline > now:
        return False
    minutes = int(STORAGE_TASK_DEADLINES[item.task].total_seconds() // 60)
    tries = item.task_requeues + 1
    reason = (
        f"The {item.task} did not finish within {minutes} minutes (sent to the workers {tries} "
        f"time{'s' if tries > 1 else ''})."
    )
    return storage_task_failed(kind=kind, pk=pk, task=item.task, reason=reason) is not None


TASK_ACTIONS_OF = {"volume": volumes.TASK_ACTIONS, "snapshot": snapshots.TASK_ACTIONS}
