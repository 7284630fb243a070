"""The reconciler's storage pass (compute.reconciler runs it with the instances' one, every minute):

1. volume and snapshot work past its deadline fails, with the reason in the storage log;
2. work that shows no sign of a worker for the grace period while nothing waits in its queue is sent again
   (every storage task is idempotent);
3. each enabled host's pool is compared with the database: the file of an available or in-use volume (or of an
   available snapshot) that is gone puts it in `error` and stops its billing, as a vanished machine does; a file no
   live volume or snapshot owns is logged for operators.
"""

from __future__ import annotations

import logging

from django.db.models import Q
from django.db.models.functions import Coalesce

from compute.drivers import driver_for
from compute.drivers.base import DriverError
from compute.storage import services
from compute.storage.models import (
    SNAPSHOT_TRANSITIONAL_STATES,
    VOLUME_TRANSITIONAL_STATES,
    Snapshot,
    SnapshotState,
    Volume,
    VolumeState,
)
from portal.queue import queue_depth, queue_of, wait_for_claims

logger = logging.getLogger(__name__)

TRANSITIONAL = {"volume": VOLUME_TRANSITIONAL_STATES, "snapshot": SNAPSHOT_TRANSITIONAL_STATES}
MODELS = {"volume": Volume, "snapshot": Snapshot}


def _pending(kind: str):
    return MODELS[kind].objects.filter(state__in=TRANSITIONAL[kind]).exclude(task="")


def fail_overdue(*, now, report) -> None:
    for kind in MODELS:
        for pk in _pending(kind).filter(task_deadline__lt=now).values_list("pk", flat=True):
            if services.storage_task_overdue(kind=kind, pk=str(pk), now=now):
                report.overdue.append(str(pk))


def requeue_lost(*, now, grace, report) -> None:
    """Work a worker took and then stopped showing progress on is sent again; work no worker took is sent again
    only when nothing waits in its queue (otherwise it is queued behind a backlog, and its deadline bounds that)."""
    from compute.storage.tasks import TASKS  # the tasks module imports the services

    seconds = int(grace.total_seconds())
    lost: list[tuple] = []  # (kind, pk, enqueued_at, progress_at, reason)
    unclaimed_in_empty_queues: list[tuple] = []
    for kind in MODELS:
        stale = (
            _pending(kind)
            .annotate(last_sign=Coalesce("task_progress_at", "task_enqueued_at"))
            .filter(Q(last_sign__lt=now - grace) | Q(last_sign__isnull=True))
            .filter(Q(task_deadline__isnull=True) | Q(task_deadline__gte=now))
            .values_list("pk", "task_enqueued_at", "task_progress_at")
        )
        depth = None
        for pk, enqueued_at, progress_at in stale:
            if progress_at is not None:
                reason = f"No sign of progress from its worker for {seconds} s (worker stopped)"
                lost.append((kind, pk, enqueued_at, progress_at, reason))
                continue
            if depth is None:
                depth = queue_depth(queue_of(TASKS[kind].name))
            if depth != 0:
                report.queued.append(str(pk))
                continue
            reason = f"No worker took it up in {seconds} s and nothing waits in its queue (lost message)"
            unclaimed_in_empty_queues.append((kind, pk, enqueued_at, progress_at, reason))
    if unclaimed_in_empty_queues:
        wait_for_claims()  # a worker may hold the message, not yet started: the requeue sees a claim made meanwhile
    for kind, pk, enqueued_at, progress_at, reason in [*lost, *unclaimed_in_empty_queues]:
        if services.storage_task_requeue(
            kind=kind,
            pk=str(pk),
            seen_enqueued_at=enqueued_at,
            seen_progress_at=progress_at,
            reason=reason + "; sent to the workers again.",
        ):
            report.requeued.append(str(pk))


def compare_pool(host, *, report) -> None:
    """Volumes and snapshots whose file is gone from the host's pool go to `error`."""
    settled_volumes = dict(
        Volume.objects.filter(host=host, state__in=(VolumeState.AVAILABLE, VolumeState.IN_USE)).values_list(
            "pk", "state"
        )
    )
    settled_snapshots = list(
        Snapshot.objects.filter(host=host, state=SnapshotState.AVAILABLE).values_list("pk", flat=True)
    )
    if not settled_volumes and not settled_snapshots:
        return
    try:
        driver = driver_for(host)
        files = set(driver.volumes_in_pool())
    except (DriverError, NotImplementedError) as error:
        logger.warning("Reconciler: cannot list the storage pool of host %s: %s", host.name, error)
        return
    for pk, state in settled_volumes.items():
        name = Volume(pk=pk).driver_name
        if name in files or _still_there(driver, name):
            continue
        if services.volume_vanished(volume_id=str(pk), expected_state=state, host_name=host.name):
            logger.warning("Reconciler: the data of volume %s vanished from host %s.", pk, host.name)
            report.vanished.append(str(pk))
    for pk in settled_snapshots:
        name = Snapshot(pk=pk).driver_name
        if name in files or _still_there(driver, name):
            continue
        if services.snapshot_vanished(snapshot_id=str(pk), host_name=host.name):
            logger.warning("Reconciler: the data of snapshot %s vanished from host %s.", pk, host.name)
            report.vanished.append(str(pk))


def _still_there(driver, name: str) -> bool:
    """Asks once more: the listing may have raced with a create."""
    try:
        return driver.volume_exists(name)
    except DriverError:
        return True  # cannot tell: leave it for the next pass


def reconcile_storage(*, now, grace, report, hosts) -> None:
    fail_overdue(now=now, report=report)
    requeue_lost(now=now, grace=grace, report=report)
    for host in hosts:
        compare_pool(host, report=report)
