import logging
import time

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_TASK = "portal.tasks.heartbeat"
HEARTBEAT_KEY = "hangar:worker-heartbeat"
LATENCY_KEY = "hangar:queue-latency"
# Beat sends the heartbeat every 30 s; a worker that missed three is reported as not running.
HEARTBEAT_STALE_AFTER = 90


@shared_task(name=HEARTBEAT_TASK, ignore_result=True)
def heartbeat(sent_at: float | None = None) -> None:
    """Proves a worker is consuming the queue; /healthz reports when it last ran and how long the message queued."""
    cache.set(HEARTBEAT_KEY, timezone.now(), timeout=24 * 3600)
    if sent_at is not None:
        cache.set(LATENCY_KEY, time.time() - sent_at, timeout=24 * 3600)


class HeartbeatAtDebug(logging.Filter):
    """Celery logs every task sent, received and done at INFO; for the heartbeat, every 30 s, that is noise: DEBUG.

    Attached to Celery's loggers in settings.LOGGING; a demoted line still shows under `--loglevel DEBUG`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or HEARTBEAT_TASK not in record.getMessage():
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
