import time

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_KEY = "hangar:worker-heartbeat"
LATENCY_KEY = "hangar:queue-latency"
# Beat sends the heartbeat every 30 s; a worker that missed three is reported as not running.
HEARTBEAT_STALE_AFTER = 90


@shared_task(name="portal.tasks.heartbeat", ignore_result=True)
def heartbeat(sent_at: float | None = None) -> None:
    """Proves a worker is consuming the queue; /healthz reports when it last ran and how long the message queued."""
    cache.set(HEARTBEAT_KEY, timezone.now(), timeout=24 * 3600)
    if sent_at is not None:
        cache.set(LATENCY_KEY, time.time() - sent_at, timeout=24 * 3600)
