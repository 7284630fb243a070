"""Every volume transition through the services and the (eager) worker tasks, and every refusal."""

import pytest

from compute.drivers import driver_for
from compute.models import SimulatedDomain
from compute.services import instance_delete, instance_stop
from compute.storage import services
from compute.storage.models import StorageEvent, Volume
from portal.errors import Conflict, InvalidRequest, Unprocessable
from tenants.models import ActivityEntry
from tests.factories.compute import HostFactory, InstanceFactory
from tests.factories.tenants import TenantFactory


def _log(volume) -> list[tuple[str, str]]:
    return list(volume.events.order_by("created_at", "id").values_list("action", "result"))


def _attachments(instance) -> dict[str, str]:
    return driver_for(instance.host).volume_attachments(str(instance.pk))


def test_create_makes_the_volume_in_the_hosts_pool(make_volume, host, member):
    volume = make_volume(name="data-1", size_gib=100)
    assert volume.state == "available" and volume.host == host and volume.created_by == member
    assert driver_for(host).volume_size_gib(volume.driver_name) == 100
    assert _log(volume) == [("volume_create", "requested"), ("volume_create", "succeeded")]
    entry = ActivityEntry.objects.get(resource_type="volume")
    assert entry.resource_name == "data-1" and entry.actor == member


@pytest.mark.parametrize("size", [0, 16385, -1, "ten", True])
def test_create_refuses_sizes_out_of_range(tenant, member, host, size):
    with pytest.raises(InvalidRequest) as refused:
        services.volume_create(tenant=tenant, user=member, name="x", size_gib=size)
    assert refused.value.details == {"field": "size_gib"}
    assert not Volume.objects.exists()


def test_create_accepts_the_largest_size(tenant, member, committed):
    tenant.quota.volume_gb = 20000
    tenant.quota.save()
    HostFactory(name="big", disk_gib=20000)
    with committed():
        volume = services.volume_create(tenant=tenant, user=member, name="huge", size_gib=16384)
    volume.refresh_from_db()
    assert volume.state == "available" and volume.size_gib == 16384


def test_names_are_unique_per_tenant_among_live_volumes(make_volume, tenant, member):
    make_volume(name="data")
    with pytest.raises(InvalidRequest, match="already have a volume called DATA"):
        services.volume_create(tenant=tenant, user=member, name="DATA", size_gib=1)


def test_quota_counts_gib_and_volumes(make_volume, tenant, member):
    tenant.quota.volume_gb, tenant.quota.volumes = 150, 2
    tenant.quota.save()
    make_volume(name="a", size_gib=100)
    with pytest.raises(Unprocessable, match="Needs 60 GiB of volume storage; 50 GiB left") as refused:
        services.volume_create(tenant=tenant, user=member, name="b", size_gib=60)
    assert refused.value.details["resource"] == "volume_gb"
    make_volume(name="b", size_gib=50)
    with pytest.raises(Unprocessable, match="quota of 2 volumes is used up"):
        services.volume_create(tenant=tenant, user=member, name="c", size_gib=1)


def test_no_pool_with_room_refuses_before_anything_is_made(tenant, member, host):
    tenant.quota.volume_gb = 5000
    tenant.quota.save()
    with pytest.raises(Unprocessable, match="has room for 1010 GiB of storage") as refused:
        services.volume_create(tenant=tenant, user=member, name="x", size_gib=990 + 20)
    assert refused.value.code == "no_capacity"


def test_attach_hot_plugs_into_the_running_machine(volume, running, member, committed):
    with committed():
        attaching = services.volume_attach(volume=volume, instance=running, user=member)
        assert attaching.state == "attaching" and attaching.device == "vdb"
    volume.refresh_from_db()
    assert volume.state == "in-use" and volume.instance == running
    assert _attachments(running) == {"vdb": volume.driver_name}
    assert list(running.volumes.all()) == [volume]


def test_attach_to_another_tenants_machine_is_refused(volume, member, flavor, image, host):
    stranger = InstanceFactory(tenant=TenantFactory(), flavor=flavor, image=image, host=host, state="running")
    with pytest.raises(InvalidRequest, match="not one of yours"):
        services.volume_attach(volume=volume, instance=stranger, user=member)
    volume.refresh_from_db()
    assert volume.state == "available"


def test_one_machine_at_a_time(attached, launch, committed, member):
    with committed():
        other = launch(name="web-2")
    other.refresh_from_db()
    with pytest.raises(Conflict, match="data-1 is in use; only an available volume can be attached"):
        services.volume_attach(volume=attached, instance=other, user=member)
    assert _log(attached)[-1] == ("volume_attach", "refused")


def test_a_machine_holds_at_most_16_volumes(running, make_volume, tenant, member, committed):
    tenant.quota.volumes = 20
    tenant.quota.save()
    for number in range(16):
        volume = make_volume(name=f"v{number}", size_gib=1)
        with committed():
            services.volume_attach(volume=volume, instance=running, user=member)
    assert sorted(_attachments(running)) == [f"vd{letter}" for letter in "bcdefghijklmnopq"]
    extra = make_volume(name="v16", size_gib=1)
    with pytest.raises(Unprocessable, match="already has 16 volumes") as refused:
        services.volume_attach(volume=extra, instance=running, user=member)
    assert refused.value.code == "too_many_volumes"


def test_attach_to_a_machine_on_another_host_moves_the_volume_there(volume, launch, committed, member, host):
    host.enabled = False
    host.save()
    other = HostFactory(name="hv-2", boot_seconds=0, stop_seconds=0)
    with committed():
        elsewhere = launch(name="far")
    elsewhere.refresh_from_db()
    assert elsewhere.host == other
    with committed():
        services.volume_attach(volume=volume, instance=elsewhere, user=member)
    volume.refresh_from_db()
    assert volume.state == "in-use" and volume.host == other and "move_from" not in volume.task_params
    assert driver_for(other).volume_attachments(str(elsewhere.pk)) == {"vdb": volume.driver_name}
    assert driver_for(host).volumes_in_pool() == []


def test_attach_to_a_machine_of_another_region_is_refused(volume, member, flavor, image, tenant):
    from tests.factories.compute import RegionFactory

    far = HostFactory(name="hv-far", region=RegionFactory(name="north"))
    machine = InstanceFactory(tenant=tenant, flavor=flavor, image=image, host=far, state="running")
    with pytest.raises(Unprocessable, match="in another region"):
        services.volume_attach(volume=volume, instance=machine, user=member)


def test_detach_keeps_the_data_and_frees_the_device(attached, member, committed):
    machine = attached.instance
    with committed():
        assert services.volume_detach(volume=attached, user=member).state == "detaching"
    attached.refresh_from_db()
    assert attached.state == "available" and attached.instance is None and attached.device == ""
    assert _attachments(machine) == {}
    assert driver_for(machine.host).volume_exists(attached.driver_name)


def test_extend_grows_online_and_refuses_shrinking(attached, member, committed):
    with pytest.raises(InvalidRequest, match="Volumes only grow: data-1 has 100 GiB") as refused:
        services.volume_extend(volume=attached, user=member, size_gib=50)
    assert refused.value.code == "volume_shrink"
    with committed():
        assert services.volume_extend(volume=attached, user=member, size_gib=250).state == "extending"
    attached.refresh_from_db()
    assert attached.state == "in-use" and attached.size_gib == 250
    assert driver_for(attached.host).volume_size_gib(attached.driver_name) == 250


def test_extend_counts_the_growth_against_the_quota(volume, tenant, member):
    tenant.quota.volume_gb = 150
    tenant.quota.save()
    with pytest.raises(Unprocessable, match="Needs 60 GiB"):
        services.volume_extend(volume=volume, user=member, size_gib=160)
    volume.refresh_from_db()
    assert volume.size_gib == 100 and volume.state == "available"


def test_delete_is_refused_while_attached_naming_the_machine(attached, member):
    with pytest.raises(Conflict, match="data-1 is attached to web-1; detach it first") as refused:
        services.volume_delete(volume=attached, user=member)
    assert refused.value.code == "volume_attached"
    assert _log(attached)[-1] == ("volume_delete", "refused")


def test_delete_removes_the_data(volume, member, committed, host):
    with committed():
        assert services.volume_delete(volume=volume, user=member).state == "deleting"
    volume.refresh_from_db()
    assert volume.state == "deleted" and volume.deleted_at is not None
    assert driver_for(host).volumes_in_pool() == []


def test_deleting_the_machine_detaches_and_keeps_its_volumes(attached, member, committed, host):
    machine = attached.instance
    with committed():
        instance_delete(instance=machine, user=member)
    attached.refresh_from_db()
    machine.refresh_from_db()
    assert machine.state == "deleted"
    assert attached.state == "available" and attached.instance is None
    assert driver_for(host).volume_exists(attached.driver_name)
    assert not SimulatedDomain.objects.filter(uuid=machine.pk).exists()


def test_attach_to_a_stopped_machine_and_it_is_still_there_after_a_start(volume, running, member, committed):
    with committed():
        instance_stop(instance=running, user=member)
    running.refresh_from_db()
    with committed():
        services.volume_attach(volume=volume, instance=running, user=member)
    volume.refresh_from_db()
    assert volume.state == "in-use" and _attachments(running) == {"vdb": volume.driver_name}


def test_a_failed_attach_puts_the_volume_back(volume, running, member, committed):
    SimulatedDomain.objects.filter(uuid=running.pk).delete()  # the machine vanished behind Hangar's back
    with committed():
        services.volume_attach(volume=volume, instance=running, user=member)
    volume.refresh_from_db()
    assert volume.state == "available" and volume.instance is None
    assert "gone from its host" in volume.error_reason
    assert _log(volume)[-1] == ("volume_attach", "failed")


def test_a_duplicate_delivery_records_nothing_twice(volume, member, committed):
    with committed():
        services.volume_delete(volume=volume, user=member)
    services.storage_task_perform(kind="volume", pk=str(volume.pk), task="delete")
    assert StorageEvent.objects.filter(volume=volume, action="volume_delete", result="succeeded").count() == 1


def test_tenant_on_hold_cannot_add_storage(tenant, member, host):
    tenant.status = "on_hold"
    tenant.save()
    with pytest.raises(Unprocessable, match="no storage can be added"):
        services.volume_create(tenant=tenant, user=member, name="x", size_gib=1)
