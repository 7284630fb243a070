"""Every write of the storage app: volume and snapshot requests, the workers' outcomes, the reconciler's writes."""

from compute.storage.services.operations import (
    storage_task_claim,
    storage_task_failed,
    storage_task_overdue,
    storage_task_perform,
    storage_task_requeue,
)
from compute.storage.services.snapshots import (
    snapshot_create,
    snapshot_delete,
    snapshot_task_failed,
    snapshot_task_succeeded,
    snapshot_update,
    snapshot_vanished,
)
from compute.storage.services.volumes import (
    instance_has_volumes,
    instance_volumes_detach,
    volume_attach,
    volume_create,
    volume_delete,
    volume_detach,
    volume_extend,
    volume_task_failed,
    volume_task_succeeded,
    volume_update,
    volume_vanished,
)

__all__ = [
    "instance_has_volumes",
    "instance_volumes_detach",
    "snapshot_create",
    "snapshot_delete",
    "snapshot_task_failed",
    "snapshot_task_succeeded",
    "snapshot_update",
    "snapshot_vanished",
    "storage_task_claim",
    "storage_task_failed",
    "storage_task_overdue",
    "storage_task_perform",
    "storage_task_requeue",
    "volume_attach",
    "volume_create",
    "volume_delete",
    "volume_detach",
    "volume_extend",
    "volume_task_failed",
    "volume_task_succeeded",
    "volume_update",
    "volume_vanished",
]
