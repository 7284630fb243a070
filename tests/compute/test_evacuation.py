"""Host evacuation on the simulated driver: every machine moves to another host of the region through the services
(stop, move the disk, start), with events its organisation reads and billing untouched; what cannot move says why."""

import pytest

from billing.models import Segment
from compute.drivers import driver_for
from compute.drivers.base import PowerState
from compute.models import Instance, SimulatedDomain
from compute.scheduler import host_usage
from compute.services import (
    host_disable,
    host_drain,
    host_enable,
    host_evacuate,
    instance_launch,
    instance_migrate,
    instance_stop,
)
from compute.services.operations import instance_task_perform
from portal.errors import Conflict, Unprocessable
from tests.factories.compute import HostFactory, RegionFactory
from tests.factories.tenants import UserFactory


@pytest.fixture
def operator(db):
    return UserFactory(email="ops@example.com", is_staff=True)


@pytest.fixture
def spare(host):
    return HostFactory(name="hv-spare", vcpus=16, ram_mib=65536, disk_gib=1000)


def test_evacuating_moves_running_and_stopped_machines_and_keeps_billing(
    tenant, member, flavor, image, host, operator, committed
):
    with committed():
        web = instance_launch(tenant=tenant, user=member, name="web-1", flavor=flavor, image=image)
        db = instance_launch(tenant=tenant, user=member, name="db-1", flavor=flavor, image=image)
    with committed():
        instance_stop(instance=db, user=member)
    spare = HostFactory(name="hv-spare", vcpus=16, ram_mib=65536, disk_gib=1000)
    segments_before = list(Segment.objects.order_by("resource_name").values_list("resource_name", "started_at"))

    with committed():
        evacuation = host_evacuate(host=host, actor=operator)
        assert {i.state for i in evacuation.moving} == {"migrating"}

    web.refresh_from_db(), db.refresh_from_db(), host.refresh_from_db()
    assert (web.host, web.state, web.power_state) == (spare, "running", PowerState.RUNNING)
    assert (db.host, db.state, db.power_state) == (spare, "stopped", PowerState.SHUTOFF)
    assert web.migration_host is None and web.task == ""
    assert host.draining and not SimulatedDomain.objects.filter(host=host).exists()
    assert SimulatedDomain.objects.get(uuid=web.pk).power == PowerState.RUNNING
    assert evacuation.left == [] and "2 machines moving" in evacuation.summary()
    # The organisation reads what happened, and who asked for it.
    migrate_events = list(web.events.filter(action="migrate").order_by("created_at", "id"))
    assert [(e.result, e.actor) for e in migrate_events] == [("requested", operator), ("succeeded", None)]
    assert "shut down, moved and started again" in migrate_events[0].message
    assert (
        db.events.filter(action="migrate", result="succeeded").get().message == "Moved to another host; still stopped."
    )
    # Same size, same price: the open segments run on as they were.
    assert list(Segment.objects.order_by("resource_name").values_list("resource_name", "started_at")) == segments_before
    assert Segment.objects.filter(ended_at__isnull=True).count() == 2
    assert host_usage(host).instances == 0 and host_usage(spare).instances == 2


def test_what_cannot_move_stays_with_the_reason(tenant, member, flavor, image, host, operator, committed):
    with committed():
        web = instance_launch(tenant=tenant, user=member, name="web-1", flavor=flavor, image=image)
    busy = instance_stop(instance=web, user=member)  # still stopping: not committed, so the worker never ran
    assert busy.state == "stopping"

    evacuation = host_evacuate(host=host, actor=operator)

    assert evacuation.moving == []
    assert evacuation.left == [(web, "web-1 is stopping; wait until that has finished, then move it.")]


def test_no_other_host_with_room_refuses_the_move(tenant, member, flavor, image, host, operator, committed):
    with committed():
        web = instance_launch(tenant=tenant, user=member, name="web-1", flavor=flavor, image=image)
    HostFactory(name="hv-other-region", region=RegionFactory(name="north"))
    HostFactory(name="hv-tiny", vcpus=1, cpu_allocation_ratio=1)

    with pytest.raises(Unprocessable) as caught:
        instance_migrate(instance=web, user=operator)

    assert caught.value.code == "no_capacity"
    web.refresh_from_db()
    assert (web.state, web.host) == ("running", host)


def test_the_room_a_machine_moves_into_is_held_until_it_arrives(
    tenant, member, flavor, image, host, operator, committed
):
    with committed():
        web = instance_launch(tenant=tenant, user=member, name="web-1", flavor=flavor, image=image)
    spare = HostFactory(name="hv-spare", vcpus=2, cpu_allocation_ratio=1)

    moving = instance_migrate(instance=web, user=operator)  # not committed: the worker has not run

    assert moving.migration_host == spare
    assert host_usage(spare).vcpus_free == 0 and host_usage(host).vcpus_used == 2
    host_drain(host=host, actor=operator)
    with pytest.raises(Unprocessable):
        instance_launch(tenant=tenant, user=member, name="web-2", flavor=flavor, image=image)


def test_a_move_repeated_after_a_crash_ends_the_same(tenant, member, flavor, image, host, spare, operator, committed):
    with committed():
        web = instance_launch(tenant=tenant, user=member, name="web-1", flavor=flavor, image=image)
    source, target = web.host, spare if web.host == host else host
    instance_migrate(instance=web, user=operator)
    instance_task_perform(instance_id=str(web.pk), task="migrate")
    # A redelivery of the same message after the outcome was recorded finds nothing to do…
    instance_task_perform(instance_id=str(web.pk), task="migrate")
    web.refresh_from_db()
    assert (web.state, web.host) == ("running", target)
    # …and the driver's move itself is idempotent: asked again, it leaves the machine where it is.
    info = driver_for(source).migrate_to(str(web.pk), driver_for(target))
    assert info.state == PowerState.RUNNING
    assert SimulatedDomain.objects.get(uuid=web.pk).host == target
    assert web.events.filter(action="migrate", result="succeeded").count() == 1


def test_enable_disable_and_drain_refuse_no_op_changes(host, operator):
    host = host_drain(host=host, actor=operator)
    assert host.draining and not host.schedulable
    with pytest.raises(Conflict):
        host_drain(host=host, actor=operator)
    host = host_disable(host=host, actor=operator)
    host = host_enable(host=host, actor=operator)
    assert host.enabled and not host.draining
    with pytest.raises(Conflict) as caught:
        host_enable(host=host, actor=operator)
    assert caught.value.message == "hv-test already takes new machines."
    assert Instance.objects.count() == 0
