"""Cold migration: an instance moves to another host of its region (stop, move the disk, start again).

Requested by operators one machine at a time or for a whole host (host evacuation, compute/services/hosts.py). The
worker does the moving (compute/services/operations.py) and reports back here. Until the move is recorded the
instance holds capacity on both hosts (`migration_host`), so nothing else can take the room it is moving into.
Billing does not change: the machine keeps its size and price, and a stopped machine is billed as before.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compute.drivers.base import DomainInfo, PowerState
from compute.models import INSTANCE_ACTIONS, EventAction, Host, Instance, InstanceState, InstanceTask
from compute.network import services as network_services
from compute.scheduler import schedule
from compute.services.instances import TASK_FIELDS, _clear_task, _event, _lock, _refusal, _refuse, _set_task
from compute.storage import services as storage_services
from portal.errors import Conflict
from tenants.models import EventResult


def instance_migrate(*, instance: Instance, user, reason: str = "") -> Instance:
    """Moves a running or stopped machine to the least loaded other host of its region; a running one is shut
    down first and started again there. Refused when no other host of the region has room."""
    with transaction.atomic():
        locked = _lock(instance)
        refusal = None
        if not locked.can("migrate"):
            refusal = _refusal(locked, "move", INSTANCE_ACTIONS["migrate"].allowed_label)
        elif locked.host_id is None:
            refusal = Conflict(f"{locked.name} has no host to move from.", code="no_host")
        elif storage_services.instance_has_volumes(instance=locked):
            # Volumes live in the pool of the host that keeps them; they do not move with the machine.
            refusal = Conflict(
                f"{locked.name} has volumes attached, which stay on its host; detach them before moving it.",
                code="volumes_attached",
            )
        elif locked.image.host_id is not None:
            # Its disk is made on a private image's file, which only its host's pool keeps.
            refusal = Conflict(
                f"{locked.name} runs on the private image {locked.image.name}, kept on its host only; it cannot move.",
                code="private_image",
            )
        if refusal is None:
            source = Host.objects.select_related("region").get(pk=locked.host_id)
            target = schedule(flavor=locked.flavor, region=source.region, exclude=source)
            was_running = locked.state == InstanceState.RUNNING
            now = timezone.now()
            locked.migration_host = target
            locked.state = InstanceState.MIGRATING
            _set_task(locked, InstanceTask.MIGRATE, params={"was_running": was_running}, now=now)
            locked.save(update_fields=["state", "migration_host", "updated_at", *TASK_FIELDS])
            what = (
                "it is shut down, moved and started again" if was_running else "it stays stopped and is moved as it is"
            )
            message = f"{reason.strip()} Moving to another host: {what}.".strip()
            _event(locked, EventAction.MIGRATE, EventResult.REQUESTED, user=user, message=message, at=now)
    if refusal is not None:
        _refuse(locked, EventAction.MIGRATE, user, refusal)
    return locked


def instance_migrate_succeeded(*, instance_id: str, info: DomainInfo) -> Instance | None:
    """The machine is on its new host (running again if it was running): the instance follows it there."""
    with transaction.atomic():
        locked = _lock(instance_id)
        if locked.state != InstanceState.MIGRATING or locked.task != InstanceTask.MIGRATE:
            return None  # already recorded (duplicate delivery) or overtaken (marked as error)
        old_host_id = locked.host_id
        locked.host_id = locked.migration_host_id
        locked.migration_host = None
        running = info.state == PowerState.RUNNING
        locked.state = InstanceState.RUNNING if running else InstanceState.STOPPED
        locked.power_state = info.state
        locked.private_ip = info.private_ip or locked.private_ip
        _clear_task(locked)
        locked.save(
            update_fields=["host", "migration_host", "state", "power_state", "private_ip", "updated_at", *TASK_FIELDS]
        )
        message = "Moved to another host; running again." if running else "Moved to another host; still stopped."
        _event(locked, EventAction.MIGRATE, EventResult.SUCCEEDED, message=message)
        network_services.instance_networking_moved(instance=locked, old_host_id=old_host_id)
    return locked
