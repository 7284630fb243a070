"""Celery tasks for backups and private images: thin adapters that take ids and call compute.storage.services.

Like every instance task they are `acks_late` and retry transient errors (driver or database) with exponential
backoff and jitter, recording a failure once the retries are used up. Beat runs `backups_run_due` every minute.
"""

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

from compute.storage.services import backup_work, backups, images
from compute.tasks import _OPTIONS, MAX_RETRIES, TRANSIENT_ERRORS


def _retry(task, error, on_give_up) -> None:
    if task.request.retries >= MAX_RETRIES:
        on_give_up(f"Gave up after {MAX_RETRIES + 1} attempts: {error}")
        return None
    countdown = get_exponential_backoff_interval(
        factor=task.retry_backoff,
        retries=task.request.retries,
        maximum=task.retry_backoff_max,
        full_jitter=task.retry_jitter,
    )
    options = {"exc": error, "countdown": countdown, "max_retries": MAX_RETRIES}
    if task.request.is_eager:
        return task.retry(throw=False, **options)
    raise task.retry(**options) from error


@shared_task(name="compute.storage.tasks.backup_work", **_OPTIONS)
def backup_work_task(self, *, backup_id: str, task: str):
    try:
        backup_work.backup_task_perform(backup_id=backup_id, task=task)
    except TRANSIENT_ERRORS as error:
        return _retry(
            self, error, lambda reason: backups.backup_task_failed(backup_id=backup_id, task=task, reason=reason)
        )
    return None


@shared_task(name="compute.storage.tasks.image_work", **_OPTIONS)
def image_work_task(self, *, image_id: str, task: str):
    try:
        backup_work.image_task_perform(image_id=image_id, task=task)
    except TRANSIENT_ERRORS as error:
        return _retry(self, error, lambda reason: images.image_task_failed(image_id=image_id, reason=reason))
    return None


@shared_task(name="compute.storage.tasks.backups_run_due", acks_late=True, ignore_result=True)
def backups_run_due() -> None:
    """Every minute (beat): start the backups whose time has come."""
    backups.backups_run_due()


def enqueue_backup(*, backup_id: str, task: str) -> None:
    backup_work_task.delay(backup_id=backup_id, task=task)


def enqueue_image(*, image_id: str, task: str) -> None:
    image_work_task.delay(image_id=image_id, task=task)
