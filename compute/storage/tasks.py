"""Celery tasks for storage: thin adapters that take ids and call compute.storage.services (the same retries and
delivery guarantees as the instance tasks in compute.tasks)."""

from celery import shared_task

from compute.storage import services
from compute.storage.models import StorageTask
from compute.tasks import TASK_OPTIONS, run_with_retries


def _run(task, *, kind: str, pk: str, work: str):
    return run_with_retries(
        task,
        perform=lambda: services.storage_task_perform(kind=kind, pk=pk, task=work),
        fail=lambda reason: services.storage_task_failed(kind=kind, pk=pk, task=work, reason=reason),
    )


@shared_task(name="compute.storage.tasks.volume_work", **TASK_OPTIONS)
def volume_work(self, *, volume_id: str, task: str):
    """Creates, attaches, detaches, extends or deletes a volume."""
    return _run(self, kind="volume", pk=volume_id, work=task)


@shared_task(name="compute.storage.tasks.snapshot_work", **TASK_OPTIONS)
def snapshot_work(self, *, snapshot_id: str, task: str):
    """Takes or deletes a snapshot."""
    return _run(self, kind="snapshot", pk=snapshot_id, work=task)


TASKS = {"volume": volume_work, "snapshot": snapshot_work}


def enqueue(*, kind: str, pk: str, task: str) -> None:
    """Publishes the Celery task for a piece of storage work (services call it on commit)."""
    if task not in StorageTask.values:
        raise ValueError(f"Unknown storage task {task!r}")
    TASKS[kind].delay(**{f"{kind}_id": pk, "task": task})
