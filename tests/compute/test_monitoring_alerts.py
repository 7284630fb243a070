"""Alert policies: firing and recovering once each (e-mail and a signed webhook to a local receiver), retries with
backoff, refusals, the dashboard pages and the API."""

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from compute.monitoring.models import (
    AlertIncident,
    AlertNotification,
    AlertPolicy,
    Metric,
    NotificationStatus,
    Resolution,
    Sample,
)
from compute.monitoring.services import (
    alert_policy_create,
    alert_policy_update,
    alerts_evaluate,
    notification_deliver,
)
from portal.errors import InvalidRequest
from tests.api.conftest import api_client_for
from tests.conftest import login_client
from tests.factories.compute import InstanceFactory
from tests.factories.monitoring import AlertPolicyFactory

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class Receiver:
    """A webhook receiver on 127.0.0.1: records each request; answers 500 to the first `fail_first` of them."""

    def __init__(self, fail_first: int = 0):
        self.requests: list[dict] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                status = 500 if len(receiver.requests) <= receiver.fail_first else 204
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/hangar"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    receivers = []

    def make(**options) -> Receiver:
        receivers.append(Receiver(**options))
        return receivers[-1]

    yield make
    for each in receivers:
        each.stop()


def cpu(instance, minute: int, value: float) -> None:
    """The machine's CPU over minute `minute` after T0."""
    Sample.objects.create(
        instance=instance,
        resolution=Resolution.MINUTE,
        period_start=int((T0 + timedelta(minutes=minute)).timestamp()),
        cpu_percent=value,
        disk_read_bps=0,
        disk_write_bps=0,
        net_in_bps=0,
        net_out_bps=0,
    )


def at(minute: int, seconds: int = 5) -> datetime:
    return T0 + timedelta(minutes=minute, seconds=seconds)


def signed_by(secret: str, request: dict) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request["headers"]["X-Hangar-Signature-256"])


def test_an_alert_fires_once_and_recovers_once(running, member, owner, receiver, committed, mailoutbox):
    hook = receiver()
    policy = alert_policy_create(
        tenant=running.tenant,
        user=member,
        name="Busy web",
        metric=Metric.CPU,
        threshold=80,
        duration_minutes=3,
        instance=running,
        notify_email=True,
        webhook_url=hook.url,
    )
    reports = []
    # Minutes 0-1: busy, but not yet for three minutes. Minutes 2-4: still busy. Minute 5: calm again.
    for minute, value in enumerate([95, 92, 97, 99, 90, 12, 10]):
        cpu(running, minute, value)
        with committed():
            reports.append(alerts_evaluate(now=at(minute)))
        with committed():
            reports.append(alerts_evaluate(now=at(minute, seconds=30)))  # a second evaluation in the same minute

    fired = [index // 2 for index, report in enumerate(reports) if report.fired]
    recovered = [index // 2 for index, report in enumerate(reports) if report.recovered]
    assert (fired, recovered) == ([2], [5])
    incident = AlertIncident.objects.get()
    assert (incident.fired_at, incident.fired_value) == (at(2), 97)
    assert (incident.recovered_at, incident.recovered_value) == (at(5), 12)

    # Exactly two webhooks, fired then recovered, each signed with the policy's secret.
    assert [json.loads(request["body"])["event"] for request in hook.requests] == ["alert.fired", "alert.recovered"]
    assert all(signed_by(policy.webhook_secret, request) for request in hook.requests)
    assert not signed_by("whsec_someone-else", hook.requests[0])
    fired_body = json.loads(hook.requests[0]["body"])
    assert fired_body["instance"] == {"id": str(running.pk), "name": "web-1"}
    assert fired_body["policy"]["condition"] == "CPU above 80 % for 3 min"
    assert hook.requests[0]["headers"]["X-Hangar-Delivery"] == fired_body["id"]
    # And two e-mails to the owner (members are not e-mailed).
    assert [message.subject for message in mailoutbox] == [
        "[Hangar] Alert: web-1: CPU above 80 % for 3 min",
        "[Hangar] Recovered: web-1: CPU above 80 % for 3 min",
    ]
    assert all(message.to == [owner.email] for message in mailoutbox)
    assert set(AlertNotification.objects.values_list("status", flat=True)) == {NotificationStatus.SENT}


def test_a_failed_webhook_is_retried_with_backoff_under_the_same_delivery_id(running, member, receiver, committed):
    hook = receiver(fail_first=2)
    alert_policy_create(
        tenant=running.tenant, user=member, name="Busy", metric=Metric.CPU, threshold=50, duration_minutes=1,
        notify_email=False, webhook_url=hook.url,
    )  # fmt: skip
    cpu(running, 0, 75)
    with committed():
        alerts_evaluate(now=at(0))
    notification = AlertNotification.objects.get()
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (NotificationStatus.PENDING, 1)
    assert notification.last_error == "webhook answered HTTP 500"

    # The first attempt ran as the evaluation committed; the next is due 30 s after it.
    assert timedelta(seconds=29) < notification.next_attempt_at - notification.created_at < timedelta(seconds=31)
    due = notification.next_attempt_at
    too_early = notification_deliver(notification_id=str(notification.pk), now=due - timedelta(seconds=10))
    second = notification_deliver(notification_id=str(notification.pk), now=due)
    third = notification_deliver(notification_id=str(notification.pk), now=second.retry_at)

    assert too_early.status == "skipped"
    assert second.retry_at - due == timedelta(minutes=1)  # 30 s, then 1 min, 2 min, …
    assert third.status == "sent"
    assert len({request["headers"]["X-Hangar-Delivery"] for request in hook.requests}) == 1
    assert len(hook.requests) == 3


def test_webhooks_to_private_addresses_are_refused_unless_allowed(running, member, settings, committed):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    alert_policy_create(
        tenant=running.tenant, user=member, name="Busy", metric=Metric.CPU, threshold=50, duration_minutes=1,
        notify_email=False, webhook_url="http://127.0.0.1:9/hook",
    )  # fmt: skip
    cpu(running, 0, 75)
    with committed():
        alerts_evaluate(now=at(0))

    notification = AlertNotification.objects.get()
    assert notification.status == NotificationStatus.PENDING
    assert "127.0.0.1, which is not a public address" in notification.last_error


def test_a_policy_on_every_machine_fires_per_machine_and_a_silent_machine_recovers(running, member, committed):
    other = InstanceFactory(tenant=running.tenant, name="web-2")
    AlertPolicyFactory(tenant=running.tenant, metric=Metric.CPU, threshold=50, duration_minutes=1, notify_email=False)
    cpu(running, 0, 60)
    cpu(other, 0, 70)
    with committed():
        first = alerts_evaluate(now=at(0))
    cpu(running, 1, 65)  # web-2 went quiet: stopped, or its host is unreachable
    with committed():
        later = alerts_evaluate(now=at(6))

    assert len(first.fired) == 2
    assert later.recovered == [f"{AlertPolicy.objects.get().pk}/{other.pk}"]
    assert AlertIncident.objects.get(instance=other).recovered_value is None


def test_changing_the_condition_closes_open_incidents_quietly(running, member, committed):
    policy = AlertPolicyFactory(tenant=running.tenant, threshold=50, duration_minutes=1, notify_email=False)
    cpu(running, 0, 60)
    with committed():
        alerts_evaluate(now=at(0))

    alert_policy_update(policy=policy, user=member, threshold=70)

    assert AlertIncident.objects.get().recovered_at is not None
    assert AlertNotification.objects.count() == 0


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"metric": "load"}, "metric"),
        ({"threshold": 150}, "threshold"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"webhook_url": "ftp://example.com/"}, "webhook_url"),
        ({"name": " "}, "name"),
    ],
)
def test_bad_policies_are_refused_with_the_field(tenant, member, values, field):
    arguments = {"name": "Busy", "metric": Metric.CPU, "threshold": 90, "duration_minutes": 5, **values}
    with pytest.raises(InvalidRequest) as refused:
        alert_policy_create(tenant=tenant, user=member, **arguments)
    assert set(refused.value.details) == {field}


def test_another_tenants_machine_cannot_be_watched(tenant, member, outsider):
    foreign = InstanceFactory(tenant=outsider.memberships.get().tenant)
    with pytest.raises(InvalidRequest):
        alert_policy_create(tenant=tenant, user=member, name="x", metric=Metric.CPU, threshold=1, instance=foreign)


# --- the dashboard and the API -----------------------------------------------------------------------------------


def test_members_create_a_policy_in_the_dashboard_and_read_its_history(running, member_client, viewer):
    response = member_client.post(
        reverse("monitoring:alert-list"),
        {"name": "Busy", "metric": "cpu_percent", "comparison": "above", "threshold": "85", "duration_minutes": "5",
         "instance": str(running.pk), "notify_email": "on", "enabled": "on", "webhook_url": ""},
    )  # fmt: skip
    policy = AlertPolicy.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("monitoring:alert-detail", kwargs={"pk": policy.pk})
    AlertIncident.objects.create(tenant=running.tenant, policy=policy, instance=running, fired_at=T0, fired_value=91.5)

    page = login_client(viewer).get(response["Location"]).content.decode()
    assert "CPU above 85 % for 5 min" in page and "at 91.5 %" in page
    assert policy.webhook_secret not in page  # viewers do not see the signing secret
    listing = login_client(viewer).get(reverse("monitoring:alert-list")).content.decode()
    assert "Firing on 1" in listing


def test_a_bad_policy_in_the_dashboard_is_explained_not_a_500(tenant, member_client):
    response = member_client.post(
        reverse("monitoring:alert-list"),
        {"name": "Busy", "metric": "cpu_percent", "comparison": "above", "threshold": "250", "duration_minutes": "5"},
    )
    assert response.status_code == 400
    assert "CPU is measured in percent: 0 to 100." in response.content.decode()


def test_viewers_cannot_create_policies(tenant, viewer):
    response = login_client(viewer).post(reverse("monitoring:alert-list"), {"name": "x"})
    assert response.status_code == 403


def test_the_api_creates_a_policy_returns_its_secret_once_and_lists_its_incidents(running, owner):
    client = api_client_for(owner, running.tenant)
    created = client.post(
        "/api/v1/alert-policies/",
        {"name": "Busy", "metric": "cpu_percent", "threshold": 90, "instance": str(running.pk)},
        format="json",
        HTTP_IDEMPOTENCY_KEY="policy-1",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["webhook_secret"].startswith("whsec_") and body["condition"] == "CPU above 90 % for 5 min"
    assert "webhook_secret" not in client.get(f"/api/v1/alert-policies/{body['id']}/").json()

    changed = client.patch(f"/api/v1/alert-policies/{body['id']}/", {"threshold": 95}, format="json")
    assert changed.json()["threshold"] == 95
    bad = client.patch(f"/api/v1/alert-policies/{body['id']}/", {"threshold": 500}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["details"] == {
        "threshold": "CPU is measured in percent: 0 to 100."
    }

    AlertIncident.objects.create(
        tenant=running.tenant, policy_id=body["id"], instance=running, fired_at=T0, fired_value=97
    )
    incidents = client.get(f"/api/v1/alert-policies/{body['id']}/incidents/").json()
    assert [(row["instance_name"], row["fired_value"]) for row in incidents["data"]] == [("web-1", 97.0)]


def test_the_api_serves_a_machines_usage_for_each_range(running, owner):
    client = api_client_for(owner, running.tenant)
    cpu(running, 0, 40)

    for range_key, step in (("1h", 60), ("24h", 300), ("7d", 3600), ("30d", 3600)):
        body = client.get(f"/api/v1/instances/{running.pk}/metrics/?range={range_key}").json()
        assert body["resolution_seconds"] == step
        assert len(body["timestamps"]) == len(body["cpu_percent"]) == len(body["net_out_bps"])
    bad = client.get(f"/api/v1/instances/{running.pk}/metrics/?range=1y")
    assert bad.status_code == 400
