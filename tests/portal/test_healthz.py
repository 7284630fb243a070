import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.urls import reverse

from portal import tasks, views
from tests.celery_conf import set_celery_conf


@pytest.mark.django_db
def test_healthz_reports_database_broker_and_worker(client):
    tasks.heartbeat.delay()  # eager in tests: as if a worker ran it
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["worker"]["ok"] is True


@pytest.mark.django_db
def test_healthz_says_when_no_worker_has_been_seen(client):
    cache.delete(tasks.HEARTBEAT_KEY)
    body = client.get(reverse("healthz")).json()
    assert body["checks"]["worker"] == {"ok": False, "last_seen": None}


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_down(client, monkeypatch):
    set_celery_conf(monkeypatch, broker_url="redis://127.0.0.1:1/0", broker_transport_options={})
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_is_down(client, monkeypatch):
    def broken(self, sql, params=None):
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", broken)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["ok"] is False


@pytest.mark.django_db
def test_healthz_is_503_json_naming_the_cache_when_it_is_down(client, settings):
    # Nothing listens on port 1: connecting is refused at once, as with a stopped Redis.
    settings.CACHES = {"default": {"BACKEND": "portal.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["down"] == ["cache"], body
    assert body["checks"]["cache"] == {"ok": False, "error": "ConnectionError"}
    assert body["checks"]["worker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_broker_checks_running_at_once_in_several_workers_all_pass(monkeypatch, tmp_path):
    # `make run`'s web workers answer health checks side by side (a load balancer's and the start-up probe's):
    # each one's probe of the embedded broker's folder is its own, so none removes another's and calls it down.
    folder = str(tmp_path / "queue")
    options = {"data_folder_in": folder, "data_folder_out": folder}
    set_celery_conf(monkeypatch, broker_url="filesystem://", broker_transport_options=options)
    start = threading.Barrier(8)

    def check_repeatedly() -> list[dict]:
        start.wait()
        return [views._check_broker() for _ in range(100)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [result for results in pool.map(lambda _: check_repeatedly(), range(8)) for result in results]

    assert [result for result in results if not result["ok"]] == []
    assert len(results) == 800
    assert list((tmp_path / "queue").iterdir()) == []
