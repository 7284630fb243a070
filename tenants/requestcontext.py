"""Who is acting, through which door and from where, for the request being handled.

TenantMiddleware's neighbour RequestContextMiddleware binds one RequestContext per request (dashboard, API or
operator admin, with the client's address); API authentication adds the token. activity_record reads it, so no
service needs a request passed in. Outside a request (workers, beat, the shell) there is none: the system acts.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

CHANNEL_DASHBOARD, CHANNEL_API, CHANNEL_ADMIN, CHANNEL_SYSTEM = "dashboard", "api", "admin", "system"


@dataclass
class RequestContext:
    channel: str
    ip_address: str | None
    user_agent: str = ""
    api_token: Any = None  # the ApiToken that authenticated an API request


_current: ContextVar[RequestContext | None] = ContextVar("hangar_request_context", default=None)


def current() -> RequestContext | None:
    return _current.get()


def client_ip(request) -> str | None:
    """The address the request came from. Behind a proxy, have it pass the client's address as REMOTE_ADDR
    (gunicorn's --forwarded-allow-ips with a proxy protocol, or the proxy's own module)."""
    return request.META.get("REMOTE_ADDR") or None


def channel_for(path: str) -> str:
    if path.startswith("/api/"):
        return CHANNEL_API
    if path.startswith("/admin/"):
        return CHANNEL_ADMIN
    return CHANNEL_DASHBOARD


def context_for(request) -> RequestContext:
    return RequestContext(
        channel=channel_for(request.path_info),
        ip_address=client_ip(request),
        user_agent=request.headers.get("User-Agent", "")[:300],
    )


@contextmanager
def bound(context: RequestContext):
    reset = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(reset)


def set_api_token(api_token) -> None:
    context = _current.get()
    if context is not None:
        context.api_token = api_token
