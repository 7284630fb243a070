"""State changes the reconciler (and operators) make: re-enqueue, fail overdue work, follow the hypervisor."""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from compute.drivers.base import DriverError, PowerState
from compute.models import (
    TASK_DEADLINES,
    EventAction,
    Instance,
    InstanceState,
    OrphanDomain,
)
from compute.services.instances import TASK_ACTIONS, _dispatch, _event, _fail, _lock
from portal.errors import Conflict
from tenants.models import EventResult

logger = logging.getLogger(__name__)


def instance_task_requeue(*, instance_id: str, seen_enqueued_at, seen_progress_at, reason: str) -> bool:
    """Sends work that shows no progress to the workers again; False if someone else already did, if it moved on, or
    if a worker has claimed it or shown progress since it was seen (its `task_progress_at` changed)."""
    with transaction.atomic():
        locked = _lock(instance_id)
        if not locked.is_transitional or not locked.task or locked.task_enqueued_at != seen_enqueued_at:
            return False
        if locked.task_progress_at != seen_progress_at:
            return False
        now = timezone.now()
        locked.task_enqueued_at = now
        locked.task_progress_at = None
        locked.task_requeues += 1
        locked.save(update_fields=["task_enqueued_at", "task_progress_at", "task_requeues", "updated_at"])
        _event(locked, EventAction.RECONCILE, EventResult.REQUESTED, message=reason, at=now)
        instance_id, task = str(locked.pk), locked.task
        transaction.on_commit(lambda: _dispatch(instance_id, task))
    return True


def instance_task_overdue(*, instance_id: str, now) -> Instance | None:
    """Fails work that is past its deadline, naming what did not finish and for how long it was tried."""
    with transaction.atomic():
        locked = _lock(instance_id)
        if not locked.is_transitional or not locked.task or not locked.task_deadline or locked.task_deadline > now:
            return None
        minutes = int(TASK_DEADLINES[locked.task].total_seconds() // 60)
        reason = (
            f"The {locked.task} did not finish within {minutes} minutes"
            f" (sent to the workers {locked.task_requeues + 1} time{'s' if locked.task_requeues else ''})."
        )
        action = TASK_ACTIONS[locked.task]
        _fail(locked, reason)
        _event(locked, action, EventResult.FAILED, message=reason)
    return locked


def instance_domain_vanished(*, instance_id: str, expected_state: str, host_name: str) -> Instance | None:
    """The host no longer has the machine of a running or stopped instance: it goes to `error`."""
    with transaction.atomic():
        locked = _lock(instance_id)
        if locked.state != expected_state:
            return None
        reason = f"The machine vanished from host {host_name}; it can only be deleted."
        _fail(locked, reason)
        _event(locked, EventAction.RECONCILE, EventResult.FAILED, message=reason)
    return locked


def instance_power_synced(*, instance_id: str, expected_state: str, power_state: str) -> Instance | None:
    """A machine that was powered off (or on) from inside the guest: the instance follows the hypervisor."""
    new_state = {PowerState.SHUTOFF: InstanceState.STOPPED, PowerState.RUNNING: InstanceState.RUNNING}.get(power_state)
    with transaction.atomic():
        locked = _lock(instance_id)
        if locked.state != expected_state or new_state is None or new_state == locked.state:
            return None
        locked.state = new_state
        locked.power_state = power_state
        locked.save(update_fields=["state", "power_state", "updated_at"])
        verb = "powered off" if new_state == InstanceState.STOPPED else "powered on"
        _event(locked, EventAction.RECONCILE, EventResult.SUCCEEDED, message=f"The machine was {verb} outside Hangar.")
    return locked


def orphan_domain_destroy(*, orphan: OrphanDomain, user) -> None:
    """Operators: destroys a domain no live instance owns (its disk too) and marks the finding resolved."""
    from compute.drivers import driver_for

    with transaction.atomic():
        orphan = OrphanDomain.objects.select_for_update().select_related("host").get(pk=orphan.pk)
        owners = Instance.objects.filter(Q(host=orphan.host) | Q(migration_host=orphan.host))
        if owners.filter(pk=_uuid_or_none(orphan.uuid)).live().exists():
            raise Conflict(f"{orphan.uuid} now belongs to a live instance on {orphan.host}; it was left alone.")
        try:
            driver_for(orphan.host).destroy(orphan.uuid)
        except DriverError as error:
            raise Conflict(f"Host {orphan.host} refused to destroy {orphan.uuid}: {error}") from error
        orphan.resolved_at = timezone.now()
        orphan.note = (orphan.note + "\n" if orphan.note else "") + f"Destroyed by {user} at {orphan.resolved_at:%c}."
        orphan.save(update_fields=["resolved_at", "note"])
    logger.warning("Orphan domain %s destroyed on host %s by %s.", orphan.uuid, orphan.host, user)


def _uuid_or_none(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def orphan_domains_record(*, host, domains: dict, unknown: set[str], now) -> list[str]:
    """Records the domains on `host` that no instance owns (and resolves those gone); returns the newly seen ones."""
    newly_seen = []
    for domain_uuid in sorted(unknown):
        info = domains[domain_uuid]
        orphan, created = OrphanDomain.objects.get_or_create(
            host=host, uuid=domain_uuid, defaults={"power_state": info.state, "first_seen_at": now, "last_seen_at": now}
        )
        if not created:
            OrphanDomain.objects.filter(pk=orphan.pk).update(power_state=info.state, last_seen_at=now, resolved_at=None)
        if created or orphan.resolved_at is not None:
            newly_seen.append(domain_uuid)
    OrphanDomain.objects.filter(host=host, resolved_at__isnull=True).exclude(uuid__in=sorted(unknown)).update(
        resolved_at=now
    )
    return newly_seen
