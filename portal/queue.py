"""What operators (the overview) and monitoring (the metrics) read about the task queue and the workers."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from kombu.exceptions import ChannelError

from portal.celery import app as celery_app
from portal.tasks import HEARTBEAT_KEY, HEARTBEAT_STALE_AFTER, LATENCY_KEY

logger = logging.getLogger(__name__)


def queue_of(task_name: str) -> str:
    """The queue a task's messages are sent to (CELERY_TASK_ROUTES, else the default queue)."""
    return celery_app.amqp.router.route({}, task_name, args=(), kwargs={})["queue"].name


def wait_for_claims() -> None:
    """Gives a worker that has just taken a message from its queue the moment it needs to claim the work (it stamps
    `task_progress_at` as the task starts): TASK_CLAIM_WAIT_SECONDS. A reconciler that found unclaimed work and an
    empty queue calls this before re-sending, and re-sends only what is still unclaimed after it: an empty queue
    means the message is lost, or that a worker holds it and has not started it yet. Nothing waits in eager mode."""
    if not celery_app.conf.task_always_eager:
        time.sleep(settings.TASK_CLAIM_WAIT_SECONDS)


def queue_depth(queue: str = "celery") -> int | None:
    """Messages waiting in the broker's queue, not yet taken by any worker (those a worker has taken, running or
    reserved, are not counted); None if the broker cannot be asked (down, or a kind we cannot read). Always 0 in
    eager mode, where nothing ever waits."""
    if celery_app.conf.task_always_eager:
        return 0
    transport = celery_app.conf.broker_url.split("://", 1)[0]
    try:
        if transport == "filesystem":
            folder = Path(celery_app.conf.broker_transport_options["data_folder_in"])
            return sum(1 for path in folder.glob(f"*.{queue}.msg"))
        with celery_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
            try:
                return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # never declared, or (Redis) emptied and so gone: nothing waits
                return 0
    except Exception as error:  # the broker is down or unreachable: the overview says "unknown", /healthz says why
        logger.warning("Cannot ask the broker how many messages wait in queue %s: %s", queue, error)
        return None


@dataclass(frozen=True)
class Heartbeat:
    last_seen: datetime | None
    latency_seconds: float | None

    @property
    def age_seconds(self) -> float | None:
        return None if self.last_seen is None else (timezone.now() - self.last_seen).total_seconds()

    @property
    def ok(self) -> bool:
        return self.age_seconds is not None and self.age_seconds <= HEARTBEAT_STALE_AFTER


def worker_heartbeat() -> Heartbeat:
    """When a worker last ran the heartbeat task (beat sends it every 30 s) and how long its message queued."""
    return Heartbeat(last_seen=cache.get(HEARTBEAT_KEY), latency_seconds=cache.get(LATENCY_KEY))


def worker_heartbeat_or_unknown() -> Heartbeat:
    """worker_heartbeat() for pages and metrics: while the cache is down no heartbeat is known (health reports why)."""
    try:
        return worker_heartbeat()
    except Exception:
        logger.warning("Cannot read the worker heartbeat: the cache is unreachable.", exc_info=True)
        return Heartbeat(last_seen=None, latency_seconds=None)
