"""The ASGI application's HTTP side: Django's pages and API, with the middleware stack run as one synchronous call."""

import asyncio
import json
import threading

import pytest

from tests.garbage import left_for_the_collector
from tests.websocket import http_request, run_async

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def asgi(_plain_http_live_server):
    """portal.asgi, imported once the settings its middleware reads when built are those of the plain-HTTP live
    servers of the browser tests (which serve this same application object later in the run)."""
    from portal import asgi

    yield asgi
    asgi.http_application.shutdown()  # the test database can only be dropped once no thread holds a connection


def _request(method: str, path: str, **kwargs) -> dict:
    from portal.asgi import application

    async def scenario():
        return await http_request(application, method, path, **kwargs)

    return run_async(scenario)


def test_the_middleware_stack_is_one_synchronous_call(asgi):
    assert not asyncio.iscoroutinefunction(asgi.http_application._middleware_chain)


def test_an_api_request_is_answered_in_the_api_s_error_shape():
    response = _request("GET", "/api/v1/instances/", headers=[(b"authorization", b"Bearer hgr_unknown")])
    assert response["status"] == 401
    assert json.loads(response["body"])["error"]["code"] == "authentication_failed"


def test_a_page_comes_with_the_headers_the_middleware_adds():
    response = _request("GET", "/accounts/login/")
    assert response["status"] == 200 and b"<form" in response["body"]
    assert "content-security-policy" in response["headers"] and response["headers"]["x-frame-options"] == "DENY"


def test_a_body_over_the_limit_is_refused_in_the_api_s_error_shape():
    body = json.dumps({"name": "x" * 3_000_000}).encode()
    headers = [(b"authorization", b"Bearer hgr_unknown"), (b"content-type", b"application/json")]
    response = _request("POST", "/api/v1/instances/", body=body, headers=headers)
    assert response["status"] in (401, 413)
    assert "error" in json.loads(response["body"])


def test_views_run_on_long_lived_threads_outside_the_event_loop_s(asgi, monkeypatch, settings):
    """A synchronous view may block (database, hypervisor): it never runs on the loop's own thread. And requests run
    on at most WEB_THREADS threads, each keeping its database connection (Django's async mode made a thread, and so
    a connection, for every request)."""
    from django.db import connection

    from portal import views

    settings.WEB_THREADS = 2
    asgi.http_application.shutdown()  # the pool is made again, at the next request, with two threads
    seen = []
    original = views._check_database

    def check_database():
        checked = original()
        seen.append((threading.get_ident(), id(connection.connection)))
        return checked

    monkeypatch.setattr(views, "_check_database", check_database)

    async def scenario():
        loop = threading.get_ident()
        answers = [await http_request(asgi.application, "GET", "/healthz") for _ in range(6)]
        return loop, answers

    loop, answers = run_async(scenario)
    assert [answer["status"] in (200, 503) for answer in answers] == [True] * 6
    threads = {thread for thread, _ in seen}
    assert len(seen) == 6 and len(threads) <= 2 and loop not in threads
    if connection.vendor == "postgresql":  # SQLite connections are not kept between requests (CONN_MAX_AGE 0)
        for thread in threads:
            assert len({connection_id for each, connection_id in seen if each == thread}) == 1


def test_an_answer_is_freed_once_sent_not_left_in_a_cycle_for_the_collector(member, tenant):
    """A page's or list's objects go with its response: none waits for a full collection of the cyclic garbage
    collector, which under load came about once a second and paused a request for tens of milliseconds."""
    from compute.models import Instance
    from tests.api.conftest import token_for
    from tests.factories.compute import InstanceFactory

    InstanceFactory.create_batch(5, tenant=tenant)
    headers = [(b"authorization", f"Bearer {token_for(member, tenant)[1]}".encode())]
    _request("GET", "/api/v1/instances/", headers=headers)

    def request() -> None:
        # Whichever comes first, the server's "disconnected" once the answer is sent, or the handler done with it.
        for _ in range(10):
            response = _request("GET", "/api/v1/instances/", headers=headers)
            assert response["status"] == 200 and len(json.loads(response["body"])["data"]) == 5

    assert left_for_the_collector(request, Instance) == []
