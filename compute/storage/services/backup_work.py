"""The worker side of backups, private images and boot-disk snapshots: claim the work, drive the host, report.

Called by the thin Celery tasks in compute/storage/backup_tasks.py. Every step is safe to repeat: the claim is a
conditional UPDATE, every driver call is idempotent on the file's name, and the outcome recorders ignore outcomes
for work that is no longer pending.
"""

from __future__ import annotations

from compute.drivers import driver_for
from compute.drivers.base import DomainNotFound, PermanentDriverError
from compute.models import Image, ImageState
from compute.storage.models import Snapshot, StorageTask
from compute.storage.services import backups, images


def backup_task_perform(*, backup_id: str, task: str) -> None:
    """Makes or removes a backup's file. TransientDriverError propagates (the task retries it)."""
    backup = backups.backup_task_claim(backup_id=backup_id, task=task)
    if backup is None:
        return
    driver = driver_for(backup.host)
    try:
        if task == StorageTask.CREATE:
            if backup.instance_id is None:
                raise PermanentDriverError("The machine is gone.")
            driver.disk_snapshot(str(backup.instance_id), name=backup.driver_name)
            size = driver.volume_size_gib(backup.driver_name)
        else:
            driver.volume_delete(backup.driver_name)
    except DomainNotFound as error:
        backups.backup_task_failed(
            backup_id=backup_id, task=task, reason=f"The machine is gone from its host ({error})."
        )
        return
    except PermanentDriverError as error:
        backups.backup_task_failed(backup_id=backup_id, task=task, reason=str(error))
        return
    if task == StorageTask.CREATE:
        backups.backup_create_succeeded(backup_id=backup_id, size_gib=size)
    else:
        backups.backup_delete_succeeded(backup_id=backup_id)


def image_task_perform(*, image_id: str, task: str) -> None:
    """Copies a snapshot into a private image's file, or removes the file."""
    image = Image.objects.select_related("host").filter(pk=image_id).first()
    expected = ImageState.CREATING if task == "create" else ImageState.DELETING
    if image is None or image.state != expected or image.host is None:
        return
    driver = driver_for(image.host)
    try:
        if task == "create":
            # A snapshot deleted meanwhile leaves no file to copy: the image fails with the reason.
            driver.volume_snapshot(image.driver_name, source=Snapshot(pk=image.source_snapshot_id).driver_name)
            size = driver.volume_size_gib(image.driver_name)
        else:
            driver.volume_delete(image.driver_name)
    except PermanentDriverError as error:
        images.image_task_failed(image_id=image_id, reason=str(error))
        return
    if task == "create":
        images.image_create_succeeded(image_id=image_id, size_gib=size)
    else:
        images.image_delete_succeeded(image_id=image_id)
