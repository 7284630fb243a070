"""Volume quotas, pool room and the 16-volume limit under real concurrency: threads with their own PostgreSQL
connections (tests/concurrency.py)."""

from collections import Counter

import pytest

from compute.storage import services
from compute.storage.models import Volume
from tests.concurrency import race
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, InstanceFactory
from tests.factories.storage import VolumeFactory
from tests.factories.tenants import MembershipFactory, TenantFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_worker(monkeypatch):
    """The requests are what races here; the enqueued work is left undone."""
    monkeypatch.setattr("compute.storage.services.common.dispatch", lambda *args: None)


def test_twenty_volumes_of_one_organisation_stop_at_its_gib_quota():
    HostFactory(disk_gib=100000)
    tenant = TenantFactory()
    tenant.quota.volume_gb, tenant.quota.volumes = 500, 100
    tenant.quota.save()
    user = MembershipFactory(tenant=tenant).user

    results = race(20, lambda n: services.volume_create(tenant=tenant, user=user, name=f"v{n}", size_gib=100))

    assert Counter(results) == {"ok": 5, "quota_exceeded": 15}
    assert sum(Volume.objects.filter(tenant=tenant).values_list("size_gib", flat=True)) == 500


def test_twenty_volumes_of_one_organisation_stop_at_its_count_quota():
    HostFactory(disk_gib=100000)
    tenant = TenantFactory()
    tenant.quota.volume_gb, tenant.quota.volumes = 10000, 3
    tenant.quota.save()
    user = MembershipFactory(tenant=tenant).user

    results = race(20, lambda n: services.volume_create(tenant=tenant, user=user, name=f"v{n}", size_gib=1))

    assert Counter(results) == {"ok": 3, "quota_exceeded": 17}


def test_volumes_of_many_organisations_never_overfill_a_pool():
    HostFactory(disk_gib=1000)  # nothing else on it: room for ten 100 GiB volumes
    tenants = [TenantFactory() for _ in range(15)]
    users = [MembershipFactory(tenant=tenant).user for tenant in tenants]

    results = race(15, lambda n: services.volume_create(tenant=tenants[n], user=users[n], name="v", size_gib=100))

    assert Counter(results) == {"ok": 10, "no_capacity": 5}


def test_attaching_twenty_volumes_at_once_stops_at_sixteen():
    host = HostFactory()
    tenant = TenantFactory()
    user = MembershipFactory(tenant=tenant).user
    machine = InstanceFactory(tenant=tenant, host=host, state="running", flavor=FlavorFactory(), image=ImageFactory())
    volumes = [VolumeFactory(tenant=tenant, host=host, region=host.region) for _ in range(20)]

    results = race(20, lambda n: services.volume_attach(volume=volumes[n], instance=machine, user=user))

    assert Counter(results) == {"ok": 16, "too_many_volumes": 4}
    devices = list(Volume.objects.filter(instance=machine).values_list("device", flat=True))
    assert len(devices) == len(set(devices)) == 16
