"""The Stacks pages: plan a pasted or uploaded document, see the changes and the cost, apply, watch, destroy."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from compute.network.models import PublicIPPool
from compute.stacks.models import Stack, StackPlan, StackRun

pytestmark = pytest.mark.django_db

DOC = """stack: pages
machines:
  web:
    flavor: s1
    image: debian-12
    count: 2
    public_ip: true
"""


@pytest.fixture
def pool(db):
    return PublicIPPool.objects.create(name="doc", cidr="203.0.113.0/28")


def test_plan_apply_watch_and_destroy_in_the_dashboard(member_client, tenant, catalog, pool, committed):
    page = member_client.get("/stacks/")
    assert page.status_code == 200 and b"Plan a document" in page.content
    response = member_client.post("/stacks/", {"document": DOC})
    plan = StackPlan.objects.for_tenant(tenant).get()
    assert response.status_code == 302 and response["Location"] == f"/stacks/plans/{plan.pk}/"
    shown = member_client.get(response["Location"]).content.decode()
    assert "+ create" in shown and "web-1" in shown and plan.cost["difference"] in shown
    with committed():
        applied = member_client.post(f"/stacks/plans/{plan.pk}/apply/")
    run = StackRun.objects.for_tenant(tenant).get()
    assert applied["Location"] == f"/stacks/runs/{run.pk}/"
    progress = member_client.get(applied["Location"]).content.decode()
    assert "Succeeded" in progress and f"{run.total} of {run.total}" in progress
    assert "hx-trigger" not in progress  # finished: no more polling

    listed = member_client.get("/stacks/").content.decode()
    assert "pages" in listed
    detail = member_client.get("/stacks/pages/").content.decode()
    assert "web-2" in detail and "stack: pages" in detail
    export = member_client.get("/stacks/pages/export/")
    assert export["Content-Disposition"] == 'attachment; filename="pages.yaml"'
    assert b"count: 2" in export.content

    refused = member_client.post("/stacks/pages/destroy/", {"confirm": "nope"})
    assert refused.status_code == 400 and Stack.objects.for_tenant(tenant).exists()
    with committed():
        destroyed = member_client.post("/stacks/pages/destroy/", {"confirm": "pages"})
    run = StackRun.objects.for_tenant(tenant).get(kind="destroy")
    assert destroyed["Location"] == f"/stacks/runs/{run.pk}/"
    run.refresh_from_db()
    assert run.state == "succeeded" and not Stack.objects.for_tenant(tenant).exists()


def test_uploaded_document_and_errors_with_lines(member_client, tenant, catalog):
    upload = SimpleUploadedFile("s.yaml", b"stack: up\nmachines:\n  web:\n    flavor: nope\n    image: debian-12\n")
    response = member_client.post("/stacks/", {"document": "", "upload": upload})
    assert response.status_code == 400
    text = response.content.decode()
    assert "machines.web.flavor" in text and "(line 4)" in text
    assert not StackPlan.objects.exists()


def test_a_running_run_polls(member_client, tenant):
    run = StackRun.objects.create(tenant=tenant, stack="x", kind="apply", state="running", total=2, steps=[])
    page = member_client.get(f"/stacks/runs/{run.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in page


def test_viewer_sees_but_cannot_plan(viewer_client, catalog):
    assert viewer_client.get("/stacks/").status_code == 200
    assert b"Plan a document" not in viewer_client.get("/stacks/").content
    assert viewer_client.post("/stacks/", {"document": DOC}).status_code == 403


def test_another_tenants_stack_is_a_404_by_name(outsider_client, outsider, tenant):
    from tests.api.conftest import api_client_for
    from tests.factories.stacks import StackFactory

    StackFactory(tenant=tenant, name="private")
    for url in ("/stacks/private/", "/stacks/private/export/", "/stacks/private/destroy/"):
        assert outsider_client.get(url).status_code == 404, url
    membership_tenant = outsider.memberships.get().tenant
    api = api_client_for(outsider, membership_tenant)
    assert api.get("/api/v1/stacks/private/").status_code == 404
    assert api.delete("/api/v1/stacks/private/").status_code == 404
    assert api.get("/api/v1/stacks/private/export/").status_code == 404


def test_adopting_labelled_resources_fills_the_document(member_client, tenant, catalog):
    from tests.factories.network import NetworkFactory

    NetworkFactory(tenant=tenant, name="legacy", cidr="10.70.0.0/24", labels={"team": "web"})
    page = member_client.get("/stacks/", {"adopt": "team=web", "name": "web"}).content.decode()
    assert "stack: web" in page and "10.70.0.0/24" in page
    bad = member_client.get("/stacks/", {"adopt": "Not Valid"}).content.decode()
    assert "the key must be" in bad
