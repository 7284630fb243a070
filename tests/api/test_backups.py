"""Backups, backup schedules and private images through the API: 202 + Location, the error shape, isolation."""

import pytest

from compute.models import Image
from compute.storage.backup_models import Backup
from compute.storage.models import Snapshot
from tests.api.test_generic import assert_error
from tests.api.test_instances import CommittingClient, _launch
from tests.factories import TenantFactory
from tests.factories.backups import BackupFactory
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker_api(member_api, django_capture_on_commit_callbacks):
    return CommittingClient(member_api, django_capture_on_commit_callbacks)


@pytest.fixture
def machine(worker_api):
    HostFactory()
    catalog = {"small": FlavorFactory(name="s.small", disk_gib=20), "image": ImageFactory(name="Debian 12")}
    return _launch(worker_api, catalog).json()


def _policy_url(machine) -> str:
    return f"/api/v1/instances/{machine['id']}/backup-policy/"


def test_the_backup_schedule_shows_its_price_and_turns_on_and_off(worker_api, machine):
    off = worker_api.get(_policy_url(machine)).json()
    assert (off["enabled"], off["next_run_at"], off["share_percent"], off["monthly_price"]) == (
        False,
        None,
        "20.00",
        "2.40",
    )
    on = worker_api.put(_policy_url(machine), {"enabled": True, "hour": 4}, format="json")
    assert on.status_code == 200, on.content
    assert (on.json()["enabled"], on.json()["hour"]) == (True, 4)
    assert on.json()["next_run_at"] is not None
    bad = worker_api.put(_policy_url(machine), {"enabled": True, "hour": 25}, format="json")
    assert_error(bad, 400, "invalid")
    for body in ({"enabled": 1}, {"enabled": "true"}, {"enabled": False, "delete_backups": 0}):
        assert_error(worker_api.put(_policy_url(machine), body, format="json"), 400, "invalid")
    off = worker_api.put(_policy_url(machine), {"enabled": False}, format="json")
    assert off.json()["enabled"] is False


def test_back_up_now_list_restore_and_delete(worker_api, machine):
    worker_api.put(_policy_url(machine), {"enabled": True, "hour": 4}, format="json")
    made = worker_api.post("/api/v1/backups/", {"instance": machine["id"]}, format="json")
    assert made.status_code == 202, made.content
    assert made["Location"].endswith(f"/api/v1/backups/{made.json()['id']}/")
    backup = worker_api.get(made["Location"]).json()
    assert (backup["state"], backup["crash_consistent"], backup["instance"]) == ("available", True, machine["id"])

    listed = worker_api.get(f"/api/v1/backups/?instance={machine['id']}").json()
    assert [row["id"] for row in listed["data"]] == [backup["id"]]
    assert listed["meta"]["total"] == 1

    url = f"/api/v1/backups/{backup['id']}/restore/"
    wrong = worker_api.post(url, {"mode": "overwrite", "confirm_name": "nope"}, format="json")
    assert_error(wrong, 400, "confirmation_mismatch")
    missing = worker_api.post(url, {"mode": "overwrite"}, format="json")
    assert_error(missing, 400)
    overwrite = worker_api.post(url, {"mode": "overwrite", "confirm_name": machine["name"]}, format="json")
    assert overwrite.status_code == 202, overwrite.content
    assert overwrite["Location"].endswith(f"/api/v1/instances/{machine['id']}/")
    new = worker_api.post(url, {"mode": "new", "name": "restored"}, format="json")
    assert new.status_code == 202, new.content
    assert worker_api.get(new["Location"]).json()["state"] == "running"

    deleted = worker_api.delete(f"/api/v1/backups/{backup['id']}/")
    assert deleted.status_code == 202
    assert worker_api.get(f"/api/v1/backups/{backup['id']}/").json()["state"] == "deleted"


def test_backups_of_a_machine_that_is_off_are_refused_in_the_error_shape(worker_api, machine):
    refused = worker_api.post("/api/v1/backups/", {"instance": machine["id"]}, format="json")
    assert_error(refused, 409, "backups_disabled")


def test_deleting_a_machine_can_take_its_backups_along(worker_api, machine):
    worker_api.put(_policy_url(machine), {"enabled": True, "hour": 4}, format="json")
    backup_id = worker_api.post("/api/v1/backups/", {"instance": machine["id"]}, format="json").json()["id"]
    for value in ("maybe", "1", ""):
        assert_error(worker_api.delete(f"/api/v1/instances/{machine['id']}/?delete_backups={value}"), 400)
    gone = worker_api.delete(f"/api/v1/instances/{machine['id']}/?delete_backups=true")
    assert gone.status_code == 202
    assert Backup.objects.get(pk=backup_id).state == "deleted"


def test_private_images_from_a_snapshot_of_the_disk_are_listed_launched_and_deleted(worker_api, machine, tenant):
    taken = worker_api.post(f"/api/v1/instances/{machine['id']}/snapshot/", {"name": "snap"}, format="json")
    assert taken.status_code == 202, taken.content
    snapshot = worker_api.get(taken["Location"]).json()
    assert (snapshot["state"], snapshot["crash_consistent"]) == ("available", True)
    again = worker_api.post(f"/api/v1/instances/{machine['id']}/snapshot/", {"name": "SNAP"}, format="json")
    assert_error(again, 400, "name_taken")
    made = worker_api.post("/api/v1/images/", {"name": "golden", "snapshot": snapshot["id"]}, format="json")
    assert made.status_code == 202, made.content
    image = worker_api.get(made["Location"]).json()
    assert (image["visibility"], image["state"], image["size_gib"]) == ("private", "available", 20)

    private = worker_api.get("/api/v1/images/?visibility=private").json()["data"]
    assert [row["id"] for row in private] == [image["id"]]
    everything = {row["name"] for row in worker_api.get("/api/v1/images/").json()["data"]}
    assert {"golden", "Debian 12"} <= everything

    used = worker_api.post(
        "/api/v1/instances/",
        {"name": "from-golden", "flavor": machine["flavor"], "image": image["id"]},
        format="json",
    )
    assert used.status_code == 202, used.content
    in_use = worker_api.delete(f"/api/v1/images/{image['id']}/")
    assert_error(in_use, 409, "image_in_use")
    assert in_use.json()["error"]["details"]["instances"] == ["from-golden"]

    public = worker_api.delete(f"/api/v1/images/{Image.objects.get(name='Debian 12').pk}/")
    assert_error(public, 409, "image_public")


def test_another_organisations_backups_and_images_are_404(worker_api, member_api):
    theirs = BackupFactory(tenant=TenantFactory())
    assert_error(member_api.get(f"/api/v1/backups/{theirs.pk}/"), 404, "not_found")
    assert_error(member_api.post(f"/api/v1/backups/{theirs.pk}/restore/", {"mode": "new", "name": "x"}), 404)
    assert_error(member_api.get(f"/api/v1/instances/{theirs.instance_id}/backup-policy/"), 404, "not_found")
    assert_error(
        member_api.post(f"/api/v1/instances/{theirs.instance_id}/snapshot/", {"name": "x"}, format="json"), 404
    )
    image = Image.objects.create(
        name="theirs", os="Debian", version="12", tenant=theirs.tenant, host=theirs.host, size_gib=1
    )
    assert_error(member_api.get(f"/api/v1/images/{image.pk}/"), 404, "not_found")
    assert_error(member_api.delete(f"/api/v1/images/{image.pk}/"), 404, "not_found")
    snapshot = Snapshot.objects.create(
        tenant=theirs.tenant, name="s", size_gib=1, region=theirs.region, host=theirs.host, state="available"
    )
    refused = member_api.post("/api/v1/images/", {"name": "mine", "snapshot": str(snapshot.pk)}, format="json")
    assert_error(refused, 400)


def test_a_viewer_cannot_change_backups_or_images(viewer_api, tenant):
    backup = BackupFactory(tenant=tenant)
    assert_error(viewer_api.delete(f"/api/v1/backups/{backup.pk}/"), 403)
    assert_error(viewer_api.put(f"/api/v1/instances/{backup.instance_id}/backup-policy/", {"enabled": True}), 403)
    assert_error(viewer_api.post("/api/v1/images/", {"name": "x", "snapshot": str(backup.pk)}, format="json"), 403)
