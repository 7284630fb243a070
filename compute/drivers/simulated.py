"""A simulated hypervisor whose "hardware" is the SimulatedDomain table.

Keeping the state in the database lets the web, worker and beat processes see the same domains, and makes a
worker killed half-way exactly as recoverable as with a real hypervisor. Boots and graceful shutdowns take the
host's `boot_seconds` / `stop_seconds`: a domain is `booting` (or `stopping`) until its `settles_at` has passed,
and settles lazily the next time anyone looks at it. `fail_next_creates` injects failures (transient or
permanent) for tests and demos. Capacity is accounted for for real: a create that the host cannot hold fails.

Creates and resizes on one host take the hypervisor's own lock (a PostgreSQL advisory lock, as libvirtd has its
own), never the host's row: that row is what the scheduler claims, and builds must not queue behind launches.
"""

# write-ok-file: the simulated hypervisor's own state (its 'hardware'), shared by every process

from __future__ import annotations

import ipaddress
import random
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from compute.drivers.base import (
    ComputeDriver,
    DomainInfo,
    DomainNotFound,
    DomainSpec,
    HostCapacity,
    PermanentDriverError,
    PowerState,
    TransientDriverError,
)

SETTLING = {PowerState.BOOTING: PowerState.RUNNING, PowerState.STOPPING: PowerState.SHUTOFF}
# PostgreSQL advisory-lock namespace of the simulated hypervisors (the second key comes from the host's uuid).
HYPERVISOR_LOCK = 84022


class SimulatedDriver(ComputeDriver):
    name = "simulated"

    def __init__(self, host) -> None:
        super().__init__(host)
        from compute.models import Host, SimulatedDomain

        self._hosts = Host.objects
        self._domains = SimulatedDomain.objects

    # --- helpers -----------------------------------------------------------------------------------------------

    def _host(self):
        return self._hosts.get(pk=self.host.pk)

    def _lock_hypervisor(self) -> None:
        """Serialises this host's creates and resizes until the transaction ends (SQLite serialises every writer)."""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [HYPERVISOR_LOCK, self.host.pk.int % 2**31])

    def _host_with_usage(self, *, exclude=None):
        """The host row (its knobs and size) and what its domains hold, in one query."""
        domains = ~Q(simulated_domains__uuid=exclude) if exclude is not None else Q()
        return self._hosts.annotate(
            vcpus_held=Coalesce(Sum("simulated_domains__vcpus", filter=domains), 0),
            ram_mib_held=Coalesce(Sum("simulated_domains__ram_mib", filter=domains), 0),
            disk_gib_held=Coalesce(Sum("simulated_domains__disk_gib", filter=domains), 0),
        ).get(pk=self.host.pk)

    def _settle(self, domain):
        """Finishes a boot or shutdown whose time has come (a conditional update: concurrent readers agree)."""
        target = SETTLING.get(domain.power)
        if target is not None and (domain.settles_at is None or domain.settles_at <= timezone.now()):
            self._domains.filter(uuid=domain.uuid, power=domain.power).update(power=target, settles_at=None)
            domain.power, domain.settles_at = target, None
        return domain

    def _get(self, uuid: str):
        domain = self._domains.filter(uuid=uuid, host_id=self.host.pk).first()
        if domain is None:
            raise DomainNotFound(f"Host {self.host.name} has no domain {uuid}.")
        return self._settle(domain)

    @staticmethod
    def _info(domain) -> DomainInfo:
        return DomainInfo(uuid=str(domain.uuid), state=PowerState(domain.power), private_ip=domain.private_ip)

    def _transition(self, domain, power: str, seconds: int) -> None:
        """Moves the domain into a settling state (or straight to where it settles when `seconds` is 0)."""
        if seconds <= 0:
            domain.power, domain.settles_at = SETTLING.get(power, power), None
        else:
            domain.power, domain.settles_at = power, timezone.now() + timedelta(seconds=seconds)
        domain.save(update_fields=["power", "settles_at"])

    def _subnet(self) -> ipaddress.IPv4Network:
        # One /16 per host, derived from its uuid, so addresses rarely repeat across hosts.
        second_octet = self.host.pk.int % 250 + 1
        return ipaddress.IPv4Network(f"10.{second_octet}.0.0/16")

    def _address_candidates(self):
        """Addresses of the host's /16 from a random point on (each /24's .0, .1 and .255 kept out of the way)."""
        subnet = self._subnet()
        base, size = int(subnet.network_address), subnet.num_addresses
        start = random.randrange(size)
        for step in range(size):
            offset = (start + step) % size
            if offset & 0xFF not in (0, 1, 255):
                yield str(ipaddress.IPv4Address(base + offset))

    def _free_address(self) -> str:
        for address in self._address_candidates():
            if not self._domains.filter(host_id=self.host.pk, private_ip=address).exists():
                return address
        raise PermanentDriverError(f"Host {self.host.name} has no free private address.")

    @staticmethod
    def _check_room(host, *, vcpus: int, ram_mib: int, disk_gib: int) -> None:
        """`host` comes from _host_with_usage()."""
        for resource, wanted, limit in (
            ("vCPUs", vcpus + host.vcpus_held, host.vcpus_allocatable),
            ("MiB of RAM", ram_mib + host.ram_mib_held, host.ram_mib_allocatable),
            ("GiB of disk", disk_gib + host.disk_gib_held, host.disk_gib_allocatable),
        ):
            if wanted > limit:
                raise PermanentDriverError(
                    f"Host {host.name} cannot hold it: {wanted} {resource} needed, {limit} available."
                )

    # --- the driver interface ----------------------------------------------------------------------------------

    def host_capacity(self) -> HostCapacity:
        host = self._host()
        return HostCapacity(vcpus=host.vcpus, ram_mib=host.ram_mib, disk_gib=host.disk_gib)

    def list_domains(self) -> list[DomainInfo]:
        return [self._info(self._settle(domain)) for domain in self._domains.filter(host_id=self.host.pk)]

    def create(self, spec: DomainSpec) -> DomainInfo:
        injected = None
        with transaction.atomic():
            self._lock_hypervisor()  # capacity, addresses and failure injection, one create at a time
            host = self._host_with_usage()
            # One probe both finds a domain an earlier attempt made (create is idempotent on the uuid) and tells
            # whether the first candidate address is taken; a taken one (rare in a /16) means probing on.
            addresses = self._address_candidates()
            address = next(addresses)
            while True:
                found = list(self._domains.filter(Q(uuid=spec.uuid) | Q(host_id=host.pk, private_ip=address)))
                existing = next((domain for domain in found if str(domain.uuid) == str(spec.uuid)), None)
                if existing is not None:
                    if existing.host_id != host.pk:
                        raise PermanentDriverError(f"Domain {spec.uuid} already exists on another host.")
                    return self._info(self._settle(existing))
                if not found:
                    break
                address = next(addresses, None)
                if address is None:
                    raise PermanentDriverError(f"Host {self.host.name} has no free private address.")
            if host.fail_next_creates > 0:
                self._hosts.filter(pk=host.pk).update(fail_next_creates=F("fail_next_creates") - 1)
                injected = host.failure_kind
            else:
                self._check_room(host, vcpus=spec.vcpus, ram_mib=spec.ram_mib, disk_gib=spec.disk_gib)
                image = spec.image.disk_path or spec.image.kernel_path
                booted = host.boot_seconds <= 0
                try:
                    domain = self._domains.create(
                        uuid=spec.uuid,
                        host=host,
                        name=spec.name[:100],
                        vcpus=spec.vcpus,
                        ram_mib=spec.ram_mib,
                        disk_gib=spec.disk_gib,
                        image=image[:500],
                        power=PowerState.RUNNING if booted else PowerState.BOOTING,
                        settles_at=None if booted else timezone.now() + timedelta(seconds=host.boot_seconds),
                        private_ip=address,
                    )
                except IntegrityError:
                    # Another process created it (on another host) between our probe and our insert: the retry adopts
                    # or refuses it. The error leaves this transaction, which rolls back.
                    raise TransientDriverError(f"Domain {spec.uuid} is being created concurrently.") from None
                return self._info(domain)
        # Raised after the transaction so that the decremented failure counter is kept.
        if injected == "permanent":
            raise PermanentDriverError(f"Simulated permanent failure creating {spec.name} on {self.host.name}.")
        raise TransientDriverError(f"Simulated transient failure creating {spec.name} on {self.host.name}.")

    def start(self, uuid: str) -> DomainInfo:
        with transaction.atomic():
            domain = self._get(uuid)
            if domain.power == PowerState.STOPPING:
                raise TransientDriverError(f"Domain {uuid} is still shutting down.")
            if domain.power in (PowerState.SHUTOFF, PowerState.CRASHED, PowerState.NOSTATE, PowerState.PAUSED):
                self._transition(domain, PowerState.BOOTING, self._host().boot_seconds)
            return self._info(domain)

    def stop(self, uuid: str, *, force: bool = False) -> DomainInfo:
        with transaction.atomic():
            domain = self._get(uuid)
            if domain.power == PowerState.SHUTOFF:
                return self._info(domain)
            if force:
                self._transition(domain, PowerState.SHUTOFF, 0)
            elif domain.power != PowerState.STOPPING:
                self._transition(domain, PowerState.STOPPING, self._host().stop_seconds)
            return self._info(domain)

    def reboot(self, uuid: str) -> DomainInfo:
        with transaction.atomic():
            domain = self._get(uuid)
            if domain.power == PowerState.STOPPING:
                raise TransientDriverError(f"Domain {uuid} is shutting down; it cannot reboot now.")
            self._transition(domain, PowerState.BOOTING, self._host().boot_seconds)
            return self._info(domain)

    def resize(self, uuid: str, *, vcpus: int, ram_mib: int, disk_gib: int) -> DomainInfo:
        with transaction.atomic():
            self._lock_hypervisor()
            domain = self._get(uuid)
            if domain.power != PowerState.SHUTOFF:
                raise PermanentDriverError(f"Domain {uuid} must be shut off to be resized (it is {domain.power}).")
            if disk_gib < domain.disk_gib:
                raise PermanentDriverError(f"Disks cannot shrink ({domain.disk_gib} GiB to {disk_gib} GiB).")
            host = self._host_with_usage(exclude=domain.uuid)
            self._check_room(host, vcpus=vcpus, ram_mib=ram_mib, disk_gib=disk_gib)
            domain.vcpus, domain.ram_mib, domain.disk_gib = vcpus, ram_mib, disk_gib
            domain.save(update_fields=["vcpus", "ram_mib", "disk_gib"])
            return self._info(domain)

    def migrate_to(self, uuid: str, target: ComputeDriver) -> DomainInfo:
        """Moves the shut-off domain's row to the target host: its "disk" goes with it, its address is kept if the
        target has it free. The target must have room, as for a create."""
        if not isinstance(target, SimulatedDriver):
            raise PermanentDriverError(f"Host {self.host.name} can only move machines to other simulated hosts.")
        with transaction.atomic():
            # Both hypervisors, in primary-key order: two moves between the same hosts never deadlock.
            for driver in sorted((self, target), key=lambda driver: driver.host.pk):
                driver._lock_hypervisor()
            domain = self._domains.select_for_update().filter(uuid=uuid).first()
            if domain is None:
                raise DomainNotFound(f"Neither {self.host.name} nor {target.host.name} has domain {uuid}.")
            if domain.host_id == target.host.pk:
                return self._info(self._settle(domain))  # moved already (a retry)
            if domain.host_id != self.host.pk:
                raise PermanentDriverError(f"Domain {uuid} is on another host, not on {self.host.name}.")
            domain = self._settle(domain)
            if domain.power != PowerState.SHUTOFF:
                raise PermanentDriverError(f"Domain {uuid} must be shut off to be moved (it is {domain.power}).")
            destination = target._host_with_usage()
            target._check_room(destination, vcpus=domain.vcpus, ram_mib=domain.ram_mib, disk_gib=domain.disk_gib)
            if self._domains.filter(host_id=destination.pk, private_ip=domain.private_ip).exists():
                domain.private_ip = target._free_address()
            domain.host = destination
            domain.save(update_fields=["host", "private_ip"])
        return self._info(domain)

    def destroy(self, uuid: str) -> None:
        self._domains.filter(uuid=uuid, host_id=self.host.pk).delete()

    def state(self, uuid: str) -> DomainInfo:
        return self._info(self._get(uuid))

    def console_output(self, uuid: str, *, lines: int = 100) -> str:
        domain = self._get(uuid)
        log = [
            "[    0.000000] Linux version 6.1.0-simulated (Hangar simulated hypervisor)",
            f"[    0.000000] Memory: {domain.ram_mib * 1024}K available, {domain.vcpus} CPUs",
            f"[    1.204411] virtio_net virtio0 eth0: address {domain.private_ip}",
        ]
        if domain.power == PowerState.RUNNING:
            log.append(f"{domain.name} login:")
        elif domain.power == PowerState.SHUTOFF:
            log.append("[   42.000000] reboot: Power down")
        return "\n".join(log[-lines:])
