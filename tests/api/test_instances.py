"""Instances, SSH keys and the catalog through the API: the same services as the dashboard, asynchronously."""

import pytest

from compute.models import Instance, InstanceEvent, InstanceState, SSHKey
from tenants.models import Quota
from tests.api.test_generic import assert_error
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, InstanceFactory, new_public_key

pytestmark = pytest.mark.django_db


class CommittingClient:
    """Runs each request's on-commit callbacks (the enqueued tasks; eager in tests) as a real commit would."""

    def __init__(self, client, capture):
        self.client, self.capture = client, capture

    def __getattr__(self, method):
        def call(*args, **kwargs):
            with self.capture(execute=True):
                return getattr(self.client, method)(*args, **kwargs)

        return call


@pytest.fixture
def worker_api(member_api, django_capture_on_commit_callbacks):
    return CommittingClient(member_api, django_capture_on_commit_callbacks)


@pytest.fixture
def catalog(db):
    HostFactory()
    return {
        "small": FlavorFactory(name="s.small", vcpus=1, ram_mib=1024, disk_gib=20),
        "large": FlavorFactory(name="s.large", vcpus=4, ram_mib=8192, disk_gib=80),
        "image": ImageFactory(name="Debian 12"),
    }


def _launch(client, catalog, name="web-1", **extra):
    body = {"name": name, "flavor": str(catalog["small"].pk), "image": str(catalog["image"].pk), **extra}
    return client.post("/api/v1/instances/", body, format="json")


def test_launch_is_202_with_location_and_the_worker_brings_it_up(worker_api, catalog, tenant):
    member_api = worker_api
    response = _launch(member_api, catalog)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "pending"
    assert response["Location"].endswith(f"/api/v1/instances/{body['id']}/")
    # Celery runs eagerly in tests: by the time the client polls, the simulated build has finished.
    polled = member_api.get(response["Location"]).json()
    assert polled["state"] == "running"
    instance = Instance.objects.get(pk=body["id"])
    assert instance.tenant == tenant


def test_full_lifecycle_stop_resize_start_delete(worker_api, catalog):
    member_api = worker_api
    instance_id = _launch(member_api, catalog).json()["id"]
    url = f"/api/v1/instances/{instance_id}/"
    actions = f"{url}actions/"
    for body, settled in (
        ({"type": "stop"}, "stopped"),
        ({"type": "resize", "flavor": str(catalog["large"].pk)}, "stopped"),
        ({"type": "start"}, "running"),
        ({"type": "reboot"}, "running"),
    ):
        response = member_api.post(actions, body, format="json")
        assert response.status_code == 202, (body, response.content)
        assert response["Location"].endswith(url)
        assert member_api.get(url).json()["state"] == settled
    assert member_api.get(url).json()["flavor"] == str(catalog["large"].pk)
    response = member_api.delete(url)
    assert response.status_code == 202
    assert member_api.get(url).json()["state"] == "deleted"
    assert member_api.get("/api/v1/instances/").json()["meta"]["total"] == 0
    events = member_api.get(f"{url}events/").json()
    assert {"launch", "stop", "resize", "start", "reboot", "delete"} <= {e["action"] for e in events["data"]}


def test_action_in_a_transitional_state_is_409(member_api, tenant):
    instance = InstanceFactory(tenant=tenant, state=InstanceState.STOPPING)
    response = member_api.post(f"/api/v1/instances/{instance.pk}/actions/", {"type": "start"}, format="json")
    assert_error(response, 409, "instance_busy")
    assert response.json()["error"]["details"] == {"state": "stopping"}


def test_action_input_is_validated(member_api, tenant, catalog):
    instance = InstanceFactory(tenant=tenant, state=InstanceState.STOPPED)
    url = f"/api/v1/instances/{instance.pk}/actions/"
    for body, field in (
        ({"type": "explode"}, "type"),
        ({}, "type"),
        ({"type": "resize"}, "flavor"),
        ({"type": "resize", "flavor": "not-a-uuid"}, "flavor"),
        ({"type": "resize", "flavor": "00000000-0000-0000-0000-000000000000"}, "flavor"),
        ({"type": "start", "flavor": str(catalog["large"].pk)}, "flavor"),
    ):
        response = member_api.post(url, body, format="json")
        assert_error(response, 400, "invalid")
        assert field in response.json()["error"]["details"], body
    instance.refresh_from_db()
    assert instance.state == InstanceState.STOPPED


def test_launch_validation_errors_are_400(member_api, catalog, outsider):
    foreign_key = SSHKey.objects.create(
        tenant=outsider.memberships.get().tenant, name="x", public_key="k", fingerprint="f", key_type="t", bits=1
    )
    for body in (
        {},
        {"name": "web", "flavor": "nope", "image": str(catalog["image"].pk)},
        {"name": "web", "flavor": str(catalog["small"].pk), "image": 42},
        {"name": "bad name!", "flavor": str(catalog["small"].pk), "image": str(catalog["image"].pk)},
        {"name": "w", "flavor": str(catalog["small"].pk), "image": str(catalog["image"].pk), "ssh_keys": "x"},
        {"name": "w", "flavor": str(catalog["small"].pk), "image": str(catalog["image"].pk),
         "ssh_keys": [str(foreign_key.pk)]},
        {"name": "w", "flavor": str(catalog["small"].pk), "image": str(catalog["image"].pk), "public_ip": 1},
        {"name": "w", "flavor": str(catalog["small"].pk), "image": str(catalog["image"].pk), "public_ip": "yes"},
    ):  # fmt: skip
        assert_error(member_api.post("/api/v1/instances/", body, format="json"), 400)
    assert not Instance.objects.exists()


def test_not_json_is_400_or_415(member_api):
    assert_error(member_api.post("/api/v1/instances/", "{", content_type="application/json"), 400)
    assert_error(member_api.post("/api/v1/instances/", "a=1", content_type="text/plain"), 415)


def test_quota_exceeded_is_422(member_api, catalog, tenant):
    Quota.objects.filter(tenant=tenant).update(instances=1)
    assert _launch(member_api, catalog, name="one").status_code == 202
    response = _launch(member_api, catalog, name="two")
    assert_error(response, 422, "quota_exceeded")
    assert response.json()["error"]["details"]["resource"] == "instances"


def test_rename(member_api, tenant):
    instance = InstanceFactory(tenant=tenant)
    response = member_api.patch(f"/api/v1/instances/{instance.pk}/", {"name": "db-1"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "db-1"
    assert InstanceEvent.objects.filter(instance=instance, action="rename").exists()
    assert_error(member_api.patch(f"/api/v1/instances/{instance.pk}/", {"name": ""}, format="json"), 400)


def test_filters_and_ordering(member_api, tenant, catalog):
    InstanceFactory(tenant=tenant, name="alpha", state=InstanceState.RUNNING, flavor=catalog["small"])
    InstanceFactory(tenant=tenant, name="beta", state=InstanceState.STOPPED, flavor=catalog["large"])
    InstanceFactory(tenant=tenant, name="gamma", state=InstanceState.DELETED)

    def names(query):
        response = member_api.get(f"/api/v1/instances/?{query}")
        assert response.status_code == 200, response.content
        return [row["name"] for row in response.json()["data"]]

    assert names("ordering=name") == ["alpha", "beta"]
    assert names("ordering=-name") == ["beta", "alpha"]
    assert names("state=stopped") == ["beta"]
    assert names("state=running&state=stopped&ordering=name") == ["alpha", "beta"]
    assert names("name=ALP") == ["alpha"]
    assert names(f"flavor={catalog['large'].pk}") == ["beta"]
    assert names("created_after=2000-01-01T00:00:00Z&ordering=created") == ["alpha", "beta"]
    for bad in (
        "state=exploded",
        "ordering=password",
        "flavor=xyz",
        "created_after=yesterday",
        "image=",
        "ordering=,",
        "ordering=name,,",
        "state=",
    ):
        assert_error(member_api.get(f"/api/v1/instances/?{bad}"), 400, "invalid")


def test_ssh_keys_create_duplicate_delete(member_api):
    public_key = new_public_key()
    response = member_api.post("/api/v1/ssh-keys/", {"name": "laptop", "public_key": public_key}, format="json")
    assert response.status_code == 201
    key = response.json()
    assert key["fingerprint"].startswith("SHA256:")
    assert response["Location"].endswith(f"/api/v1/ssh-keys/{key['id']}/")
    again = member_api.post("/api/v1/ssh-keys/", {"name": "other", "public_key": public_key}, format="json")
    assert_error(again, 400, "duplicate_key")
    bad = member_api.post("/api/v1/ssh-keys/", {"name": "bad", "public_key": "ssh-rsa nope"}, format="json")
    assert_error(bad, 400, "invalid_key")
    assert member_api.delete(f"/api/v1/ssh-keys/{key['id']}/").status_code == 204
    assert not SSHKey.objects.exists()


def test_launch_copies_keys(member_api, catalog):
    key = member_api.post("/api/v1/ssh-keys/", {"name": "laptop", "public_key": new_public_key()}, format="json")
    response = _launch(member_api, catalog, ssh_keys=[key.json()["id"]])
    assert response.status_code == 202
    assert [k["name"] for k in response.json()["ssh_keys"]] == ["laptop"]


def test_catalog_lists_only_active(member_api, catalog):
    FlavorFactory(name="retired", active=False)
    names = [row["name"] for row in member_api.get("/api/v1/flavors/").json()["data"]]
    assert names == ["s.small", "s.large"]
    flavor = member_api.get(f"/api/v1/flavors/{catalog['small'].pk}/").json()
    assert flavor["monthly_price"] == "12.00"
    assert member_api.get("/api/v1/images/?os=debian").json()["meta"]["total"] == 1


def test_quotas_show_limits_and_usage(member_api, tenant):
    InstanceFactory(tenant=tenant)
    body = member_api.get("/api/v1/quotas/").json()
    assert body["instances"]["used"] == 1
    assert body["instances"]["limit"] == Quota.objects.get(tenant=tenant).instances


def test_unknown_urls_and_methods_answer_in_the_error_shape(member_api, tenant):
    assert_error(member_api.get("/api/v1/nothing-here/"), 404, "not_found")
    assert_error(member_api.get("/api/v1/instances/not-a-uuid/"), 404, "not_found")
    assert_error(member_api.put(f"/api/v1/instances/{InstanceFactory(tenant=tenant).pk}/", {}), 405)
    assert_error(member_api.get("/api/v1/instances/00000000-0000-0000-0000-000000000000/"), 404, "not_found")


def test_list_query_count_does_not_grow_with_rows(member_api, tenant, django_assert_max_num_queries):
    for _ in range(25):
        InstanceFactory(tenant=tenant)
    with django_assert_max_num_queries(7):
        response = member_api.get("/api/v1/instances/?per_page=200")
    assert len(response.json()["data"]) == 25


def test_paths_with_control_characters_get_the_json_404(member_api):
    assert_error(member_api.get("/api/v1/ssh-keys/a%0Ab%0Dc/"), 404, "not_found")
    assert_error(member_api.post("/api/v1/nothing%0A/", {}, format="json"), 404, "not_found")


def test_console_output(worker_api, catalog):
    instance_id = _launch(worker_api, catalog).json()["id"]
    response = worker_api.get(f"/api/v1/instances/{instance_id}/console/?lines=20")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["lines"] == 20 and isinstance(body["output"], str)
    for bad in ("0", "1001", "x", "", "-3", "²"):
        assert_error(worker_api.get(f"/api/v1/instances/{instance_id}/console/?lines={bad}"), 400, "invalid")


def test_console_is_503_in_the_error_shape_when_the_host_is_unreachable(member_api, tenant, monkeypatch):
    from compute.drivers.base import TransientDriverError

    def unreachable(**kwargs):
        raise TransientDriverError("connection refused")

    monkeypatch.setattr("compute.api.views.instance_console_output", unreachable)
    instance = InstanceFactory(tenant=tenant)
    assert_error(member_api.get(f"/api/v1/instances/{instance.pk}/console/"), 503, "console_unavailable")


def test_allowed_actions_follow_the_transition_table(member_api, tenant):
    from tests.factories.compute import InstanceFactory

    running = InstanceFactory(tenant=tenant)
    stopped = InstanceFactory(tenant=tenant, state="stopped")
    body = {row["id"]: row for row in member_api.get("/api/v1/instances/").json()["data"]}
    assert body[str(running.pk)]["allowed_actions"] == ["stop", "reboot", "delete", "rename"]
    assert body[str(stopped.pk)]["allowed_actions"] == ["start", "resize", "delete", "rename"]
