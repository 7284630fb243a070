"""The no-op task: the baseline of a task's round trip and of a worker's CPU per task."""

from celery import shared_task
from django.core.cache import cache

DONE_KEY = "bench:noop-done"


@shared_task(name="bench.noop", ignore_result=True)
def noop() -> None:
    """Counts itself, so that the sender knows when every one has run."""
    if not cache.add(DONE_KEY, 1, timeout=3600):
        cache.incr(DONE_KEY)
