"""Per-credential rate limits with fixed-window counters in the cache (atomic add + incr; Redis in production).

Each request counts against a sustained window (an hour) and a short burst window (a minute); creates and
actions also count against a tighter pair. The window closest to running out is reported in the RateLimit-*
headers of every response; a request over any limit is a 429 with Retry-After.

The counters are a convenience, not a dependency: while the shared cache is unreachable (Redis down) each process
counts in its own memory instead, with a logged warning, and tries the shared cache again a few seconds later. An
outage of the cache loosens the limits for a while; it never turns API requests into errors.
"""

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.exceptions import APIException, Throttled

logger = logging.getLogger(__name__)

# After the shared cache fails, how long this process counts locally before it tries the shared cache again.
SHARED_CACHE_RETRY_SECONDS = 10


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


class _Counters:
    """The shared cache while it answers; this process's memory for a while after it has failed."""

    def __init__(self):
        self.local = LocMemCache("hangar-ratelimit-fallback", {"MAX_ENTRIES": 10_000})
        self._lock = threading.Lock()
        self._shared_down_until = 0.0

    def count(self, windows: list[tuple[str, int]]) -> list[int]:
        """Adds one to each (key, seconds) window's counter; returns the counts."""
        if time.monotonic() >= self._shared_down_until:
            try:
                return _count_in(cache, windows)
            except Exception as error:  # any backend failure (Redis refused or timed out, a full disk) means "down"
                self._shared_failed(error)
        return _count_in(self.local, windows)

    def _shared_failed(self, error: Exception) -> None:
        with self._lock:
            if time.monotonic() < self._shared_down_until:
                return  # another thread has already switched over and said so
            self._shared_down_until = time.monotonic() + SHARED_CACHE_RETRY_SECONDS
        logger.warning(
            "Rate limits: the shared cache is unavailable (%s: %s); counting in this process for %d s.",
            type(error).__name__,
            error,
            SHARED_CACHE_RETRY_SECONDS,
        )


_counters = _Counters()


def _count_in(store, windows: list[tuple[str, int]]) -> list[int]:
    counted = getattr(store, "count_windows", None)
    if counted is not None:  # Redis: every window in one round trip
        return counted(windows)
    return [_count_one(store, key, seconds) for key, seconds in windows]


def _count_one(store, key: str, seconds: int) -> int:
    # add() is a no-op when the key exists, so the window's expiry is set once, by its first request.
    store.add(key, 0, timeout=seconds + 1)
    try:
        return store.incr(key)
    except ValueError:  # expired between add() and incr()
        store.add(key, 1, timeout=seconds + 1)
        return 1


def hit(*, identity: str, write: bool, now: float | None = None) -> WindowState:
    """Counts one request; returns the tightest window's state, or raises Throttled (carrying it) when over."""
    now = time.time() if now is None else now
    tightest = None
    exceeded = None
    windows = windows_for(write=write)
    starts = [int(now // window.seconds) * window.seconds for window in windows]
    counts = _counters.count(
        [
            (f"hangar:ratelimit:{identity}:{window.name}:{started}", window.seconds)
            for window, started in zip(windows, starts, strict=True)
        ]
    )
    for window, started, used in zip(windows, starts, counts, strict=True):
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
