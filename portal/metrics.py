"""Metrics for monitoring systems: a Prometheus endpoint (prometheus-client) and the series the shell itself keeps.

- Requests (count and latency per route) and Celery tasks (outcomes and durations) are counted where they happen.
- Apps add their own series: counters and histograms they observe themselves (compute: provisioning time, the
  reconciler's findings), and collectors read at scrape time (compute: machines by state, host capacity) registered
  with `register_collector` from their AppConfig.ready().
- With several processes (gunicorn workers, a Celery worker), set PROMETHEUS_MULTIPROC_DIR to one empty folder that
  they all share, as prometheus-client's multiprocess mode asks: the endpoint then adds up every process's counts.

The endpoint answers only to the networks in METRICS_ALLOWED_NETWORKS (default: this machine) or to a request with
`Authorization: Bearer <METRICS_TOKEN>`; anyone else gets 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time

from celery.signals import task_failure, task_postrun, task_prerun, task_retry
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

HTTP_REQUESTS = Counter(
    "hangar_http_requests", "HTTP requests answered, by method, route and status.", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "hangar_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route.",
    ["method", "route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TASK_RUNS = Counter(
    "hangar_celery_tasks", "Celery task runs, by task and outcome (succeeded, failed, retried).", ["task", "outcome"]
)
TASK_SECONDS = Histogram(
    "hangar_celery_task_duration_seconds",
    "Time a Celery task ran, by task.",
    ["task"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)

_collectors: list = []


def register_collector(collector) -> None:
    """A prometheus-client collector (an object with `collect()`) read at every scrape."""
    _collectors.append(collector)


def observe_request(*, method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_SECONDS.labels(method, route).observe(seconds)


class QueueCollector:
    """The broker's queue depth and the worker heartbeat's age, read at scrape time."""

    def collect(self):
        from portal.queue import queue_depth, worker_heartbeat_or_unknown

        depth = queue_depth()
        queue = GaugeMetricFamily("hangar_queue_depth", "Messages waiting in the Celery queue.", labels=["queue"])
        if depth is not None:
            queue.add_metric(["celery"], depth)
        yield queue
        heartbeat = worker_heartbeat_or_unknown()
        age = GaugeMetricFamily(
            "hangar_worker_heartbeat_age_seconds", "Seconds since a worker last ran the heartbeat task."
        )
        if heartbeat.age_seconds is not None:
            age.add_metric([], heartbeat.age_seconds)
        yield age


register_collector(QueueCollector())


# --- Celery tasks -------------------------------------------------------------------------------------------------
_started: dict[str, float] = {}


@task_prerun.connect
def _task_started(task_id=None, **kwargs) -> None:
    _started[task_id] = time.monotonic()


@task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **kwargs) -> None:
    started = _started.pop(task_id, None)
    name = getattr(task, "name", "unknown")
    if started is not None:
        TASK_SECONDS.labels(name).observe(time.monotonic() - started)
    if state == "SUCCESS":
        TASK_RUNS.labels(name, "succeeded").inc()


@task_failure.connect
def _task_failed(sender=None, **kwargs) -> None:
    TASK_RUNS.labels(getattr(sender, "name", "unknown"), "failed").inc()


@task_retry.connect
def _task_retried(sender=None, **kwargs) -> None:
    TASK_RUNS.labels(getattr(sender, "name", "unknown"), "retried").inc()


# --- the endpoint -------------------------------------------------------------------------------------------------


def scrape() -> bytes:
    """The exposition text: every process's counts (multiprocess mode) or this one's, and the collectors."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_DefaultRegistry())
    for collector in _collectors:
        registry.register(collector)
    return generate_latest(registry)


class _DefaultRegistry:
    """This process's own series (the default registry), alongside the scrape-time collectors."""

    def collect(self):
        yield from REGISTRY.collect()


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip(), token):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


@never_cache
@login_not_required
def metrics_view(request):
    if not _allowed(request):
        return HttpResponse("Metrics are not open to you: ask with the metrics token.\n", status=403)
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)
