"""The Storage section of the dashboard and a machine's disks on its page."""

import pytest
from django.urls import reverse

from compute.storage import services
from compute.storage.models import Snapshot, Volume

pytestmark = pytest.mark.django_db

VOLUMES = reverse("storage:volume-list")
SNAPSHOTS = reverse("storage:snapshot-list")


def _post(client, url, data, committed):
    with committed():
        return client.post(url, data)


def test_the_list_shows_the_price_and_quota_before_creating(member_client, host):
    page = member_client.get(VOLUMES).content.decode()
    assert "0.0500 EUR per GiB a month" in page and "100 GiB is 5.00 EUR a month" in page
    assert "0 of 1000 GiB" in page and "0 of 10" in page
    assert "Snapshots" in page  # the section's tabs


def test_create_a_volume_from_the_list(member_client, tenant, host, committed):
    response = _post(member_client, VOLUMES, {"name": "data", "size_gib": "50"}, committed)
    assert response.status_code == 302
    volume = Volume.objects.get(tenant=tenant, name="data")
    assert volume.state == "available" and volume.size_gib == 50
    page = member_client.get(VOLUMES).content.decode()
    assert "data" in page and "50 GiB" in page and "Available" in page


def test_a_refusal_is_shown_on_the_form(member_client, tenant, host):
    tenant.quota.volume_gb = 10
    tenant.quota.save()
    response = member_client.post(VOLUMES, {"name": "big", "size_gib": "20"})
    assert response.status_code == 422
    assert "Needs 20 GiB of volume storage; 10 GiB left in your quota." in response.content.decode()


def test_attach_extend_snapshot_detach_and_delete_from_the_dialogs(member_client, volume, running, committed):
    detail = reverse("storage:volume-detail", args=[volume.pk])
    page = member_client.get(detail).content.decode()
    assert f'value="{running.pk}"' in page  # the machine is offered in the attach dialog

    _post(member_client, reverse("storage:volume-attach", args=[volume.pk]), {"instance": running.pk}, committed)
    volume.refresh_from_db()
    assert volume.state == "in-use" and volume.instance == running
    page = member_client.get(detail).content.decode()
    assert "crash-consistent" in page  # the snapshot dialog warns: the machine runs

    _post(member_client, reverse("storage:volume-extend", args=[volume.pk]), {"size_gib": "150"}, committed)
    _post(member_client, reverse("storage:volume-snapshot", args=[volume.pk]), {"name": "snap"}, committed)
    volume.refresh_from_db()
    assert volume.size_gib == 150
    assert Snapshot.objects.get(name="snap").crash_consistent is True

    response = _post(member_client, reverse("storage:volume-delete", args=[volume.pk]), {}, committed)
    messages = member_client.get(response.url).content.decode()
    assert "data-1 is attached to web-1; detach it first." in messages

    _post(member_client, reverse("storage:volume-detach", args=[volume.pk]), {}, committed)
    _post(member_client, reverse("storage:volume-delete", args=[volume.pk]), {}, committed)
    volume.refresh_from_db()
    assert volume.state == "deleted"


def test_shrinking_is_refused_with_a_message(member_client, volume, committed):
    response = _post(member_client, reverse("storage:volume-extend", args=[volume.pk]), {"size_gib": "10"}, committed)
    assert "Volumes only grow" in member_client.get(response.url).content.decode()


def test_a_new_volume_from_a_snapshot(member_client, volume, member, committed, tenant):
    with committed():
        snapshot = services.snapshot_create(volume=volume, user=member, name="snap")
    assert "New volume" in member_client.get(SNAPSHOTS).content.decode()
    _post(member_client, reverse("storage:snapshot-volume", args=[snapshot.pk]), {"name": "copy"}, committed)
    copy = Volume.objects.get(tenant=tenant, name="copy")
    assert copy.source_snapshot == snapshot and copy.size_gib == 100 and copy.state == "available"


def test_another_tenants_volume_is_404(outsider_client, volume, running):
    assert outsider_client.get(reverse("storage:volume-detail", args=[volume.pk])).status_code == 404
    response = outsider_client.post(reverse("storage:volume-attach", args=[volume.pk]), {"instance": running.pk})
    assert response.status_code == 404


def test_attaching_to_another_tenants_machine_from_its_page_is_404(outsider_client, volume, running):
    response = outsider_client.post(reverse("storage:instance-attach", args=[running.pk]), {"volume": volume.pk})
    assert response.status_code == 404


def test_a_viewer_sees_but_cannot_change(viewer_client, volume):
    page = viewer_client.get(VOLUMES).content.decode()
    assert "data-1" in page and "Create a volume" not in page
    assert viewer_client.post(reverse("storage:volume-delete", args=[volume.pk])).status_code == 403


def test_the_machine_page_lists_its_disks_and_its_delete_keeps_the_volumes(member_client, attached, committed):
    machine = attached.instance
    page = member_client.get(reverse("compute:instance-detail", args=[machine.pk])).content.decode()
    assert "Boot disk" in page and "data-1" in page and "vdb" in page and "Detach" in page
    assert "Its volume data-1 is detached and kept." in page
    confirm = member_client.get(reverse("compute:instance-delete", args=[machine.pk])).content.decode()
    assert "Its volume data-1 is detached and kept." in confirm


def test_attach_from_the_machine_page(member_client, volume, running, committed):
    page = member_client.get(reverse("compute:instance-detail", args=[running.pk])).content.decode()
    assert "Attach a volume" in page
    _post(member_client, reverse("storage:instance-attach", args=[running.pk]), {"volume": volume.pk}, committed)
    volume.refresh_from_db()
    assert volume.state == "in-use" and volume.device == "vdb"


def test_the_list_polls_while_something_is_transitional(member_client, tenant, member, host):
    services.volume_create(tenant=tenant, user=member, name="slow", size_gib=1)  # no commit: the work waits
    page = member_client.get(VOLUMES).content.decode()
    assert 'hx-trigger="every 2s"' in page
    partial = member_client.get(VOLUMES, HTTP_HX_REQUEST="true").content.decode()
    assert partial.startswith("{% comment %}") is False and 'id="volume-table"' in partial
    assert 'id="volume-dialogs"' not in partial  # while it polls, the page keeps its dialogs as they are


def test_the_last_poll_brings_the_dialogs_of_a_volume_made_meanwhile(member_client, volume, running):
    """A volume still being made when the page loaded had no dialogs; once it settles, its buttons must open some."""
    partial = member_client.get(VOLUMES, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' not in partial
    assert '<div id="volume-dialogs" hx-swap-oob="true">' in partial
    assert f'<dialog id="attach-{volume.pk}">' in partial and running.name in partial
    assert f'<dialog id="delete-{volume.pk}">' in partial


def test_the_lists_take_a_fixed_number_of_queries(
    member_client, make_volume, running, member, committed, tenant, django_assert_max_num_queries
):
    tenant.quota.volumes = 20
    tenant.quota.save()
    for number in range(6):
        volume = make_volume(name=f"v{number}", size_gib=1)
        with committed():
            services.volume_attach(volume=volume, instance=running, user=member)
        with committed():
            services.snapshot_create(volume=volume, user=member, name=f"s{number}")
    with django_assert_max_num_queries(30):
        assert member_client.get(VOLUMES).status_code == 200
    with django_assert_max_num_queries(25):
        assert member_client.get(SNAPSHOTS).status_code == 200
    with django_assert_max_num_queries(30):
        assert member_client.get(reverse("compute:instance-detail", args=[running.pk])).status_code == 200


def test_the_last_poll_of_the_snapshots_brings_their_dialogs(member_client, volume, member, committed):
    with committed():
        snapshot = services.snapshot_create(volume=volume, user=member, name="snap")
    partial = member_client.get(SNAPSHOTS, HTTP_HX_REQUEST="true").content.decode()
    assert '<div id="snapshot-dialogs" hx-swap-oob="true">' in partial
    assert f'<dialog id="restore-{snapshot.pk}">' in partial and f'<dialog id="delete-{snapshot.pk}">' in partial
    assert "per GiB a month" in partial


def test_volumes_and_snapshots_are_filtered_by_label_on_the_pages_and_the_api(
    make_volume, member, tenant, committed, member_client
):
    from tests.api.conftest import api_client_for

    tagged = make_volume(name="tagged", size_gib=10, labels={"team": "db"})
    make_volume(name="plain", size_gib=10)
    with committed():
        services.snapshot_create(volume=tagged, user=member, name="tagged-snap", labels={"team": "db"})
    client = member_client

    page = client.get("/storage/volumes/?label=team=db").content.decode()
    assert "<strong>tagged</strong>" in page and "<strong>plain</strong>" not in page
    page = client.get("/storage/snapshots/?label=team").content.decode()
    assert "<strong>tagged-snap</strong>" in page
    assert "<strong>tagged-snap</strong>" not in client.get("/storage/snapshots/?label=team=web").content.decode()

    api = api_client_for(member, tenant)
    listed = api.get("/api/v1/volumes/?label=team=db").json()
    assert [row["name"] for row in listed["data"]] == ["tagged"]
