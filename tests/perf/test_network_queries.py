"""Query-count guards for the Networking pages: the count must not grow with networks, addresses or firewalls."""

import pytest
from django.urls import reverse

from compute.models import InstanceState
from compute.network.models import Port, PublicIP, PublicIPPool, PublicIPState
from tests.factories.compute import InstanceFactory
from tests.factories.network import FirewallFactory, FirewallRuleFactory, NetworkFactory

# Session, user and memberships (middleware) are part of every count; the rest are the page's own reads.
PAGE_QUERIES = {
    "network:network-list": 7,  # networks with their machine counts, the regions to create one in, recent changes
    # addresses with machines, machines to assign to, the regions, price, quota (3), recent changes
    "network:ip-list": 11,
    "network:firewall-list": 7,  # firewalls with machine counts, their rules, recent changes
}
DETAIL_QUERIES = 6


@pytest.fixture
def member_client(member_client):
    member_client.get(reverse("home"))  # the first request stores the chosen tenant in the session
    return member_client


def _fill(tenant, count: int) -> dict:
    pool = PublicIPPool.objects.create(name="perf", cidr="203.0.113.0/24")
    network = NetworkFactory(tenant=tenant, name="perf", cidr="10.200.0.0/16")
    firewall = FirewallFactory(tenant=tenant, name="perf")
    for number in range(count):
        instance = InstanceFactory(
            tenant=tenant,
            name=f"node-{number:03d}",
            state=InstanceState.BUILDING if number % 3 == 0 else InstanceState.RUNNING,
        )
        Port.objects.create(
            tenant=tenant,
            network=network,
            instance=instance,
            address=f"10.200.0.{number + 2}",
            mac=f"52:54:00:00:00:{number:02x}",
        )
        firewall.instances.add(instance)
        FirewallRuleFactory(
            firewall=FirewallFactory(tenant=tenant, name=f"fw-{number}"), port_min=number + 1, port_max=number + 1
        )
        NetworkFactory(tenant=tenant, name=f"net-{number}", cidr=f"172.20.{number}.0/24")
        PublicIP.objects.create(
            tenant=tenant,
            pool=pool,
            address=f"203.0.113.{number + 2}",
            state=PublicIPState.ASSIGNED if number % 2 else PublicIPState.ALLOCATED,
            instance=instance if number % 2 else None,
        )
    return {"network": network, "firewall": firewall}


@pytest.mark.parametrize("count", [3, 30])
@pytest.mark.parametrize("page", sorted(PAGE_QUERIES))
def test_list_pages_do_not_grow_with_rows(member_client, tenant, page, count, django_assert_max_num_queries):
    _fill(tenant, count)
    with django_assert_max_num_queries(PAGE_QUERIES[page]):
        response = member_client.get(reverse(page))
    assert response.status_code == 200


@pytest.mark.parametrize("count", [3, 30])
def test_detail_pages_do_not_grow_with_machines(member_client, tenant, count, django_assert_max_num_queries):
    objects = _fill(tenant, count)
    for name, obj in (("network:network-detail", objects["network"]), ("network:firewall-detail", objects["firewall"])):
        with django_assert_max_num_queries(DETAIL_QUERIES):
            response = member_client.get(reverse(name, args=[obj.pk]))
        assert response.status_code == 200
