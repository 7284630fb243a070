"""Every instance transition through the services and the (eager) worker tasks, and every refused one."""

import pytest

from compute.drivers.base import PowerState
from compute.models import Instance, InstanceEvent, SimulatedDomain
from compute.services import (
    instance_delete,
    instance_mark_error,
    instance_reboot,
    instance_rename,
    instance_resize,
    instance_start,
    instance_stop,
)
from portal.errors import Conflict, InvalidRequest, Unprocessable
from tests.factories.compute import FlavorFactory, InstanceFactory


def _log(instance) -> list[tuple[str, str]]:
    """The instance's event log, oldest first, as (action, result)."""
    return list(instance.events.order_by("created_at", "id").values_list("action", "result"))


def test_launch_builds_and_runs(launch, committed, member, key, announced):
    with committed():
        instance = launch(keys=[key])
        assert instance.state == "pending"
        assert instance.host is not None

    instance.refresh_from_db()
    domain = SimulatedDomain.objects.get(uuid=instance.pk)
    assert instance.state == "running"
    assert instance.power_state == PowerState.RUNNING
    assert instance.private_ip == domain.private_ip
    assert instance.task == "" and instance.task_deadline is None
    assert instance.ssh_keys == [key.snapshot()]
    assert instance.created_by == member
    assert _log(instance) == [("launch", "requested"), ("build", "succeeded")]
    assert instance.events.get(action="launch").actor == member
    assert instance.events.get(action="build").actor is None
    assert announced == [("billable", instance.flavor_id)]


def test_stop_and_start(running, member, committed):
    with committed():
        stopping = instance_stop(instance=running, user=member)
        assert stopping.state == "stopping"
    running.refresh_from_db()
    assert running.state == "stopped"
    assert running.power_state == PowerState.SHUTOFF

    with committed():
        assert instance_start(instance=running, user=member).state == "starting"
    running.refresh_from_db()
    assert running.state == "running"
    assert _log(running)[-4:] == [
        ("stop", "requested"),
        ("stop", "succeeded"),
        ("start", "requested"),
        ("start", "succeeded"),
    ]


def test_force_stop(running, admin_user, committed):
    with committed():
        instance_stop(instance=running, user=admin_user, force=True)
    running.refresh_from_db()
    assert running.state == "stopped"
    assert _log(running)[-2:] == [("force_stop", "requested"), ("stop", "succeeded")]


def test_reboot(running, member, committed):
    with committed():
        assert instance_reboot(instance=running, user=member).state == "rebooting"
    running.refresh_from_db()
    assert running.state == "running"
    assert _log(running)[-2:] == [("reboot", "requested"), ("reboot", "succeeded")]


def test_resize_a_stopped_instance(running, member, committed, big_flavor, announced):
    old_flavor = running.flavor
    with committed():
        instance_stop(instance=running, user=member)
    with committed():
        resizing = instance_resize(instance=running, user=member, flavor=big_flavor)
        assert resizing.state == "resizing"
        assert resizing.resize_flavor == big_flavor

    running.refresh_from_db()
    domain = SimulatedDomain.objects.get(uuid=running.pk)
    assert running.state == "stopped"
    assert running.flavor == big_flavor
    assert running.resize_flavor is None
    assert (domain.vcpus, domain.ram_mib, domain.disk_gib) == (4, 8192, 80)
    # The old price's segment is closed and one at the new price opened, after the resize succeeded.
    assert announced == [("repriced", big_flavor.pk)]
    assert (
        running.events.filter(action="resize", result="succeeded").get().message == f"from {old_flavor} to {big_flavor}"
    )


def test_delete(running, member, committed, announced):
    with committed():
        deleting = instance_delete(instance=running, user=member)
        assert deleting.state == "deleting"
        assert announced == [("ended", running.pk)]  # billing stops when the delete is requested

    running.refresh_from_db()
    assert running.state == "deleted"
    assert running.deleted_at is not None
    assert running.private_ip is None
    assert not SimulatedDomain.objects.filter(uuid=running.pk).exists()
    # Deleted instances stay for billing and the event log.
    assert Instance.objects.filter(pk=running.pk).exists()
    assert _log(running)[-2:] == [("delete", "requested"), ("delete", "succeeded")]


def test_a_failed_instance_can_be_deleted(running, member, committed):
    instance_mark_error(instance=running, user=member, reason="broken")
    with committed():
        instance_delete(instance=running, user=member)
    running.refresh_from_db()
    assert running.state == "deleted"


def test_deleted_names_can_be_reused(running, member, committed, launch):
    with committed():
        instance_delete(instance=running, user=member)
    with committed():
        again = launch(name=running.name)
    again.refresh_from_db()
    assert again.state == "running"


# --- refused transitions ------------------------------------------------------------------------------------------

ACTIONS = {
    "start": lambda instance, user: instance_start(instance=instance, user=user),
    "stop": lambda instance, user: instance_stop(instance=instance, user=user),
    "force_stop": lambda instance, user: instance_stop(instance=instance, user=user, force=True),
    "reboot": lambda instance, user: instance_reboot(instance=instance, user=user),
    "resize": lambda instance, user: instance_resize(
        instance=instance, user=user, flavor=FlavorFactory(name="s8.huge", vcpus=8, ram_mib=16384, disk_gib=160)
    ),
    "delete": lambda instance, user: instance_delete(instance=instance, user=user),
}

ALLOWED = {
    "start": {"stopped"},
    "stop": {"running"},
    "force_stop": {"running", "stopping"},
    "reboot": {"running"},
    "resize": {"stopped"},
    "delete": {"running", "stopped", "error"},
}

STATES = [
    "pending",
    "building",
    "running",
    "stopping",
    "stopped",
    "starting",
    "rebooting",
    "resizing",
    "deleting",
    "deleted",
    "error",
]

REFUSED = [(action, state) for action in ACTIONS for state in STATES if state not in ALLOWED[action]]


@pytest.mark.parametrize(("action", "state"), REFUSED, ids=[f"{a}-from-{s}" for a, s in REFUSED])
def test_refused_transitions(tenant, member, action, state, django_capture_on_commit_callbacks):
    instance = InstanceFactory(tenant=tenant, state=state, name="db-1")

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(Conflict) as caught:
        ACTIONS[action](instance, member)

    assert caught.value.code == "instance_busy"
    assert caught.value.details == {"state": state}
    assert "db-1" in caught.value.message
    if state != "deleted":
        assert instance.get_state_display().lower() in caught.value.message
    instance.refresh_from_db()
    assert instance.state == state  # nothing changed
    assert callbacks == []  # nothing enqueued
    refusal = InstanceEvent.objects.get(instance=instance)
    assert (refusal.result, refusal.actor) == ("refused", member)
    assert refusal.message == caught.value.message


def test_transitional_refusal_says_to_wait(tenant, member):
    instance = InstanceFactory(tenant=tenant, state="stopping", name="db-1")
    with pytest.raises(Conflict, match="db-1 is stopping; wait until that has finished, then start it"):
        instance_start(instance=instance, user=member)


def test_predicates_agree_with_the_table():
    for state in STATES:
        instance = Instance(state=state)
        assert instance.can_start() == (state in ALLOWED["start"])
        assert instance.can_stop() == (state in ALLOWED["stop"])
        assert instance.can_reboot() == (state in ALLOWED["reboot"])
        assert instance.can_resize() == (state in ALLOWED["resize"])
        assert instance.can_delete() == (state in ALLOWED["delete"])
        assert instance.is_transitional == (
            state in {"pending", "building", "starting", "stopping", "rebooting", "resizing", "deleting"}
        )


# --- resize rules -------------------------------------------------------------------------------------------------


@pytest.fixture
def stopped(running, member, committed):
    with committed():
        instance_stop(instance=running, user=member)
    running.refresh_from_db()
    return running


def test_resize_to_a_smaller_disk_is_refused(stopped, member):
    smaller = FlavorFactory(name="tiny", vcpus=1, ram_mib=1024, disk_gib=10)
    with pytest.raises(InvalidRequest) as caught:
        instance_resize(instance=stopped, user=member, flavor=smaller)
    assert caught.value.code == "disk_shrink"
    stopped.refresh_from_db()
    assert stopped.state == "stopped"


def test_resize_to_the_same_flavor_is_refused(stopped, member):
    with pytest.raises(InvalidRequest) as caught:
        instance_resize(instance=stopped, user=member, flavor=stopped.flavor)
    assert caught.value.code == "same_flavor"


def test_resize_to_an_inactive_flavor_is_refused(stopped, member):
    retired = FlavorFactory(name="retired", vcpus=4, ram_mib=8192, disk_gib=80, active=False)
    with pytest.raises(InvalidRequest) as caught:
        instance_resize(instance=stopped, user=member, flavor=retired)
    assert caught.value.code == "invalid_flavor"


def test_resize_beyond_the_quota_is_refused(stopped, member, tenant):
    tenant.quota.vcpus = 3
    tenant.quota.save()
    bigger = FlavorFactory(name="s4", vcpus=4, ram_mib=8192, disk_gib=80)
    with pytest.raises(Unprocessable) as caught:
        instance_resize(instance=stopped, user=member, flavor=bigger)
    assert caught.value.code == "quota_exceeded"
    assert caught.value.details == {"resource": "vcpus", "limit": 3, "in_use": 2, "requested": 2}
    stopped.refresh_from_db()
    assert stopped.state == "stopped" and stopped.resize_flavor is None


def test_resize_beyond_the_hosts_room_is_refused(stopped, member):
    host = stopped.host
    host.vcpus, host.cpu_allocation_ratio = 4, 1
    host.save()
    bigger = FlavorFactory(name="s8", vcpus=8, ram_mib=8192, disk_gib=80)
    with pytest.raises(Unprocessable) as caught:
        instance_resize(instance=stopped, user=member, flavor=bigger)
    assert caught.value.code == "no_capacity"


# --- rename and operator actions ------------------------------------------------------------------------------------


def test_rename(running, member):
    renamed = instance_rename(instance=running, user=member, name="api-1")
    assert renamed.name == "api-1"
    assert running.events.filter(action="rename", result="succeeded").get().message == "from web-1 to api-1"


@pytest.mark.parametrize("name", ["", "-bad", "bad-", "has space", "x" * 64, "ünïcode", "dots.not.allowed"])
def test_rename_refuses_bad_names(running, member, name):
    with pytest.raises(InvalidRequest) as caught:
        instance_rename(instance=running, user=member, name=name)
    assert caught.value.code == "invalid_name"


def test_rename_refuses_a_taken_name(running, member, tenant):
    InstanceFactory(tenant=tenant, name="API-1")
    with pytest.raises(InvalidRequest) as caught:
        instance_rename(instance=running, user=member, name="api-1")
    assert caught.value.code == "name_taken"


def test_mark_error_takes_an_instance_out_of_its_task(tenant, admin_user):
    instance = InstanceFactory(tenant=tenant, state="stopping", task="stop")
    instance_mark_error(instance=instance, user=admin_user, reason="stuck on the host")
    instance.refresh_from_db()
    assert (instance.state, instance.task, instance.error_reason) == ("error", "", "stuck on the host")
    assert _log(instance) == [("mark_error", "succeeded")]


def test_deleting_a_key_never_touches_an_instance(launch, committed, key, member):
    from compute.services import sshkey_delete

    with committed():
        instance = launch(keys=[key])
    snapshot = key.snapshot()
    sshkey_delete(key=key, user=member)
    instance.refresh_from_db()
    assert instance.ssh_keys == [snapshot]
    assert instance.state == "running"


# --- billing status -------------------------------------------------------------------------------------------------


def test_a_suspended_tenant_cannot_start_its_stopped_machines(stopped, member, tenant):
    tenant.status = "suspended"
    tenant.save()
    with pytest.raises(Unprocessable) as caught:
        instance_start(instance=stopped, user=member)
    assert caught.value.code == "tenant_suspended"
    stopped.refresh_from_db()
    assert stopped.state == "stopped"


def test_a_tenant_on_hold_may_start_but_not_resize(stopped, member, tenant, big_flavor, committed):
    tenant.status = "hold"
    tenant.save()
    with pytest.raises(Unprocessable) as caught:
        instance_resize(instance=stopped, user=member, flavor=big_flavor)
    assert caught.value.code == "tenant_on_hold"
    with committed():
        instance_start(instance=stopped, user=member)
    stopped.refresh_from_db()
    assert stopped.state == "running"
