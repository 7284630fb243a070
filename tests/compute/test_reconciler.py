"""The reconciler: lost work re-enqueued, overdue work failed, hosts compared with the database."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from compute import reconciler
from compute.drivers.base import PowerState
from compute.models import Instance, OrphanDomain, SimulatedDomain
from compute.reconciler import reconcile
from compute.services import instance_stop
from portal.celery import app as celery_app
from tests.celery_conf import set_celery_conf
from tests.factories.compute import HostFactory, InstanceFactory, SimulatedDomainFactory

NO_GRACE = timedelta(0)


def test_a_lost_build_message_is_re_enqueued_and_the_instance_finishes(
    launch, committed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        instance = launch()  # committed, but the message never reached a worker
    instance.refresh_from_db()
    assert instance.state == "pending"

    with committed():
        report = reconcile(grace=NO_GRACE, now=timezone.now() + timedelta(seconds=1))

    instance.refresh_from_db()
    assert report.requeued == [str(instance.pk)]
    assert instance.state == "running"
    requeue = instance.events.get(action="reconcile")
    assert requeue.result == "requested"
    assert "sent to the workers again" in requeue.message


def test_a_lost_stop_message_is_re_enqueued(running, member, committed, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        instance_stop(instance=running, user=member)
    with committed():
        reconcile(grace=NO_GRACE, now=timezone.now() + timedelta(seconds=1))
    running.refresh_from_db()
    assert running.state == "stopped"


def test_work_within_the_grace_period_is_left_alone(launch, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        launch()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = reconcile(grace=timedelta(minutes=5))
    assert report.requeued == []
    assert callbacks == []


def test_work_that_shows_progress_is_left_alone(tenant):
    now = timezone.now()
    instance = InstanceFactory(
        tenant=tenant,
        state="building",
        task="build",
        task_enqueued_at=now - timedelta(minutes=5),
        task_progress_at=now - timedelta(seconds=10),
        task_deadline=now + timedelta(minutes=10),
    )
    report = reconcile(grace=timedelta(seconds=60), now=now)
    assert str(instance.pk) not in report.requeued


def test_work_past_its_deadline_fails_with_a_reason(tenant, django_capture_on_commit_callbacks):
    now = timezone.now()
    instance = InstanceFactory(
        tenant=tenant,
        state="building",
        task="build",
        task_enqueued_at=now - timedelta(minutes=20),
        task_deadline=now - timedelta(minutes=5),
        task_requeues=3,
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = reconcile(now=now)

    instance.refresh_from_db()
    assert report.overdue == [str(instance.pk)]
    assert callbacks == []  # failed, not re-enqueued
    assert instance.state == "error"
    assert instance.error_reason == "The build did not finish within 15 minutes (sent to the workers 4 times)."
    assert instance.events.get(result="failed").message == instance.error_reason


def test_a_vanished_domain_puts_its_instance_in_error(running):
    SimulatedDomain.objects.filter(uuid=running.pk).delete()

    report = reconcile()

    running.refresh_from_db()
    assert report.vanished == [str(running.pk)]
    assert running.state == "error"
    assert "vanished from host hv-test" in running.error_reason
    assert running.events.get(action="reconcile").result == "failed"


def test_instances_being_built_are_not_vanished(launch, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        instance = launch()
    report = reconcile(grace=timedelta(minutes=5))
    instance.refresh_from_db()
    assert report.vanished == []
    assert instance.state == "pending"


def test_an_unknown_domain_is_recorded_for_operators_and_resolved_when_gone(host, caplog):
    stray = SimulatedDomainFactory(host=host, name="stray")

    report = reconcile()

    orphan = OrphanDomain.objects.get()
    assert report.orphans == [str(stray.uuid)]
    assert (orphan.host, orphan.uuid, orphan.resolved_at) == (host, str(stray.uuid), None)
    assert "no instance owns" in caplog.text

    reconcile()  # seen again: still one row
    assert OrphanDomain.objects.count() == 1

    stray.delete()
    reconcile()
    orphan.refresh_from_db()
    assert orphan.resolved_at is not None


def test_a_deleted_instances_leftover_domain_is_an_orphan(running):
    Instance.objects.filter(pk=running.pk).update(state="deleted")
    reconcile()
    assert OrphanDomain.objects.get().uuid == str(running.pk)


def test_a_machine_powered_off_from_inside_is_followed(running):
    SimulatedDomain.objects.filter(uuid=running.pk).update(power=PowerState.SHUTOFF)

    report = reconcile()

    running.refresh_from_db()
    assert report.power_synced == [str(running.pk)]
    assert (running.state, running.power_state) == ("stopped", "shutoff")
    assert "powered off outside Hangar" in running.events.get(action="reconcile").message


def test_disabled_hosts_are_not_compared(tenant):
    host = HostFactory(name="off", enabled=False)
    SimulatedDomainFactory(host=host)
    reconcile()
    assert not OrphanDomain.objects.exists()


def test_a_running_reconciler_twice_changes_nothing_more(running):
    SimulatedDomain.objects.filter(uuid=running.pk).delete()
    reconcile()
    reconcile()
    assert running.events.filter(action="reconcile").count() == 1


def test_the_reconciler_is_scheduled_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["compute-reconcile"]
    assert entry == {"task": "compute.tasks.reconcile", "schedule": 60.0}


def test_the_reconcile_task_runs(running):
    from compute import tasks

    SimulatedDomain.objects.filter(uuid=running.pk).delete()
    tasks.reconcile.delay()
    running.refresh_from_db()
    assert running.state == "error"


def test_a_domain_whose_instance_was_launched_during_the_pass_is_not_an_orphan(host, launch, monkeypatch):
    """The instance is created after the reconciler read the database, its domain before it read the host."""
    from compute.drivers.simulated import SimulatedDriver

    original = SimulatedDriver.list_domains
    launched = {}

    def list_domains_after_a_launch(self):
        if not launched:
            instance = launch(name="late")
            launched["instance"] = instance
            SimulatedDomainFactory(uuid=instance.pk, host=host)
        return original(self)

    monkeypatch.setattr(SimulatedDriver, "list_domains", list_domains_after_a_launch)
    report = reconcile(grace=timedelta(minutes=5))
    assert report.orphans == []
    assert not OrphanDomain.objects.exists()


def test_a_power_change_seen_once_is_checked_again_before_it_is_followed(running, monkeypatch):
    """The listing says "shut off" but by the time of the re-check the machine runs: nothing is changed."""
    from compute.drivers.base import DomainInfo
    from compute.drivers.simulated import SimulatedDriver

    monkeypatch.setattr(
        SimulatedDriver,
        "list_domains",
        lambda self: [DomainInfo(uuid=str(running.pk), state=PowerState.SHUTOFF, private_ip=running.private_ip)],
    )
    report = reconcile()
    running.refresh_from_db()
    assert report.power_synced == []
    assert running.state == "running"


def test_a_host_whose_driver_cannot_load_is_reported_and_the_others_are_still_compared(running, monkeypatch):
    from compute import reconciler
    from compute.drivers.base import PermanentDriverError

    broken = HostFactory(name="kvm-without-binding")
    real_driver_for = reconciler.driver_for

    def driver_for(host):
        if host.pk == broken.pk:
            raise PermanentDriverError("libvirt-python is not installed on this worker")
        return real_driver_for(host)

    monkeypatch.setattr(reconciler, "driver_for", driver_for)
    SimulatedDomain.objects.filter(uuid=running.pk).delete()
    report = reconcile()
    assert "kvm-without-binding" in report.unreachable_hosts
    running.refresh_from_db()
    assert report.vanished == [str(running.pk)]
    assert running.state == "error"


# --- queued or lost: the reconciler asks a real broker (a private filesystem one) ------------------------------


@pytest.fixture
def broker(tmp_path, monkeypatch, settings):
    """A private embedded broker, with tasks sent to it rather than run inline; `broker.send(n)` queues n builds.
    Nothing is in a worker's hands here, so the reconciler need not wait for claims."""
    settings.TASK_CLAIM_WAIT_SECONDS = 0
    folders = {name: tmp_path / name for name in ("queue", "control", "processed")}
    for folder in folders.values():
        folder.mkdir()
    set_celery_conf(
        monkeypatch,
        broker_url="filesystem://",
        broker_transport_options={
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "control_folder": str(folders["control"]),
            "processed_folder": str(folders["processed"]),
        },
        task_always_eager=False,
    )

    class Broker:
        @staticmethod
        def send(count: int) -> None:
            with celery_app.connection_for_write() as connection:
                for _ in range(count):
                    kwargs = {"instance_id": str(uuid.uuid4())}
                    celery_app.send_task("compute.tasks.build_instance", kwargs=kwargs, connection=connection)

        @staticmethod
        def purge() -> None:
            for message in folders["queue"].iterdir():
                message.unlink()

    return Broker()


def _waiting_build(tenant, *, enqueued_ago: timedelta, claimed: bool = False) -> Instance:
    now = timezone.now()
    return InstanceFactory(
        tenant=tenant,
        state="building" if claimed else "pending",
        task="build",
        task_enqueued_at=now - enqueued_ago,
        task_progress_at=now if claimed else None,
        task_deadline=now + timedelta(minutes=10),
    )


def test_work_waiting_behind_a_backlog_is_queued_not_lost(tenant, broker):
    waiting = _waiting_build(tenant, enqueued_ago=timedelta(minutes=3))
    broker.send(3)  # the backlog it waits behind

    report = reconcile(grace=timedelta(seconds=90))

    assert report.requeued == []
    assert report.queued == [str(waiting.pk)]
    assert not waiting.events.filter(action="reconcile").exists()
    assert "1 still queued" in report.summary()


def test_unclaimed_work_is_lost_once_its_queue_is_empty(tenant, broker):
    waiting = _waiting_build(tenant, enqueued_ago=timedelta(minutes=3))
    broker.send(3)
    reconcile(grace=timedelta(seconds=90))
    broker.purge()  # the backlog has been worked off, and its message was not among it

    report = reconcile(grace=timedelta(seconds=90))

    assert report.requeued == [str(waiting.pk)]
    assert "nothing waits in its queue (lost message)" in waiting.events.get(action="reconcile").message


def test_work_a_worker_claims_just_after_its_queue_was_seen_empty_is_not_sent_again(tenant, broker, monkeypatch):
    """The worker had taken the message when the reconciler asked the queue, and starts it while the reconciler
    waits for claims."""
    taken = _waiting_build(tenant, enqueued_ago=timedelta(minutes=3))
    waited = []

    def worker_starts_it():
        waited.append(True)
        Instance.objects.filter(pk=taken.pk).update(state="building", task_progress_at=timezone.now())

    monkeypatch.setattr(reconciler, "wait_for_claims", worker_starts_it)

    report = reconcile(grace=timedelta(seconds=90))

    assert waited == [True]
    assert report.requeued == []
    assert not taken.events.filter(action="reconcile").exists()
    taken.refresh_from_db()
    assert taken.task_requeues == 0


def test_the_reconciler_waits_for_claims_only_when_a_queue_it_asked_was_empty(tenant, broker, monkeypatch):
    waits = []
    monkeypatch.setattr(reconciler, "wait_for_claims", lambda: waits.append(True))
    _waiting_build(tenant, enqueued_ago=timedelta(minutes=3))
    broker.send(3)
    reconcile(grace=timedelta(seconds=90))
    assert waits == []  # queued: nothing to wait for
    broker.purge()
    reconcile(grace=timedelta(seconds=90))
    assert waits == [True]


def test_unclaimed_work_is_lost_once_work_sent_after_it_has_been_claimed(tenant, broker):
    waiting = _waiting_build(tenant, enqueued_ago=timedelta(minutes=3))
    _waiting_build(tenant, enqueued_ago=timedelta(minutes=2), claimed=True)  # the queue passed it over
    broker.send(3)

    report = reconcile(grace=timedelta(seconds=90))

    assert report.requeued == [str(waiting.pk)]
    assert "work sent after it has started (lost message)" in waiting.events.get(action="reconcile").message


def test_claimed_work_that_falls_silent_is_lost_whatever_waits(tenant, broker):
    silent = _waiting_build(tenant, enqueued_ago=timedelta(minutes=3), claimed=True)
    Instance.objects.filter(pk=silent.pk).update(task_progress_at=timezone.now() - timedelta(minutes=2))
    broker.send(3)

    report = reconcile(grace=timedelta(seconds=90))

    assert report.requeued == [str(silent.pk)]
    assert "(worker stopped)" in silent.events.get(action="reconcile").message


def test_unclaimed_work_is_left_alone_while_the_broker_cannot_be_asked(tenant, broker, monkeypatch):
    waiting = _waiting_build(tenant, enqueued_ago=timedelta(minutes=3))
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens there

    report = reconcile(grace=timedelta(seconds=90))

    assert report.queued == [str(waiting.pk)]
    assert report.requeued == []


def test_periodic_tasks_have_a_queue_of_their_own(settings):
    from portal.queue import queue_of

    assert {queue_of(entry["task"]) for entry in settings.CELERY_BEAT_SCHEDULE.values()} == {"control"}
    assert queue_of("compute.tasks.build_instance") == "celery"
    assert {queue.name for queue in celery_app.conf.task_queues} == {"celery", "control"}  # what workers consume
