"""Celery tasks for compute: thin adapters that take ids and call compute.services.operations / compute.reconciler.

Every instance task is `acks_late` (a worker that dies mid-task leaves the message to be redelivered), retries
transient driver errors with exponential backoff, and records a failure once the retries are used up.
"""

import random

from celery import shared_task

from compute import reconciler, services
from compute.drivers.base import TransientDriverError
from compute.models import InstanceTask
from compute.services import operations

MAX_RETRIES = 6
BACKOFF_BASE = 2  # seconds: 2, 4, 8, 16, 32, 64 (+ jitter)
BACKOFF_MAX = 120


def backoff(retries: int) -> float:
    delay = min(BACKOFF_BASE * 2**retries, BACKOFF_MAX)
    return delay + random.uniform(0, delay / 4)  # jitter: retries of many instances do not arrive together


def _run(task, *, instance_id: str, kind: str):
    try:
        operations.instance_task_perform(instance_id=instance_id, task=kind)
    except TransientDriverError as error:
        if task.request.retries >= MAX_RETRIES:
            services.instance_task_failed(
                instance_id=instance_id, task=kind, reason=f"Gave up after {MAX_RETRIES + 1} attempts: {error}"
            )
            return None
        retry_options = {"exc": error, "countdown": backoff(task.request.retries), "max_retries": MAX_RETRIES}
        if task.request.is_eager:
            # Eager mode (tests, `CELERY_TASK_ALWAYS_EAGER`) re-runs a *returned* Retry in place; a raised one
            # would escape to the caller when eager exceptions propagate.
            return task.retry(throw=False, **retry_options)
        raise task.retry(**retry_options) from error
    return None


_OPTIONS = {"bind": True, "acks_late": True, "max_retries": MAX_RETRIES, "ignore_result": True}


@shared_task(name="compute.tasks.build_instance", **_OPTIONS)
def build_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.BUILD)


@shared_task(name="compute.tasks.start_instance", **_OPTIONS)
def start_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.START)


@shared_task(name="compute.tasks.stop_instance", **_OPTIONS)
def stop_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.STOP)


@shared_task(name="compute.tasks.reboot_instance", **_OPTIONS)
def reboot_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.REBOOT)


@shared_task(name="compute.tasks.resize_instance", **_OPTIONS)
def resize_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.RESIZE)


@shared_task(name="compute.tasks.delete_instance", **_OPTIONS)
def delete_instance(self, *, instance_id: str):
    return _run(self, instance_id=instance_id, kind=InstanceTask.DELETE)


TASKS = {
    InstanceTask.BUILD: build_instance,
    InstanceTask.START: start_instance,
    InstanceTask.STOP: stop_instance,
    InstanceTask.REBOOT: reboot_instance,
    InstanceTask.RESIZE: resize_instance,
    InstanceTask.DELETE: delete_instance,
}


def enqueue(*, instance_id: str, task: str) -> None:
    """Publishes the Celery task for a piece of instance work (services call it on commit)."""
    TASKS[task].delay(instance_id=instance_id)


@shared_task(name="compute.tasks.reconcile", acks_late=True, ignore_result=True)
def reconcile() -> None:
    """Every minute (beat): re-enqueue lost work, fail overdue work, compare hosts with the database."""
    reconciler.reconcile()
