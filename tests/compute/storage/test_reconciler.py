"""The reconciler covers volumes and snapshots: lost work is sent again, overdue work fails, a vanished file puts
the volume in error (billing stops); and a machine with volumes attached is not moved."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Segment
from compute.reconciler import reconcile
from compute.services.migration import instance_migrate
from compute.storage import services
from compute.storage.models import SimulatedVolume
from portal.errors import Conflict
from tests.factories.compute import HostFactory

NO_GRACE = timedelta(0)


def test_a_lost_create_message_is_sent_again_and_the_volume_becomes_available(
    tenant, member, host, committed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        volume = services.volume_create(tenant=tenant, user=member, name="lost", size_gib=5)
    with committed():
        report = reconcile(grace=NO_GRACE, now=timezone.now() + timedelta(seconds=1))
    volume.refresh_from_db()
    assert str(volume.pk) in report.requeued
    assert volume.state == "available" and volume.task_requeues == 0
    assert volume.events.filter(result="requested", message__contains="sent to the workers again").exists()


def test_work_past_its_deadline_fails_with_a_reason(tenant, member, host, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        volume = services.volume_create(tenant=tenant, user=member, name="stuck", size_gib=5)
    report = reconcile(grace=timedelta(hours=2), now=timezone.now() + timedelta(hours=1))
    volume.refresh_from_db()
    assert str(volume.pk) in report.overdue
    assert volume.state == "error"
    assert volume.error_reason == "The create did not finish within 30 minutes (sent to the workers 1 time)."


def test_a_volume_whose_file_vanished_goes_to_error_and_stops_billing(volume, host):
    SimulatedVolume.objects.filter(name=volume.driver_name).delete()  # behind Hangar's back
    report = reconcile(grace=NO_GRACE)
    volume.refresh_from_db()
    assert report.vanished == [str(volume.pk)]
    assert volume.state == "error" and host.name in volume.error_reason
    assert Segment.objects.get(resource_id=volume.pk).ended_at is not None
    assert reconcile(grace=NO_GRACE).vanished == []  # reported once


def test_a_snapshot_whose_file_vanished_goes_to_error(volume, member, committed):
    with committed():
        snapshot = services.snapshot_create(volume=volume, user=member, name="snap")
    SimulatedVolume.objects.filter(name=snapshot.driver_name).delete()
    reconcile(grace=NO_GRACE)
    snapshot.refresh_from_db()
    assert snapshot.state == "error"


def test_volumes_in_their_pools_are_left_alone(attached):
    report = reconcile(grace=NO_GRACE)
    assert report.vanished == [] and report.overdue == []


def test_a_machine_with_volumes_attached_is_not_moved(attached, member):
    HostFactory(name="hv-other")
    with pytest.raises(Conflict, match="has volumes attached"):
        instance_migrate(instance=attached.instance, user=member)
