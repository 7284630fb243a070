"""Public IPv4 addresses through the services: allocate, assign, move, unassign, release; quota and empty pools."""

import pytest

from compute.network.models import NetworkEvent, PublicIP, SimulatedNat
from compute.network.services import (
    public_ip_allocate,
    public_ip_assign,
    public_ip_release,
    public_ip_unassign,
)
from compute.services import instance_delete
from portal.errors import Conflict, Unprocessable
from tenants.models import Quota, Tenant
from tenants.services import tenant_hold

pytestmark = pytest.mark.django_db


def _nat(host) -> list[tuple[str, str]]:
    return list(SimulatedNat.objects.filter(host=host).values_list("public_ip", "private_ip"))


def test_allocation_takes_a_free_address_of_the_pool(pool, tenant, member):
    public_ip = public_ip_allocate(tenant=tenant, user=member)
    assert public_ip.state == "allocated" and public_ip.instance is None
    assert public_ip.address.startswith("203.0.113.")
    assert public_ip.address != "203.0.113.1"  # excluded: the provider's gateway
    assert NetworkEvent.objects.filter(tenant=tenant, action="ip_allocate", subject=public_ip.address).exists()


def test_assign_maps_the_address_onto_the_primary_private_address_on_the_host(
    pool, running, tenant, member, host, committed
):
    public_ip = public_ip_allocate(tenant=tenant, user=member)
    with committed():
        public_ip_assign(public_ip=public_ip, instance=running, user=member)
    public_ip.refresh_from_db()
    assert (public_ip.state, public_ip.instance) == ("assigned", running)
    assert _nat(host) == [(public_ip.address, running.private_ip)]


def test_moving_to_another_machine_remaps_it_and_unassigning_removes_the_mapping(
    pool, running, launch, tenant, member, host, committed
):
    with committed():
        other = launch(name="web-2")
        public_ip = public_ip_allocate(tenant=tenant, user=member, instance=running)
    assert _nat(host) == [(public_ip.address, running.private_ip)]
    other.refresh_from_db()
    with committed():
        public_ip_assign(public_ip=public_ip, instance=other, user=member)
    assert _nat(host) == [(public_ip.address, other.private_ip)]
    event = NetworkEvent.objects.filter(action="ip_assign").order_by("-id").first()
    assert event.message == f"to {other.name} (moved from {running.name})"
    with committed():
        public_ip_unassign(public_ip=public_ip, user=member)
    assert _nat(host) == []
    public_ip.refresh_from_db()
    assert public_ip.state == "allocated"


def test_a_machine_has_one_public_address(pool, running, tenant, member):
    public_ip_allocate(tenant=tenant, user=member, instance=running)
    second = public_ip_allocate(tenant=tenant, user=member)
    with pytest.raises(Conflict) as refused:
        public_ip_assign(public_ip=second, instance=running, user=member)
    assert refused.value.code == "instance_has_public_ip"


def test_release_frees_the_address_for_anyone(small_pool, running, tenant, member, host, committed):
    with committed():
        public_ip = public_ip_allocate(tenant=tenant, user=member, instance=running)
    with committed():
        public_ip_release(public_ip=public_ip, user=member)
    public_ip.refresh_from_db()
    assert public_ip.state == "released" and public_ip.instance is None and public_ip.released_at
    assert _nat(host) == []
    with pytest.raises(Conflict):
        public_ip_assign(public_ip=public_ip, instance=running, user=member)
    others = Tenant.objects.create(name="Others")
    taken = {public_ip_allocate(tenant=others, user=None).address for _ in range(3)}
    assert public_ip.address in taken  # three addresses in the pool: the released one is among them again


def test_an_empty_pool_is_a_clear_error(small_pool, tenant, member):
    for _ in range(3):
        public_ip_allocate(tenant=tenant, user=member)
    with pytest.raises(Unprocessable) as refused:
        public_ip_allocate(tenant=tenant, user=member)
    assert refused.value.code == "pool_exhausted"
    assert refused.value.message == "No public IPv4 address is free right now; try again later or contact support."


def test_no_pool_at_all_is_the_same_clear_error(tenant, member):
    with pytest.raises(Unprocessable) as refused:
        public_ip_allocate(tenant=tenant, user=member)
    assert refused.value.code == "pool_exhausted"


def test_the_public_ips_quota_is_enforced(pool, tenant, member):
    Quota.objects.filter(tenant=tenant).update(public_ips=2)
    public_ip_allocate(tenant=tenant, user=member)
    released = public_ip_allocate(tenant=tenant, user=member)
    with pytest.raises(Unprocessable) as refused:
        public_ip_allocate(tenant=tenant, user=member)
    assert refused.value.code == "quota_exceeded"
    assert refused.value.message == "Your quota of 2 public IPv4 addresses is used up."
    public_ip_release(public_ip=released, user=member)
    public_ip_allocate(tenant=tenant, user=member)  # a released address no longer counts


def test_launch_with_a_public_address_counts_against_the_quota_before_anything_is_made(pool, launch, tenant):
    Quota.objects.filter(tenant=tenant).update(public_ips=0)
    with pytest.raises(Unprocessable) as refused:
        launch(public_ip=True)
    assert refused.value.code == "quota_exceeded"
    assert not tenant_instances(tenant)


def tenant_instances(tenant):
    from compute.models import Instance

    return list(Instance.objects.for_tenant(tenant))


def test_launch_with_a_public_address_gets_one_mapped_at_once(pool, launch, committed, host):
    with committed():
        instance = launch(public_ip=True)
    instance.refresh_from_db()
    public_ip = PublicIP.objects.get(instance=instance)
    assert public_ip.state == "assigned"
    assert _nat(host) == [(public_ip.address, instance.private_ip)]


def test_launch_refused_by_an_empty_pool_leaves_nothing_behind(small_pool, launch, tenant, member):
    Quota.objects.filter(tenant=tenant).update(public_ips=10)
    for _ in range(3):
        public_ip_allocate(tenant=tenant, user=member)
    with pytest.raises(Unprocessable) as refused:
        launch(public_ip=True)
    assert refused.value.code == "pool_exhausted"
    assert not tenant_instances(tenant)


def test_deleting_the_machine_keeps_its_address_allocated_and_unmapped(pool, running, tenant, member, host, committed):
    with committed():
        public_ip = public_ip_allocate(tenant=tenant, user=member, instance=running)
    with committed():
        instance_delete(instance=running, user=member)
    public_ip.refresh_from_db()
    assert (public_ip.state, public_ip.instance) == ("allocated", None)
    assert _nat(host) == []


def test_a_tenant_on_hold_cannot_allocate(pool, tenant, member):
    tenant_hold(tenant=tenant, reason="credit", note="over the limit")
    with pytest.raises(Unprocessable) as refused:
        public_ip_allocate(tenant=tenant, user=member)
    assert refused.value.code == "tenant_on_hold"


def test_what_people_do_reaches_the_organisations_activity_log(pool, tenant, member):
    from tenants.models import ActivityEntry

    public_ip = public_ip_allocate(tenant=tenant, user=member)
    entry = ActivityEntry.objects.get(tenant=tenant, resource_type="public_ip")
    assert (entry.action, entry.resource_id, entry.resource_name) == (
        "ip_allocate",
        str(public_ip.pk),
        public_ip.address,
    )
    assert entry.actor == member
