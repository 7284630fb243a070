"""Worker tasks: idempotent (duplicates, crashes half-way), transient errors retried, permanent ones recorded."""

from unittest import mock

import pytest
from celery import Task
from django.db import InterfaceError, OperationalError

from compute import services, tasks
from compute.drivers.base import TransientDriverError
from compute.drivers.simulated import SimulatedDriver
from compute.models import Instance, SimulatedDomain
from compute.services import instance_stop, operations


def _log(instance):
    return list(instance.events.order_by("created_at", "id").values_list("action", "result"))


def test_a_build_delivered_twice_creates_one_domain(launch, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        instance = launch()
    assert len(callbacks) == 1

    tasks.build_instance.delay(instance_id=str(instance.pk))
    tasks.build_instance.delay(instance_id=str(instance.pk))

    instance.refresh_from_db()
    assert instance.state == "running"
    assert SimulatedDomain.objects.filter(uuid=instance.pk).count() == 1
    assert _log(instance) == [("launch", "requested"), ("build", "succeeded")]


def test_concurrent_duplicate_deliveries_create_one_domain(launch, django_capture_on_commit_callbacks):
    """Two workers claim the same build (the second while the first is still waiting for the boot)."""
    with django_capture_on_commit_callbacks():
        instance = launch()
    first = operations.instance_task_claim(instance_id=str(instance.pk), task="build")
    second = operations.instance_task_claim(instance_id=str(instance.pk), task="build")
    driver = SimulatedDriver(first.host)

    driver.create(operations.domain_spec(first))
    driver.create(operations.domain_spec(second))

    assert SimulatedDomain.objects.filter(uuid=instance.pk).count() == 1


def test_a_build_rerun_after_a_crash_half_way_adopts_the_domain(launch, django_capture_on_commit_callbacks):
    """The worker created the domain and died before recording the outcome; the redelivery finishes the job."""
    with django_capture_on_commit_callbacks():
        instance = launch()
    claimed = operations.instance_task_claim(instance_id=str(instance.pk), task="build")
    SimulatedDriver(claimed.host).create(operations.domain_spec(claimed))
    instance.refresh_from_db()
    assert instance.state == "building"

    tasks.build_instance.delay(instance_id=str(instance.pk))

    instance.refresh_from_db()
    assert instance.state == "running"
    assert SimulatedDomain.objects.filter(uuid=instance.pk).count() == 1


def test_a_stale_delivery_does_nothing(running, member, committed):
    """A start message that arrives after the instance moved on (stopped, then asked to stop again) is ignored."""
    tasks.start_instance.delay(instance_id=str(running.pk))
    with committed():
        instance_stop(instance=running, user=member)
    events = _log(running)

    tasks.start_instance.delay(instance_id=str(running.pk))
    tasks.stop_instance.delay(instance_id=str(running.pk))

    running.refresh_from_db()
    assert running.state == "stopped"
    assert _log(running) == events


def test_outcomes_are_recorded_once(running):
    from compute.drivers.base import DomainInfo, PowerState

    info = DomainInfo(uuid=str(running.pk), state=PowerState.RUNNING, private_ip="10.0.0.9")
    assert services.instance_build_succeeded(instance_id=str(running.pk), info=info) is None
    assert services.instance_action_failed(instance_id=str(running.pk), task="stop", reason="late") is None
    running.refresh_from_db()
    assert running.state == "running"


def test_transient_failures_are_retried_until_they_pass(launch, committed, host):
    host.fail_next_creates, host.failure_kind = 2, "transient"
    host.save()

    with committed():
        instance = launch()

    instance.refresh_from_db()
    host.refresh_from_db()
    assert instance.state == "running"
    assert host.fail_next_creates == 0
    assert SimulatedDomain.objects.filter(uuid=instance.pk).count() == 1


def test_transient_failures_give_up_after_the_retries(launch, committed, host):
    host.fail_next_creates, host.failure_kind = 100, "transient"
    host.save()

    with committed():
        instance = launch()

    instance.refresh_from_db()
    host.refresh_from_db()
    assert instance.state == "error"
    assert host.fail_next_creates == 100 - (tasks.MAX_RETRIES + 1)
    assert f"Gave up after {tasks.MAX_RETRIES + 1} attempts" in instance.error_reason
    failure = instance.events.get(result="failed")
    assert failure.action == "build"
    assert "Simulated transient failure" in failure.message


def test_transient_failures_wait_with_exponential_backoff_and_jitter_then_fail_once(launch, committed, host):
    host.fail_next_creates, host.failure_kind = 100, "transient"
    host.save()

    with mock.patch.object(Task, "retry", autospec=True, side_effect=Task.retry) as retry, committed():
        instance = launch()

    waits = [call.kwargs["countdown"] for call in retry.call_args_list]
    assert len(waits) == tasks.MAX_RETRIES
    for attempt, wait in enumerate(waits):
        assert 0 <= wait <= min(2 * 2**attempt, 120)  # 2, 4, 8, … s at most; full jitter draws from 0 up
    instance.refresh_from_db()
    assert instance.state == "error"
    assert instance.events.filter(result="failed").count() == 1


@pytest.mark.parametrize("error", [OperationalError("server closed the connection"), InterfaceError("closed")])
def test_a_database_error_during_the_work_is_retried(launch, committed, monkeypatch, error):
    create = SimulatedDriver.create
    calls = []

    def fails_once(driver, spec):
        calls.append(spec)
        if len(calls) == 1:
            raise error
        return create(driver, spec)

    monkeypatch.setattr(SimulatedDriver, "create", fails_once)

    with committed():
        instance = launch()

    instance.refresh_from_db()
    assert instance.state == "running"
    assert len(calls) == 2
    assert _log(instance) == [("launch", "requested"), ("build", "succeeded")]


def test_a_permanent_failure_puts_the_instance_in_error_with_the_reason(launch, committed, host, announced):
    host.fail_next_creates, host.failure_kind = 1, "permanent"
    host.save()

    with committed():
        instance = launch()

    instance.refresh_from_db()
    assert instance.state == "error"
    assert "Simulated permanent failure" in instance.error_reason
    assert _log(instance) == [("launch", "requested"), ("build", "failed")]
    assert instance.events.get(result="failed").message == instance.error_reason
    assert not SimulatedDomain.objects.filter(uuid=instance.pk).exists()
    assert announced == []  # never billable


def test_a_vanished_domain_fails_the_action(running, member, committed):
    SimulatedDomain.objects.filter(uuid=running.pk).delete()
    with committed():
        instance_stop(instance=running, user=member)
    running.refresh_from_db()
    assert running.state == "error"
    assert "gone from its host" in running.error_reason


def test_the_broker_being_down_does_not_fail_the_request(launch, committed, monkeypatch):
    def broken(**kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks, "enqueue", broken)
    with committed():
        instance = launch()
    instance.refresh_from_db()
    assert instance.state == "pending"  # the reconciler will re-enqueue it


def test_booting_is_waited_for(launch, committed, host, monkeypatch):
    """A host with a boot time: the task polls until the domain is up (time is short-circuited here)."""
    from datetime import timedelta

    from django.utils import timezone

    host.boot_seconds = 30
    host.save()
    clock = {"now": timezone.now()}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    monkeypatch.setattr(
        operations.time, "sleep", lambda seconds: clock.update(now=clock["now"] + timedelta(seconds=10))
    )

    with committed():
        instance = launch()

    instance.refresh_from_db()
    assert instance.state == "running"
    assert Instance.objects.get(pk=instance.pk).power_state == "running"


@pytest.mark.parametrize("task", ["build", "start", "stop", "reboot", "resize", "delete"])
def test_every_task_has_a_celery_task(task):
    assert tasks.TASKS[task].name == f"compute.tasks.{task}_instance"
    assert tasks.TASKS[task].acks_late is True


def test_transient_error_class_is_the_retry_trigger():
    assert issubclass(TransientDriverError, Exception)


# The statements of one build, after a first build on the host (which makes the host's network and loads the
# catalog); tests/perf/test_build_queries.py names them.
BUILD_QUERIES = {"postgresql": 5, "sqlite": 8}


def test_a_build_takes_a_constant_number_of_queries(launch, django_capture_on_commit_callbacks):
    """Savepoints are left out: the test's own transaction turns each of the build's transactions into one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with django_capture_on_commit_callbacks(execute=True):
        launch(name="first")
    with django_capture_on_commit_callbacks():
        instance = launch(name="counted")

    with CaptureQueriesContext(connection) as captured:
        tasks.build_instance.delay(instance_id=str(instance.pk))

    instance.refresh_from_db()
    assert instance.state == "running"
    assert _log(instance) == [("launch", "requested"), ("build", "succeeded")]
    statements = [query["sql"] for query in captured.captured_queries if "SAVEPOINT" not in query["sql"]]
    expected = BUILD_QUERIES[connection.vendor]
    assert len(statements) == expected, "\n".join(statement[:200] for statement in statements)
