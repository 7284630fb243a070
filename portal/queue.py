"""What operators (the overview) and monitoring (the metrics) read about the task queue and the workers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.core.cache import cache
from django.utils import timezone

from portal.celery import app as celery_app
from portal.tasks import HEARTBEAT_KEY, HEARTBEAT_STALE_AFTER, LATENCY_KEY


def queue_depth(queue: str = "celery") -> int | None:
    """Messages waiting in the broker's queue; None if the broker cannot be asked (down, or a kind we cannot read)."""
    transport = celery_app.conf.broker_url.split("://", 1)[0]
    try:
        if transport == "filesystem":
            folder = Path(celery_app.conf.broker_transport_options["data_folder_in"])
            return sum(1 for path in folder.glob(f"*.{queue}.msg"))
        with celery_app.connection_for_read() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
    except Exception:  # the broker is down or unreachable: the overview says "unknown", /healthz says why
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
