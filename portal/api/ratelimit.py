"""Per-credential rate limits with fixed-window counters in the cache (atomic add + incr; Redis in production).

Each request counts against a sustained window (an hour) and a short burst window (a minute); creates and
actions also count against a tighter pair. The window closest to running out is reported in the RateLimit-*
headers of every response; a request over any limit is a 429 with Retry-After.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import APIException, Throttled


@dataclass(frozen=True)
class Window:
    name: str
    limit: int
    seconds: int


@dataclass(frozen=True)
class WindowState:
    limit: int
    remaining: int
    reset: int  # seconds until the window starts over

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(self.reset),
        }


def windows_for(*, write: bool) -> list[Window]:
    limits = settings.API_RATE_LIMITS
    windows = [
        Window("hour", limits["per_hour"], 3600),
        Window("burst", limits["burst_per_minute"], 60),
    ]
    if write:
        windows += [
            Window("write-hour", limits["writes_per_hour"], 3600),
            Window("write-burst", limits["writes_burst_per_minute"], 60),
        ]
    return windows


def client_identity(request) -> str:
    """Counters belong to the token, else the logged-in user, else the client address."""
    token = getattr(request, "auth", None)
    if token is not None and getattr(token, "pk", None) is not None:
        return f"token:{token.pk}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{request.META.get('REMOTE_ADDR', 'unknown')}"


def _count(key: str, seconds: int) -> int:
    # add() is a no-op when the key exists, so the window's expiry is set once, by its first request.
    cache.add(key, 0, timeout=seconds + 1)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=seconds + 1)
        return 1


def hit(*, identity: str, write: bool, now: float | None = None) -> WindowState:
    """Counts one request; returns the tightest window's state, or raises Throttled (carrying it) when over."""
    now = time.time() if now is None else now
    tightest = None
    exceeded = None
    for window in windows_for(write=write):
        started = int(now // window.seconds) * window.seconds
        used = _count(f"hangar:ratelimit:{identity}:{window.name}:{started}", window.seconds)
        state = WindowState(window.limit, window.limit - used, max(int(started + window.seconds - now), 1))
        if used > window.limit and (exceeded is None or state.reset > exceeded.reset):
            exceeded = state
        if tightest is None or state.remaining < tightest.remaining:
            tightest = state
    if exceeded is not None:
        raise RateLimited(exceeded)
    return tightest


class RateLimited(Throttled):
    default_detail = "Too many requests; slow down."

    def __init__(self, state: WindowState):
        # APIException's constructor, not Throttled's: ours already says when to come back.
        APIException.__init__(self, detail=f"Too many requests; try again in {state.reset} seconds.", code="throttled")
        self.wait = state.reset
        self.state = state
