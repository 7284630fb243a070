"""Launch: input checks, quotas, the scheduler and capacity."""

from decimal import Decimal

import pytest

from compute.models import Instance, InstanceEvent
from compute.scheduler import host_usage
from compute.selectors import instance_list, quota_usage
from portal.errors import InvalidRequest, Unprocessable
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, InstanceFactory, SSHKeyFactory
from tests.factories.tenants import TenantFactory


def test_tenant_on_hold_cannot_launch(launch, tenant):
    tenant.status = "hold"
    tenant.save()
    with pytest.raises(Unprocessable) as caught:
        launch()
    assert caught.value.code == "tenant_on_hold"
    assert not Instance.objects.exists()


@pytest.mark.parametrize("name", ["", "  ", "-web", "web-", "web_1", "web 1", "x" * 64, "web.example.com"])
def test_bad_names_are_refused(launch, name):
    with pytest.raises(InvalidRequest) as caught:
        launch(name=name)
    assert caught.value.code == "invalid_name"
    assert caught.value.details == {"field": "name"}
    assert not Instance.objects.exists()


def test_a_63_character_name_is_fine(launch):
    assert launch(name="a" * 63).name == "a" * 63


def test_names_are_unique_among_live_instances(launch, committed):
    with committed():
        launch(name="web-1")
    with pytest.raises(InvalidRequest) as caught:
        launch(name="WEB-1")
    assert caught.value.code == "name_taken"


def test_another_tenant_may_use_the_same_name(launch, flavor, image, outsider):
    launch(name="web-1")
    other = outsider.memberships.get().tenant
    assert launch(tenant=other, user=outsider, name="web-1").tenant == other


def test_inactive_flavor_and_image_are_refused(launch):
    with pytest.raises(InvalidRequest) as caught:
        launch(flavor=FlavorFactory(name="old", active=False))
    assert caught.value.code == "invalid_flavor"
    with pytest.raises(InvalidRequest) as caught:
        launch(image=ImageFactory(name="old", active=False))
    assert caught.value.code == "invalid_image"


def test_an_image_bigger_than_the_flavor_is_refused(launch, flavor):
    huge = ImageFactory(name="Windows", min_disk_gib=flavor.disk_gib + 1)
    with pytest.raises(InvalidRequest) as caught:
        launch(image=huge)
    assert caught.value.code == "image_too_large"
    hungry = ImageFactory(name="Java", min_ram_mib=flavor.ram_mib * 2)
    with pytest.raises(InvalidRequest):
        launch(image=hungry)


def test_another_tenants_key_is_refused(launch):
    foreign = SSHKeyFactory(tenant=TenantFactory())
    with pytest.raises(InvalidRequest) as caught:
        launch(keys=[foreign])
    assert caught.value.code == "invalid_key"
    assert not Instance.objects.exists()


# --- quotas ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quota", "resource", "limit", "in_use", "requested"),
    [
        ({"instances": 1}, "instances", 1, 1, 1),
        ({"vcpus": 3}, "vcpus", 3, 2, 2),
        ({"ram_mib": 6000}, "ram_mib", 6000, 4096, 4096),
    ],
)
def test_quota_exceeded(launch, tenant, quota, resource, limit, in_use, requested):
    for field, value in quota.items():
        setattr(tenant.quota, field, value)
    tenant.quota.save()
    launch(name="first")

    with pytest.raises(Unprocessable) as caught:
        launch(name="second")

    assert caught.value.code == "quota_exceeded"
    assert caught.value.details == {"resource": resource, "limit": limit, "in_use": in_use, "requested": requested}
    assert Instance.objects.count() == 1


def _delete_finished(instance, user) -> None:
    """Built, then its deletion asked for and done on the host (what the workers do)."""
    from compute.services import instance_delete, operations

    operations.instance_task_perform(instance_id=str(instance.pk), task="build")
    instance_delete(instance=instance, user=user)
    operations.instance_task_perform(instance_id=str(instance.pk), task="delete")
    instance.refresh_from_db()
    assert instance.state == "deleted"


def test_deleted_instances_free_their_quota(launch, tenant, member):
    tenant.quota.instances = 1
    tenant.quota.save()
    first = launch(name="first")
    _delete_finished(first, member)
    assert launch(name="second").name == "second"


def test_failed_instances_still_hold_quota(launch, tenant):
    tenant.quota.instances = 1
    tenant.quota.save()
    first = launch(name="first")
    Instance.objects.filter(pk=first.pk).update(state="error")
    with pytest.raises(Unprocessable):
        launch(name="second")


def test_quota_usage(launch, tenant):
    launch(name="a")
    launch(name="b")
    usage = quota_usage(tenant=tenant)
    assert usage["instances"] == {"used": 2, "limit": 10, "free": 8, "percent": 20}
    assert usage["vcpus"] == {"used": 4, "limit": 32, "free": 28, "percent": 12}
    assert usage["ram_mib"]["used"] == 8192
    assert usage["volume_gb"]["used"] == 0 and usage["public_ips"]["used"] == 0


# --- scheduler and capacity -----------------------------------------------------------------------------------------


def test_no_capacity_is_refused_before_anything_is_created(tenant, member, image, announced):
    from compute.services import instance_launch

    HostFactory(name="small", vcpus=4, ram_mib=8192, disk_gib=100, cpu_allocation_ratio=Decimal(1))
    huge = FlavorFactory(name="m8", vcpus=8, ram_mib=32768, disk_gib=80)

    with pytest.raises(Unprocessable) as caught:
        instance_launch(tenant=tenant, user=member, name="big", flavor=huge, image=image, keys=[])

    assert caught.value.code == "no_capacity"
    assert caught.value.message == (
        "No host in Default region has room for a 8 vCPU / 32 GiB machine right now; "
        "try a smaller size, another region or later."
    )
    assert not Instance.objects.exists()
    assert not InstanceEvent.objects.exists()
    assert announced == []


def test_capacity_is_exhausted_then_refused(tenant, member, image):
    from compute.services import instance_launch

    HostFactory(name="only", vcpus=4, ram_mib=8192, disk_gib=1000, cpu_allocation_ratio=Decimal(1))
    flavor = FlavorFactory(name="s2", vcpus=2, ram_mib=4096, disk_gib=40)
    for n in range(2):
        instance_launch(tenant=tenant, user=member, name=f"vm-{n}", flavor=flavor, image=image, keys=[])
    with pytest.raises(Unprocessable) as caught:
        instance_launch(tenant=tenant, user=member, name="vm-3", flavor=flavor, image=image, keys=[])
    assert caught.value.code == "no_capacity"
    assert Instance.objects.count() == 2


def test_overcommit_ratios_count(tenant, member, image):
    from compute.services import instance_launch

    host = HostFactory(name="dense", vcpus=2, ram_mib=8192, disk_gib=1000, cpu_allocation_ratio=Decimal(4))
    flavor = FlavorFactory(name="s2", vcpus=2, ram_mib=1024, disk_gib=10)
    for n in range(4):  # 8 vCPUs on a 2-core host at 4:1
        instance_launch(tenant=tenant, user=member, name=f"vm-{n}", flavor=flavor, image=image, keys=[])
    usage = host_usage(host)
    assert (usage.vcpus_used, usage.vcpus_free) == (8, 0)
    with pytest.raises(Unprocessable):
        instance_launch(tenant=tenant, user=member, name="vm-5", flavor=flavor, image=image, keys=[])


def test_disabled_and_draining_hosts_get_nothing(tenant, member, image, flavor):
    from compute.services import instance_launch

    HostFactory(name="off", enabled=False)
    HostFactory(name="leaving", draining=True)
    with pytest.raises(Unprocessable) as caught:
        instance_launch(tenant=tenant, user=member, name="vm", flavor=flavor, image=image, keys=[])
    assert caught.value.code == "no_capacity"
    usable = HostFactory(name="on")
    assert instance_launch(tenant=tenant, user=member, name="vm", flavor=flavor, image=image, keys=[]).host == usable


def test_launches_spread_across_hosts(tenant, member, image, flavor):
    from compute.services import instance_launch

    a, b = HostFactory(name="a"), HostFactory(name="b")
    hosts = [
        instance_launch(tenant=tenant, user=member, name=f"vm-{n}", flavor=flavor, image=image, keys=[]).host
        for n in range(4)
    ]
    assert sorted(host.name for host in hosts) == ["a", "a", "b", "b"]
    assert {a, b} == set(hosts)


def test_deleted_instances_free_host_capacity(tenant, member, image):
    from compute.services import instance_launch

    HostFactory(name="only", vcpus=2, ram_mib=4096, disk_gib=100, cpu_allocation_ratio=Decimal(1))
    flavor = FlavorFactory(name="s2", vcpus=2, ram_mib=4096, disk_gib=40)
    first = instance_launch(tenant=tenant, user=member, name="a", flavor=flavor, image=image, keys=[])
    _delete_finished(first, member)
    instance_launch(tenant=tenant, user=member, name="b", flavor=flavor, image=image, keys=[])


def test_instance_list_hides_deleted_and_filters(tenant):
    InstanceFactory(tenant=tenant, name="web-1")
    InstanceFactory(tenant=tenant, name="db-1", state="stopped")
    InstanceFactory(tenant=tenant, name="old", state="deleted")
    InstanceFactory(tenant=TenantFactory(), name="theirs")
    assert {i.name for i in instance_list(tenant=tenant)} == {"web-1", "db-1"}
    assert [i.name for i in instance_list(tenant=tenant, state="stopped")] == ["db-1"]
    assert [i.name for i in instance_list(tenant=tenant, name="WEB")] == ["web-1"]


def test_ram_quota_refusals_speak_gib():
    from compute.rules import quota_refusal

    usage = {"ram_mib": {"used": 6656, "limit": 8192}}
    refusal = quota_refusal(usage=usage, requested={"ram_mib": 4096})
    assert refusal.message == "Needs 4 GiB of RAM; 1.5 GiB left in your quota."
    assert quota_refusal(usage={"ram_mib": {"used": 7680, "limit": 8192}}, requested={"ram_mib": 1024}).message == (
        "Needs 1 GiB of RAM; 0.5 GiB left in your quota."
    )
