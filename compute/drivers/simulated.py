"""A simulated hypervisor whose "hardware" is the SimulatedDomain table (and, for networking, SimulatedNetwork and
SimulatedNat).

Keeping the state in the database lets the web, worker and beat processes see the same domains, and makes a
worker killed half-way exactly as recoverable as with a real hypervisor. Boots and graceful shutdowns take the
host's `boot_seconds` / `stop_seconds`: a domain is `booting` (or `stopping`) until its `settles_at` has passed,
and settles lazily the next time anyone looks at it. `fail_next_creates` injects failures (transient or
permanent) for tests and demos. Capacity is accounted for for real: a create that the host cannot hold fails.

Networking is recorded like a real host's: networks with their DHCP leases, each domain's NICs, cloud-init seed
and firewall rules, and the host's 1:1 NAT. The firewall is enforced by the model: `connection_allowed()` answers
whether a new connection to an address (public or private) reaches a domain. Interface counters grow with the
host's `traffic_bytes_per_second` while a domain runs (plus whatever `send()` adds) and restart from zero when
the domain is started again, as a real NIC's do.

Creates and resizes on one host take the hypervisor's own lock (a PostgreSQL advisory lock, as libvirtd has its
own), never the host's row: that row is what the scheduler claims, and builds must not queue behind launches.
"""

# write-ok-file: the simulated hypervisor's own state (its 'hardware'), shared by every process

from __future__ import annotations

import functools
import ipaddress
import random
from dataclasses import asdict
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from compute.drivers.base import (
    ComputeDriver,
    ConsoleSession,
    DomainCounters,
    DomainInfo,
    DomainNotFound,
    DomainSpec,
    FirewallRuleSpec,
    HostCapacity,
    InterfaceCounters,
    NatMapping,
    NetworkSpec,
    PermanentDriverError,
    PowerState,
    TransientDriverError,
    VolumeNotFound,
)
from compute.drivers.simulated_guest import SimulatedConsole, synthetic_counters
from portal import sql

SETTLING = {PowerState.BOOTING: PowerState.RUNNING, PowerState.STOPPING: PowerState.SHUTOFF}
# PostgreSQL advisory-lock namespace of the simulated hypervisors (the second key comes from the host's uuid).
HYPERVISOR_LOCK = 84022
# Power states in which a domain's NICs exist (and count traffic).
NIC_UP = frozenset({PowerState.BOOTING, PowerState.RUNNING, PowerState.STOPPING})


class SimulatedDriver(ComputeDriver):
    name = "simulated"

    def __init__(self, host) -> None:
        super().__init__(host)
        from compute.models import Host, SimulatedDomain
        from compute.network.models import SimulatedNat, SimulatedNetwork

        self._hosts = Host.objects
        self._domains = SimulatedDomain.objects
        self._networks = SimulatedNetwork.objects
        self._nat = SimulatedNat.objects
        from compute.storage.models import SimulatedVolume

        self._pool_files = SimulatedVolume.objects

    # --- helpers -----------------------------------------------------------------------------------------------

    def _host(self):
        return self._hosts.get(pk=self.host.pk)

    def _lock_hypervisor(self) -> None:
        """Serialises this host's creates and resizes until the transaction ends (SQLite serialises every writer)."""
        if connection.vendor == "postgresql":
            with sql.prepared_cursor(connection) as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [HYPERVISOR_LOCK, self.host.pk.int % 2**31])

    def _host_with_usage(self, *, exclude=None, probe=None):
        """The host row (its knobs and size) and what its domains (but `exclude`) hold, in one query; with `probe`, a
        domain uuid, also `probe_host_id`: the host that domain is on (None: it exists nowhere).

        Written in SQL (table names from the models, every value a parameter): the ORM building its aggregate over
        the join took more CPU than the rest of a create."""
        host_model, domain_model = self._hosts.model, self._domains.model
        excluded = "AND d.uuid <> %s" if exclude is not None else ""
        host_columns = sql.attnames(host_model)
        statement = f"""
            SELECT {sql.columns(host_model, host_columns, alias="h")}, COALESCE(SUM(d.vcpus), 0),
                COALESCE(SUM(d.ram_mib), 0), COALESCE(SUM(d.disk_gib), 0),
                (SELECT p.host_id FROM {sql.table(domain_model)} p WHERE p.uuid = %s)
            FROM {sql.table(host_model)} h LEFT JOIN {sql.table(domain_model)} d ON d.host_id = h.id {excluded}
            WHERE h.id = %s
            GROUP BY h.id
        """
        params = [sql.param(domain_model, "uuid", probe)]
        if exclude is not None:
            params.append(sql.param(domain_model, "uuid", exclude))
        params.append(sql.param(host_model, "id", self.host.pk))
        with sql.prepared_cursor(connection) as cursor:
            cursor.execute(statement, params)
            row = cursor.fetchone()
        host = sql.instance_from_row(host_model, row[: len(host_columns)])
        host.vcpus_held, host.ram_mib_held, host.disk_gib_held = (int(value) for value in row[-4:-1])
        host.probe_host_id = host_model._meta.pk.to_python(row[-1])  # SQLite gives the uuid as text
        return host

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
        if spec.nics and not spec.disk_source and not spec.image.pool_file:
            # The common case in one round trip: a new domain, no failure to inject, room on the host.
            domain = self._domain(spec, host=self.host, image=spec.image.disk_path or spec.image.kernel_path)
            if self._insert_if_free(domain):
                return self._info(domain)
        with transaction.atomic():
            self._lock_hypervisor()  # capacity, addresses and failure injection, one create at a time
            host = self._host_with_usage(probe=spec.uuid)
            if host.probe_host_id is not None:  # create is idempotent on the uuid: adopt what an earlier attempt made
                if host.probe_host_id != host.pk:
                    raise PermanentDriverError(f"Domain {spec.uuid} already exists on another host.")
                return self._info(self._settle(self._domains.get(uuid=spec.uuid)))
            if host.fail_next_creates > 0:
                self._hosts.filter(pk=host.pk).update(fail_next_creates=F("fail_next_creates") - 1)
                injected = host.failure_kind
            else:
                self._check_room(host, vcpus=spec.vcpus, ram_mib=spec.ram_mib, disk_gib=spec.disk_gib)
                image = spec.image.disk_path or spec.image.kernel_path
                if spec.disk_source:
                    # The new disk is a copy of a backup in this host's pool: it must be there.
                    image = self._volume(spec.disk_source).name
                elif spec.image.pool_file:
                    # A private image: its file must be in this host's pool.
                    image = self._volume(spec.image.pool_file).name
                domain = self._domain(spec, host=host, image=image)
                model = self._domains.model
                try:
                    sql.insert(model, {name: getattr(domain, name) for name in sql.attnames(model)})
                except IntegrityError:
                    # Another process created it (on another host) between our probe and our insert: the retry adopts
                    # or refuses it. The error leaves this transaction, which rolls back.
                    raise TransientDriverError(f"Domain {spec.uuid} is being created concurrently.") from None
                return self._info(domain)
        # Raised after the transaction so that the decremented failure counter is kept.
        if injected == "permanent":
            raise PermanentDriverError(f"Simulated permanent failure creating {spec.name} on {self.host.name}.")
        raise TransientDriverError(f"Simulated transient failure creating {spec.name} on {self.host.name}.")

    def _domain(self, spec: DomainSpec, *, host, image: str):
        """The domain row a create writes (not saved)."""
        booted = host.boot_seconds <= 0
        now = timezone.now()
        return self._domains.model(
            uuid=spec.uuid,
            host_id=host.pk,
            name=spec.name[:100],
            vcpus=spec.vcpus,
            ram_mib=spec.ram_mib,
            disk_gib=spec.disk_gib,
            image=image[:500],
            power=PowerState.RUNNING if booted else PowerState.BOOTING,
            settles_at=None if booted else now + timedelta(seconds=host.boot_seconds),
            private_ip=spec.nics[0].ip if spec.nics else self._free_address(),
            # Flat records (asdict() deep-copies every value): these specs hold plain strings and numbers.
            nics=[dict(vars(nic)) for nic in spec.nics],
            seed=dict(vars(spec.seed)) if spec.seed is not None else {},
            firewall=[dict(vars(rule)) for rule in spec.firewall],
            rx_bytes=0,
            tx_bytes=0,
            counters_at=now,
            created_at=now,
        )

    def _insert_if_free(self, domain) -> bool:
        """INSERTs the domain if no domain has its uuid yet, no failure is to be injected and the host has room for it
        (its size and ratios as the claim read them); False: none of that was written, and the caller looks at why.

        On PostgreSQL the hypervisor's lock and the INSERT go as one query of two statements, which the server runs
        as one transaction (or as part of the caller's): one round trip instead of four (BEGIN, lock, INSERT,
        COMMIT), and the INSERT, a statement after the lock, sees every domain created before it. SQLite serialises
        writers anyway."""
        model, host, db = self._domains.model, self.host, sql.current()
        get_field = model._meta.get_field
        values = [get_field(name).get_db_prep_save(getattr(domain, name), db) for name in sql.attnames(model)]
        postgresql = db.vendor == "postgresql"
        lock = [HYPERVISOR_LOCK, host.pk.int % 2**31] if postgresql else []
        room = [host.vcpus_allocatable, host.ram_mib_allocatable, host.disk_gib_allocatable]
        try:
            with db.cursor() as cursor:
                cursor.execute(_insert_if_free_sql(db.vendor), [*lock, *values, *room])
                if postgresql:
                    cursor.nextset()  # past the lock's result to the INSERT's
                return cursor.fetchone() is not None
        except IntegrityError:
            # Another process created it (on another host) between our check and our insert (see create).
            raise TransientDriverError(f"Domain {domain.uuid} is being created concurrently.") from None

    def start(self, uuid: str) -> DomainInfo:
        with transaction.atomic():
            domain = self._get(uuid)
            if domain.power == PowerState.STOPPING:
                raise TransientDriverError(f"Domain {uuid} is still shutting down.")
            if domain.power in (PowerState.SHUTOFF, PowerState.CRASHED, PowerState.NOSTATE, PowerState.PAUSED):
                # A new NIC: its counters start from zero.
                domain.rx_bytes, domain.tx_bytes, domain.counters_at = 0, 0, timezone.now()
                domain.save(update_fields=["rx_bytes", "tx_bytes", "counters_at"])
                self._transition(domain, PowerState.BOOTING, self._host().boot_seconds)
            return self._info(domain)

    def stop(self, uuid: str, *, force: bool = False) -> DomainInfo:
        with transaction.atomic():
            domain = self._get(uuid)
            if domain.power == PowerState.SHUTOFF:
                return self._info(domain)
            self._count(domain, until=timezone.now())
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
            # A Hangar-allocated address (NICs) belongs to its network, wherever the machine runs; only a host-local
            # one may clash on the new host.
            if not domain.nics and self._domains.filter(host_id=destination.pk, private_ip=domain.private_ip).exists():
                domain.private_ip = target._free_address()
            domain.host = destination
            domain.save(update_fields=["host", "private_ip"])
        return self._info(domain)

    def destroy(self, uuid: str) -> None:
        with transaction.atomic():
            # Volumes attached to it stay in the pool, detached, as libvirt's undefine leaves them.
            self._volumes().filter(domain=uuid).update(domain="", device="")
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

    # --- networking -------------------------------------------------------------------------------------------

    def network_ensure(self, spec: NetworkSpec) -> None:
        state = {
            "name": spec.name[:100],
            "cidr": spec.cidr,
            "gateway_ip": spec.gateway_ip,
            # Flat records: asdict()'s deep copy of each lease cost more than the rest of a build's networking.
            "dhcp_hosts": [{"mac": h.mac, "ip": h.ip, "hostname": h.hostname} for h in spec.dhcp_hosts],
            "updated_at": timezone.now(),
        }
        # One UPDATE where the network exists already (every build but a host's first on it); the whole state is
        # written, so the last writer's is the network's, as with update_or_create.
        if self._networks.filter(host_id=self.host.pk, network_id=spec.id).update(**state):
            return
        try:
            with transaction.atomic():
                self._networks.create(host_id=self.host.pk, network_id=spec.id, **state)
        except IntegrityError:  # made concurrently by another build: state it again
            self._networks.filter(host_id=self.host.pk, network_id=spec.id).update(**state)

    def network_leases_add(self, spec: NetworkSpec) -> None:
        leases = [{"mac": h.mac, "ip": h.ip, "hostname": h.hostname} for h in spec.dhcp_hosts]
        state = {"name": spec.name[:100], "cidr": spec.cidr, "gateway_ip": spec.gateway_ip}
        # A build's lease joins the others in one UPDATE (not the whole set read and written again: that grew with
        # the machines of the network on the host); an entry with one of its MACs or addresses is replaced.
        if self._leases_add(spec.id, state, leases):
            return
        try:
            with transaction.atomic():
                self._networks.create(
                    host_id=self.host.pk, network_id=spec.id, dhcp_hosts=leases, updated_at=timezone.now(), **state
                )
        except IntegrityError:  # made concurrently by another build: add to it
            self._leases_add(spec.id, state, leases)

    def _leases_add(self, network_id: str, state: dict, leases: list[dict]) -> bool:
        """Adds `leases` to the host's network (False: the host has no such network yet)."""
        macs, addresses = [lease["mac"] for lease in leases], [lease["ip"] for lease in leases]
        now = timezone.now()
        if connection.vendor != "postgresql":  # SQLite serialises writers: read, change and write the list
            networks = self._networks.filter(host_id=self.host.pk, network_id=network_id)
            with transaction.atomic():
                kept = networks.values_list("dhcp_hosts", flat=True).first()
                if kept is None:
                    return False
                kept = [lease for lease in kept if lease.get("mac") not in macs and lease.get("ip") not in addresses]
                return bool(networks.update(dhcp_hosts=kept + leases, updated_at=now, **state))
        model = self._networks.model
        with sql.prepared_cursor(connection) as cursor:
            cursor.execute(
                _leases_add_sql(),
                [
                    state["name"],
                    state["cidr"],
                    state["gateway_ip"],
                    sql.param(model, "updated_at", now),
                    macs,
                    addresses,
                    sql.param(model, "dhcp_hosts", leases),
                    self.host.pk,
                    network_id,
                ],
            )
            return cursor.rowcount > 0

    def network_remove(self, network_id: str) -> None:
        self._networks.filter(host_id=self.host.pk, network_id=network_id).delete()

    def firewall_apply(self, uuid: str, rules: tuple[FirewallRuleSpec, ...]) -> None:
        updated = self._domains.filter(uuid=uuid, host_id=self.host.pk).update(firewall=[asdict(r) for r in rules])
        if not updated:
            raise DomainNotFound(f"Host {self.host.name} has no domain {uuid}.")

    def nat_apply(self, mappings: tuple[NatMapping, ...]) -> None:
        with transaction.atomic():
            self._lock_hypervisor()  # one writer of the host's NAT set at a time
            self._nat.filter(host_id=self.host.pk).delete()
            self._nat.bulk_create(
                self._nat.model(host_id=self.host.pk, public_ip=m.public_ip, private_ip=m.private_ip) for m in mappings
            )

    def _count(self, domain, *, until) -> None:
        """Adds the synthetic traffic of the time since counters_at (a conditional update: readers agree)."""
        if domain.power not in NIC_UP or domain.counters_at is None or until <= domain.counters_at:
            return
        rate = self._host().traffic_bytes_per_second
        seconds = (until - domain.counters_at).total_seconds()
        sent = int(rate * seconds)
        received = 2 * sent
        moved = self._domains.filter(uuid=domain.uuid, counters_at=domain.counters_at).update(
            tx_bytes=F("tx_bytes") + sent, rx_bytes=F("rx_bytes") + received, counters_at=until
        )
        if moved:
            domain.tx_bytes, domain.rx_bytes, domain.counters_at = (
                domain.tx_bytes + sent,
                domain.rx_bytes + received,
                until,
            )
        else:
            domain.refresh_from_db(fields=["tx_bytes", "rx_bytes", "counters_at"])

    def interface_counters(self, uuid: str) -> InterfaceCounters:
        domain = self._get(uuid)
        if domain.power not in NIC_UP:
            raise PermanentDriverError(f"Domain {uuid} is not running; its interfaces have no counters.")
        self._count(domain, until=timezone.now())
        return InterfaceCounters(rx_bytes=domain.rx_bytes, tx_bytes=domain.tx_bytes)

    # --- the simulated world (tests and demos) ----------------------------------------------------------------

    def send(self, uuid: str, *, tx_bytes: int = 0, rx_bytes: int = 0) -> None:
        """The guest sends (and receives) this much on top of the synthetic traffic."""
        domain = self._get(uuid)
        if domain.power not in NIC_UP:
            raise PermanentDriverError(f"Domain {uuid} is not running.")
        self._domains.filter(uuid=uuid).update(tx_bytes=F("tx_bytes") + tx_bytes, rx_bytes=F("rx_bytes") + rx_bytes)

    def connection_allowed(self, address: str, *, port: int | None, protocol: str = "tcp", source: str) -> bool:
        """Whether a new connection from `source` to `address` (a domain's private address, or a public address this
        host maps onto one) reaches a running domain of this host through its firewall."""
        from compute.network.rulesets import allows

        mapping = self._nat.filter(host_id=self.host.pk, public_ip=address).first()
        private_ip = mapping.private_ip if mapping is not None else address
        for domain in self._domains.filter(host_id=self.host.pk):
            if not any(nic.get("ip") == private_ip for nic in domain.nics) and domain.private_ip != private_ip:
                continue
            if self._settle(domain).power != PowerState.RUNNING:
                return False
            rules = tuple(FirewallRuleSpec(**rule) for rule in domain.firewall)
            return allows(rules, direction="in", protocol=protocol, port=port, peer=source)
        return False

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

    # --- boot disks restored from backups, private images (files of the host's pool) ------------------------------

    def disk_snapshot(self, uuid: str, *, name: str) -> None:
        with transaction.atomic():
            self._lock_hypervisor()
            domain = self._get(uuid)
            if self._volumes().filter(name=name).exists():
                return  # made already (a retry)
            self._check_pool_room(domain.disk_gib)
            self._pool_files.create(host_id=self.host.pk, name=name, size_gib=domain.disk_gib, source=f"disk {uuid}")

    def disk_restore(self, uuid: str, *, source: str) -> None:
        with transaction.atomic():
            domain = self._get(uuid)
            if domain.power != PowerState.SHUTOFF:
                raise PermanentDriverError(f"Domain {uuid} must be shut off to have its disk replaced.")
            file = self._volume(source)
            domain.image = f"restored from {file.name}"[:500]
            domain.disk_gib = max(domain.disk_gib, file.size_gib)
            domain.save(update_fields=["image", "disk_gib"])

    # --- storage: the pool's files are SimulatedVolume rows; the pool holds as much as the host's disk ---------------

    def _volumes(self):
        return self._pool_files.filter(host_id=self.host.pk)

    def _volume(self, name: str):
        volume = self._volumes().filter(name=name).first()
        if volume is None:
            raise VolumeNotFound(f"Host {self.host.name} has no volume {name}.")
        return volume

    def _check_pool_room(self, growth_gib: int) -> None:
        """The pool shares the host's disk with the domains' disks: refuses what would overfill it."""
        host = self._host_with_usage()
        files = self._volumes().aggregate(total=Coalesce(Sum("size_gib"), 0))["total"]
        wanted, limit = host.disk_gib_held + files + growth_gib, host.disk_gib_allocatable
        if wanted > limit:
            raise PermanentDriverError(
                f"The storage pool of host {host.name} cannot hold it: {wanted} GiB needed, {limit} available."
            )

    def volume_create(self, name: str, *, size_gib: int, source: str = "") -> None:
        with transaction.atomic():
            self._lock_hypervisor()
            if self._volumes().filter(name=name).exists():
                return
            if source:
                size_gib = max(size_gib, self._volume(source).size_gib)
            self._check_pool_room(size_gib)
            self._pool_files.create(host_id=self.host.pk, name=name, size_gib=size_gib, source=source)

    def volume_snapshot(self, name: str, *, source: str, domain: str = "", device: str = "") -> None:
        self.volume_create(name, size_gib=self._volume(source).size_gib, source=source)

    def volume_delete(self, name: str) -> None:
        self._volumes().filter(name=name).delete()

    def volume_exists(self, name: str) -> bool:
        return self._volumes().filter(name=name).exists()

    def volume_size_gib(self, name: str) -> int:
        return self._volume(name).size_gib

    def volume_attach(self, uuid: str, name: str, *, device: str) -> None:
        with transaction.atomic():
            self._lock_hypervisor()
            self._get(uuid)  # DomainNotFound if it is gone
            volume = self._volume(name)
            if volume.domain == uuid and volume.device == device:
                return
            if volume.domain and volume.domain != uuid:
                raise PermanentDriverError(f"Volume {name} is attached to another domain ({volume.domain}).")
            if self._volumes().filter(domain=uuid, device=device).exclude(pk=volume.pk).exists():
                raise PermanentDriverError(f"Domain {uuid} already has a disk {device}.")
            volume.domain, volume.device = uuid, device
            volume.save(update_fields=["domain", "device"])

    def volume_detach(self, uuid: str, name: str) -> None:
        self._volumes().filter(name=name, domain=uuid).update(domain="", device="")

    def volume_extend(self, name: str, *, size_gib: int, uuid: str = "", device: str = "") -> None:
        with transaction.atomic():
            self._lock_hypervisor()
            volume = self._volume(name)
            if size_gib <= volume.size_gib:
                return  # grown already (a retry), and never shrunk
            self._check_pool_room(size_gib - volume.size_gib)
            volume.size_gib = size_gib
            volume.save(update_fields=["size_gib"])

    def volume_move_to(self, name: str, target: ComputeDriver) -> None:
        if not isinstance(target, SimulatedDriver):
            raise PermanentDriverError(f"Host {self.host.name} can only move volumes to other simulated hosts.")
        with transaction.atomic():
            for driver in sorted((self, target), key=lambda driver: driver.host.pk):
                driver._lock_hypervisor()
            if target._volumes().filter(name=name).exists():
                self._volumes().filter(name=name).delete()
                return
            volume = self._volume(name)
            target._check_pool_room(volume.size_gib)
            volume.host_id = target.host.pk
            volume.save(update_fields=["host"])

    def volumes_in_pool(self) -> list[str]:
        return list(self._volumes().values_list("name", flat=True))

    def volume_attachments(self, uuid: str) -> dict[str, str]:
        """Simulated only (tests look inside the "hardware"): the domain's attached volumes by device."""
        return dict(self._volumes().filter(domain=uuid).values_list("device", "name"))


@functools.cache
def _leases_add_sql() -> str:
    """PostgreSQL: the network's leases but those with the new MACs or addresses, then the new ones."""
    from compute.network.models import SimulatedNetwork

    def column(name: str) -> str:
        return sql.columns(SimulatedNetwork, [name])

    leases = column("dhcp_hosts")
    return (
        f"UPDATE {sql.table(SimulatedNetwork)} SET {column('name')} = %s, {column('cidr')} = %s, "
        f"{column('gateway_ip')} = %s, {column('updated_at')} = %s, "
        f"{leases} = COALESCE((SELECT jsonb_agg(lease ORDER BY position) FROM jsonb_array_elements({leases}) "
        "WITH ORDINALITY AS kept(lease, position) "
        "WHERE NOT (lease->>'mac' = ANY(%s::text[]) OR lease->>'ip' = ANY(%s::text[]))), '[]'::jsonb) || %s::jsonb "
        f"WHERE {column('host_id')} = %s AND {column('network_id')} = %s"
    )


@functools.cache
def _insert_if_free_sql(vendor: str) -> str:
    from compute.models import Host, SimulatedDomain

    names = sql.attnames(SimulatedDomain)
    if vendor == "postgresql":  # typed values: an INSERT … SELECT does not take the columns' types from the target
        values = [f"CAST(%s AS {SimulatedDomain._meta.get_field(name).db_type(connection)})" for name in names]
    else:
        values = ["%s"] * len(names)
    domains = sql.table(SimulatedDomain)

    def column(name: str, alias: str) -> str:
        return f"{alias}.{sql.columns(SimulatedDomain, [name])}"

    new = ", ".join(
        f"{value} AS {sql.columns(SimulatedDomain, [name])}" for value, name in zip(values, names, strict=True)
    )
    lock = "SELECT pg_advisory_xact_lock(%s, %s); " if vendor == "postgresql" else ""
    return (
        f"{lock}INSERT INTO {domains} ({sql.columns(SimulatedDomain, names)}) "
        f"SELECT {sql.columns(SimulatedDomain, names, alias='new')} FROM (SELECT {new}) new "
        f"WHERE NOT EXISTS (SELECT 1 FROM {domains} made WHERE {column('uuid', 'made')} = {column('uuid', 'new')}) "
        f"AND (SELECT {sql.columns(Host, ['fail_next_creates'])} FROM {sql.table(Host)} "
        f"WHERE {sql.columns(Host, ['id'])} = {column('host_id', 'new')}) = 0 "
        f"AND (SELECT COALESCE(SUM({column('vcpus', 'held')}), 0) + {column('vcpus', 'new')} <= %s "
        f"AND COALESCE(SUM({column('ram_mib', 'held')}), 0) + {column('ram_mib', 'new')} <= %s "
        f"AND COALESCE(SUM({column('disk_gib', 'held')}), 0) + {column('disk_gib', 'new')} <= %s "
        f"FROM {domains} held WHERE {column('host_id', 'held')} = {column('host_id', 'new')}) "
        f"RETURNING {sql.columns(SimulatedDomain, ['uuid'])}"
    )
