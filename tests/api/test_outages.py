"""The API when something it leans on fails: the cache, the database, the request itself. Always the error shape,
never a 500 for bad input, and a 503 that says when to come back while the database is away."""

import logging

import pytest
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper

from portal.api import ratelimit
from tests.api.test_generic import assert_error
from tests.conftest import login_client

pytestmark = pytest.mark.django_db

# Nothing listens on port 1 (binding it needs root): connecting is refused at once, as with a stopped Redis.
UNREACHABLE_REDIS = {"default": {"BACKEND": "portal.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}


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


def test_a_body_over_the_upload_limit_is_a_413_in_the_error_shape(member_api, settings):
    body = b'{"name": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}'
    response = member_api.post("/api/v1/instances/", body, content_type="application/json")
    assert_error(response, 413, "payload_too_large")
    assert response.json()["error"]["details"] == {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}


# --- the database away, errors outside DRF -------------------------------------------------------------------------


@pytest.fixture
def database_down(monkeypatch):
    """Every query fails as it does while PostgreSQL restarts (the fault suite does it for real: tests/fault)."""

    def refused(self, sql, params=None):
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", refused)


def _assert_unavailable(response) -> None:
    assert_error(response, 503, "service_unavailable")
    assert int(response["Retry-After"]) >= 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_api_requests_get_a_503_with_retry_after_while_the_database_is_down(member_api, database_down, method):
    member_api.raise_request_exception = False
    response = getattr(member_api, method)("/api/v1/instances/", {}, format="json")
    _assert_unavailable(response)


@pytest.fixture
def browser_session(member):
    """A logged-in dashboard session (logged in while the database still answers)."""
    client = login_client(member)
    client.raise_request_exception = False
    return client


def test_a_database_error_outside_the_view_is_a_503_in_the_error_shape_too(browser_session, database_down):
    # The session's user is loaded by the middleware, before any API view runs.
    _assert_unavailable(browser_session.get("/api/v1/instances/"))


def test_a_request_django_refuses_is_a_400_in_the_error_shape(member_api):
    assert_error(member_api.get("/api/v1/instances/", HTTP_HOST="elsewhere.example"), 400, "malformed_request")
