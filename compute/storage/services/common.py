"""What every storage transition shares: task bookkeeping for the reconciler, names, and the refusal of a busy item.

Volumes and snapshots carry the same task fields as instances (compute.storage.models.TaskFields): a request
records the work it waits for and enqueues it when its transaction commits; a worker claims it with a conditional
UPDATE; an outcome recorder clears it. If the broker is down the reconciler sends the work again later.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from compute import lifecycle
from compute.rules import quota_refusal, standing_refusal
from compute.selectors import held_usage
from compute.storage.models import STORAGE_TASK_DEADLINES, Snapshot, StorageTask, Volume
from compute.storage.services.events import storage_event
from portal.errors import Conflict, InvalidRequest
from tenants.models import Tenant
from tenants.services import quota_lock

logger = logging.getLogger(__name__)

TASK_FIELDS = ["task", "task_params", "task_enqueued_at", "task_progress_at", "task_deadline", "task_requeues"]
KINDS = {Volume: "volume", Snapshot: "snapshot"}
MODELS = {"volume": Volume, "snapshot": Snapshot}


def dispatch(kind: str, pk: str, task: str) -> None:
    """Publishes the worker task; if the broker is unreachable the reconciler re-enqueues it later."""
    from compute.storage.tasks import enqueue

    try:
        enqueue(kind=kind, pk=pk, task=task)
    except Exception:
        logger.exception("Could not enqueue %s for %s %s; the reconciler will retry.", task, kind, pk)


def set_task(item: Volume | Snapshot, task: str, *, params: dict | None = None, now=None) -> None:
    """Records the work the item now waits for and enqueues it once the transaction commits."""
    now = now or timezone.now()
    item.task = task
    item.task_params = params or {}
    item.task_enqueued_at = now
    item.task_progress_at = None
    item.task_deadline = now + STORAGE_TASK_DEADLINES[task]
    item.task_requeues = 0
    kind, pk = KINDS[type(item)], str(item.pk)
    transaction.on_commit(lambda: dispatch(kind, pk, task))


def clear_task(item: Volume | Snapshot) -> None:
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


def name_taken(model, *, tenant_id, name: str, what: str) -> InvalidRequest | None:
    if model.objects.filter(tenant_id=tenant_id, name__iexact=name).exclude(state="deleted").exists():
        return InvalidRequest(
            f"You already have a {what} called {name}; pick another name.",
            code="name_taken",
            details={"field": "name"},
        )
    return None


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
            storage_event(tenant_id=locked.tenant_id, action=action, **{what: locked}, message=f"was {old}", actor=user)
        locked.save(update_fields=fields)
    return locked
