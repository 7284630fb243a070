"""Celery tasks for compute: thin adapters that take ids and call compute.services.operations / compute.reconciler.

Every instance task is `acks_late` (a worker that dies mid-task leaves the message to be redelivered), retries
transient errors (driver or database) with Celery's exponential backoff and jitter, and records a failure once the
retries are used up.
"""

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.db import InterfaceError, OperationalError

from compute import reconciler, services
from compute.drivers.base import TransientDriverError
from compute.models import InstanceTask
from compute.services import operations, usage

MAX_RETRIES = 6
# A hypervisor hiccup, or the database gone for a moment (a restart, a failover, SQLite's "database is locked").
TRANSIENT_ERRORS = (TransientDriverError, OperationalError, InterfaceError)


def _run(task, *, instance_id: str, kind: str):
    return run_with_retries(
        task,
        perform=lambda: operations.instance_task_perform(instance_id=instance_id, task=kind),
        fail=lambda reason: services.instance_task_failed(instance_id=instance_id, task=kind, reason=reason),
    )


def run_with_retries(task, *, perform, fail):
    """Runs `perform()`; a transient error is retried with backoff, and after the last retry `fail(reason)` records
    the failure (every worker task of compute and storage runs this way)."""
    try:
        perform()
    except TRANSIENT_ERRORS as error:
        if task.request.retries >= MAX_RETRIES:
            fail(f"Gave up after {MAX_RETRIES + 1} attempts: {error}")
            return None
        # The task's retry_backoff* options, applied here rather than by `autoretry_for`: the last attempt records
        # the failure instead of raising, and in eager mode autoretry's raised Retry would escape to the caller.
        countdown = get_exponential_backoff_interval(
            factor=task.retry_backoff,
            retries=task.request.retries,
            maximum=task.retry_backoff_max,
            full_jitter=task.retry_jitter,
        )
        retry_options = {"exc": error, "countdown": countdown, "max_retries": MAX_RETRIES}
        if task.request.is_eager:
            # Eager mode (tests, `CELERY_TASK_ALWAYS_EAGER`) re-runs a *returned* Retry in place; a raised one
            # would escape to the caller when eager exceptions propagate.
            return task.retry(throw=False, **retry_options)
        raise task.retry(**retry_options) from error
    return None


TASK_OPTIONS = {
    "bind": True,
    "acks_late": True,
    "max_retries": MAX_RETRIES,
    "ignore_result": True,
    # Waits of 2, 4, 8, 16, 32, 64 s (at most 120), each drawn between 0 and that ("full jitter"), so the retries of
    # many instances hit by one outage do not arrive together.
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
}


@shared_task(name="compute.tasks.build_instance", **TASK_OPTIONS)
def build_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.BUILD)


@shared_task(name="compute.tasks.start_instance", **TASK_OPTIONS)
def start_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.START)


@shared_task(name="compute.tasks.stop_instance", **TASK_OPTIONS)
def stop_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.STOP)


@shared_task(name="compute.tasks.reboot_instance", **TASK_OPTIONS)
def reboot_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.REBOOT)


@shared_task(name="compute.tasks.resize_instance", **TASK_OPTIONS)
def resize_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.RESIZE)


@shared_task(name="compute.tasks.migrate_instance", **TASK_OPTIONS)
def migrate_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.MIGRATE)


@shared_task(name="compute.tasks.restore_instance", **TASK_OPTIONS)
def restore_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.RESTORE)


@shared_task(name="compute.tasks.delete_instance", **TASK_OPTIONS)
def delete_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.DELETE)


TASKS = {
    InstanceTask.BUILD: build_instance,
    InstanceTask.START: start_instance,
    InstanceTask.STOP: stop_instance,
    InstanceTask.REBOOT: reboot_instance,
    InstanceTask.RESIZE: resize_instance,
    InstanceTask.MIGRATE: migrate_instance,
    InstanceTask.RESTORE: restore_instance,
    InstanceTask.DELETE: delete_instance,
}


def enqueue(*, instance_id: str, task: str) -> None:
    """Publishes the Celery task for a piece of instance work (services call it on commit)."""
    TASKS[task].delay(instance_id=instance_id)


@shared_task(name="compute.tasks.reconcile", acks_late=True, ignore_result=True)
def reconcile() -> None:
    """Every minute (beat): re-enqueue lost work, fail overdue work, compare hosts with the database."""
    reconciler.reconcile()


@shared_task(name="compute.tasks.usage_repair", acks_late=True, ignore_result=True)
def usage_repair() -> None:
    """Hourly (beat): recount what tenants and hosts hold and correct running totals that drifted (logged)."""
    usage.usage_totals_repair()
