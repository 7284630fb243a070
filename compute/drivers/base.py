"""The hypervisor driver interface (after Nova's ComputeDriver).

Every call is idempotent on the instance uuid: creating a domain that exists adopts it, destroying one that is
gone succeeds. Failures are split in two: TransientDriverError (retry later: connection lost, host busy) and
PermanentDriverError (retrying cannot help: bad image, invalid definition) — tasks retry the first and put the
instance in `error` on the second.
"""

from __future__ import annotations

import enum
import queue
import threading
from dataclasses import dataclass, field


class DriverError(Exception):
    """Base of every driver failure; the message is shown to operators and in the instance's event log."""


class TransientDriverError(DriverError):
    """The call may succeed if retried later."""


class PermanentDriverError(DriverError):
    """The call cannot succeed as asked; the instance goes to `error`."""


class DomainNotFound(PermanentDriverError):
    """The hypervisor has no domain with that uuid."""


class VolumeNotFound(PermanentDriverError):
    """The host's storage pool has no volume of that name."""


class PowerState(enum.StrEnum):
    RUNNING = "running"
    SHUTOFF = "shutoff"
    PAUSED = "paused"
    CRASHED = "crashed"
    BOOTING = "booting"  # created/started but not yet up (simulated boot time)
    STOPPING = "stopping"  # asked to shut down, not yet off
    NOSTATE = "nostate"


@dataclass(frozen=True)
class HostCapacity:
    """What a host physically has (before overcommit)."""

    vcpus: int
    ram_mib: int
    disk_gib: int


@dataclass(frozen=True)
class ImageSource:
    """Where the driver finds the image: a base disk (raw/qcow2) or a kernel + initrd pair."""

    disk_path: str = ""
    disk_format: str = "raw"
    kernel_path: str = ""
    initrd_path: str = ""
    kernel_cmdline: str = ""
    # A private image: a qcow2 file of the host's storage pool (by name) that the disk is made on, instead of disk_path.
    pool_file: str = ""


@dataclass(frozen=True)
class NicSpec:
    """One network interface of a domain: on Hangar network `network_id`, with the address Hangar allocated."""

    mac: str
    network_id: str
    ip: str
    prefix: int


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    ip: str
    hostname: str


@dataclass(frozen=True)
class NetworkSpec:
    """A tenant's private network as one host realizes it: isolated (nothing leaves the host), fixed DHCP leases."""

    id: str
    name: str
    cidr: str
    gateway_ip: str  # the host's own address on it (first usable): DHCP server, never routed onwards
    dhcp_hosts: tuple[DhcpHost, ...] = ()


@dataclass(frozen=True)
class FirewallRuleSpec:
    """Allow traffic: `direction` "in" or "out", `protocol` "tcp", "udp", "icmp" or "any", ports inclusive (tcp and
    udp only; None for all), from (in) or to (out) `cidr`. Everything inbound that no rule allows is dropped; replies
    to allowed traffic are allowed (stateful)."""

    direction: str
    protocol: str
    port_min: int | None
    port_max: int | None
    cidr: str


@dataclass(frozen=True)
class CloudInitSeed:
    """A NoCloud seed: the three documents cloud-init reads from a `cidata` volume."""

    meta_data: str
    user_data: str
    network_config: str


@dataclass(frozen=True)
class NatMapping:
    """1:1 NAT on a host: traffic to `public_ip` goes to the guest's `private_ip`, and the guest's leaves as it."""

    public_ip: str
    private_ip: str


@dataclass(frozen=True)
class InterfaceCounters:
    """Bytes through a domain's interfaces since the domain (re)started: counters reset with it."""

    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class DomainCounters:
    """A running domain's cumulative counters at one instant (they reset when the domain restarts); the sampler turns
    two readings into rates."""

    vcpus: int
    cpu_time_ns: int  # CPU time used by all its vCPUs together
    disk_read_bytes: int
    disk_write_bytes: int
    net_rx_bytes: int  # received by the guest
    net_tx_bytes: int  # sent by the guest


class ConsoleSession:
    """An open interactive serial console of one domain: bytes typed in, bytes the guest writes out.

    Used from two threads: one blocks in read(), the other writes. Only one session per domain is open at a time;
    opening another (`force`) ends this one, whose read() then returns None.
    """

    def read(self, timeout: float) -> bytes | None:
        """What the guest wrote, waiting up to `timeout` seconds: b"" if nothing came, None once the console closed."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Idempotent; a read() blocked in another thread returns None."""
        raise NotImplementedError


class QueuedConsole(ConsoleSession):
    """A console whose output arrives on another thread (a stream callback, a responder) and waits in a queue."""

    def __init__(self) -> None:
        self._output: queue.Queue[bytes | None] = queue.Queue()
        self._closed = threading.Event()

    def _received(self, data: bytes) -> None:
        self._output.put(data)

    def _finish(self) -> None:
        """The console ended: read() returns what was left, then None."""
        if not self._closed.is_set():
            self._closed.set()
            self._output.put(None)

    def read(self, timeout: float) -> bytes | None:
        if self._closed.is_set() and self._output.empty():
            return None
        try:
            return self._output.get(timeout=timeout)
        except queue.Empty:
            return b""


@dataclass(frozen=True)
class DomainSpec:
    """Everything a driver needs to create one domain."""

    uuid: str
    name: str
    vcpus: int
    ram_mib: int
    disk_gib: int
    image: ImageSource
    ssh_keys: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict)
    nics: tuple[NicSpec, ...] = ()
    seed: CloudInitSeed | None = None
    firewall: tuple[FirewallRuleSpec, ...] = ()
    # A file of the host's pool (a backup) whose content the new boot disk copies, instead of the image's base disk.
    disk_source: str = ""


@dataclass(frozen=True)
class DomainInfo:
    uuid: str
    state: PowerState
    private_ip: str = ""


class ComputeDriver:
    """One hypervisor host. Subclasses implement every method; all are idempotent on the instance uuid."""

    name = "base"

    def __init__(self, host) -> None:
        self.host = host

    def host_capacity(self) -> HostCapacity:
        raise NotImplementedError

    def list_domains(self) -> list[DomainInfo]:
        """Every domain this host has that Hangar could own (the reconciler compares them with the database)."""
        raise NotImplementedError

    def create(self, spec: DomainSpec) -> DomainInfo:
        """Define and start a domain; an existing domain with spec.uuid is adopted, never duplicated."""
        raise NotImplementedError

    def start(self, uuid: str) -> DomainInfo:
        raise NotImplementedError

    def stop(self, uuid: str, *, force: bool = False) -> DomainInfo:
        """Graceful (ACPI) shutdown with a timeout, then forced; `force` powers off at once."""
        raise NotImplementedError

    def reboot(self, uuid: str) -> DomainInfo:
        raise NotImplementedError

    def resize(self, uuid: str, *, vcpus: int, ram_mib: int, disk_gib: int) -> DomainInfo:
        """Only for a stopped domain: set vCPUs and memory, grow the disk (never shrink)."""
        raise NotImplementedError

    def destroy(self, uuid: str) -> None:
        """Power off, undefine and delete the domain's disks; succeeds if the domain is already gone."""
        raise NotImplementedError

    def state(self, uuid: str) -> DomainInfo:
        """Raises DomainNotFound if the host has no such domain."""
        raise NotImplementedError

    def migrate_to(self, uuid: str, target: ComputeDriver) -> DomainInfo:
        """Cold migration: moves the shut-off domain, with its disk, to `target`'s host; it ends shut off there and
        gone from here. Idempotent: a domain that is already on the target is left as it is there (and what is left
        of it here is cleaned up); DomainNotFound if neither host has it."""
        raise NotImplementedError

    def console_output(self, uuid: str, *, lines: int = 100) -> str:
        """The last lines of the domain's serial console; empty if the driver has none."""
        return ""

    def console_open(self, uuid: str) -> ConsoleSession:
        """The running domain's serial console, interactive; taken over from whoever had it open."""
        raise PermanentDriverError(f"the {self.name} driver has no interactive console")

    def domain_stats(self, uuids: list[str]) -> dict[str, DomainCounters]:
        """Counters of those of `uuids` that run on this host, in one call (a domain that is off is left out)."""
        raise NotImplementedError

    # --- networking: every call states the whole desired state, so repeating one is harmless ---

    def network_ensure(self, spec: NetworkSpec) -> None:
        """Creates the network on this host if missing and sets its DHCP host entries to exactly spec.dhcp_hosts."""
        raise NotImplementedError

    def network_leases_add(self, spec: NetworkSpec) -> None:
        """Creates the network on this host if missing and adds spec.dhcp_hosts to its DHCP host entries, replacing
        any entry with the same MAC or the same address; the other entries stay. A build states only its machine's
        lease this way; network_ensure (a finished deletion, the periodic sync) states the whole set again."""
        raise NotImplementedError

    def network_remove(self, network_id: str) -> None:
        """Removes the network from this host; succeeds if it is already gone."""
        raise NotImplementedError

    def firewall_apply(self, uuid: str, rules: tuple[FirewallRuleSpec, ...]) -> None:
        """Replaces the rules on every interface of the domain, live (a running guest sees the change at once)."""
        raise NotImplementedError

    def nat_apply(self, mappings: tuple[NatMapping, ...]) -> None:
        """Makes the host's Hangar-owned 1:1 NAT rules exactly `mappings` (adds, moves and removes as needed)."""
        raise NotImplementedError

    def interface_counters(self, uuid: str) -> InterfaceCounters:
        """Received and sent bytes of the domain's interfaces (guest's view: tx is traffic the guest sent out)."""
        raise NotImplementedError

    # --- storage: volumes and snapshots are files in the host's storage pool, named by Hangar; every call is
    # idempotent on that name ---

    def volume_create(self, name: str, *, size_gib: int, source: str = "") -> None:
        """Makes an empty volume of `size_gib` in the host's pool, or a copy of the pool's file `source` (a snapshot)
        grown to `size_gib`; a volume that exists already is kept (a retried create)."""
        raise NotImplementedError

    def volume_snapshot(self, name: str, *, source: str, domain: str = "", device: str = "") -> None:
        """Copies the pool's file `source` to a new file `name` (a snapshot), consistent as of one instant even while
        `source` is attached as `device` to the running `domain`; a snapshot that exists already is kept."""
        raise NotImplementedError

    def volume_delete(self, name: str) -> None:
        """Deletes the pool's file `name`; succeeds if it is already gone."""
        raise NotImplementedError

    def volume_exists(self, name: str) -> bool:
        raise NotImplementedError

    def volume_size_gib(self, name: str) -> int:
        """The volume's virtual size, in whole GiB (rounded up); raises VolumeNotFound if it is gone."""
        raise NotImplementedError

    def volume_attach(self, uuid: str, name: str, *, device: str) -> None:
        """Attaches the pool's file `name` to domain `uuid` as virtio disk `device` (vdb…): hot-plugged into a
        running domain, and kept in its definition across restarts. Attached already: nothing to do."""
        raise NotImplementedError

    def volume_detach(self, uuid: str, name: str) -> None:
        """Detaches the volume from the domain (live and in its definition) and waits until the guest let go of
        it; succeeds if it is not attached or the domain is gone."""
        raise NotImplementedError

    def volume_extend(self, name: str, *, size_gib: int, uuid: str = "", device: str = "") -> None:
        """Grows the volume to `size_gib` (never shrinks), online when it is attached as `device` to the running
        domain `uuid` (the guest sees the new size at once)."""
        raise NotImplementedError

    def volume_move_to(self, name: str, target: ComputeDriver) -> None:
        """Moves the unattached volume's file to `target`'s pool (a volume attached to a machine of another host).
        Idempotent: a file that is on the target already stays there, and what is left of it here is removed;
        VolumeNotFound if neither pool has it."""
        raise NotImplementedError

    def volumes_in_pool(self) -> list[str]:
        """The names of every volume and snapshot file Hangar keeps in this host's pool."""
        raise NotImplementedError

    # --- boot disks: copied to and restored from files of the host's storage pool (snapshots, backups) ---

    def disk_snapshot(self, uuid: str, *, name: str) -> None:
        """Copies the domain's boot disk to a new pool file `name` (a snapshot or a backup) that needs nothing else:
        a running domain's disk as it was at one instant (crash-consistent), a shut-off one's as it is. A copy that
        exists already is kept (a retried task)."""
        raise NotImplementedError

    def disk_restore(self, uuid: str, *, source: str) -> None:
        """Replaces the shut-off domain's boot disk with a copy of the pool file `source` (a backup), grown to the
        disk's current size if smaller. Safe to repeat."""
        raise NotImplementedError
