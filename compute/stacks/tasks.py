"""Celery adapter for stack runs: advance a run; a step that waits is looked at again by the service's re-enqueue."""

from celery import shared_task

from compute.stacks import services


@shared_task(acks_late=True, ignore_result=True)
def stack_run_advance(run_id: str) -> None:
    services.stack_run_advance(run_id=run_id)


@shared_task(ignore_result=True)
def resume() -> None:
    services.stacks_resume()
