"""The reconciler's pass over backups and private images (compute.reconciler runs it with the others, every minute):

1. a backup or private image whose copy (or removal) is past its deadline fails, with the reason in the storage log;
2. work that shows no sign of a worker for the grace period is sent again (the tasks are idempotent: a copy that
   exists is kept, a file already gone is what a delete wants);
3. each enabled host's pool is compared with the database: an available backup or private image whose file is gone
   goes to `error` (a vanished image also stops being billed).
"""

from __future__ import annotations

import logging

from django.db.models import Q
from django.db.models.functions import Coalesce

from compute.drivers import driver_for
from compute.drivers.base import DriverError
from compute.models import IMAGE_TRANSITIONAL_STATES, Image, ImageState
from compute.storage.backup_models import BACKUP_TRANSITIONAL_STATES, Backup, BackupState
from compute.storage.services import backups, images

logger = logging.getLogger(__name__)


def _backups_pending():
    return Backup.objects.filter(state__in=BACKUP_TRANSITIONAL_STATES).exclude(task="")


def _images_pending():
    return Image.objects.private().filter(state__in=IMAGE_TRANSITIONAL_STATES)


def fail_overdue(*, now, report) -> None:
    for pk, task in _backups_pending().filter(task_deadline__lt=now).values_list("pk", "task"):
        reason = f"The {task} of the backup did not finish in time."
        if backups.backup_task_failed(backup_id=str(pk), task=task, reason=reason) is not None:
            report.overdue.append(str(pk))
    for pk in _images_pending().filter(task_deadline__lt=now).values_list("pk", flat=True):
        if images.image_task_failed(image_id=str(pk), reason="The copy of the image did not finish in time."):
            report.overdue.append(str(pk))


def requeue_lost(*, now, grace, report) -> None:
    stale_backups = (
        _backups_pending()
        .annotate(last_sign=Coalesce("task_progress_at", "task_enqueued_at"))
        .filter(Q(last_sign__lt=now - grace) | Q(last_sign__isnull=True), task_deadline__gte=now)
        .values_list("pk", "task_enqueued_at")
    )
    for pk, enqueued_at in stale_backups:
        if backups.backup_task_requeue(backup_id=str(pk), seen_enqueued_at=enqueued_at):
            report.requeued.append(str(pk))
    stale_images = _images_pending().filter(task_enqueued_at__lt=now - grace, task_deadline__gte=now)
    for pk, enqueued_at in stale_images.values_list("pk", "task_enqueued_at"):
        if images.image_task_requeue(image_id=str(pk), seen_enqueued_at=enqueued_at):
            report.requeued.append(str(pk))


def compare_pool(host, *, report) -> None:
    kept = {
        Backup(pk=pk).driver_name: ("backup", pk)
        for pk in Backup.objects.filter(host=host, state=BackupState.AVAILABLE).values_list("pk", flat=True)
    }
    kept |= {
        Image(pk=pk).driver_name: ("image", pk)
        for pk in Image.objects.filter(host=host, state=ImageState.AVAILABLE).values_list("pk", flat=True)
    }
    if not kept:
        return
    try:
        driver = driver_for(host)
        files = set(driver.volumes_in_pool())
    except (DriverError, NotImplementedError) as error:
        logger.warning("Reconciler: cannot list the storage pool of host %s: %s", host.name, error)
        return
    for name, (kind, pk) in kept.items():
        if name in files:
            continue
        try:
            if driver.volume_exists(name):  # asks once more: the listing may have raced with a copy
                continue
        except DriverError:
            continue
        gone = (
            backups.backup_vanished(backup_id=str(pk), host_name=host.name)
            if kind == "backup"
            else images.image_vanished(image_id=str(pk), host_name=host.name)
        )
        if gone:
            logger.warning("Reconciler: the file of %s %s vanished from host %s.", kind, pk, host.name)
            report.vanished.append(str(pk))


def reconcile_backups(*, now, grace, report, hosts) -> None:
    fail_overdue(now=now, report=report)
    requeue_lost(now=now, grace=grace, report=report)
    for host in hosts:
        compare_pool(host, report=report)
