"""The scheduler claims only the host it picks; the simulated driver never locks the host row again.

The lock tests hold a host's row as a launch in progress holds it (its claim: an UPDATE of the row, which takes
FOR NO KEY UPDATE) from another PostgreSQL connection, and give the code under test a short lock_timeout: code that
waits for that row fails with a lock timeout instead of proceeding.
"""

import threading
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from compute import scheduler
from compute.drivers.simulated import SimulatedDriver
from compute.models import Host, Instance
from compute.services import instance_launch
from portal.errors import Unprocessable
from tests.compute.test_simulated_driver import SPEC
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, InstanceFactory


@contextmanager
def host_claimed_elsewhere(host: Host):
    """Holds the host's row as another launch's claim does, in another connection, until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Host.objects.select_for_update(no_key=True).get(pk=host.pk)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()


@contextmanager
def lock_timeout():
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '1s'")
        yield


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_launch_does_not_wait_for_hosts_it_does_not_pick(tenant, member):
    flavor, image = FlavorFactory(vcpus=2), ImageFactory()
    HostFactory(name="free")
    full = HostFactory(name="full", vcpus=1, cpu_allocation_ratio=Decimal(1))
    with host_claimed_elsewhere(full), lock_timeout():
        instance = instance_launch(tenant=tenant, user=member, name="vm", flavor=flavor, image=image, keys=[])
    assert instance.host.name == "free"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_simulated_driver_builds_while_a_launch_holds_the_host(db):
    host = HostFactory(name="busy")
    with host_claimed_elsewhere(host), lock_timeout():
        info = SimulatedDriver(host).create(SPEC)
    assert info.state == "running"


def test_a_launch_that_lost_its_host_to_another_claim_reads_again(tenant, member, monkeypatch):
    """Between the scheduler's reading and its claim another launch fills the host: it picks the other one."""
    flavor, image = FlavorFactory(vcpus=2, ram_mib=1024, disk_gib=10), ImageFactory()
    roomy = HostFactory(name="a-roomy", vcpus=4, cpu_allocation_ratio=Decimal(1))
    HostFactory(name="b-tight", vcpus=2, cpu_allocation_ratio=Decimal(1))
    claims = []
    real_claim = scheduler._claim

    def a_rival_claims_first(host, **kwargs):
        claims.append(host.name)
        if len(claims) == 1:  # after our reading, a rival launch claims the roomy host and fills it
            InstanceFactory(host=roomy, flavor=FlavorFactory(name="rival", vcpus=4))
            Host.objects.filter(pk=roomy.pk).update(claim_version=roomy.claim_version + 1)
        return real_claim(host, **kwargs)

    monkeypatch.setattr(scheduler, "_claim", a_rival_claims_first)
    instance = instance_launch(tenant=tenant, user=member, name="vm", flavor=flavor, image=image, keys=[])
    assert claims == ["a-roomy", "b-tight"] and instance.host.name == "b-tight"
    with pytest.raises(Unprocessable) as caught:
        instance_launch(tenant=tenant, user=member, name="vm-2", flavor=flavor, image=image, keys=[])
    assert caught.value.code == "no_capacity"
    assert Instance.objects.filter(host__name="b-tight").count() == 1
