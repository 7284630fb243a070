"""Celery tasks for backups and private images: thin adapters that take ids and call compute.storage.services (the
same retries and delivery guarantees as the instance tasks in compute.tasks). Beat runs `backups_run_due` every
minute."""

from celery import shared_task

from compute.storage.services import backup_work, backups, images
from compute.tasks import TASK_OPTIONS, run_with_retries


@shared_task(name="compute.storage.tasks.backup_work", **TASK_OPTIONS)
def backup_work_task(self, *, backup_id: str, task: str):
    """Makes or deletes a backup's copy of a machine's disk."""
    return run_with_retries(
        self,
        perform=lambda: backup_work.backup_task_perform(backup_id=backup_id, task=task),
        fail=lambda reason: backups.backup_task_failed(backup_id=backup_id, task=task, reason=reason),
    )


@shared_task(name="compute.storage.tasks.image_work", **TASK_OPTIONS)
def image_work_task(self, *, image_id: str, task: str):
    """Copies a snapshot into a private image, or deletes the image's file."""
    return run_with_retries(
        self,
        perform=lambda: backup_work.image_task_perform(image_id=image_id, task=task),
        fail=lambda reason: images.image_task_failed(image_id=image_id, reason=reason),
    )


@shared_task(name="compute.storage.tasks.backups_run_due", acks_late=True, ignore_result=True)
def backups_run_due() -> None:
    """Every minute (beat): start the backups whose time has come."""
    backups.backups_run_due()


def enqueue_backup(*, backup_id: str, task: str) -> None:
    backup_work_task.delay(backup_id=backup_id, task=task)


def enqueue_image(*, image_id: str, task: str) -> None:
    image_work_task.delay(image_id=image_id, task=task)
