"""Alert policies scoped by label (dashboard, API, evaluator); policy changes and console openings in the activity
log."""

import pytest

from compute.monitoring.models import AlertPolicy, Metric
from compute.monitoring.services import alert_policy_create, alert_policy_delete, alert_policy_update, alerts_evaluate
from portal.errors import InvalidRequest
from tenants.models import ActivityEntry
from tests.api.conftest import api_client_for
from tests.compute.test_monitoring_alerts import at, cpu
from tests.factories.compute import InstanceFactory

pytestmark = pytest.mark.django_db


def test_a_label_scoped_policy_watches_only_the_labelled_machines(running, member, committed):
    web = InstanceFactory(tenant=running.tenant, name="web-2", labels={"team": "web"})
    db = InstanceFactory(tenant=running.tenant, name="db-1", labels={"team": "db"})
    policy = alert_policy_create(
        tenant=running.tenant,
        user=member,
        name="Busy web",
        metric=Metric.CPU,
        threshold=50,
        duration_minutes=1,
        label_selector="team=web",
        notify_email=False,
    )
    assert policy.scope == "label"
    for machine in (running, web, db):
        cpu(machine, 0, 90)
    with committed():
        report = alerts_evaluate(now=at(0))
    assert report.fired == [f"{policy.pk}/{web.pk}"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"label_selector": "Not Valid"}, "the key must be"),
        ({"label_selector": "team=web", "instance": "running"}, "not both"),
    ],
)
def test_bad_label_scopes_are_refused_with_the_field(running, member, values, message):
    if values.get("instance") == "running":
        values = {**values, "instance": running}
    with pytest.raises(InvalidRequest) as refused:
        alert_policy_create(tenant=running.tenant, user=member, name="x", metric=Metric.CPU, threshold=5, **values)
    assert message in refused.value.details["label_selector"]


def test_the_api_sets_and_shows_the_label_scope(running, owner):
    api = api_client_for(owner, running.tenant)
    body = {"name": "web cpu", "metric": "cpu_percent", "threshold": 80, "label_selector": "team=web"}
    created = api.post("/api/v1/alert-policies/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["scope"] == "label" and created.json()["label_selector"] == "team=web"
    both = {**body, "instance": str(running.pk)}
    refused = api.post("/api/v1/alert-policies/", both, format="json")
    assert refused.status_code == 400 and "label_selector" in refused.json()["error"]["details"]
    changed = api.patch(f"/api/v1/alert-policies/{created.json()['id']}/", {"label_selector": ""}, format="json")
    assert changed.json()["scope"] == "all"


def test_the_dashboard_creates_a_label_scoped_policy(running, member_client):
    response = member_client.post(
        "/alerts/",
        {
            "name": "web",
            "metric": "cpu_percent",
            "comparison": "above",
            "threshold": "80",
            "duration_minutes": "5",
            "label_selector": "team=web",
            "notify_email": "on",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content
    policy = AlertPolicy.objects.get()
    assert policy.label_selector == "team=web" and policy.instance is None
    assert "team=web" in member_client.get("/alerts/").content.decode()


def test_policy_changes_go_to_the_activity_log(running, member):
    policy = alert_policy_create(tenant=running.tenant, user=member, name="cpu", metric=Metric.CPU, threshold=80)
    alert_policy_update(policy=policy, user=member, threshold=90)
    alert_policy_delete(policy=policy, user=member)
    entries = (
        ActivityEntry.objects.for_tenant(running.tenant).filter(resource_type="alert_policy").order_by("created_at")
    )
    assert [(e.action, e.actor) for e in entries] == [
        ("alert_create", member),
        ("alert_update", member),
        ("alert_delete", member),
    ]
    assert "threshold changed" in entries[1].message and "every machine" in entries[0].message


def test_opening_the_console_goes_to_the_activity_log(running, member_client, member):
    response = member_client.post(f"/instances/{running.pk}/console/ticket/")
    assert response.status_code == 200
    entry = ActivityEntry.objects.for_tenant(running.tenant).get(action="console_open")
    assert entry.actor == member and entry.channel == "dashboard" and entry.resource_name == running.name
