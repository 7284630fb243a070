"""The API when something it leans on fails: the cache, the database, the request itself. Always the error shape,
never a 500 for bad input, and a 503 that says when to come back while the database is away."""

import logging

import pytest

from portal.api import ratelimit
from tests.api.test_generic import assert_error

pytestmark = pytest.mark.django_db

# Nothing listens on port 1 (binding it needs root): connecting is refused at once, as with a stopped Redis.
UNREACHABLE_REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


@pytest.fixture
def cache_down(settings, monkeypatch):
    """The shared cache (Redis) refuses connections; rate-limit counters start afresh in this process."""
    monkeypatch.setattr(ratelimit, "_counters", ratelimit._Counters())
    settings.CACHES = UNREACHABLE_REDIS


def test_reads_and_writes_succeed_while_the_cache_is_down(cache_down, member_api, caplog):
    with caplog.at_level(logging.WARNING, logger="portal.api.ratelimit"):
        listed = member_api.get("/api/v1/instances/")
        created = member_api.post("/api/v1/ssh-keys/", {"name": "k", "public_key": _public_key()}, format="json")

    assert listed.status_code == 200
    assert created.status_code == 201
    assert int(listed["RateLimit-Remaining"]) == int(listed["RateLimit-Limit"]) - 1
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1  # once per switch-over, not once per request
    assert "shared cache is unavailable" in warnings[0]


def test_limits_still_apply_in_process_while_the_cache_is_down(cache_down, settings, member_api):
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "burst_per_minute": 2}
    assert [member_api.get("/api/v1/tenant/").status_code for _ in range(2)] == [200, 200]
    assert_error(member_api.get("/api/v1/tenant/"), 429, "rate_limited")


def _public_key() -> str:
    from tests.factories.compute import new_public_key

    return new_public_key()


# --- bodies that must not break the parser -----------------------------------------------------------------------


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [33, 900, 10_000, 100_000])
def test_json_nested_too_deep_is_a_clean_400_at_any_depth(member_api, levels):
    response = member_api.post("/api/v1/instances/", _nested(levels), content_type="application/json")
    assert_error(response, 400, "malformed_request")
    assert "nested more than 32 levels" in response.json()["error"]["message"]


def test_json_nested_within_the_bound_is_parsed_and_validated(member_api):
    response = member_api.post("/api/v1/instances/", {"name": [[[[["web"]]]]]}, format="json")
    assert_error(response, 400, "invalid")
