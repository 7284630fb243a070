"""Volumes and snapshots through the API: 202 + Location, the error shape, and every refusal the issue lists."""

import pytest

from compute.drivers import driver_for
from compute.storage.models import Volume
from tests.api.test_generic import assert_error
from tests.api.test_instances import CommittingClient, _launch, catalog  # noqa: F401  (the catalog fixture)
from tests.factories.compute import InstanceFactory
from tests.factories.tenants import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(member_api, django_capture_on_commit_callbacks):
    return CommittingClient(member_api, django_capture_on_commit_callbacks)


def _machine(api, catalog, name="web-1") -> dict:  # noqa: F811
    response = _launch(api, catalog, name=name)
    assert response.status_code == 202, response.content
    return api.get(response["Location"]).json()


def _volume(api, **body) -> dict:
    response = api.post("/api/v1/volumes/", {"name": "data-1", "size_gib": 100, **body}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["state"] == "creating"
    assert response["Location"].endswith(f"/api/v1/volumes/{response.json()['id']}/")
    return api.get(response["Location"]).json()


def test_the_whole_life_of_a_volume(api, catalog):  # noqa: F811
    machine = _machine(api, catalog)
    volume = _volume(api, labels={"env": "prod"})
    assert volume["state"] == "available" and volume["labels"] == {"env": "prod"}
    assert volume["allowed_actions"] == ["attach", "extend", "snapshot", "rename", "delete"]
    url = f"/api/v1/volumes/{volume['id']}/"

    response = api.post(url + "attach/", {"instance": machine["id"]}, format="json")
    assert response.status_code == 202 and response.json()["state"] == "attaching"
    volume = api.get(url).json()
    assert volume["state"] == "in-use"
    assert volume["attachment"] == {"instance": machine["id"], "instance_name": "web-1", "device": "vdb"}
    listed = api.get("/api/v1/volumes/", {"instance": machine["id"]}).json()
    assert [item["id"] for item in listed["data"]] == [volume["id"]]

    response = api.post(url + "extend/", {"size_gib": 150}, format="json")
    assert response.status_code == 202 and response.json()["state"] == "extending"
    assert api.get(url).json()["size_gib"] == 150

    snapshot = api.post("/api/v1/snapshots/", {"name": "snap-1", "volume": volume["id"]}, format="json")
    assert snapshot.status_code == 202, snapshot.content
    assert snapshot.json()["crash_consistent"] is True
    snapshot = api.get(snapshot["Location"]).json()
    assert snapshot["state"] == "available" and snapshot["size_gib"] == 150 and snapshot["source_name"] == "data-1"

    restored = api.post(f"/api/v1/snapshots/{snapshot['id']}/volumes/", {"name": "restored"}, format="json")
    assert restored.status_code == 202, restored.content
    assert restored["Location"].endswith(f"/api/v1/volumes/{restored.json()['id']}/")
    restored = api.get(restored["Location"]).json()
    assert restored["state"] == "available" and restored["size_gib"] == 150
    assert restored["source_snapshot"] == snapshot["id"]

    assert api.post(url + "detach/").status_code == 202
    assert api.get(url).json()["attachment"] is None
    response = api.delete(url)
    assert response.status_code == 202 and response.json()["state"] == "deleting"
    assert api.get(url).json()["state"] == "deleted"
    assert volume["id"] not in [item["id"] for item in api.get("/api/v1/volumes/").json()["data"]]
    events = api.get(url + "events/").json()["data"]
    assert [(event["action"], event["result"]) for event in events[:2]] == [
        ("volume_delete", "succeeded"),
        ("volume_delete", "requested"),
    ]


def test_attach_to_another_tenants_machine_is_404(api, catalog):  # noqa: F811
    volume = _volume(api)
    stranger = InstanceFactory(tenant=TenantFactory(), state="running")
    response = api.post(f"/api/v1/volumes/{volume['id']}/attach/", {"instance": str(stranger.pk)}, format="json")
    assert_error(response, 404)
    assert Volume.objects.get(pk=volume["id"]).state == "available"


def test_delete_while_attached_is_409_naming_the_machine(api, catalog):  # noqa: F811
    machine = _machine(api, catalog)
    volume = _volume(api)
    api.post(f"/api/v1/volumes/{volume['id']}/attach/", {"instance": machine["id"]}, format="json")
    response = api.delete(f"/api/v1/volumes/{volume['id']}/")
    assert_error(response, 409, code="volume_attached")
    assert "attached to web-1" in response.json()["error"]["message"]


def test_shrink_is_400(api, catalog):  # noqa: F811
    volume = _volume(api)
    response = api.post(f"/api/v1/volumes/{volume['id']}/extend/", {"size_gib": 10}, format="json")
    assert_error(response, 400, code="volume_shrink")


def test_the_17th_volume_is_422(api, catalog, tenant):  # noqa: F811
    tenant.quota.volumes = 20
    tenant.quota.save()
    machine = _machine(api, catalog)
    for number in range(17):
        volume = _volume(api, name=f"v{number}", size_gib=1)
        response = api.post(f"/api/v1/volumes/{volume['id']}/attach/", {"instance": machine["id"]}, format="json")
    assert_error(response, 422, code="too_many_volumes")
    assert len(driver_for(Volume.objects.first().host).volume_attachments(machine["id"])) == 16


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "size_gib": 0}, "size_gib"),
        ({"name": "x", "size_gib": 16385}, "size_gib"),
        ({"size_gib": 1}, "name"),
    ],
)
def test_bad_input_is_400_naming_the_field(api, catalog, body, field):  # noqa: F811
    response = api.post("/api/v1/volumes/", body, format="json")
    assert_error(response, 400)
    assert field in str(response.json()["error"])


def test_quota_is_422(api, catalog, tenant):  # noqa: F811
    tenant.quota.volume_gb = 50
    tenant.quota.save()
    response = api.post("/api/v1/volumes/", {"name": "big", "size_gib": 60}, format="json")
    assert_error(response, 422, code="quota_exceeded")
    usage = api.get("/api/v1/quotas/").json()
    assert usage["volume_gb"]["used"] == 0 and usage["volumes"]["limit"] == 10


def test_the_quota_shows_volumes(api, catalog):  # noqa: F811
    _volume(api)
    usage = api.get("/api/v1/quotas/").json()
    assert usage["volume_gb"]["used"] == 100 and usage["volumes"]["used"] == 1


def test_the_lists_take_a_fixed_number_of_queries(api, catalog, tenant, django_assert_max_num_queries):  # noqa: F811
    tenant.quota.volumes = 20
    tenant.quota.save()
    machine = _machine(api, catalog)
    for number in range(5):
        volume = _volume(api, name=f"v{number}", size_gib=1)
        api.post(f"/api/v1/volumes/{volume['id']}/attach/", {"instance": machine["id"]}, format="json")
        api.post("/api/v1/snapshots/", {"name": f"s{number}", "volume": volume["id"]}, format="json")
    with django_assert_max_num_queries(12):
        assert len(api.get("/api/v1/volumes/").json()["data"]) == 5
    with django_assert_max_num_queries(12):
        assert len(api.get("/api/v1/snapshots/").json()["data"]) == 5


def test_the_attached_filter_takes_true_or_false_and_refuses_anything_else(api, catalog):  # noqa: F811
    machine = _machine(api, catalog)
    attached, spare = _volume(api, name="data-1"), _volume(api, name="spare")
    response = api.post(f"/api/v1/volumes/{attached['id']}/attach/", {"instance": machine["id"]}, format="json")
    assert response.status_code == 202, response.content

    def listed(value: str) -> list[str]:
        response = api.get("/api/v1/volumes/", {"attached": value})
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["data"]]

    assert listed("true") == [attached["id"]]
    assert listed("False") == [spare["id"]]
    for value in ("null", "unknown", "2", "yes"):
        assert_error(api.get("/api/v1/volumes/", {"attached": value}), 400, "invalid")
