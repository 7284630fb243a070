"""The stacks API as the CLI uses it: schema, plan, apply, runs, list, show, export, destroy, and the errors."""

import pytest
import yaml

from compute.models import Instance
from compute.network.models import PublicIPPool
from tests.api.test_generic import assert_error
from tests.api.test_instances import CommittingClient

pytestmark = pytest.mark.django_db

DOC = """stack: api-demo
networks:
  backend:
    cidr: 10.50.0.0/24
machines:
  app:
    flavor: s1
    image: debian-12
    count: 2
    networks: [backend]
    public_ip: true
addresses:
  lb: {}
"""


@pytest.fixture
def api(member_api, django_capture_on_commit_callbacks):
    return CommittingClient(member_api, django_capture_on_commit_callbacks)


@pytest.fixture
def pool(db):
    return PublicIPPool.objects.create(name="doc", cidr="203.0.113.0/28")


def _plan(api, document):
    return api.post("/api/v1/stacks/plans/", {"document": document}, format="json")


def test_schema_is_published_and_linked_from_openapi(api):
    schema = api.get("/api/v1/stacks/schema/")
    assert schema.status_code == 200
    assert schema.json()["title"] == "Hangar stack document"
    assert "machines" in schema.json()["properties"]
    openapi = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/stacks/schema/" in openapi["paths"]


def test_plan_apply_run_list_show_export_destroy(api, tenant, catalog, pool):
    planned = _plan(api, DOC)
    assert planned.status_code == 201, planned.content
    plan = planned.json()
    assert set(plan) >= {"id", "stack", "created_at", "changes", "quota", "cost", "no_changes"}
    assert plan["stack"] == "api-demo" and plan["no_changes"] is False
    assert {c["action"] for c in plan["changes"]} == {"create"}
    assert set(plan["changes"][0]) >= {"action", "type", "name", "reason", "fields"}
    assert plan["cost"]["currency"] and plan["cost"]["monthly_before"] == "0.00"
    assert api.get(f"/api/v1/stacks/plans/{plan['id']}/").json()["id"] == plan["id"]

    applied = api.post(f"/api/v1/stacks/plans/{plan['id']}/apply/")
    assert applied.status_code == 202, applied.content
    assert applied["Location"].endswith(f"/api/v1/stacks/runs/{applied.json()['id']}/")
    run = api.get(applied["Location"]).json()
    assert run["state"] == "succeeded", run
    assert run["kind"] == "apply" and run["done"] == run["total"] == len(plan["changes"])
    assert set(run["steps"][0]) >= {"action", "type", "name", "state", "error"}

    # the same plan again: the resources changed since
    assert_error(api.post(f"/api/v1/stacks/plans/{plan['id']}/apply/"), 409, "plan_stale")
    again = _plan(api, DOC).json()
    assert again["no_changes"] is True and again["changes"] == []
    assert again["cost"]["difference"] == "0.00"

    listed = api.get("/api/v1/stacks/").json()
    assert listed["meta"]["total"] == 1
    row = listed["data"][0]
    assert row["name"] == "api-demo" and row["resources"] == 6  # network, 2 machines, 3 addresses
    assert row["monthly_cost"] == again["cost"]["monthly_after"]
    assert row["last_run"]["state"] == "succeeded"
    shown = api.get("/api/v1/stacks/api-demo/").json()
    assert {r["type"] for r in shown["resources"]} == {"network", "machine", "address"}

    exported = api.get("/api/v1/stacks/api-demo/export/").json()["document"]
    document = yaml.safe_load(exported)
    assert document["machines"]["app"]["count"] == 2 and document["machines"]["app"]["public_ip"] is True
    round_trip = _plan(api, exported).json()
    assert round_trip["no_changes"] is True, round_trip["changes"]

    destroyed = api.delete("/api/v1/stacks/api-demo/")
    assert destroyed.status_code == 202, destroyed.content
    assert api.get(destroyed["Location"]).json()["state"] == "succeeded"
    assert not Instance.objects.for_tenant(tenant).live().exists()
    assert api.get("/api/v1/stacks/").json()["meta"]["total"] == 0
    assert api.get("/api/v1/stacks/api-demo/").status_code == 404


def test_export_by_label_adopts_what_exists(api, tenant, catalog, pool):
    body = {"name": "legacy", "cidr": "10.60.0.0/24", "labels": {"team": "web"}}
    network = api.post("/api/v1/networks/", body, format="json")
    assert network.status_code == 201, network.content
    exported = api.get("/api/v1/stacks/export/", {"label": "team=web", "stack": "legacy"})
    assert exported.status_code == 200, exported.content
    document = yaml.safe_load(exported.json()["document"])
    assert document["stack"] == "legacy" and document["networks"] == {"legacy": {"cidr": "10.60.0.0/24"}}
    plan = _plan(api, exported.json()["document"]).json()
    assert [(c["action"], c["type"], c["reason"]) for c in plan["changes"]] == [
        ("update", "network", "adopt into the stack")
    ]
    run = api.get(api.post(f"/api/v1/stacks/plans/{plan['id']}/apply/")["Location"]).json()
    assert run["state"] == "succeeded", run
    labels = api.get(f"/api/v1/networks/{network.json()['id']}/").json()["labels"]
    assert labels == {"hangar.stack": "legacy", "hangar.stack.key": "legacy", "team": "web"}
    assert _plan(api, exported.json()["document"]).json()["no_changes"] is True
    # without a label: everything outside every stack (the network is in one now; defaults never are exported)
    assert yaml.safe_load(api.get("/api/v1/stacks/export/").json()["document"]) == {"stack": "exported"}
    assert_error(api.get("/api/v1/stacks/export/", {"label": "NOT VALID"}), 400)


BAD = [
    ("stack: s\nmachines:\n  web:\n    flavor: s1\n    image: debian-12\n    colour: red\n", "machines.web.colour", 6),
    (
        "stack: s\nmachines:\n  web:\n    flavor: s1\n    image: debian-12\n    networks: [nope]\n",
        "machines.web.networks.0",
        6,
    ),
    ("stack: s\nmachines:\n  web:\n    flavor: s9\n    image: debian-12\n", "machines.web.flavor", 4),
    (
        "stack: s\nmachines:\n  a:\n    flavor: s1\n    image: debian-12\n    depends_on: [b]\n"
        "  b:\n    flavor: s1\n    image: debian-12\n    depends_on: [a]\n",
        "machines.b.depends_on",
        10,
    ),
    ("stack: s\nmachines:\n  web:\n    flavor: s1\n    image: debian-12\n    count: 40\n", "machines.web.count", 6),
    ("stack: s\nnetworks:\n  n: {cidr: 8.8.8.0/24}\n", "networks.n.cidr", 3),
    ('{"stack": "s", "keys": {"k": {"public_key": "not a key"}}}', "keys.k.public_key", 1),
    ("stack: s\nfoo: 1\n", "foo", 2),
    ("stack: [\n", "document", None),
    ("stack: plans\n", "stack", 1),
]


@pytest.mark.parametrize(("text", "field", "line"), BAD)
def test_bad_documents_name_the_field_and_line(api, catalog, text, field, line):
    response = _plan(api, text)
    assert_error(response, 400, "invalid_document")
    details = response.json()["error"]["details"]
    assert any(d["field"] == field for d in details), details
    if line is not None:
        assert next(d for d in details if d["field"] == field)["line"] == line


def test_viewer_cannot_plan_or_apply(viewer_api, catalog):
    assert viewer_api.post("/api/v1/stacks/plans/", {"document": DOC}, format="json").status_code == 403
