"""Quotas and host capacity under real concurrency: threads with their own PostgreSQL connections."""

from decimal import Decimal

import pytest

from compute.models import Instance
from compute.services import instance_launch
from tests.concurrency import race
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory
from tests.factories.tenants import MembershipFactory, TenantFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_ten_concurrent_launches_against_a_quota_of_three_make_exactly_three():
    tenant = TenantFactory()
    tenant.quota.instances = 3
    tenant.quota.save()
    user = MembershipFactory(tenant=tenant).user
    flavor, image = FlavorFactory(), ImageFactory()
    HostFactory(name="roomy", vcpus=256)

    results = race(
        10,
        lambda n: instance_launch(tenant=tenant, user=user, name=f"vm-{n}", flavor=flavor, image=image, keys=[]),
    )

    assert sorted(results) == ["ok"] * 3 + ["quota_exceeded"] * 7
    assert Instance.objects.filter(tenant=tenant).count() == 3


def test_ten_concurrent_launches_cannot_take_the_last_slots_twice():
    flavor, image = FlavorFactory(vcpus=2, ram_mib=2048, disk_gib=10), ImageFactory()
    HostFactory(name="tight", vcpus=6, ram_mib=65536, disk_gib=1000, cpu_allocation_ratio=Decimal(1))
    tenants = [TenantFactory() for _ in range(10)]  # separate tenants: no shared quota lock serialises them
    users = [MembershipFactory(tenant=tenant).user for tenant in tenants]

    results = race(
        10,
        lambda n: instance_launch(tenant=tenants[n], user=users[n], name="vm", flavor=flavor, image=image, keys=[]),
    )

    assert sorted(results) == ["no_capacity"] * 7 + ["ok"] * 3
    assert Instance.objects.count() == 3
