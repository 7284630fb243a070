"""The whole stack as `make run` starts it: web, a separate Celery worker and beat, on their own database (the
`stack` fixture, tests/e2e/conftest.py). Driving a machine from the dashboard on it: test_dashboard_flows.py."""

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


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


def test_beat_sends_the_schedule_from_the_database(stack):
    """Beat keeps its schedule in the database (operators edit it in the admin) and sends what is due."""
    names = stack.manage(
        "shell",
        "-c",
        "from django_celery_beat.models import PeriodicTask as P; print(list(P.objects.values_list('name')))",
    )
    assert "worker-heartbeat" in names and "compute-reconcile" in names

    def last_heartbeat() -> str | None:
        return stack.get("/healthz").json()["checks"]["worker"]["last_seen"]

    # The worker announces itself once on start; beat sends one on start and every 30 s. So of three heartbeats in
    # a row, at least two came from beat. (/healthz tells when the last one ran: the worker logs them at DEBUG.)
    stack.wait_for(lambda: last_heartbeat() is not None, what="a first heartbeat")
    for _ in range(2):
        seen = last_heartbeat()
        stack.wait_for(lambda seen=seen: last_heartbeat() != seen, what="a heartbeat sent by beat")
