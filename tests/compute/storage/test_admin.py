"""Operators' storage admin: the pools' room, stuck items, and actions that go through the services."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from compute.storage import services
from compute.storage.models import Volume
from tests.conftest import login_client
from tests.factories.tenants import UserFactory


@pytest.fixture
def operator_client(db):
    return login_client(UserFactory(email="operator@example.com", is_staff=True, is_superuser=True))


@pytest.mark.parametrize("model", ["volume", "snapshot", "storageevent", "simulatedvolume"])
def test_every_page_opens(operator_client, attached, member, committed, model):
    with committed():
        services.snapshot_create(volume=attached, user=member, name="snap")
    assert operator_client.get(reverse(f"admin:storage_{model}_changelist")).status_code == 200
    obj = {"volume": attached}.get(model) or attached.snapshots.first() if model != "storageevent" else None
    if model in ("volume", "snapshot"):
        assert operator_client.get(reverse(f"admin:storage_{model}_change", args=[obj.pk])).status_code == 200


def test_the_volume_list_shows_each_pools_room(operator_client, volume, host):
    page = operator_client.get(reverse("admin:storage_volume_changelist")).content.decode()
    assert "Storage pools" in page and "hv-test" in page
    assert "<td>100</td>" in page  # the volume's GiB in the host's pool


def test_stuck_work_is_found_and_failed_through_the_service(
    operator_client, tenant, member, host, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        stuck = services.volume_create(tenant=tenant, user=member, name="stuck", size_gib=1)
    Volume.objects.filter(pk=stuck.pk).update(task_deadline=timezone.now() - timedelta(minutes=1))
    page = operator_client.get(reverse("admin:storage_volume_changelist") + "?stuck=overdue").content.decode()
    assert "stuck" in page and "(overdue)" in page
    operator_client.post(
        reverse("admin:storage_volume_changelist"), {"action": "fail_work", ACTION_CHECKBOX_NAME: [stuck.pk]}
    )
    stuck.refresh_from_db()
    assert stuck.state == "error" and "Stopped by an operator" in stuck.error_reason


def test_detach_and_delete_go_through_the_services(operator_client, attached, django_capture_on_commit_callbacks):
    changelist = reverse("admin:storage_volume_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(changelist, {"action": "detach", ACTION_CHECKBOX_NAME: [attached.pk]})
    attached.refresh_from_db()
    assert attached.state == "available"
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(changelist, {"action": "delete_volumes", ACTION_CHECKBOX_NAME: [attached.pk]})
    attached.refresh_from_db()
    assert attached.state == "deleted"
    assert attached.events.filter(action="volume_delete", actor__email="operator@example.com").exists()
