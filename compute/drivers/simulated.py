"""A simulated hypervisor whose "hardware" is the SimulatedDomain table.

Keeping the state in the database lets the web, worker and beat processes see the same domains, and makes a
worker killed half-way exactly as recoverable as with a real hypervisor. Boots and graceful shutdowns take the
host's `boot_seconds` / `stop_seconds`: a domain is `booting` (or `stopping`) until its `settles_at` has passed,
and settles lazily the next time anyone looks at it. `fail_next_creates` injects failures (transient or
permanent) for tests and demos. Capacity is accounted for for real: a create that the host cannot hold fails.
"""

# write-ok-file: the simulated hypervisor's own state (its 'hardware'), shared by every process

from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from compute.drivers.base import (
    ComputeDriver,
    ConsoleSession,
    DomainCounters,
    DomainInfo,
    DomainNotFound,
    DomainSpec,
    HostCapacity,
    PermanentDriverError,
    PowerState,
    TransientDriverError,
)
from compute.drivers.simulated_guest import SimulatedConsole, synthetic_counters

SETTLING = {PowerState.BOOTING: PowerState.RUNNING, PowerState.STOPPING: PowerState.SHUTOFF}


class SimulatedDriver(ComputeDriver):
    name = "simulated"

    def __init__(self, host) -> None:
        super().__init__(host)
        from compute.models import Host, SimulatedDomain

        self._hosts = Host.objects
        self._domains = SimulatedDomain.objects

    # --- helpers -----------------------------------------------------------------------------------------------

    def _host(self, *, lock: bool = False):
        queryset = self._hosts.select_for_update() if lock else self._hosts
        return queryset.get(pk=self.host.pk)

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

    def _free_ip(self) -> str:
        used = set(self._domains.filter(host_id=self.host.pk).values_list("private_ip", flat=True))
        for address in self._subnet().hosts():
            if address.packed[-1] in (0, 1, 255):
                continue  # keep .0, .1 (gateway) and .255 of every /24 out of the way
            if str(address) not in used:
                return str(address)
        raise PermanentDriverError(f"Host {self.host.name} has no free private address.")

    def _check_room(self, host, *, vcpus: int, ram_mib: int, disk_gib: int, exclude=None) -> None:
        domains = self._domains.filter(host_id=host.pk)
        if exclude is not None:
            domains = domains.exclude(uuid=exclude)
        used = domains.aggregate(vcpus=Sum("vcpus"), ram_mib=Sum("ram_mib"), disk_gib=Sum("disk_gib"))
        for resource, wanted, limit in (
            ("vCPUs", vcpus + (used["vcpus"] or 0), host.vcpus_allocatable),
            ("MiB of RAM", ram_mib + (used["ram_mib"] or 0), host.ram_mib_allocatable),
            ("GiB of disk", disk_gib + (used["disk_gib"] or 0), host.disk_gib_allocatable),
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
            # The host row serialises creates on this host: capacity, addresses and failure injection.
            host = self._host(lock=True)
            existing = self._domains.filter(uuid=spec.uuid).first()
            if existing is not None:
                if existing.host_id != host.pk:
                    raise PermanentDriverError(f"Domain {spec.uuid} already exists on another host.")
                return self._info(self._settle(existing))
            if host.fail_next_creates > 0:
                self._hosts.filter(pk=host.pk).update(fail_next_creates=F("fail_next_creates") - 1)
                injected = host.failure_kind
            else:
                self._check_room(host, vcpus=spec.vcpus, ram_mib=spec.ram_mib, disk_gib=spec.disk_gib)
                image = spec.image.disk_path or spec.image.kernel_path
                try:
                    with transaction.atomic():
                        domain = self._domains.create(
                            uuid=spec.uuid,
                            host=host,
                            name=spec.name[:100],
                            vcpus=spec.vcpus,
                            ram_mib=spec.ram_mib,
                            disk_gib=spec.disk_gib,
                            image=image[:500],
                            power=PowerState.BOOTING,
                            private_ip=self._free_ip(),
                        )
                except IntegrityError:
                    # Another process created it between our check and our insert: adopt theirs.
                    raise TransientDriverError(f"Domain {spec.uuid} is being created concurrently.") from None
                self._transition(domain, PowerState.BOOTING, host.boot_seconds)
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
            host = self._host(lock=True)
            domain = self._get(uuid)
            if domain.power != PowerState.SHUTOFF:
                raise PermanentDriverError(f"Domain {uuid} must be shut off to be resized (it is {domain.power}).")
            if disk_gib < domain.disk_gib:
                raise PermanentDriverError(f"Disks cannot shrink ({domain.disk_gib} GiB to {disk_gib} GiB).")
            self._check_room(host, vcpus=vcpus, ram_mib=ram_mib, disk_gib=disk_gib, exclude=domain.uuid)
            domain.vcpus, domain.ram_mib, domain.disk_gib = vcpus, ram_mib, disk_gib
            domain.save(update_fields=["vcpus", "ram_mib", "disk_gib"])
            return self._info(domain)

    def migrate_to(self, uuid: str, target: ComputeDriver) -> DomainInfo:
        """Moves the shut-off domain's row to the target host: its "disk" goes with it, its address is kept if the
        target has it free. The target must have room, as for a create."""
        if not isinstance(target, SimulatedDriver):
            raise PermanentDriverError(f"Host {self.host.name} can only move machines to other simulated hosts.")
        with transaction.atomic():
            # Both host rows, in primary-key order: two moves between the same hosts never deadlock.
            hosts = {
                host.pk: host
                for host in self._hosts.select_for_update().filter(pk__in=[self.host.pk, target.host.pk]).order_by("pk")
            }
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
            destination = hosts[target.host.pk]
            target._check_room(destination, vcpus=domain.vcpus, ram_mib=domain.ram_mib, disk_gib=domain.disk_gib)
            if self._domains.filter(host_id=destination.pk, private_ip=domain.private_ip).exists():
                domain.private_ip = target._free_ip()
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

    def console_open(self, uuid: str) -> ConsoleSession:
        domain = self._get(uuid)
        if domain.power != PowerState.RUNNING:
            raise PermanentDriverError(f"Domain {uuid} is not running ({domain.power}).")
        return SimulatedConsole(
            name=domain.name, private_ip=domain.private_ip, vcpus=domain.vcpus, ram_mib=domain.ram_mib
        )

    def domain_stats(self, uuids: list[str]) -> dict[str, DomainCounters]:
        now = timezone.now()
        domains = self._domains.filter(host_id=self.host.pk, uuid__in=uuids)
        return {
            str(domain.uuid): synthetic_counters(uuid=str(domain.uuid), vcpus=domain.vcpus, at=now)
            for domain in map(self._settle, domains)
            if domain.power == PowerState.RUNNING
        }
