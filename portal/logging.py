"""Quiet, structured logs: one line per request and per task, each with the request id, the tenant and the user (or
API token), in JSON when LOG_FORMAT=json.

The request id comes from the client's X-Request-ID header when it is a sane one (a load balancer's), else it is
made here; it is returned in the X-Request-ID response header, shown on error pages so support can find the line,
and carried into the Celery tasks a request enqueues, so their lines name it too. Request counts and latencies go
to the metrics (portal/metrics.py) from the same place.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from celery.signals import before_task_publish, task_failure, task_postrun, task_prerun, task_retry
from django.utils.functional import empty

HEADER = "X-Request-ID"
CELERY_HEADER = "hangar_request_id"
SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
QUIET_PATHS = ("/static/", "/healthz", "/metrics", "/favicon.ico")

_request_id: ContextVar[str] = ContextVar("hangar_request_id", default="")
_request: ContextVar = ContextVar("hangar_request", default=None)
_task: ContextVar[dict] = ContextVar("hangar_task", default={})  # noqa: B039 (never mutated: replaced whole)

request_logger = logging.getLogger("hangar.request")
task_logger = logging.getLogger("hangar.task")


def current_request_id() -> str:
    return _request_id.get()


def _identity(request) -> dict:
    """Who made the request, as far as it is known already (never triggers authentication itself)."""
    if request is None:
        return {}
    identity = {}
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        identity["tenant"] = str(tenant.pk)
    user = request.__dict__.get("user")  # set by the authentication middleware, possibly still lazy
    if user is not None:
        wrapped = getattr(user, "_wrapped", user)  # a SimpleLazyObject is `empty` until something reads it
        if wrapped is not empty and getattr(wrapped, "is_authenticated", False):
            identity["user"] = str(wrapped.pk)
    token = getattr(request, "api_token", None)
    if token is not None:
        identity["token"] = token.prefix
    return identity


class ContextFilter(logging.Filter):
    """Adds request_id, tenant, user and token (and task, task_id in workers) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get() or "-"
        for key, value in {**_identity(_request.get()), **_task.get()}.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


# Fields of a record that the JSON line carries when present (the request and task lines set most of them).
CONTEXT_FIELDS = ("request_id", "tenant", "user", "token", "task", "task_id")
EXTRA_FIELDS = ("method", "path", "route", "status", "duration_ms", "outcome")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, and an exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in (*CONTEXT_FIELDS, *EXTRA_FIELDS):
            value = getattr(record, key, None)
            if value not in (None, "", "-"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class PlainFormatter(logging.Formatter):
    """Human-readable, with the context fields that are set at the end: `… [request_id=… tenant=… user=…]`."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(
            f"{key}={getattr(record, key)}" for key in CONTEXT_FIELDS if getattr(record, key, None) not in (None, "-")
        )
        return f"{text} [{context}]" if context else text


class RequestLogMiddleware:
    """First in MIDDLEWARE: gives the request its id, answers with it, and logs one line when the response is ready."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(HEADER, "")
        request.id = incoming if SANE_ID.match(incoming) else uuid.uuid4().hex
        id_token, request_token = _request_id.set(request.id), _request.set(request)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response[HEADER] = request.id
            self._log(request, response.status_code, time.monotonic() - started)
            return response
        finally:
            _request_id.reset(id_token)
            _request.reset(request_token)

    @staticmethod
    def _log(request, status: int, seconds: float) -> None:
        from portal.metrics import observe_request

        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        observe_request(method=request.method, route=route, status=status, seconds=seconds)
        level = logging.ERROR if status >= 500 else logging.WARNING if status == 429 else logging.INFO
        if level == logging.INFO and request.path.startswith(QUIET_PATHS):
            level = logging.DEBUG  # static files, health checks and scrapes: every few seconds all day, noise
        duration_ms = round(seconds * 1000, 1)
        request_logger.log(
            level,
            "%s %s %s %s ms",
            request.method,
            request.path,
            status,
            duration_ms,
            extra={"method": request.method, "path": request.path, "route": route, "status": status,
                   "duration_ms": duration_ms, "request_id": request.id, **_identity(request)},
        )  # fmt: skip


def request_id(request) -> dict:
    """Context processor: pages (error pages above all) can show the request id."""
    return {"request_id": getattr(request, "id", "") or current_request_id()}


# --- Celery: the request id travels with the task; one line per task run -------------------------------------------


@before_task_publish.connect
def _send_request_id(headers=None, **kwargs) -> None:
    if headers is not None and _request_id.get():
        headers[CELERY_HEADER] = _request_id.get()


_runs: dict[str, tuple[float, object, object]] = {}


@task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs) -> None:
    sent_by = getattr(task.request, CELERY_HEADER, None) or (getattr(task.request, "headers", None) or {}).get(
        CELERY_HEADER
    )
    tokens = (
        _request_id.set(sent_by or _request_id.get() or task_id),
        _task.set({"task": task.name, "task_id": task_id}),
    )
    _runs[task_id] = (time.monotonic(), *tokens)


@task_failure.connect
def _task_failed(task_id=None, exception=None, **kwargs) -> None:
    task_logger.error("task failed: %s", exception, extra={"outcome": "failed"})


@task_retry.connect
def _task_retried(request=None, reason=None, **kwargs) -> None:
    task_logger.warning("task will retry: %s", reason, extra={"outcome": "retried"})


@task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **kwargs) -> None:
    started, id_token, task_token = _runs.pop(task_id, (None, None, None))
    if started is not None:
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        outcome = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retried"}.get(state, str(state).lower())
        task_logger.info(
            "%s %s in %s ms", task.name, outcome, duration_ms, extra={"outcome": outcome, "duration_ms": duration_ms}
        )
    if task_token is not None:
        try:
            _task.reset(task_token)
            _request_id.reset(id_token)
        except ValueError:  # finished in another context than it started in: nothing of ours is left there
            pass
