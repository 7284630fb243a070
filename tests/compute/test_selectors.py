"""Reads the dashboard, the API and the admin rely on."""

from compute.drivers.base import DomainInfo, PowerState
from compute.models import InstanceState
from compute.selectors import (
    flavor_list,
    host_capacity_list,
    image_list,
    instance_counts,
    instance_events,
    instance_get,
    instance_list_version,
    quota_usage,
    tenant_has_transitional,
)
from compute.services import instance_build_succeeded, instance_rename, instance_stop
from tests.factories.compute import (
    FlavorFactory,
    HostFactory,
    ImageFactory,
    InstanceEventFactory,
    InstanceFactory,
)
from tests.factories.tenants import TenantFactory


def test_instance_get_is_scoped_to_the_tenant_and_sees_deleted_ones(tenant):
    mine = InstanceFactory(tenant=tenant, state="deleted")
    theirs = InstanceFactory(tenant=TenantFactory())
    assert instance_get(tenant=tenant, pk=mine.pk) == mine
    assert instance_get(tenant=tenant, pk=theirs.pk) is None


def test_instance_events_newest_first(tenant):
    instance = InstanceFactory(tenant=tenant)
    first = InstanceEventFactory(instance=instance, tenant=tenant, action="launch")
    second = InstanceEventFactory(instance=instance, tenant=tenant, action="build", result="succeeded")
    assert list(instance_events(instance=instance)) == [second, first]


def test_counts_and_transitional(tenant):
    InstanceFactory(tenant=tenant, state="running")
    InstanceFactory(tenant=tenant, state="stopped")
    InstanceFactory(tenant=tenant, state="deleted")
    assert instance_counts(tenant=tenant) == {"total": 2, "running": 1, "transitional": 0}
    assert tenant_has_transitional(tenant=tenant) is False
    InstanceFactory(tenant=tenant, state="building")
    assert tenant_has_transitional(tenant=tenant) is True


def test_a_pending_resize_holds_the_bigger_size(tenant):
    small = FlavorFactory(name="small", vcpus=2, ram_mib=2048)
    big = FlavorFactory(name="big", vcpus=8, ram_mib=16384)
    InstanceFactory(tenant=tenant, flavor=small, resize_flavor=big, state="resizing")
    usage = quota_usage(tenant=tenant)
    assert (usage["vcpus"]["used"], usage["ram_mib"]["used"]) == (8, 16384)


def test_catalog_lists_only_active_entries_in_order(db):
    large = FlavorFactory(name="large", vcpus=4)
    small = FlavorFactory(name="small", vcpus=1)
    FlavorFactory(name="retired", active=False)
    ubuntu = ImageFactory(name="Ubuntu 24.04", os="Ubuntu", version="24.04")
    debian = ImageFactory(name="Debian 12", os="Debian", version="12")
    ImageFactory(name="Old", active=False)
    assert list(flavor_list()) == [small, large]
    assert list(image_list()) == [debian, ubuntu]


def test_host_capacity_list(tenant, django_assert_max_num_queries):
    a, b = HostFactory(name="a", vcpus=4, cpu_allocation_ratio=2), HostFactory(name="b")
    for _ in range(3):
        InstanceFactory(tenant=tenant, host=a, flavor=FlavorFactory(name="two", vcpus=2))
    with django_assert_max_num_queries(2):
        usages = host_capacity_list()
    assert [(u.host, u.vcpus_used, u.vcpus_free, u.instances) for u in usages] == [(a, 6, 2, 3), (b, 0, 128, 0)]


def test_the_list_token_changes_with_every_change_of_a_machine_and_only_then(tenant, owner):
    """What an open dashboard list polls for: a launch, an outcome, a request, a rename each change it; another
    organisation's changes and nothing at all do not."""
    building = InstanceFactory(tenant=tenant, name="alpha", state=InstanceState.BUILDING, task="build")
    tokens = [instance_list_version(tenant=tenant)]
    assert instance_list_version(tenant=tenant) == tokens[-1]
    InstanceFactory(tenant=TenantFactory(), name="theirs")
    assert instance_list_version(tenant=tenant) == tokens[-1]

    instance_build_succeeded(
        instance_id=str(building.pk), info=DomainInfo(uuid=str(building.pk), state=PowerState.RUNNING)
    )
    tokens.append(instance_list_version(tenant=tenant))
    building.refresh_from_db()
    instance_stop(instance=building, user=owner)
    tokens.append(instance_list_version(tenant=tenant))
    instance_rename(instance=building, user=owner, name="beta")
    tokens.append(instance_list_version(tenant=tenant))
    InstanceFactory(tenant=tenant, name="gamma")
    tokens.append(instance_list_version(tenant=tenant))
    assert len(set(tokens)) == len(tokens)
