"""The reconciler's pass over backups and private images: overdue work fails, lost work is sent again, a vanished
file puts its backup or image in `error`."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import ResourceType, Segment
from compute.reconciler import reconcile
from compute.storage.backup_models import Backup
from compute.storage.models import SimulatedVolume
from compute.storage.services import backups as services
from tests.factories.backups import PrivateImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def enabled(running, member):
    services.backups_enable(instance=running, user=member, hour=3)
    return running


def test_a_lost_backup_is_sent_again_and_made(enabled, member, committed):
    backup = services.backup_create(instance=enabled, user=member)  # the message never left: not committed
    Backup.objects.filter(pk=backup.pk).update(task_enqueued_at=timezone.now() - timedelta(minutes=5))
    with committed():
        report = reconcile(grace=timedelta(seconds=60))
    assert str(backup.pk) in report.requeued
    backup.refresh_from_db()
    assert backup.state == "available"  # made by the task sent again


def test_an_overdue_backup_fails_with_the_reason(enabled, member):
    backup = services.backup_create(instance=enabled, user=member)
    Backup.objects.filter(pk=backup.pk).update(task_deadline=timezone.now() - timedelta(seconds=1))
    report = reconcile(grace=timedelta(seconds=60))
    assert str(backup.pk) in report.overdue
    backup.refresh_from_db()
    assert backup.state == "error" and "did not finish in time" in backup.error_reason


def test_a_backup_whose_file_vanished_goes_to_error(enabled, member, committed):
    with committed():
        backup = services.backup_create(instance=enabled, user=member)
    SimulatedVolume.objects.filter(name=backup.driver_name).delete()
    report = reconcile(grace=timedelta(seconds=60))
    assert str(backup.pk) in report.vanished
    backup.refresh_from_db()
    assert backup.state == "error" and "gone from host" in backup.error_reason


def test_a_private_image_whose_file_vanished_stops_being_billed(tenant, host):
    from django.db import transaction

    from compute.lifecycle import announce_billable

    image = PrivateImageFactory(tenant=tenant, host=host)
    with transaction.atomic():
        announce_billable(resource=image.billable(), at=timezone.now())
    report = reconcile(grace=timedelta(seconds=60))
    assert str(image.pk) in report.vanished
    image.refresh_from_db()
    assert image.state == "error"
    assert Segment.objects.get(resource_type=ResourceType.IMAGE, resource_id=image.pk).ended_at is not None
