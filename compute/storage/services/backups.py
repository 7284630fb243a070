"""Backups of machines: the schedule (enable, change, disable), the copies it makes and keeps, restores.

Requests lock the row, check the guard, change state, write a StorageEvent and enqueue the worker's task when the
transaction commits; workers report through the outcome recorders, which ignore work that is no longer pending (a
duplicate delivery records nothing twice). Beat calls `backups_run_due` every minute: each policy that fell due is
claimed by a conditional UPDATE of its `next_run_at`, so two beats (or a beat and a slow predecessor) never make
the same day's backup twice.

Billing: a machine's backups cost a share of its price (billing's dated percentage) while backups are enabled on the
live machine, and afterwards while any of its backups are kept; `_billing_sync` announces the start and the end.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import NoReturn

from django.db import transaction
from django.utils import timezone

from compute import lifecycle
from compute.models import Flavor, Instance, InstanceState
from compute.scheduler import place_storage
from compute.storage.backup_models import (
    BACKUPS_KEPT,
    Backup,
    BackupKind,
    BackupPolicy,
    BackupState,
    backup_minute,
)
from compute.storage.models import StorageEventAction, StorageTask
from compute.storage.services.common import TASK_FIELDS, clear_task, set_task
from compute.storage.services.events import item_event
from portal.errors import Conflict, InvalidRequest, ServiceError
from tenants.models import ActivityEntry, EventResult

logger = logging.getLogger(__name__)

BACKUP_RESOURCE = ActivityEntry.ResourceType.BACKUP
# The states a machine's disk can be copied in: a running machine gives a crash-consistent copy.
BACKUP_FROM = frozenset({InstanceState.RUNNING, InstanceState.STOPPED})
# The state each task keeps a backup in while it waits for it.
TASK_STATES = {StorageTask.CREATE: BackupState.CREATING, StorageTask.DELETE: BackupState.DELETING}
LIVE_BACKUP_STATES = (BackupState.CREATING, BackupState.AVAILABLE)


# --- helpers -----------------------------------------------------------------------------------------------------


def _dispatch(task: str, backup_id: str) -> None:
    from compute.storage.backup_tasks import enqueue_backup

    try:
        enqueue_backup(backup_id=backup_id, task=task)
    except Exception:
        logger.exception("Could not enqueue %s of backup %s; the reconciler will retry.", task, backup_id)


def _set_task(backup: Backup, task: str, *, now: datetime) -> None:
    backup_id = str(backup.pk)
    set_task(backup, task, now=now, send=lambda: _dispatch(task, backup_id))


def _log(subject, action: str, result: str, **details) -> None:
    """Records a change to a backup, or to a machine's backup schedule (`subject` is then the machine)."""
    item_event(subject, action, result, other_type=BACKUP_RESOURCE, **details)


def _refuse(subject, action: str, user, refusal: ServiceError) -> NoReturn:
    """Logs a refused request after its transaction (so the row survives) and raises it."""
    _log(subject, action, EventResult.REFUSED, user=user, message=refusal.message)
    raise refusal


def _pending(backup_id: str, task: str) -> Backup | None:
    """The backup locked, if it still waits for `task`; None for an outcome of work it no longer waits for."""
    backup = Backup.objects.select_for_update().filter(pk=backup_id).first()
    if backup is None or backup.state != TASK_STATES.get(task) or backup.task != task:
        return None
    return backup


def _lock_instance(instance: Instance) -> Instance:
    return Instance.objects.select_for_update(of=("self",)).select_related("flavor", "host").get(pk=instance.pk)


def _billing_sync(*, instance: Instance, at: datetime) -> None:
    """Opens or closes the billing of the machine's backups to match what it has now (call with its policy locked)."""
    policy = BackupPolicy.objects.select_for_update().filter(instance_id=instance.pk).first()
    if policy is None:
        return
    live = instance.state not in (InstanceState.DELETING, InstanceState.DELETED)
    kept = Backup.objects.filter(instance_id=instance.pk, state__in=LIVE_BACKUP_STATES).exists()
    billable = (policy.enabled and live) or kept
    if billable and not policy.billed:
        lifecycle.announce_billable(
            resource=lifecycle.BillableResource(
                tenant_id=instance.tenant_id,
                resource_type=lifecycle.BACKUP,
                resource_id=instance.pk,
                name=instance.name,
                flavor_id=instance.flavor_id,
            ),
            at=at,
        )
    elif not billable and policy.billed:
        lifecycle.announce_ended(resource_type=lifecycle.BACKUP, resource_id=instance.pk, at=at)
    if billable != policy.billed:
        policy.billed = billable
        policy.save(update_fields=["billed", "updated_at"])


def _check_hour(hour) -> int:
    try:
        hour = int(hour)
    except (TypeError, ValueError):
        hour = -1
    if not 0 <= hour <= 23:
        raise InvalidRequest("Pick an hour from 0 to 23 (UTC).", code="invalid_hour", details={"field": "hour"})
    return hour


# --- the schedule -----------------------------------------------------------------------------------------------


def backups_enable(*, instance: Instance, user, hour: int) -> BackupPolicy:
    """Turns on daily backups of the machine at `hour` (UTC; each machine at its own minute of it), or moves the hour
    of a policy that is on. Billing of the machine's backups starts now."""
    hour = _check_hour(hour)
    with transaction.atomic():
        locked = _lock_instance(instance)
        if locked.state in (InstanceState.DELETING, InstanceState.DELETED):
            state = locked.get_state_display().lower()
            refusal = Conflict(
                f"{locked.name} is {state}; backups cannot be enabled.", code="instance_busy", details={"state": state}
            )
        else:
            refusal = None
            now = timezone.now()
            policy, created = BackupPolicy.objects.select_for_update().get_or_create(
                instance=locked,
                defaults={"tenant_id": locked.tenant_id, "hour": hour, "minute": backup_minute(locked.pk)},
            )
            was_enabled = policy.enabled and not created
            policy.enabled, policy.hour, policy.keep = True, hour, BACKUPS_KEPT
            policy.next_run_at = policy.next_after(now)
            policy.save(update_fields=["enabled", "hour", "keep", "next_run_at", "updated_at"])
            message = f"{policy.schedule_label}, keeping the last {policy.keep}"
            _log(
                locked,
                StorageEventAction.BACKUPS_ENABLE,
                EventResult.SUCCEEDED,
                user=user,
                message=f"Schedule changed: {message}" if was_enabled else message,
                at=now,
            )
            _billing_sync(instance=locked, at=now)
    if refusal is not None:
        _refuse(locked, StorageEventAction.BACKUPS_ENABLE, user, refusal)
    return policy


def backups_disable(*, instance: Instance, user, delete_backups: bool = False) -> BackupPolicy | None:
    """Turns daily backups off. The backups made so far are kept (and billed) until deleted, unless
    `delete_backups`. Disabling backups that are off changes nothing."""
    with transaction.atomic():
        locked = _lock_instance(instance)
        policy = BackupPolicy.objects.select_for_update().filter(instance=locked).first()
        if policy is None or not policy.enabled:
            if delete_backups:
                _delete_all(instance=locked, user=user)
            return policy
        now = timezone.now()
        policy.enabled, policy.next_run_at = False, None
        policy.save(update_fields=["enabled", "next_run_at", "updated_at"])
        deleted = _delete_all(instance=locked, user=user) if delete_backups else 0
        _log(
            locked,
            StorageEventAction.BACKUPS_DISABLE,
            EventResult.SUCCEEDED,
            user=user,
            message=f"{deleted} backups are being deleted." if delete_backups else "Its backups are kept.",
            at=now,
        )
        _billing_sync(instance=locked, at=now)
    return policy


def _delete_all(*, instance: Instance, user) -> int:
    backups = Backup.objects.filter(instance=instance, state__in=(BackupState.AVAILABLE, BackupState.ERROR))
    count = 0
    for backup in backups.order_by("pk"):
        _request_delete(Backup.objects.select_for_update().get(pk=backup.pk), user=user)
        count += 1
    return count


def backups_instance_deleting(*, instance: Instance, user, delete_backups: bool, at: datetime) -> None:
    """Called by the machine's deletion, in its transaction: the schedule ends; its backups are kept (billed until
    deleted) or deleted too."""
    policy = BackupPolicy.objects.select_for_update().filter(instance_id=instance.pk).first()
    if policy is not None and policy.enabled:
        policy.enabled, policy.next_run_at = False, None
        policy.save(update_fields=["enabled", "next_run_at", "updated_at"])
    if delete_backups:
        _delete_all(instance=instance, user=user)
    # The machine is `deleting` only after this returns: decide billing as if it were.
    instance.state = InstanceState.DELETING
    _billing_sync(instance=instance, at=at)


# --- making backups ------------------------------------------------------------------------------------------------


def backup_create(*, instance: Instance, user, kind: str = BackupKind.MANUAL, now: datetime | None = None) -> Backup:
    """Copies the machine's boot disk now (a running machine gives a crash-consistent copy). Needs backups enabled."""
    with transaction.atomic():
        locked = _lock_instance(instance)
        policy = BackupPolicy.objects.filter(instance=locked).first()
        refusal = None
        if policy is None or not policy.enabled:
            refusal = Conflict(f"Backups are not enabled on {locked.name}; enable them first.", code="backups_disabled")
        elif locked.state not in BACKUP_FROM:
            state = locked.get_state_display().lower()
            refusal = Conflict(
                f"{locked.name} is {state}; only a running or stopped machine can be backed up.",
                code="instance_busy",
                details={"state": locked.state},
            )
        elif Backup.objects.filter(instance=locked, state=BackupState.CREATING).exists():
            refusal = Conflict(f"A backup of {locked.name} is being made already.", code="backup_in_progress")
        if refusal is None:
            now = now or timezone.now()
            # The copy lives in the machine's host pool: there must be room for it.
            place_storage(size_gib=locked.flavor.disk_gib, region=locked.host.region, host=locked.host)
            backup = Backup(
                tenant_id=locked.tenant_id,
                name=f"{locked.name} {now:%Y-%m-%d %H:%M}",
                kind=kind,
                instance=locked,
                source_name=locked.name,
                flavor=locked.flavor,
                image_id=locked.image_id,
                size_gib=locked.flavor.disk_gib,
                crash_consistent=locked.state == InstanceState.RUNNING,
                region_id=locked.region_id or locked.host.region_id,
                host=locked.host,
                created_by=user,
                created_at=now,
            )
            _set_task(backup, StorageTask.CREATE, now=now)
            backup.save(force_insert=True)
            _log(
                backup,
                StorageEventAction.BACKUP_CREATE,
                EventResult.REQUESTED,
                user=user,
                message="Crash-consistent: taken while the machine runs." if backup.crash_consistent else "",
                at=now,
            )
    if refusal is not None and user is None:
        raise refusal  # a scheduled run: backups_run_due records why it skipped the day
    if refusal is not None:
        _refuse(locked, StorageEventAction.BACKUP_CREATE, user, refusal)
    return backup


def backups_run_due(*, now: datetime | None = None) -> list[Backup]:
    """Beat, every minute: starts the backups whose time has come. Each due policy is claimed by moving its
    `next_run_at` to the next day with a conditional UPDATE; a machine that is busy (being resized, moved…) is
    skipped today and recorded as such."""
    now = now or timezone.now()
    started = []
    due = BackupPolicy.objects.filter(enabled=True, next_run_at__lte=now).select_related("instance")
    for policy in due.order_by("next_run_at", "pk")[:500]:
        claimed = BackupPolicy.objects.filter(pk=policy.pk, enabled=True, next_run_at=policy.next_run_at).update(
            next_run_at=policy.next_after(now), last_run_at=now, updated_at=now
        )
        if not claimed:
            continue  # another beat took it
        try:
            started.append(backup_create(instance=policy.instance, user=None, kind=BackupKind.SCHEDULED, now=now))
        except ServiceError as refusal:
            _log(
                policy.instance,
                StorageEventAction.BACKUP_CREATE,
                EventResult.FAILED,
                message=f"Skipped today's backup: {refusal.message}",
                at=now,
            )
    return started


def backup_task_claim(*, backup_id: str, task: str) -> Backup | None:
    """Claims pending work with a conditional UPDATE; None: nothing to do (done already, or never ours)."""
    now = timezone.now()
    waiting = Backup.objects.filter(pk=backup_id, task=task, state=TASK_STATES.get(task))
    claimed = waiting.update(task_progress_at=now, updated_at=now)
    if not claimed:
        return None
    return Backup.objects.select_related("host", "instance").get(pk=backup_id)


def backup_create_succeeded(*, backup_id: str, size_gib: int) -> Backup | None:
    """The copy is made: the backup is available, and the oldest beyond the policy's `keep` are deleted."""
    with transaction.atomic():
        backup = _pending(backup_id, StorageTask.CREATE)
        if backup is None:
            return None
        now = timezone.now()
        backup.state = BackupState.AVAILABLE
        backup.size_gib = size_gib or backup.size_gib
        backup.completed_at = now
        clear_task(backup)
        backup.save(update_fields=["state", "size_gib", "completed_at", "updated_at", "error_reason", *TASK_FIELDS])
        _log(backup, StorageEventAction.BACKUP_CREATE, EventResult.SUCCEEDED, message=f"{backup.size_gib} GiB", at=now)
        policy = BackupPolicy.objects.filter(instance_id=backup.instance_id).first()
        keep = policy.keep if policy is not None else BACKUPS_KEPT
        kept = Backup.objects.filter(instance_id=backup.instance_id, state=BackupState.AVAILABLE)
        for old in kept.order_by("-created_at", "-pk")[keep:]:
            _request_delete(Backup.objects.select_for_update().get(pk=old.pk), user=None)
    return backup


def backup_task_failed(*, backup_id: str, task: str, reason: str) -> Backup | None:
    """A copy or removal that cannot succeed: the backup goes to `error` with the reason (a failed copy is kept so
    people see it; it can be deleted)."""
    with transaction.atomic():
        backup = _pending(backup_id, task)
        if backup is None:
            return None
        backup.state = BackupState.ERROR
        backup.error_reason = reason[:2000]
        clear_task(backup)
        backup.save(update_fields=["state", "error_reason", "updated_at", *TASK_FIELDS])
        _log(backup, StorageEventAction.BACKUP_ERROR, EventResult.FAILED, message=reason)
    return backup


# --- deleting -------------------------------------------------------------------------------------------------------


def _request_delete(backup: Backup, *, user) -> None:
    now = timezone.now()
    backup.state = BackupState.DELETING
    backup.error_reason = ""
    _set_task(backup, StorageTask.DELETE, now=now)
    backup.save(update_fields=["state", "error_reason", "updated_at", *TASK_FIELDS])
    _log(backup, StorageEventAction.BACKUP_DELETE, EventResult.REQUESTED, user=user, at=now)


def backup_delete(*, backup: Backup, user) -> Backup:
    """Deletes an available (or failed) backup; one being made or already being deleted is refused."""
    with transaction.atomic():
        locked = Backup.objects.select_for_update().get(pk=backup.pk)
        refusal = None
        if locked.state not in (BackupState.AVAILABLE, BackupState.ERROR):
            state = locked.get_state_display().lower()
            refusal = Conflict(
                f"The backup {locked.name} is {state}; only an available or failed backup can be deleted.",
                code="backup_busy",
                details={"state": locked.state},
            )
        else:
            _request_delete(locked, user=user)
    if refusal is not None:
        _refuse(locked, StorageEventAction.BACKUP_DELETE, user, refusal)
    return locked


def backup_delete_succeeded(*, backup_id: str) -> Backup | None:
    """The file is gone: the backup is deleted; the machine's backups stop being billed if it has none left and
    backups are off (or the machine is gone)."""
    with transaction.atomic():
        backup = _pending(backup_id, StorageTask.DELETE)
        if backup is None:
            return None
        now = timezone.now()
        backup.state = BackupState.DELETED
        backup.deleted_at = now
        clear_task(backup)
        backup.save(update_fields=["state", "deleted_at", "updated_at", *TASK_FIELDS])
        _log(backup, StorageEventAction.BACKUP_DELETE, EventResult.SUCCEEDED, at=now)
        if backup.instance_id is not None:
            _billing_sync(instance=Instance.objects.get(pk=backup.instance_id), at=now)
    return backup


# --- restoring ------------------------------------------------------------------------------------------------------


def _check_restorable(backup: Backup) -> None:
    if backup.state != BackupState.AVAILABLE:
        raise Conflict(
            f"The backup {backup.name} is {backup.get_state_display().lower()}; only an available backup can be "
            "restored.",
            code="backup_busy",
            details={"state": backup.state},
        )


def backup_restore(*, backup: Backup, user, confirm_name: str) -> Instance:
    """Overwrites the machine's disk with the backup, after the user typed the machine's name: everything written
    since the backup is lost. The machine is stopped, its disk replaced, and started again if it was running."""
    from compute.services import instance_restore

    backup = Backup.objects.select_related("instance").get(pk=backup.pk)
    _check_restorable(backup)
    instance = backup.instance
    if instance is None or instance.state in (InstanceState.DELETING, InstanceState.DELETED):
        raise Conflict(
            f"{backup.source_name} has been deleted; restore the backup as a new machine instead.",
            code="instance_deleted",
        )
    if (confirm_name or "").strip() != instance.name:
        raise InvalidRequest(
            f"Type {instance.name} exactly to confirm: its disk is overwritten with the backup.",
            code="confirmation_mismatch",
            details={"field": "confirm_name"},
        )
    with transaction.atomic():
        restored = instance_restore(instance=instance, user=user, disk_file=backup.driver_name, label=backup.name)
        _log(
            backup,
            StorageEventAction.BACKUP_RESTORE,
            EventResult.REQUESTED,
            user=user,
            message=f"Overwriting the disk of {instance.name}",
        )
    return restored


def backup_restore_as_new(
    *, backup: Backup, user, name: str, flavor: Flavor | None = None, keys=(), firewalls=(), public_ip: bool = False
) -> Instance:
    """Launches a new machine whose disk is a copy of the backup, on the host that keeps it (the original's size
    unless `flavor`, whose disk may not be smaller)."""
    from compute.services import instance_launch

    backup = Backup.objects.select_related("region", "host", "flavor", "image").get(pk=backup.pk)
    _check_restorable(backup)
    flavor = flavor or backup.flavor
    if isinstance(flavor, Flavor) and flavor.disk_gib < backup.size_gib:
        raise InvalidRequest(
            f"The backup holds a {backup.size_gib} GiB disk; {flavor.name} has {flavor.disk_gib} GiB. Pick a larger "
            "size.",
            code="disk_too_small",
            details={"field": "flavor"},
        )
    with transaction.atomic():
        instance = instance_launch(
            tenant=backup.tenant,
            user=user,
            name=name,
            flavor=flavor,
            image=backup.image,
            keys=keys,
            firewalls=firewalls,
            public_ip=public_ip,
            region=backup.region,
            disk_source={
                "kind": "backup",
                "id": str(backup.pk),
                "name": backup.name,
                "file": backup.driver_name,
                "host": str(backup.host_id),
            },
        )
        _log(
            backup,
            StorageEventAction.BACKUP_RESTORE,
            EventResult.REQUESTED,
            user=user,
            message=f"As a new machine, {instance.name}",
        )
    return instance


# --- the reconciler's writes ------------------------------------------------------------------------------------


def backup_task_requeue(*, backup_id: str, seen_enqueued_at) -> bool:
    """Sends work that shows no sign of a worker again; False if someone else already did (or it moved on)."""
    with transaction.atomic():
        backup = Backup.objects.select_for_update().filter(pk=backup_id).first()
        if (
            backup is None
            or not backup.is_transitional
            or not backup.task
            or backup.task_enqueued_at != seen_enqueued_at
        ):
            return False
        now = timezone.now()
        backup.task_enqueued_at, backup.task_progress_at = now, None
        backup.task_requeues += 1
        backup.save(update_fields=["task_enqueued_at", "task_progress_at", "task_requeues", "updated_at"])
        task = backup.task
        transaction.on_commit(lambda: _dispatch(task, backup_id))
    return True


def backup_vanished(*, backup_id: str, host_name: str) -> bool:
    """An available backup whose file is gone from its host: `error`, with the reason (it can only be deleted)."""
    with transaction.atomic():
        backup = Backup.objects.select_for_update().filter(pk=backup_id, state=BackupState.AVAILABLE).first()
        if backup is None:
            return False
        backup.state = BackupState.ERROR
        backup.error_reason = f"Its copy is gone from host {host_name}."
        backup.save(update_fields=["state", "error_reason", "updated_at"])
        _log(backup, StorageEventAction.BACKUP_ERROR, EventResult.FAILED, message=backup.error_reason)
    return True
