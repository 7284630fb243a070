"""The simulated hypervisor: idempotent on the uuid, boot/stop times, failure injection, capacity, addresses."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from compute.drivers import driver_for
from compute.drivers.base import (
    DomainNotFound,
    DomainSpec,
    ImageSource,
    PermanentDriverError,
    PowerState,
    TransientDriverError,
)
from compute.drivers.simulated import SimulatedDriver
from compute.models import SimulatedDomain
from tests.factories.compute import HostFactory

SPEC = DomainSpec(
    uuid="6f1c9a58-8a3e-4d47-9f0e-2d6c1b5a7e01",
    name="web-1",
    vcpus=2,
    ram_mib=2048,
    disk_gib=20,
    image=ImageSource(disk_path="/images/debian-12.raw"),
)


@pytest.fixture
def clock(monkeypatch):
    """A controllable timezone.now()."""
    state = {"now": timezone.now()}
    monkeypatch.setattr(timezone, "now", lambda: state["now"])

    def advance(seconds: float) -> None:
        state["now"] += timedelta(seconds=seconds)

    return advance


def test_driver_for_picks_the_simulated_driver(host):
    assert isinstance(driver_for(host), SimulatedDriver)


def test_create_is_idempotent_on_the_uuid(host):
    driver = SimulatedDriver(host)
    first = driver.create(SPEC)
    second = driver.create(SPEC)
    assert first == second
    assert SimulatedDomain.objects.count() == 1
    assert first.state == PowerState.RUNNING  # boot_seconds = 0


def test_a_uuid_on_another_host_is_refused(host):
    SimulatedDriver(host).create(SPEC)
    with pytest.raises(PermanentDriverError, match="another host"):
        SimulatedDriver(HostFactory(name="other")).create(SPEC)


def test_booting_takes_boot_seconds(host, clock):
    host.boot_seconds = 5
    host.save()
    driver = SimulatedDriver(host)

    assert driver.create(SPEC).state == PowerState.BOOTING
    clock(4)
    assert driver.state(SPEC.uuid).state == PowerState.BOOTING
    clock(2)
    assert driver.state(SPEC.uuid).state == PowerState.RUNNING
    assert SimulatedDomain.objects.get().power == PowerState.RUNNING  # settled for every process


def test_graceful_stop_takes_stop_seconds_and_force_is_immediate(host, clock):
    host.stop_seconds = 3
    host.save()
    driver = SimulatedDriver(host)
    driver.create(SPEC)

    assert driver.stop(SPEC.uuid).state == PowerState.STOPPING
    assert driver.stop(SPEC.uuid).state == PowerState.STOPPING  # asking again changes nothing
    with pytest.raises(TransientDriverError):
        driver.start(SPEC.uuid)
    assert driver.stop(SPEC.uuid, force=True).state == PowerState.SHUTOFF
    assert driver.stop(SPEC.uuid).state == PowerState.SHUTOFF
    assert driver.start(SPEC.uuid).state == PowerState.RUNNING
    assert driver.start(SPEC.uuid).state == PowerState.RUNNING


def test_reboot(host, clock):
    host.boot_seconds = 2
    host.save()
    driver = SimulatedDriver(host)
    driver.create(SPEC)
    clock(3)
    assert driver.reboot(SPEC.uuid).state == PowerState.BOOTING
    clock(3)
    assert driver.state(SPEC.uuid).state == PowerState.RUNNING


def test_resize_needs_a_stopped_domain_and_never_shrinks_the_disk(host):
    driver = SimulatedDriver(host)
    driver.create(SPEC)
    with pytest.raises(PermanentDriverError, match="shut off"):
        driver.resize(SPEC.uuid, vcpus=4, ram_mib=4096, disk_gib=40)
    driver.stop(SPEC.uuid, force=True)
    with pytest.raises(PermanentDriverError, match="cannot shrink"):
        driver.resize(SPEC.uuid, vcpus=4, ram_mib=4096, disk_gib=10)
    driver.resize(SPEC.uuid, vcpus=4, ram_mib=4096, disk_gib=40)
    domain = SimulatedDomain.objects.get()
    assert (domain.vcpus, domain.ram_mib, domain.disk_gib) == (4, 4096, 40)


def test_destroy_is_idempotent_and_state_of_a_missing_domain_raises(host):
    driver = SimulatedDriver(host)
    driver.create(SPEC)
    driver.destroy(SPEC.uuid)
    driver.destroy(SPEC.uuid)
    with pytest.raises(DomainNotFound):
        driver.state(SPEC.uuid)
    with pytest.raises(DomainNotFound):
        driver.start(SPEC.uuid)


@pytest.mark.parametrize(("kind", "error"), [("transient", TransientDriverError), ("permanent", PermanentDriverError)])
def test_failure_injection_fails_the_next_n_creates(host, kind, error):
    host.fail_next_creates, host.failure_kind = 2, kind
    host.save()
    driver = SimulatedDriver(host)
    for _ in range(2):
        with pytest.raises(error):
            driver.create(SPEC)
    assert not SimulatedDomain.objects.exists()
    assert driver.create(SPEC).state == PowerState.RUNNING
    host.refresh_from_db()
    assert host.fail_next_creates == 0


def test_capacity_is_accounted_for_real(db):
    host = HostFactory(name="tiny", vcpus=4, ram_mib=4096, disk_gib=100, cpu_allocation_ratio=Decimal(1))
    driver = SimulatedDriver(host)
    driver.create(replace(SPEC, uuid="00000000-0000-0000-0000-000000000001"))
    driver.create(replace(SPEC, uuid="00000000-0000-0000-0000-000000000002"))
    with pytest.raises(PermanentDriverError, match="cannot hold it"):
        driver.create(replace(SPEC, uuid="00000000-0000-0000-0000-000000000003"))
    assert driver.host_capacity().vcpus == 4


def test_a_resize_counts_the_other_domains_but_not_the_one_resized(db):
    host = HostFactory(name="tiny", vcpus=4, ram_mib=8192, disk_gib=100, cpu_allocation_ratio=Decimal(1))
    driver = SimulatedDriver(host)
    resized, other = (replace(SPEC, uuid=f"00000000-0000-0000-0000-00000000000{n}", vcpus=1) for n in (1, 2))
    driver.create(resized)
    driver.create(other)
    driver.stop(resized.uuid, force=True)

    driver.resize(resized.uuid, vcpus=3, ram_mib=2048, disk_gib=20)  # 3 + the other's 1: the host's 4
    with pytest.raises(PermanentDriverError, match="cannot hold it"):
        driver.resize(resized.uuid, vcpus=4, ram_mib=2048, disk_gib=20)

    assert SimulatedDomain.objects.get(uuid=resized.uuid).vcpus == 3


def test_private_addresses_are_unique_per_host(db):
    driver = SimulatedDriver(HostFactory(name="big", vcpus=1024, ram_mib=1048576, disk_gib=100000))
    addresses = {
        driver.create(replace(SPEC, uuid=f"00000000-0000-0000-0000-{n:012d}")).private_ip
        for n in range(260)  # more than one /24
    }
    assert len(addresses) == 260
    assert all(address.startswith("10.") for address in addresses)
    assert not any(address.endswith((".0", ".1", ".255")) for address in addresses)


def test_list_domains(host):
    driver = SimulatedDriver(host)
    driver.create(SPEC)
    SimulatedDriver(HostFactory(name="other")).create(replace(SPEC, uuid="00000000-0000-0000-0000-000000000009"))
    assert [info.uuid for info in driver.list_domains()] == [SPEC.uuid]


def test_console_output(host):
    driver = SimulatedDriver(host)
    driver.create(SPEC)
    assert "web-1 login:" in driver.console_output(SPEC.uuid)
