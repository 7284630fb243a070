"""The Prometheus endpoint, scraped: the expected series are there, and it answers only to the allowed networks or
the metrics token."""

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from compute import reconciler
from compute.models import SimulatedDomain
from portal.tasks import HEARTBEAT_KEY, heartbeat


def _scrape(client=None, **headers) -> dict:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def _value(families: dict, name: str, **labels) -> float:
    for family in families.values():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no sample {name} {labels}")


def test_a_scrape_has_requests_tasks_queue_provisioning_machines_capacity_and_reconciler_series(
    running, member_client, committed
):
    member_client.get("/instances/")
    heartbeat.delay(sent_at=None)
    cache.set(HEARTBEAT_KEY, timezone.now())
    SimulatedDomain.objects.filter(uuid=running.pk).delete()
    reconciler.reconcile()

    families = _scrape()

    assert _value(families, "hangar_http_requests_total", method="GET", route="instances/", status="200") >= 1
    assert _value(families, "hangar_http_request_duration_seconds_count", method="GET", route="instances/") >= 1
    assert _value(families, "hangar_celery_tasks_total", task="compute.tasks.build_instance", outcome="succeeded") >= 1
    assert _value(families, "hangar_celery_task_duration_seconds_count", task="portal.tasks.heartbeat") >= 1
    assert _value(families, "hangar_instance_provisioning_seconds_count") >= 1
    assert _value(families, "hangar_instances", state="error") == 1  # the reconciler saw its machine vanish
    assert _value(families, "hangar_reconciler_findings_total", kind="vanished") >= 1
    assert _value(families, "hangar_host_capacity_used", host="hv-test", region="default", resource="vcpus") == 2
    assert _value(families, "hangar_host_capacity_allocatable", host="hv-test", resource="vcpus") == 64
    assert _value(families, "hangar_host_schedulable", host="hv-test") == 1
    assert _value(families, "hangar_orphan_domains_open") == 0
    assert "hangar_queue_depth" in families
    assert 0 <= _value(families, "hangar_worker_heartbeat_age_seconds") < 60


def test_the_endpoint_answers_only_to_allowed_networks_or_the_token(db, settings):
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert Client().get("/metrics", **outside).status_code == 403

    settings.METRICS_TOKEN = "s3cret-metrics-token"
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **outside).status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", **outside).status_code == 200

    import ipaddress

    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("203.0.113.0/24")]
    assert Client().get("/metrics", **outside).status_code == 200


def test_a_malformed_network_stops_start_up():
    from django.core.exceptions import ImproperlyConfigured

    from portal.env import env_networks

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8, the office")
        with pytest.raises(ImproperlyConfigured, match="METRICS_ALLOWED_NETWORKS: 'the office'"):
            env_networks("METRICS_ALLOWED_NETWORKS", [])
