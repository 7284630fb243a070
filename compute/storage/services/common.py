"""What every storage transition shares: task bookkeeping for the reconciler, names, the lock, start, refusal and
outcome of a volume's or snapshot's request, its deletion, and the loss of its file.

Volumes and snapshots carry the same task fields as instances (compute.storage.models.TaskFields): a request
records the work it waits for and enqueues it when its transaction commits; a worker claims it with a conditional
UPDATE; an outcome recorder clears it. If the broker is down the reconciler sends the work again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NoReturn

from django.db import IntegrityError, transaction
from django.utils import timezone

from compute import lifecycle
from compute.rules import quota_refusal, standing_refusal
from compute.selectors import held_usage
from compute.storage.models import STORAGE_TASK_DEADLINES, Snapshot, SnapshotState, StorageTask, Volume, VolumeState
from compute.storage.services.events import item_event
from portal.errors import Conflict, InvalidRequest
from tenants.models import EventResult, Tenant
from tenants.services import quota_lock

logger = logging.getLogger(__name__)

TASK_FIELDS = ["task", "task_params", "task_enqueued_at", "task_progress_at", "task_deadline", "task_requeues"]
KINDS = {Volume: "volume", Snapshot: "snapshot"}
MODELS = {"volume": Volume, "snapshot": Snapshot}
ERROR_STATES = {Volume: VolumeState.ERROR, Snapshot: SnapshotState.ERROR}


def dispatch(kind: str, pk: str, task: str) -> None:
    """Publishes the worker task; if the broker is unreachable the reconciler re-enqueues it later."""
    from compute.storage.tasks import enqueue

    try:
        enqueue(kind=kind, pk=pk, task=task)
    except Exception:
        logger.exception("Could not enqueue %s for %s %s; the reconciler will retry.", task, kind, pk)


def set_task(item, task: str, *, params: dict | None = None, now=None, send: Callable | None = None) -> None:
    """Records the work the item now waits for and enqueues it once the transaction commits (through `send` for an
    item the volume and snapshot workers do not handle: a backup)."""
    now = now or timezone.now()
    item.task = task
    item.task_params = params or {}
    item.task_enqueued_at = now
    item.task_progress_at = None
    item.task_deadline = now + STORAGE_TASK_DEADLINES[task]
    item.task_requeues = 0
    if send is not None:
        transaction.on_commit(send)
        return
    kind, pk = KINDS[type(item)], str(item.pk)
    transaction.on_commit(lambda: dispatch(kind, pk, task))


def clear_task(item) -> None:
    item.task = StorageTask.NONE
    item.task_params = {}
    item.task_enqueued_at = None
    item.task_progress_at = None
    item.task_deadline = None
    item.task_requeues = 0


def clean_name(name: str, *, what: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidRequest(f"Give the {what} a name.", code="invalid_name", details={"field": "name"})
    if len(name) > 63:
        raise InvalidRequest(
            "The name is too long: at most 63 characters.", code="invalid_name", details={"field": "name"}
        )
    if any(ord(char) < 32 for char in name):
        raise InvalidRequest("The name cannot hold control characters.", code="invalid_name", details={"field": "name"})
    return name


def clean_labels(labels) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise InvalidRequest(
            "Labels are a map of text keys to text values.", code="invalid_labels", details={"field": "labels"}
        )
    return labels


def name_taken_error(what: str, name: str) -> InvalidRequest:
    return InvalidRequest(
        f"You already have {what} called {name}; pick another name.", code="name_taken", details={"field": "name"}
    )


def name_taken(model, *, tenant_id, name: str, what: str) -> InvalidRequest | None:
    if model.objects.filter(tenant_id=tenant_id, name__iexact=name).exclude(state="deleted").exists():
        return name_taken_error(f"a {what}", name)
    return None


def insert_named(item, *, what: str = "") -> None:
    """Saves a new item; a name taken meanwhile by a concurrent request (the database's constraint) is refused like
    one taken before. `what` names its kind with its article ("an image"; by default "a volume", "a snapshot")."""
    try:
        with transaction.atomic():
            item.save(force_insert=True)
    except IntegrityError:
        raise name_taken_error(what or f"a {KINDS[type(item)]}", item.name) from None


def create_requested(item: Volume | Snapshot, *, user, action: str, message: str, now, params=None) -> None:
    """Inserts a new item that waits for its creation, enqueues the work and records the request."""
    set_task(item, StorageTask.CREATE, params=params, now=now)
    insert_named(item)
    item_event(item, action, EventResult.REQUESTED, user=user, message=message, at=now)


def lock(model, item):
    """The item (or the one of that primary key) locked for this transaction."""
    pk = item.pk if isinstance(item, model) else item
    return model.objects.select_for_update().get(pk=pk)


def pending(model, pk, task: str, task_states: dict):
    """The item locked, if it still waits for `task`; None for an outcome of work it no longer waits for."""
    item = model.objects.select_for_update().filter(pk=pk).first()
    if item is None or item.task != task or item.state != task_states[task][0]:
        return None
    return item


def start_task(
    locked: Volume | Snapshot,
    task: str,
    *,
    state: str,
    user,
    action: str,
    message: str = "",
    params=None,
    fields=(),
    now=None,
) -> None:
    """Moves a locked item into `state`, records the work it now waits for and the request."""
    now = now or timezone.now()
    locked.state = state
    set_task(locked, task, params=params, now=now)
    locked.save(update_fields=["state", "updated_at", *TASK_FIELDS, *fields])
    item_event(locked, action, EventResult.REQUESTED, user=user, message=message, at=now)


def finish_task(
    item: Volume | Snapshot, *, action: str, fields=(), message: str = "", result: str = EventResult.SUCCEEDED, at=None
) -> None:
    """Records the outcome of the work a locked item waited for (its new state set already): the work is cleared,
    the item saved with `fields` and the outcome logged."""
    clear_task(item)
    item.save(update_fields=["state", "updated_at", *TASK_FIELDS, *fields])
    item_event(item, action, result, message=message, at=at)


def delete_refusal(locked: Volume | Snapshot, *, making, happening: str) -> Conflict | None:
    """Why the item cannot be deleted now, if it cannot: its state, or work on it that `making` (a queryset of what
    is being made from it) shows; `happening` says what that work is."""
    what = KINDS[type(locked)]
    if not locked.can_delete():
        return busy(locked, "delete", "an available or failed")
    if making.exists():
        return Conflict(f"{happening}; delete it when that has finished.", code=f"{what}_busy")
    return None


def refuse(item: Volume | Snapshot, action: str, user, refusal: Exception) -> NoReturn:
    """Logs a refused request after its transaction (so the row survives) and raises it."""
    item_event(item, action, EventResult.REFUSED, user=user, message=getattr(refusal, "message", str(refusal)))
    raise refusal


def item_delete(item: Volume | Snapshot, *, user, refusal_of: Callable, state: str, action: str, resource_type: str):
    """The delete request of a volume or snapshot: locks it and asks `refusal_of(locked)` why it cannot be deleted
    now, if it cannot (the refusal is logged after the transaction and raised); else its billing stops at once and
    the deletion of its data is enqueued (it moves to `state`)."""
    with transaction.atomic():
        locked = lock(type(item), item)
        refusal = refusal_of(locked)
        if refusal is None:
            now = timezone.now()
            lifecycle.announce_ended(resource_type=resource_type, resource_id=locked.pk, at=now)
            start_task(locked, StorageTask.DELETE, state=state, user=user, action=action, now=now)
    if refusal is not None:
        refuse(locked, action, user, refusal)
    return locked


def item_vanished(model, *, pk, state: str, host_name: str, resource_type: str, action: str) -> bool:
    """The reconciler found the item's file gone from its host's pool: it goes to `error` (billing stops), like an
    instance whose machine vanished. Only if it is still in `state` (a settled state)."""
    with transaction.atomic():
        item = model.objects.select_for_update().filter(pk=pk, state=state).first()
        if item is None:
            return False
        now = timezone.now()
        lifecycle.announce_ended(resource_type=resource_type, resource_id=item.pk, at=now)
        item.state = ERROR_STATES[model]
        item.error_reason = f"Its data is gone from host {host_name}."
        item.save(update_fields=["state", "error_reason", "updated_at"])
        item_event(item, action, EventResult.FAILED, message=item.error_reason, at=now)
    return True


PAST = {"delete": "deleted", "snapshot": "snapshotted", "restore": "restored from", "rename": "renamed"}


def busy(item: Volume | Snapshot, verb: str, allowed: str) -> Conflict:
    """The error for an action the item's state does not allow; names the state."""
    what = KINDS[type(item)]
    state = item.get_state_display().lower()
    if item.is_transitional:
        message = f"{item.name} is {state}; wait until that has finished, then {verb} it."
    elif item.is_deleted:
        message = f"{item.name} has been deleted."
    else:
        message = f"{item.name} is {state}; only {allowed} {what} can be {PAST.get(verb, verb + 'ed')}."
    return Conflict(message, code=f"{what}_busy", details={"state": item.state})


def check_accepts_new_spending(tenant_id) -> None:
    tenant = Tenant.objects.get(pk=tenant_id)
    if (refusal := standing_refusal(tenant=tenant, what="no storage can be added")) is not None:
        raise refusal


def check_volume_quota(*, tenant_id, requested: dict[str, int]) -> None:
    """Locks the tenant's quota row (the lock launches take too) and checks `requested` against what it holds."""
    tenant = Tenant.objects.get(pk=tenant_id)
    quota = quota_lock(tenant)
    used = held_usage(tenant=tenant, resources=requested)
    usage = {resource: {"used": used[resource], "limit": getattr(quota, resource)} for resource in requested}
    if (refusal := quota_refusal(usage=usage, requested=requested)) is not None:
        raise refusal


def item_update(*, item: Volume | Snapshot, user, name, labels, action: str, resource_type: str):
    """Renames a volume or snapshot and/or replaces its labels (a rename reaches billing's live estimates)."""
    model, what = type(item), KINDS[type(item)]
    if name is not None:
        name = clean_name(name, what=what)
    if labels is not None:
        labels = clean_labels(labels)
    with transaction.atomic():
        locked = model.objects.select_for_update().get(pk=item.pk)
        if not locked.can_rename():
            raise busy(locked, "rename", "a live")
        fields = ["updated_at"]
        if labels is not None:
            locked.labels = labels
            fields.append("labels")
        if name is not None and name != locked.name:
            taken = name.lower() != locked.name.lower() and name_taken(
                model, tenant_id=locked.tenant_id, name=name, what=what
            )
            if taken:
                raise taken
            old, locked.name = locked.name, name
            fields.append("name")
            lifecycle.announce_renamed(resource_type=resource_type, resource_id=locked.pk, name=name)
            item_event(locked, action, user=user, message=f"was {old}")
        locked.save(update_fields=fields)
    return locked
