"""Public address allocation under real concurrency: threads with their own PostgreSQL connections."""

from collections import Counter

import pytest

from compute.network.models import PublicIP, PublicIPPool
from compute.network.services import public_ip_allocate
from tests.concurrency import race
from tests.factories.tenants import MembershipFactory, TenantFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_fifty_requests_for_ten_addresses_grant_exactly_ten_and_none_twice():
    PublicIPPool.objects.create(name="ten", cidr="203.0.113.0/28", excluded="203.0.113.1-203.0.113.4")
    # Fifty organisations: no quota lock serialises them, only the unique constraint keeps the addresses apart.
    tenants = [TenantFactory() for _ in range(50)]
    users = [MembershipFactory(tenant=tenant).user for tenant in tenants]

    results = race(50, lambda n: public_ip_allocate(tenant=tenants[n], user=users[n]))

    assert Counter(results) == {"ok": 10, "pool_exhausted": 40}
    addresses = list(PublicIP.objects.held().values_list("address", flat=True))
    assert len(addresses) == len(set(addresses)) == 10
    assert sorted(addresses, key=lambda a: int(a.rsplit(".", 1)[1])) == [f"203.0.113.{n}" for n in range(5, 15)]


def test_twenty_requests_of_one_organisation_stop_at_its_quota():
    PublicIPPool.objects.create(name="big", cidr="203.0.113.0/24")
    tenant = TenantFactory()
    tenant.quota.public_ips = 5
    tenant.quota.save()
    user = MembershipFactory(tenant=tenant).user

    results = race(20, lambda n: public_ip_allocate(tenant=tenant, user=user))

    assert Counter(results) == {"ok": 5, "quota_exceeded": 15}
    assert PublicIP.objects.filter(tenant=tenant).held().count() == 5
