"""Backups through the services and the (eager) worker tasks: the schedule, the copies it keeps, restores, refusals,
and what billing is told."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import ResourceType, Segment
from compute.models import InstanceState, SimulatedDomain
from compute.services import instance_delete, instance_resize, instance_stop
from compute.storage.backup_models import Backup, BackupPolicy, backup_minute
from compute.storage.models import SimulatedVolume, StorageEvent
from compute.storage.services import backups as services
from portal.errors import Conflict, InvalidRequest

pytestmark = pytest.mark.django_db


def _segment(instance):
    return Segment.objects.filter(resource_type=ResourceType.BACKUP, resource_id=instance.pk).order_by("started_at")


@pytest.fixture
def enabled(running, member):
    services.backups_enable(instance=running, user=member, hour=3)
    return running


def _backup_now(instance, user, committed):
    with committed():
        backup = services.backup_create(instance=instance, user=user)
    backup.refresh_from_db()
    return backup


def test_enabling_schedules_a_daily_backup_at_the_machines_own_minute(running, member):
    policy = services.backups_enable(instance=running, user=member, hour=3)

    assert (policy.enabled, policy.hour, policy.keep) == (True, 3, 7)
    assert policy.minute == running.pk.int % 60 == backup_minute(running.pk)
    assert policy.next_run_at > timezone.now()
    assert (policy.next_run_at.hour, policy.next_run_at.minute) == (3, policy.minute)
    assert policy.next_run_at - timezone.now() <= timedelta(days=1)
    event = StorageEvent.objects.get(action="backups_enable")
    assert event.actor == member and "keeping the last 7" in event.message
    # Billed from now at 20 % of the machine's price (12.00 → 2.40 a month).
    segment = _segment(running).get()
    assert segment.ended_at is None
    assert (segment.monthly_price, segment.resource_name) == (running.flavor.monthly_price / 5, f"Backups of {running}")


def test_machines_start_their_backups_at_different_minutes(launch, committed):
    minutes = set()
    with committed():
        machines = [launch(name=f"web-{n}") for n in range(6)]
    for machine in machines:
        minutes.add(services.backups_enable(instance=machine, user=None, hour=3).minute)
    assert minutes == {backup_minute(machine.pk) for machine in machines}
    assert len(minutes) > 1


@pytest.mark.parametrize("hour", [-1, 24, "x", None])
def test_an_hour_outside_the_day_is_refused(running, member, hour):
    with pytest.raises(InvalidRequest) as refused:
        services.backups_enable(instance=running, user=member, hour=hour)
    assert refused.value.code == "invalid_hour"
    assert not BackupPolicy.objects.exists()


def test_beat_makes_the_backup_that_fell_due_once(enabled, committed):
    policy = enabled.backup_policy
    due = policy.next_run_at
    with committed():
        assert services.backups_run_due(now=due - timedelta(seconds=1)) == []
        started = services.backups_run_due(now=due)
        again = services.backups_run_due(now=due + timedelta(seconds=20))
    assert len(started) == 1 and again == []
    backup = Backup.objects.get()
    assert (backup.state, backup.kind, backup.instance_id) == ("available", "scheduled", enabled.pk)
    assert backup.crash_consistent  # it was running
    assert backup.size_gib == enabled.flavor.disk_gib
    assert SimulatedVolume.objects.filter(name=backup.driver_name, host=enabled.host).exists()
    policy.refresh_from_db()
    assert policy.next_run_at == due + timedelta(days=1)
    assert policy.last_run_at == due


def test_a_stopped_machines_backup_is_not_crash_consistent(enabled, member, committed):
    with committed():
        instance_stop(instance=enabled, user=member)
    enabled.refresh_from_db()
    backup = _backup_now(enabled, member, committed)
    assert (backup.state, backup.crash_consistent, backup.kind) == ("available", False, "manual")


def test_only_the_newest_seven_are_kept(enabled, member, committed):
    made = [_backup_now(enabled, member, committed) for _ in range(8)]
    with committed():
        pass
    states = {backup.pk: backup.state for backup in Backup.objects.all()}
    assert states[made[0].pk] == "deleted"
    assert all(states[backup.pk] == "available" for backup in made[1:])
    assert not SimulatedVolume.objects.filter(name=made[0].driver_name).exists()


def test_backups_are_refused_while_off_and_while_the_machine_is_busy(running, member, big_flavor, committed):
    with pytest.raises(Conflict) as refused:
        services.backup_create(instance=running, user=member)
    assert refused.value.code == "backups_disabled"

    services.backups_enable(instance=running, user=member, hour=1)
    with committed():
        instance_stop(instance=running, user=member)
    running.refresh_from_db()
    instance_resize(instance=running, user=member, flavor=big_flavor)  # not committed: still resizing
    with pytest.raises(Conflict) as busy:
        services.backup_create(instance=running, user=member)
    assert busy.value.code == "instance_busy" and "resizing" in busy.value.message
    assert StorageEvent.objects.filter(action="backup_create", result="refused").count() == 2


def test_a_busy_machine_skips_the_days_backup(enabled, member, big_flavor, committed):
    with committed():
        instance_stop(instance=enabled, user=member)
    enabled.refresh_from_db()
    instance_resize(instance=enabled, user=member, flavor=big_flavor)
    due = enabled.backup_policy.next_run_at
    assert services.backups_run_due(now=due) == []
    skipped = StorageEvent.objects.get(action="backup_create", result="failed")
    assert skipped.message.startswith("Skipped today's backup")
    assert BackupPolicy.objects.get().next_run_at == due + timedelta(days=1)


def test_delete_a_backup_and_refuse_deleting_one_being_made(enabled, member, committed):
    backup = _backup_now(enabled, member, committed)
    with committed():
        services.backup_delete(backup=backup, user=member)
    backup.refresh_from_db()
    assert backup.state == "deleted" and backup.deleted_at is not None

    making = services.backup_create(instance=enabled, user=member)  # not committed: still creating
    with pytest.raises(Conflict) as refused:
        services.backup_delete(backup=making, user=member)
    assert refused.value.code == "backup_busy"
    with pytest.raises(Conflict) as twice:
        services.backup_create(instance=enabled, user=member)
    assert twice.value.code == "backup_in_progress"


def test_overwrite_needs_the_machines_name_typed(enabled, member, committed):
    backup = _backup_now(enabled, member, committed)
    with pytest.raises(InvalidRequest) as refused:
        services.backup_restore(backup=backup, user=member, confirm_name="web")
    assert refused.value.code == "confirmation_mismatch"
    enabled.refresh_from_db()
    assert enabled.state == "running"

    with committed():
        restoring = services.backup_restore(backup=backup, user=member, confirm_name=enabled.name)
        assert restoring.state == InstanceState.RESTORING
    enabled.refresh_from_db()
    assert enabled.state == "running"  # it ran before: it runs again
    domain = SimulatedDomain.objects.get(uuid=enabled.pk)
    assert domain.image == f"restored from {backup.driver_name}"
    assert list(enabled.events.order_by("created_at").values_list("action", "result"))[-2:] == [
        ("restore", "requested"),
        ("restore", "succeeded"),
    ]


def test_a_stopped_machine_stays_stopped_after_a_restore(enabled, member, committed):
    backup = _backup_now(enabled, member, committed)
    with committed():
        instance_stop(instance=enabled, user=member)
    enabled.refresh_from_db()
    with committed():
        services.backup_restore(backup=backup, user=member, confirm_name=enabled.name)
    enabled.refresh_from_db()
    assert enabled.state == "stopped"


def test_restore_as_a_new_machine_copies_the_backup_on_its_host(enabled, member, committed):
    backup = _backup_now(enabled, member, committed)
    with committed():
        new = services.backup_restore_as_new(backup=backup, user=member, name="web-restored")
    new.refresh_from_db()
    assert new.state == "running"
    assert new.host_id == backup.host_id
    assert (new.flavor_id, new.image_id) == (enabled.flavor_id, enabled.image_id)
    assert new.disk_source["file"] == backup.driver_name
    assert SimulatedDomain.objects.get(uuid=new.pk).image == backup.driver_name


def test_restore_as_new_refuses_a_smaller_disk(enabled, member, committed):
    from tests.factories.compute import FlavorFactory

    backup = _backup_now(enabled, member, committed)
    tiny = FlavorFactory(name="tiny", disk_gib=10)
    with pytest.raises(InvalidRequest) as refused:
        services.backup_restore_as_new(backup=backup, user=member, name="small", flavor=tiny)
    assert refused.value.code == "disk_too_small"


def test_deleting_the_machine_keeps_its_backups_billed_unless_asked(enabled, member, committed):
    backup = _backup_now(enabled, member, committed)
    with committed():
        instance_delete(instance=enabled, user=member)
    backup.refresh_from_db()
    assert backup.state == "available"
    assert BackupPolicy.objects.get().enabled is False
    assert _segment(enabled).get().ended_at is None  # kept backups stay billed

    with committed():
        services.backup_delete(backup=backup, user=member)
    assert _segment(enabled).get().ended_at is not None  # the last one is gone


def test_deleting_the_machine_with_its_backups(enabled, member, committed):
    backup = _backup_now(enabled, member, committed)
    with committed():
        instance_delete(instance=enabled, user=member, delete_backups=True)
    backup.refresh_from_db()
    assert backup.state == "deleted"
    assert _segment(enabled).get().ended_at is not None


def test_disabling_keeps_the_backups_and_their_billing(enabled, member, committed):
    backup = _backup_now(enabled, member, committed)
    services.backups_disable(instance=enabled, user=member)
    assert BackupPolicy.objects.get().next_run_at is None
    assert _segment(enabled).get().ended_at is None
    with committed():
        services.backups_disable(instance=enabled, user=member, delete_backups=True)
    backup.refresh_from_db()
    assert backup.state == "deleted"
    assert _segment(enabled).get().ended_at is not None


def test_disabling_without_backups_stops_billing_at_once(enabled, member):
    services.backups_disable(instance=enabled, user=member)
    assert _segment(enabled).get().ended_at is not None
    # Enabled again: a new segment.
    services.backups_enable(instance=enabled, user=member, hour=5)
    assert _segment(enabled).count() == 2


def test_a_resize_reprices_the_backups(enabled, member, big_flavor, committed):
    with committed():
        instance_stop(instance=enabled, user=member)
    enabled.refresh_from_db()
    with committed():
        instance_resize(instance=enabled, user=member, flavor=big_flavor)
    segments = list(_segment(enabled))
    assert len(segments) == 2
    assert segments[0].ended_at == segments[1].started_at
    assert segments[1].monthly_price == big_flavor.monthly_price / 5
    assert big_flavor.name in segments[1].plan_name
