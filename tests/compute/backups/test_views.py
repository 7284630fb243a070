"""The Backups and My images pages, the instance page's backups and the delete confirmation's choice."""

import pytest
from django.urls import reverse

from compute.models import Image
from compute.storage.backup_models import Backup
from compute.storage.models import Snapshot
from compute.storage.services import backups as services

pytestmark = pytest.mark.django_db


@pytest.fixture
def backed_up(running, member, committed):
    services.backups_enable(instance=running, user=member, hour=3)
    with committed():
        backup = services.backup_create(instance=running, user=member)
    backup.refresh_from_db()
    return backup


def test_the_instance_page_offers_backups_with_their_price(member_client, running):
    page = member_client.get(reverse("compute:instance-detail", args=[running.pk])).content.decode()
    assert 'id="backups"' in page
    assert "Turn on backups" in page
    assert "2.40" in page and "20 % of the machine" in page
    assert "crash-consistent" in page  # the snapshot dialog of a running machine warns


def test_turn_backups_on_and_off_from_the_instance_page(member_client, running, committed):
    url = reverse("backups:instance-backups", args=[running.pk])
    response = member_client.post(url, {"enabled": "on", "hour": "5"})
    assert response.status_code == 302 and response["Location"].endswith("#backups")
    running.backup_policy.refresh_from_db()
    assert (running.backup_policy.enabled, running.backup_policy.hour) == (True, 5)
    bad = member_client.post(url, {"enabled": "on", "hour": "99"}, follow=True)
    assert "Select a valid choice" in bad.content.decode()
    member_client.post(url, {"hour": "5"})
    running.backup_policy.refresh_from_db()
    assert running.backup_policy.enabled is False


def test_back_up_now_and_list_it(member_client, running, member, committed):
    services.backups_enable(instance=running, user=member, hour=3)
    with committed():
        member_client.post(reverse("backups:instance-backup-now", args=[running.pk]))
    backup = Backup.objects.get()
    assert backup.state == "available"
    page = member_client.get(reverse("backups:backup-list")).content.decode()
    assert backup.name in page and "Restore…" in page and "crash-consistent" in page
    rows = member_client.get(reverse("backups:instance-backup-rows", args=[running.pk])).content.decode()
    assert backup.name in rows


def test_restore_over_the_disk_needs_the_typed_name(member_client, backed_up, running, committed):
    url = reverse("backups:backup-restore", args=[backed_up.pk])
    refused = member_client.post(url, {"mode": "overwrite", "confirm_name": "nope"}, follow=True)
    assert f"Type {running.name} exactly" in refused.content.decode()
    with committed():
        done = member_client.post(url, {"mode": "overwrite", "confirm_name": running.name})
    assert done["Location"] == reverse("compute:instance-detail", args=[running.pk])
    assert running.events.filter(action="restore", result="succeeded").exists()


def test_restore_as_a_new_machine_from_the_dashboard(member_client, backed_up, committed):
    with committed():
        response = member_client.post(
            reverse("backups:backup-restore", args=[backed_up.pk]), {"mode": "new", "name": "again"}
        )
    new = running_named("again")
    assert response["Location"] == reverse("compute:instance-detail", args=[new.pk])
    assert new.state == "running"


def running_named(name):
    from compute.models import Instance

    return Instance.objects.get(name=name)


def test_the_delete_confirmation_offers_to_keep_or_delete_backups(member_client, backed_up, running, committed):
    page = member_client.get(reverse("compute:instance-delete", args=[running.pk])).content.decode()
    assert "Its 1 backup" in page and 'value="keep" checked' in page
    with committed():
        member_client.post(
            reverse("compute:instance-delete", args=[running.pk]), {"confirm_name": running.name, "backups": "delete"}
        )
    backed_up.refresh_from_db()
    assert backed_up.state == "deleted"


def test_snapshot_the_disk_then_make_an_image_and_launch_it(member_client, running, committed, flavor):
    with committed():
        member_client.post(reverse("backups:instance-snapshot", args=[running.pk]), {"name": "disk-1"})
    snapshot = Snapshot.objects.get(name="disk-1")
    assert snapshot.crash_consistent
    with committed():
        made = member_client.post(reverse("backups:image-list"), {"snapshot": str(snapshot.pk), "name": "golden"})
    assert made.status_code == 302
    image = Image.objects.get(name="golden")
    assert image.state == "available"
    listing = member_client.get(reverse("backups:image-list")).content.decode()
    assert "golden" in listing and "disk-1" in listing
    launch = member_client.get(reverse("compute:instance-launch") + f"?image={image.pk}").content.decode()
    assert "My images" in launch
    assert f'value="{image.pk}" checked' in launch
    refused = member_client.post(reverse("backups:image-list"), {"snapshot": "not-a-uuid", "name": "x"})
    assert refused.status_code == 400


def test_a_viewer_sees_backups_but_cannot_change_them(viewer_client, backed_up, running):
    page = viewer_client.get(reverse("backups:backup-list")).content.decode()
    assert backed_up.name in page and "Restore…" not in page
    assert viewer_client.post(reverse("backups:instance-backups", args=[running.pk]), {"hour": "1"}).status_code == 403


def test_list_pages_keep_their_query_count(member_client, backed_up, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        assert member_client.get(reverse("backups:backup-list")).status_code == 200
    with django_assert_max_num_queries(20):
        assert member_client.get(reverse("backups:image-list")).status_code == 200
