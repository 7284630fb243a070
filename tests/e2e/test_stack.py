"""The whole stack as `make run` starts it: web, a separate Celery worker and beat, on their own database."""

import pytest

from tests.e2e.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, django_db_blocker):
    with django_db_blocker.unblock():
        running = Stack(tmp_path_factory.mktemp("stack"))
        try:
            yield running.start()
        finally:
            running.stop()


def test_healthz_reports_database_broker_and_a_running_worker(stack):
    # Beat sends the heartbeat task on start; only a worker consuming the broker can run it.
    stack.wait_for(lambda: stack.get("/healthz").json()["checks"]["worker"]["ok"], what="the worker heartbeat")
    body = stack.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


def test_the_log_in_page_is_served(stack):
    response = stack.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Log in" in response.body
