"""Pagination bounds and links; rate limits with their headers."""

import pytest
from django.core.cache import cache

from portal.api import ratelimit
from tests.api.conftest import bearer_client, token_for
from tests.api.test_generic import assert_error
from tests.factories.compute import InstanceFactory, new_public_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def seven(tenant):
    return [InstanceFactory(tenant=tenant, name=f"web-{n}") for n in range(7)]


def test_pages_walk_every_row_once_in_order(member_api, seven):
    seen, url = [], "/api/v1/instances/?per_page=3&ordering=name"
    while url:
        body = member_api.get(url).json()
        assert body["meta"]["total"] == 7 and body["meta"]["per_page"] == 3
        seen += [row["name"] for row in body["data"]]
        url = body["links"]["next"]
    assert seen == sorted(f"web-{n}" for n in range(7))


def test_links(member_api, seven):
    body = member_api.get("/api/v1/instances/?per_page=3&page=2").json()
    assert body["meta"] == {"total": 7, "page": 2, "per_page": 3}
    assert "page=3" in body["links"]["next"] and "page" not in body["links"]["prev"].split("?")[1].replace(
        "per_page", ""
    )
    assert "page=3" in body["links"]["last"]
    first = member_api.get("/api/v1/instances/?per_page=3").json()
    assert first["links"]["prev"] is None
    last = member_api.get("/api/v1/instances/?per_page=3&page=3").json()
    assert last["links"]["next"] is None and len(last["data"]) == 1


def test_default_and_maximum_page_sizes(member_api, tenant):
    for n in range(25):
        InstanceFactory(tenant=tenant, name=f"vm-{n}")
    assert len(member_api.get("/api/v1/instances/").json()["data"]) == 20
    assert len(member_api.get("/api/v1/instances/?per_page=200").json()["data"]) == 25


@pytest.mark.parametrize("query", ["per_page=0", "per_page=201", "per_page=-1", "per_page=x", "page=0", "page=-2",
                                   "page=1.5", "page=abc"])  # fmt: skip
def test_bad_pagination_values_are_400(member_api, query):
    response = member_api.get(f"/api/v1/instances/?{query}")
    assert_error(response, 400, "invalid")
    assert query.split("=")[0] in response.json()["error"]["details"]


def test_a_page_past_the_end_is_empty_not_an_error(member_api, seven):
    body = member_api.get("/api/v1/instances/?per_page=5&page=9").json()
    assert body["data"] == [] and body["meta"]["total"] == 7
    assert body["links"]["next"] is None


# --- rate limits -------------------------------------------------------------------------------------------------


@pytest.fixture
def tight(settings):
    settings.API_RATE_LIMITS = {
        "per_hour": 5,
        "burst_per_minute": 4,
        "writes_per_hour": 3,
        "writes_burst_per_minute": 2,
    }
    cache.clear()


def test_headers_on_every_response(member_api):
    response = member_api.get("/api/v1/tenant/")
    assert int(response["RateLimit-Limit"]) >= 1
    assert int(response["RateLimit-Remaining"]) == int(response["RateLimit-Limit"]) - 1
    assert 1 <= int(response["RateLimit-Reset"]) <= 3600


def test_429_with_retry_after_once_the_burst_is_spent(tight, member_api):
    remaining = [int(member_api.get("/api/v1/tenant/")["RateLimit-Remaining"]) for _ in range(4)]
    assert remaining == [3, 2, 1, 0]
    response = member_api.get("/api/v1/tenant/")
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1
    assert response.json()["error"]["message"] == f"Too many requests; try again in {response['Retry-After']} seconds."
    assert response["RateLimit-Remaining"] == "0"
    assert response["RateLimit-Limit"] == "4"


def test_writes_are_limited_more_tightly(tight, member_api):
    for n in range(2):
        body = {"name": f"k{n}", "public_key": new_public_key()}
        assert member_api.post("/api/v1/ssh-keys/", body, format="json").status_code == 201
    response = member_api.post("/api/v1/ssh-keys/", {"name": "k3", "public_key": new_public_key()}, format="json")
    assert_error(response, 429, "rate_limited")
    # Reads still have room.
    assert member_api.get("/api/v1/ssh-keys/").status_code == 200


def test_limits_are_per_token(tight, member, tenant):
    first = bearer_client(token_for(member, tenant)[1])
    second = bearer_client(token_for(member, tenant)[1])
    for _ in range(4):
        first.get("/api/v1/tenant/")
    assert first.get("/api/v1/tenant/").status_code == 429
    assert second.get("/api/v1/tenant/").status_code == 200


def test_anonymous_requests_are_counted_per_address(tight, anon_api):
    for _ in range(4):
        assert anon_api.get("/api/v1/tenant/").status_code == 401
    assert_error(anon_api.get("/api/v1/tenant/"), 429, "rate_limited")


def test_window_resets(tight, settings):
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "per_hour": 10}
    for _ in range(4):
        ratelimit.hit(identity="token:x", write=False, now=1000.0)
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.hit(identity="token:x", write=False, now=1001.0)
    # The next minute starts over; the refused request still counted against the hour.
    state = ratelimit.hit(identity="token:x", write=False, now=1080.0)
    assert (state.limit, state.remaining) == (4, 3)
    assert ratelimit.hit(identity="token:x", write=False, now=1081.0).remaining == 2
