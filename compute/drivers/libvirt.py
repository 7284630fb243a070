"""The real hypervisor: QEMU domains through libvirt (libvirt-python, the optional `libvirt` extra).

Each instance is one persistent domain named `hangar-<uuid>` (the uuid is the instance's), with:
- a qcow2 overlay disk on the image's base disk (or a blank qcow2 disk for a kernel-only image), created and grown by
  libvirt's storage API in the host's `hangar` pool (libvirt runs `qemu-img create -f qcow2 -b base -F raw` and
  `qemu-img resize` on the host, so the same code works for qemu:///system and qemu+ssh://host/system);
- direct kernel boot when the image names a kernel (+ initrd, cmdline);
- a serial console logged (by virtlogd) to `<uuid>.console.log` in the same pool, which is how the portal reads it
  back, locally or remotely;
- ACPI, and virtio NICs with the MACs Hangar chose on Hangar's networks (or, for a spec without NICs, one NIC on a
  libvirt network the host has, else user-mode networking);
- a NoCloud seed: an ISO labelled `cidata` (genisoimage) uploaded to the pool as `<uuid>.seed.iso` and attached as
  a CD-ROM;
- an nwfilter `hangar-fw-<uuid>` on each of its NICs: the firewall, redefined live by firewall_apply.

Each Hangar network is an isolated libvirt network `hangar-net-<id>` (no <forward>: nothing leaves the host) whose
DHCP host entries are updated live. The 1:1 NAT of public addresses is the nftables table `ip hangar`, replaced as a
whole by nat_apply in the network namespace of the host's libvirtd (locally) or over SSH (qemu+ssh:// hosts).

Connections are opened once per host URI and process and reused; a connection that broke (libvirtd restarted) is
dropped and reopened on the next call. libvirt errors are classified: connection trouble and timeouts are
transient (the task retries), the rest permanent (the instance goes to `error`).
"""

# write-ok-file: libvirt API calls (pools, domains, volumes), not model writes

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit
from xml.etree import ElementTree

from django.conf import settings

from compute.drivers.base import (
    CloudInitSeed,
    ComputeDriver,
    ConsoleSession,
    DomainCounters,
    DomainInfo,
    DomainNotFound,
    DomainSpec,
    DriverError,
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

try:
    import libvirt
except ImportError as missing:
    # driver_for() imports this module only for libvirt hosts: their work fails with a reason an operator can act
    # on, instead of an ImportError, while simulated hosts keep working.
    raise PermanentDriverError(
        "The libvirt driver needs libvirt-python on this machine: pip install -e '.[libvirt]' "
        "(with Debian's libvirt-dev and pkg-config installed)."
    ) from missing
from compute.drivers.libvirt_xml import (
    DOMAIN_PREFIX,
    POOL_NAME,
    Nic,
    copy_target_xml,
    dhcp_host_xml,
    dhcp_hosts_of,
    disk_volume_xml,
    domain_xml,
    hangar_nics,
    nat_ruleset,
    network_name,
    network_xml,
    nwfilter_name,
    nwfilter_xml,
    pool_xml,
    raw_volume_xml,
    seed_volume_name,
    volume_disk_xml,
    volume_serial,
)

logger = logging.getLogger(__name__)

GIB = 1024**3
CONSOLE_TAIL_BYTES = 64 * 1024
COMMAND_TIMEOUT = 60  # seconds for genisoimage and nft
# The daemon that runs a local host's networks: its network namespace is where the bridges, and so the NAT, live.
NETWORK_DAEMON_PIDFILES = ("/run/libvirtd.pid", "/run/virtnetworkd.pid")
ANSI_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")

STATE_MAP = {
    libvirt.VIR_DOMAIN_NOSTATE: PowerState.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: PowerState.RUNNING,  # running, waiting on I/O
    libvirt.VIR_DOMAIN_PAUSED: PowerState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: PowerState.STOPPING,  # being shut down
    libvirt.VIR_DOMAIN_SHUTOFF: PowerState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: PowerState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: PowerState.PAUSED,
}

# The daemon went away, the link broke or something timed out: the same call may well succeed later.
TRANSIENT_ERROR_CODES = frozenset(
    {
        libvirt.VIR_ERR_SYSTEM_ERROR,
        libvirt.VIR_ERR_RPC,
        libvirt.VIR_ERR_NO_CONNECT,
        libvirt.VIR_ERR_INVALID_CONN,
        libvirt.VIR_ERR_OPERATION_TIMEOUT,
        libvirt.VIR_ERR_AUTH_UNAVAILABLE,
        libvirt.VIR_ERR_AGENT_UNRESPONSIVE,
        libvirt.VIR_ERR_RESOURCE_BUSY,
        libvirt.VIR_ERR_OPERATION_ABORTED,
    }
)
TRANSIENT_ERROR_DOMAINS = frozenset({libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE})
# Internal errors are transient only when they say the connection is gone.
TRANSIENT_MESSAGES = ("client socket is closed", "connection reset", "broken pipe", "end of file while reading")
CONNECTION_ERROR_CODES = frozenset(
    {libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN}
)


def _ignore_libvirt_errors(_context, _error) -> None:
    """libvirt prints every error to stderr by default; we raise and log them ourselves."""


libvirt.registerErrorHandler(_ignore_libvirt_errors, None)


def classify(error: libvirt.libvirtError, *, action: str = "") -> DriverError:
    """Turn a libvirt error into the driver error the task layer understands (transient: retry; permanent: fail)."""
    code = error.get_error_code()
    message = f"{action}: {error.get_error_message() or error}" if action else str(error.get_error_message() or error)
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return DomainNotFound(message)
    if code in TRANSIENT_ERROR_CODES or error.get_error_domain() in TRANSIENT_ERROR_DOMAINS:
        return TransientDriverError(message)
    if code == libvirt.VIR_ERR_INTERNAL_ERROR and any(text in message.lower() for text in TRANSIENT_MESSAGES):
        return TransientDriverError(message)
    return PermanentDriverError(message)


def _is_connection_error(error: libvirt.libvirtError) -> bool:
    code = error.get_error_code()
    if code in CONNECTION_ERROR_CODES or error.get_error_domain() in TRANSIENT_ERROR_DOMAINS:
        return True
    return code == libvirt.VIR_ERR_INTERNAL_ERROR and "client socket is closed" in str(error).lower()


# --- connections ------------------------------------------------------------------------------------------------
# Keyed by (pid, uri): a connection must not cross a fork (Celery's prefork pool forks after import).
_connections: dict[tuple[int, str], libvirt.virConnect] = {}
_connections_lock = threading.Lock()


def connection(uri: str) -> libvirt.virConnect:
    """The open connection to `uri` for this process, opened on first use and reopened if it broke."""
    key = (os.getpid(), uri)
    with _connections_lock:
        conn = _connections.get(key)
        if conn is not None:
            try:
                if conn.isAlive():
                    return conn
            except libvirt.libvirtError:
                pass
            _drop(key)
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError as error:
            # Cannot reach the daemon (down, restarting, network): always worth retrying.
            raise TransientDriverError(f"cannot connect to {uri}: {error.get_error_message() or error}") from error
        _connections[key] = conn
        return conn


def _drop(key: tuple[int, str]) -> None:
    conn = _connections.pop(key, None)
    if conn is not None:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


def forget_connection(uri: str) -> None:
    with _connections_lock:
        _drop((os.getpid(), uri))


def close_connections() -> None:
    """Close every connection of this process (tests; the in-memory test:/// driver forgets its state then)."""
    with _connections_lock:
        for key in list(_connections):
            _drop(key)


def is_local_uri(uri: str) -> bool:
    """qemu:///system and test:///default are on this machine; qemu+ssh://host/system is not."""
    parts = urlsplit(uri)
    return not parts.hostname and "+" not in parts.scheme


def power_state(libvirt_state: int) -> PowerState:
    return STATE_MAP.get(libvirt_state, PowerState.NOSTATE)


T = TypeVar("T")


def _or_none(lookup: Callable[[], T], missing_code: int) -> T | None:
    """What `lookup` finds, or None when libvirt answers that there is no such object (`missing_code`)."""
    try:
        return lookup()
    except libvirt.libvirtError as error:
        if error.get_error_code() == missing_code:
            return None
        raise


class LibvirtDriver(ComputeDriver):
    """A QEMU/KVM host reached through libvirt at host.uri (qemu:///system, qemu+ssh://user@host/system)."""

    name = "libvirt"
    poll_interval = 0.25
    # A guest can miss one ACPI event (still booting, acpid not up yet): ask again this often until the timeout.
    shutdown_retry_interval = 5.0

    def __init__(self, host) -> None:
        super().__init__(host)
        self.uri = host.uri or "qemu:///system"
        self.shutdown_timeout = float(settings.LIBVIRT_SHUTDOWN_TIMEOUT)
        # Hosts that share one libvirt daemon (tests, CI) tell their domains apart by the pool their disks are in.
        self.pool_name = getattr(host, "storage_pool", "") or POOL_NAME

    # --- plumbing -------------------------------------------------------------------------------------------------
    def _call(self, action: str, operation: Callable[[libvirt.virConnect], T]) -> T:
        """Run `operation` on this host's connection; a broken connection is reopened and the call tried once more.

        Every operation is idempotent (it looks before it acts), so running it again after a dropped link is safe.
        """
        for attempt in (1, 2):
            conn = connection(self.uri)
            try:
                return operation(conn)
            except libvirt.libvirtError as error:
                if _is_connection_error(error):
                    forget_connection(self.uri)
                    if attempt == 1:
                        logger.info("libvirt connection to %s broke during %s; reconnecting", self.uri, action)
                        continue
                raise classify(error, action=action) from error
        raise AssertionError("unreachable")

    @staticmethod
    def _lookup(conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain | None:
        return _or_none(lambda: conn.lookupByUUIDString(uuid), libvirt.VIR_ERR_NO_DOMAIN)

    def _require(self, conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain:
        domain = self._lookup(conn, uuid)
        if domain is None:
            raise DomainNotFound(f"host {self.host} has no domain {uuid}")
        return domain

    def _domain_type(self, conn: libvirt.virConnect) -> str:
        # libvirt's in-process test driver only knows its own domain type.
        return "test" if conn.getType().lower() == "test" else settings.LIBVIRT_DOMAIN_TYPE

    def _pool(self, conn: libvirt.virConnect) -> libvirt.virStoragePool:
        """The host's storage pool (`hangar`, under HANGAR_IMAGE_DIR/instances; another name, under
        HANGAR_IMAGE_DIR/pools/<name>); defined, built and started if missing."""
        try:
            pool = conn.storagePoolLookupByName(self.pool_name)
        except libvirt.libvirtError as error:
            if error.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise
            folder = "instances" if self.pool_name == POOL_NAME else f"pools/{self.pool_name}"
            path = str(settings.HANGAR_IMAGE_DIR / folder)
            try:
                pool = conn.storagePoolDefineXML(pool_xml(path=path, name=self.pool_name), 0)
            except libvirt.libvirtError:
                # Another worker defined it a moment ago.
                pool = conn.storagePoolLookupByName(self.pool_name)
            else:
                pool.setAutostart(1)
                pool.build(0)  # mkdir -p on the host
        if not pool.isActive():
            try:
                pool.create(0)
            except libvirt.libvirtError:
                if not pool.isActive():
                    # Its directory may have gone (a cleaned host): recreate it, then start the pool.
                    pool.build(0)
                    pool.create(0)
        return pool

    @staticmethod
    def _volume(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
        return _or_none(lambda: pool.storageVolLookupByName(name), libvirt.VIR_ERR_NO_STORAGE_VOL)

    def _network(self, conn: libvirt.virConnect) -> str:
        """A running libvirt network of the host ("default" if it runs), or "" for user-mode networking."""
        names = sorted(network.name() for network in conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE))
        if "default" in names:
            return "default"
        return names[0] if names else ""

    def _check_image(self, spec: DomainSpec) -> None:
        """On a local host, a missing image file is a permanent error before anything is created."""
        if not is_local_uri(self.uri) or self.uri.startswith("test:"):
            return
        for label, path in (
            ("base disk", spec.image.disk_path),
            ("kernel", spec.image.kernel_path),
            ("initrd", spec.image.initrd_path),
        ):
            if path and not os.path.isfile(path):
                raise PermanentDriverError(f"image {label} {path} does not exist on host {self.host}")
        if not spec.image.disk_path and not spec.image.kernel_path and not spec.image.pool_file:
            raise PermanentDriverError("the image names neither a base disk nor a kernel")

    @staticmethod
    def _private_ip(domain: libvirt.virDomain) -> str:
        """The fixed DHCP address of the domain's first NIC on a Hangar network (known before the guest boots, and
        whether or not it asks for a lease), else the address of a DHCP lease."""
        nics = hangar_nics(domain.XMLDesc(0))
        if nics:
            network = _or_none(
                lambda: domain.connect().networkLookupByName(nics[0].network), libvirt.VIR_ERR_NO_NETWORK
            )
            entry = dhcp_hosts_of(network.XMLDesc(0)).get(nics[0].mac) if network is not None else None
            if entry:
                return ElementTree.fromstring(entry).get("ip", "")
        try:
            addresses = domain.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0)
        except libvirt.libvirtError:
            return ""
        for interface in (addresses or {}).values():
            for address in interface.get("addrs") or []:
                if address.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4:
                    return address.get("addr", "")
        return ""

    def _info(self, domain: libvirt.virDomain) -> DomainInfo:
        state = power_state(domain.state()[0])
        private_ip = self._private_ip(domain) if state == PowerState.RUNNING else ""
        return DomainInfo(uuid=domain.UUIDString(), state=state, private_ip=private_ip)

    def _wait_off(self, domain: libvirt.virDomain, *, timeout: float) -> bool:
        """Ask for an ACPI shutdown (again every shutdown_retry_interval) until the domain is off or time is up."""
        deadline = time.monotonic() + timeout
        next_request = 0.0
        while domain.isActive():
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= next_request:
                try:
                    domain.shutdown()
                except libvirt.libvirtError as error:
                    # It went off between isActive() and shutdown().
                    if error.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                        raise
                next_request = now + self.shutdown_retry_interval
            time.sleep(self.poll_interval)
        return True

    @staticmethod
    def _power_off(domain: libvirt.virDomain) -> None:
        try:
            domain.destroy()
        except libvirt.libvirtError as error:
            if error.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:  # already off
                raise

    # --- the interface --------------------------------------------------------------------------------------------
    def host_capacity(self) -> HostCapacity:
        """CPUs and memory as libvirt reports them; disk from the pool (else what the operator entered).

        What is *used* is our own accounting (the scheduler counts instances), since the test driver reports no
        free memory and a shared host's free memory says little about what Hangar may place there.
        """

        def operation(conn):
            info = conn.getInfo()
            ram_mib = int(info[1]) or self.host.ram_mib
            vcpus = int(info[2]) or self.host.vcpus
            try:
                disk_gib = int(self._pool(conn).info()[1] // GIB) or self.host.disk_gib
            except libvirt.libvirtError:
                disk_gib = self.host.disk_gib
            return HostCapacity(vcpus=vcpus, ram_mib=ram_mib, disk_gib=disk_gib)

        return self._call("host capacity", operation)

    def list_domains(self) -> list[DomainInfo]:
        def operation(conn):
            return [
                self._info(domain)
                for domain in conn.listAllDomains(0)
                if domain.name().startswith(DOMAIN_PREFIX) and self._belongs_here(conn, domain)
            ]

        return self._call("list domains", operation)

    def create(self, spec: DomainSpec) -> DomainInfo:
        def operation(conn):
            domain = self._lookup(conn, spec.uuid)
            if domain is None:
                self._check_image(spec)
                # Networks first: a host that lacks one fails the create before anything is made.
                nics = tuple(Nic(network=self._active_network(conn, nic.network_id), mac=nic.mac) for nic in spec.nics)
                pool = self._pool(conn)
                disk = self._volume(pool, f"{spec.uuid}.qcow2")
                base_path, base_format = spec.image.disk_path, spec.image.disk_format or "raw"
                if spec.image.pool_file:
                    # A private image: a qcow2 file of this host's pool.
                    base_path, base_format = self._require_volume(pool, spec.image.pool_file).path(), "qcow2"
                if disk is None and spec.disk_source:
                    # Restored from a backup: a standalone copy of it, grown to the machine's size.
                    disk = self._copy_volume(
                        conn,
                        self._require_volume(pool, spec.disk_source),
                        pool,
                        xml=disk_volume_xml(name=f"{spec.uuid}.qcow2", capacity_gib=spec.disk_gib),
                    )
                    self._grow(disk, spec.disk_gib)
                if disk is None:
                    disk = pool.createXML(
                        disk_volume_xml(
                            name=f"{spec.uuid}.qcow2",
                            capacity_gib=spec.disk_gib,
                            base_path=base_path,
                            base_format=base_format,
                        ),
                        0,
                    )
                console_path = os.path.join(os.path.dirname(disk.path()), f"{spec.uuid}.console.log")
                if nics:
                    self._define_filter(conn, spec.uuid, spec.firewall)
                seed_path = self._upload_seed(conn, pool, spec.uuid, spec.seed) if spec.seed else ""
                xml = domain_xml(
                    spec,
                    domain_type=self._domain_type(conn),
                    disk_path=disk.path(),
                    console_path=console_path,
                    network="" if nics else self._network(conn),
                    nics=nics,
                    firewall=nwfilter_name(spec.uuid) if nics else "",
                    seed_path=seed_path,
                )
                domain = conn.defineXML(xml)
            if not domain.isActive():
                domain.create()
            return self._info(domain)

        return self._call("create", operation)

    def start(self, uuid: str) -> DomainInfo:
        def operation(conn):
            domain = self._require(conn, uuid)
            if not domain.isActive():
                try:
                    domain.create()
                except libvirt.libvirtError as error:
                    if error.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:  # already running
                        raise
            return self._info(domain)

        return self._call("start", operation)

    def stop(self, uuid: str, *, force: bool = False) -> DomainInfo:
        def operation(conn):
            domain = self._require(conn, uuid)
            if domain.isActive() and (force or not self._wait_off(domain, timeout=self.shutdown_timeout)):
                if not force:
                    logger.warning("domain %s ignored ACPI shutdown for %ss; powering off", uuid, self.shutdown_timeout)
                self._power_off(domain)
            return self._info(domain)

        return self._call("stop", operation)

    def reboot(self, uuid: str) -> DomainInfo:
        """A soft reboot: ACPI shutdown (powered off after the timeout), then start; ends running in every case."""

        def operation(conn):
            domain = self._require(conn, uuid)
            if domain.isActive() and not self._wait_off(domain, timeout=self.shutdown_timeout):
                self._power_off(domain)
            if not domain.isActive():
                domain.create()
            return self._info(domain)

        return self._call("reboot", operation)

    def resize(self, uuid: str, *, vcpus: int, ram_mib: int, disk_gib: int) -> DomainInfo:
        def operation(conn):
            domain = self._require(conn, uuid)
            if domain.isActive():
                raise PermanentDriverError(f"domain {uuid} must be stopped to be resized")
            root = ElementTree.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            for tag in ("memory", "currentMemory"):
                element = root.find(tag)
                if element is None:
                    element = ElementTree.SubElement(root, tag)
                element.set("unit", "MiB")
                element.text = str(ram_mib)
            vcpu = root.find("vcpu")
            if vcpu is None:
                vcpu = ElementTree.SubElement(root, "vcpu")
            vcpu.attrib.pop("current", None)
            vcpu.text = str(vcpus)
            domain = conn.defineXML(ElementTree.tostring(root, encoding="unicode"))
            pool = self._pool(conn)
            disk = self._volume(pool, f"{uuid}.qcow2")
            if disk is None:
                raise PermanentDriverError(f"domain {uuid} has no disk {uuid}.qcow2 in pool {self.pool_name}")
            wanted = disk_gib * GIB
            if disk.info()[1] < wanted:  # grow only: shrinking a disk under a file system destroys data
                disk.resize(wanted, 0)
            return self._info(domain)

        return self._call("resize", operation)

    def destroy(self, uuid: str) -> None:
        def operation(conn):
            domain = self._lookup(conn, uuid)
            if domain is not None:
                if domain.isActive():
                    self._power_off(domain)
                try:
                    domain.undefineFlags(
                        libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                    )
                except libvirt.libvirtError as error:
                    if error.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
            self._remove_volumes(self._pool(conn), uuid)
            # Undefined only now: a domain that still referenced it would keep it in use.
            self._undefine_filter(conn, nwfilter_name(uuid))

        self._call("destroy", operation)

    def state(self, uuid: str) -> DomainInfo:
        return self._call("state", lambda conn: self._info(self._require(conn, uuid)))

    # --- boot disks restored from backups, private images ------------------------------------------------------
    @staticmethod
    def _grow(volume: libvirt.virStorageVol, gib: int) -> None:
        if volume.info()[1] < gib * GIB:  # grow only
            volume.resize(gib * GIB, 0)

    def disk_snapshot(self, uuid: str, *, name: str) -> None:
        """The boot disk is the pool file `<uuid>.qcow2`: copied like a volume, by a live block copy while the domain
        runs (its disk as of one instant) and by qemu-img convert while it is off; either copy has no backing file."""
        self.volume_snapshot(name, source=uuid, domain=uuid)

    def disk_restore(self, uuid: str, *, source: str) -> None:
        def operation(conn):
            domain = self._require(conn, uuid)
            if domain.isActive():
                raise PermanentDriverError(f"domain {uuid} must be shut off to have its disk replaced")
            pool = self._pool(conn)
            backup = self._require_volume(pool, source)
            name = f"{uuid}.qcow2"
            disk = self._volume(pool, name)
            size_gib = max(1, -(-(disk.info()[1] if disk is not None else backup.info()[1]) // GIB))
            if disk is not None:
                disk.delete(0)
            # A retry after a crash here finds no disk and copies again.
            copy = self._copy_volume(conn, backup, pool, xml=disk_volume_xml(name=name, capacity_gib=size_gib))
            self._grow(copy, size_gib)

        self._call("restore the disk", operation)

    # --- networking -----------------------------------------------------------------------------------------------
    def network_ensure(self, spec: NetworkSpec) -> None:
        """Defines and starts the isolated network if missing, then makes its DHCP host entries exactly the spec's.

        Entries change live (networkUpdate) on the running network and in its persistent definition, so guests that
        are already on it keep their links.
        """
        self._dhcp_hosts_set(spec, only_the_specs=False, what="network ensure")

    def network_leases_add(self, spec: NetworkSpec) -> None:
        """As network_ensure, but only the spec's entries are added (live and in the definition); an entry with one
        of their MACs or addresses is replaced, every other entry stays."""
        self._dhcp_hosts_set(spec, only_the_specs=True, what="network leases")

    def _dhcp_hosts_set(self, spec: NetworkSpec, *, only_the_specs: bool, what: str) -> None:
        """Brings the network up and adds the spec's DHCP host entries. Entries that differ are removed first: every
        other one, or (`only_the_specs`) only those with one of the spec's MACs or addresses."""
        try:
            definition = network_xml(spec)
        except ValueError as error:
            raise PermanentDriverError(f"network {spec.id}: {error}") from error

        def operation(conn):
            network = self._network_up(conn, spec.id, definition)
            current = dhcp_hosts_of(network.XMLDesc(0))
            wanted = {host.mac.lower(): dhcp_host_xml(host) for host in spec.dhcp_hosts}
            addresses = {ElementTree.fromstring(entry).get("ip") for entry in wanted.values()}
            flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE | libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
            section = libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST
            for mac, entry in current.items():
                if mac in wanted and _same_host(entry, wanted[mac]):
                    continue
                if not only_the_specs or mac in wanted or ElementTree.fromstring(entry).get("ip") in addresses:
                    network.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, section, -1, entry, flags)
            for mac, entry in wanted.items():
                if mac not in current or not _same_host(current[mac], entry):
                    network.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, section, -1, entry, flags)

        self._call(what, operation)

    def _network_up(self, conn, network_id: str, definition: str):
        """The network, defined, started and set to autostart if it was not."""
        name = network_name(network_id)
        network = self._lookup_network(conn, name)
        if network is None:
            try:
                network = conn.networkDefineXML(definition)
            except libvirt.libvirtError:
                network = self._lookup_network(conn, name)  # another worker defined it a moment ago
                if network is None:
                    raise
        if not network.isActive():
            network.create()
        if not network.autostart():
            network.setAutostart(1)
        return network

    def network_remove(self, network_id: str) -> None:
        def operation(conn):
            network = self._lookup_network(conn, network_name(network_id))
            if network is None:
                return
            if network.isActive():
                network.destroy()
            try:
                network.undefine()
            except libvirt.libvirtError as error:
                if error.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
                    raise

        self._call("network remove", operation)

    def firewall_apply(self, uuid: str, rules: tuple[FirewallRuleSpec, ...]) -> None:
        """Redefines the domain's nwfilter; libvirt rebuilds the rules of every running interface that uses it."""

        def operation(conn):
            self._require(conn, uuid)
            self._define_filter(conn, uuid, rules)

        self._call("firewall", operation)

    def nat_apply(self, mappings: tuple[NatMapping, ...]) -> None:
        """Replaces the host's nftables table `ip hangar` with exactly `mappings` (one nft transaction)."""
        try:
            ruleset = nat_ruleset(mappings)
        except ValueError as error:
            raise PermanentDriverError(f"1:1 NAT: {error}") from error
        command = self._nft_command()
        if command is None:
            return
        try:
            result = subprocess.run(
                command, input=ruleset, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
            )
        except FileNotFoundError as error:
            raise PermanentDriverError(f"1:1 NAT needs {command[0]} on this machine: {error}") from error
        except subprocess.TimeoutExpired as error:
            raise TransientDriverError(f"1:1 NAT: {' '.join(command)} did not finish") from error
        if result.returncode != 0:
            message = f"1:1 NAT on {self.host}: {result.stderr.strip() or result.stdout.strip()}"
            # ssh exits 255 when it cannot reach the host: worth retrying; nft rejecting the rule set is not.
            raise (TransientDriverError if result.returncode == 255 else PermanentDriverError)(message)

    def interface_counters(self, uuid: str) -> InterfaceCounters:
        """Bytes through the domain's interfaces, as the guest sees them; zero while it is off (nothing counts)."""

        def operation(conn):
            domain = self._require(conn, uuid)
            if not domain.isActive():
                return InterfaceCounters(rx_bytes=0, tx_bytes=0)
            root = ElementTree.fromstring(domain.XMLDesc(0))
            rx = tx = 0
            for target in root.findall("devices/interface/target"):
                # libvirt reports a tap device from the guest's side: rx is what the guest received.
                stats = domain.interfaceStats(target.get("dev"))
                rx += stats[0]
                tx += stats[4]
            return InterfaceCounters(rx_bytes=rx, tx_bytes=tx)

        return self._call("interface counters", operation)

    # --- networking plumbing --------------------------------------------------------------------------------------
    @staticmethod
    def _lookup_network(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork | None:
        return _or_none(lambda: conn.networkLookupByName(name), libvirt.VIR_ERR_NO_NETWORK)

    def _active_network(self, conn: libvirt.virConnect, network_id: str) -> str:
        """The libvirt network of a NIC, started if it is down (e.g. after a host reboot without autostart)."""
        name = network_name(network_id)
        network = self._lookup_network(conn, name)
        if network is None:
            raise PermanentDriverError(f"host {self.host} has no network {name}: network_ensure must come first")
        if not network.isActive():
            network.create()
        return name

    def _define_filter(self, conn: libvirt.virConnect, uuid: str, rules: tuple[FirewallRuleSpec, ...]) -> None:
        existing = _or_none(lambda: conn.nwfilterLookupByName(nwfilter_name(uuid)), libvirt.VIR_ERR_NO_NWFILTER)
        try:
            # Redefining under the same name and uuid updates the filter in place (and on running interfaces).
            definition = nwfilter_xml(uuid, rules, filter_uuid=existing.UUIDString() if existing else "")
        except ValueError as error:
            raise PermanentDriverError(f"firewall of {uuid}: {error}") from error
        conn.nwfilterDefineXML(definition)

    @staticmethod
    def _undefine_filter(conn: libvirt.virConnect, name: str) -> None:
        try:
            conn.nwfilterLookupByName(name).undefine()
        except libvirt.libvirtError as error:
            if error.get_error_code() not in (libvirt.VIR_ERR_NO_NWFILTER, libvirt.VIR_ERR_NO_SUPPORT):
                raise

    def _upload_seed(
        self, conn: libvirt.virConnect, pool: libvirt.virStoragePool, uuid: str, seed: CloudInitSeed
    ) -> str:
        """Builds the `cidata` ISO here and uploads it into the host's pool (so remote hosts work alike)."""
        image = build_seed_iso(seed)
        name = seed_volume_name(uuid)
        self._delete_volume(pool, name)  # a retried create may bring a different seed
        volume = pool.createXML(raw_volume_xml(name=name, size_bytes=len(image)), 0)
        self._upload(conn, volume, image)
        return volume.path()

    @staticmethod
    def _upload(conn: libvirt.virConnect, volume: libvirt.virStorageVol, data: bytes) -> None:
        stream = conn.newStream(0)
        volume.upload(stream, 0, len(data), 0)
        try:
            for offset in range(0, len(data), 256 * 1024):
                stream.send(data[offset : offset + 256 * 1024])
            stream.finish()
        except libvirt.libvirtError:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            raise

    def _delete_volume(self, pool: libvirt.virStoragePool, name: str) -> None:
        volume = self._volume(pool, name)
        if volume is not None:
            try:
                volume.delete(0)
            except libvirt.libvirtError as error:
                if error.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise

    def _nft_command(self) -> list[str] | None:
        """`nft -f -` where the host's bridges are: over SSH for a remote host, else in the namespace of the local
        network daemon (CI runs libvirtd inside a network namespace of its own). None for libvirt's in-process test
        driver, whose "host" has no network stack to apply rules to."""
        parts = urlsplit(self.uri)
        if parts.scheme == "test":
            return None
        if not is_local_uri(self.uri):
            target = f"{parts.username}@{parts.hostname}" if parts.username else str(parts.hostname)
            port = ["-p", str(parts.port)] if parts.port else []
            return ["ssh", "-o", "BatchMode=yes", *port, target, "sudo", "-n", "nft", "-f", "-"]
        command = ["nft", "-f", "-"]
        namespace = _network_daemon_namespace()
        if namespace:
            command = ["nsenter", f"--net={namespace}", *command]
        return command if os.geteuid() == 0 else ["sudo", "-n", *command]

    def console_output(self, uuid: str, *, lines: int = 100) -> str:
        """The last `lines` lines of the serial console log ("" if the domain never started or is gone)."""

        def operation(conn):
            pool = self._pool(conn)
            name = f"{uuid}.console.log"
            volume = self._volume(pool, name)
            if volume is None:
                pool.refresh(0)
                volume = self._volume(pool, name)
            if volume is None:
                return b""
            return self._tail(conn, volume)

        data = self._call("console", operation)
        return _last_lines(data, lines)

    def console_open(self, uuid: str) -> ConsoleSession:
        from compute.drivers.libvirt_console import LibvirtConsole

        return LibvirtConsole(uri=self.uri, uuid=uuid)

    def domain_stats(self, uuids: list[str]) -> dict[str, DomainCounters]:
        """One getAllDomainStats call for the host's running domains; those not in `uuids` are left out."""
        wanted = set(uuids)
        stats = (
            libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
            | libvirt.VIR_DOMAIN_STATS_VCPU
            | libvirt.VIR_DOMAIN_STATS_BLOCK
            | libvirt.VIR_DOMAIN_STATS_INTERFACE
        )

        def operation(conn):
            readings = {}
            for domain, values in conn.getAllDomainStats(stats, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE):
                uuid = domain.UUIDString()
                if uuid in wanted:
                    readings[uuid] = _counters(values)
            return readings

        return self._call("domain stats", operation)

    def _tail(self, conn: libvirt.virConnect, volume: libvirt.virStorageVol) -> bytes:
        path = volume.path()
        if is_local_uri(self.uri):
            try:
                with open(path, "rb") as handle:
                    handle.seek(0, os.SEEK_END)
                    handle.seek(max(0, handle.tell() - CONSOLE_TAIL_BYTES))
                    return handle.read()
            except OSError:
                pass  # e.g. virtlogd's file is root-only and we are not root: ask libvirt instead
        # Remote host (or an unreadable local file): stream the end of the file through libvirt.
        size = volume.info()[1]
        offset = max(0, size - CONSOLE_TAIL_BYTES)
        stream = conn.newStream(0)
        chunks: list[bytes] = []
        volume.download(stream, offset, size - offset, 0)
        stream.recvAll(lambda _stream, data, _opaque: chunks.append(data), None)
        stream.finish()
        return b"".join(chunks)

    # --- cold migration -------------------------------------------------------------------------------------------
    def _belongs_here(self, conn: libvirt.virConnect, domain: libvirt.virDomain) -> bool:
        """Whether the domain is this host's: on a daemon shared by several hosts, the one whose pool holds its disk
        (a disk in no pool belongs to the host with the default pool)."""
        disk = self._disk_path(domain)
        if not disk:
            return self.pool_name == POOL_NAME
        pools = {}
        for pool in conn.listAllStoragePools(0):
            path = ElementTree.fromstring(pool.XMLDesc(0)).findtext("target/path")
            if path:
                pools[os.path.normpath(path)] = pool.name()
        return pools.get(os.path.dirname(os.path.normpath(disk)), POOL_NAME) == self.pool_name

    @staticmethod
    def _disk_path(domain: libvirt.virDomain) -> str:
        root = ElementTree.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        source = root.find("devices/disk[@device='disk']/source")
        return source.get("file", "") if source is not None else ""

    def migrate_to(self, uuid: str, target: ComputeDriver) -> DomainInfo:
        """Moves the shut-off domain and its disk to `target`: on the same daemon (two pools of one host) the disk
        is copied into the target's pool and the definition pointed at it; on another daemon the disk is streamed
        over and the domain defined there and undefined here. The base image must be at the same path on both.
        Idempotent: a domain already on the target stays there, and what is left of it here is removed."""
        if not isinstance(target, LibvirtDriver):
            raise PermanentDriverError(f"host {self.host} can only move machines to other libvirt hosts")
        if target.uri == self.uri:
            return self._call("move between pools", lambda conn: self._move_between_pools(conn, uuid, target))
        return self._move_between_daemons(uuid, target)

    def _move_between_pools(self, conn: libvirt.virConnect, uuid: str, target: LibvirtDriver) -> DomainInfo:
        domain = self._require(conn, uuid)
        source_pool, target_pool = self._pool(conn), target._pool(conn)
        name = f"{uuid}.qcow2"
        if self._belongs_here(conn, domain):
            if domain.isActive():
                raise PermanentDriverError(f"domain {uuid} must be shut off to be moved")
            disk = self._volume(source_pool, name)
            if disk is None:
                raise PermanentDriverError(f"domain {uuid} has no disk {name} in pool {self.pool_name}")
            copy = self._volume(target_pool, name) or self._copy_volume(conn, disk, target_pool)
            seed = self._volume(source_pool, seed_volume_name(uuid))
            if seed is not None:
                seed = self._volume(target_pool, seed.name()) or self._copy_volume(
                    conn, seed, target_pool, xml=raw_volume_xml(name=seed.name(), size_bytes=seed.info()[1])
                )
            root = ElementTree.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            self._repoint(
                root,
                disk_path=copy.path(),
                console_dir=os.path.dirname(copy.path()),
                uuid=uuid,
                seed_path=seed.path() if seed is not None else "",
            )
            domain = conn.defineXML(ElementTree.tostring(root, encoding="unicode"))
        self._remove_volumes(source_pool, uuid)
        return target._info(domain)

    def _copy_volume(
        self, conn: libvirt.virConnect, disk: libvirt.virStorageVol, pool: libvirt.virStoragePool, *, xml: str = ""
    ) -> libvirt.virStorageVol:
        """A copy of `disk` (a qcow2 disk unless `xml` describes the copy) in `pool` on the same daemon (libvirt runs
        qemu-img convert on the host)."""
        xml = xml or disk_volume_xml(name=disk.name(), capacity_gib=max(1, -(-disk.info()[1] // GIB)))
        if conn.getType().lower() == "test":
            # libvirt's test driver keeps no data and cannot clone across pools: an empty volume stands in.
            return pool.createXML(xml, 0)
        return pool.createXMLFrom(xml, disk, 0)

    @staticmethod
    def _repoint(
        root: ElementTree.Element, *, disk_path: str, console_dir: str, uuid: str, seed_path: str = ""
    ) -> None:
        source = root.find("devices/disk[@device='disk']/source")
        if source is not None:
            source.set("file", disk_path)
        seed = root.find("devices/disk[@device='cdrom']/source")
        if seed is not None and seed_path:
            seed.set("file", seed_path)
        log = root.find("devices/serial/log")
        if log is not None:
            log.set("file", os.path.join(console_dir, f"{uuid}.console.log"))

    def _move_between_daemons(self, uuid: str, target: LibvirtDriver) -> DomainInfo:
        name = f"{uuid}.qcow2"

        def define_on_target(target_conn):
            if target._lookup(target_conn, uuid) is not None:
                return None  # moved already
            source_conn = connection(self.uri)
            domain = self._require(source_conn, uuid)
            if domain.isActive():
                raise PermanentDriverError(f"domain {uuid} must be shut off to be moved")
            disk = self._volume(self._pool(source_conn), name)
            if disk is None:
                raise PermanentDriverError(f"domain {uuid} has no disk {name} in pool {self.pool_name}")
            pool = target._pool(target_conn)
            copy = self._volume(pool, name)
            if copy is not None:
                copy.delete(0)  # a copy an interrupted attempt left half-done
            size = disk.info()[1]
            copy = pool.createXML(disk_volume_xml(name=name, capacity_gib=max(1, -(-size // GIB))), 0)
            _stream_volume(source_conn, disk, target_conn, copy)
            seed, seed_path = self._volume(self._pool(source_conn), seed_volume_name(uuid)), ""
            if seed is not None:
                target._delete_volume(pool, seed.name())
                seed_copy = pool.createXML(raw_volume_xml(name=seed.name(), size_bytes=seed.info()[1]), 0)
                _stream_volume(source_conn, seed, target_conn, seed_copy)
                seed_path = seed_copy.path()
            firewall = _or_none(
                lambda: source_conn.nwfilterLookupByName(nwfilter_name(uuid)), libvirt.VIR_ERR_NO_NWFILTER
            )
            if firewall is not None:
                target_conn.nwfilterDefineXML(firewall.XMLDesc(0))  # the domain's NICs refer to it
            root = ElementTree.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            self._repoint(
                root,
                disk_path=copy.path(),
                console_dir=os.path.dirname(copy.path()),
                uuid=uuid,
                seed_path=seed_path,
            )
            target_conn.defineXML(ElementTree.tostring(root, encoding="unicode"))
            return None

        target._call("receive a moved domain", define_on_target)

        def forget_here(conn):
            domain = self._lookup(conn, uuid)
            if domain is not None:
                domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
            self._remove_volumes(self._pool(conn), uuid)
            self._undefine_filter(conn, nwfilter_name(uuid))

        self._call("remove a moved domain", forget_here)
        return target.state(uuid)

    # --- storage: volumes and snapshots are `<name>.qcow2` files in the host's pool ---------------------------------
    detach_timeout = 30.0  # how long a guest may take to let go of a hot-unplugged disk
    copy_timeout = 1800.0  # how long a live block copy (a snapshot of an attached volume) may take

    @staticmethod
    def _file(name: str) -> str:
        return f"{name}.qcow2"

    def _require_volume(self, pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol:
        volume = self._volume(pool, self._file(name))
        if volume is None:
            raise VolumeNotFound(f"host {self.host} has no volume {name} in pool {self.pool_name}")
        return volume

    def volume_create(self, name: str, *, size_gib: int, source: str = "") -> None:
        def operation(conn):
            pool = self._pool(conn)
            if self._volume(pool, self._file(name)) is not None:
                return
            if not source:
                pool.createXML(disk_volume_xml(name=self._file(name), capacity_gib=size_gib), 0)
                return
            original = self._require_volume(pool, source)
            copy = self._copy_volume(conn, original, pool, xml=self._copy_xml(name, original))
            if copy.info()[1] < size_gib * GIB:
                copy.resize(size_gib * GIB, 0)

        self._call("create a volume", operation)

    def _copy_xml(self, name: str, original: libvirt.virStorageVol) -> str:
        return disk_volume_xml(name=self._file(name), capacity_gib=max(1, -(-original.info()[1] // GIB)))

    def volume_snapshot(self, name: str, *, source: str, domain: str = "", device: str = "") -> None:
        def operation(conn):
            pool = self._pool(conn)
            if self._volume(pool, self._file(name)) is not None:
                return
            original = self._require_volume(pool, source)
            running = self._lookup(conn, domain) if domain else None
            if running is None or not running.isActive() or not self._attached_as(running, original.path()):
                self._copy_volume(conn, original, pool, xml=self._copy_xml(name, original))
                return
            # In use by a running guest (which holds the file's write lock): a block copy mirrors the disk into the
            # new file while the guest keeps writing; once in step, ending the job leaves the copy as of that instant.
            copy = pool.createXML(self._copy_xml(name, original), 0)
            try:
                self._block_copy(running, self._attached_as(running, original.path()), copy.path())
            except BaseException:
                self._delete_volume(pool, self._file(name))
                raise

        self._call("snapshot a volume", operation)

    def _block_copy(self, domain: libvirt.virDomain, device: str, path: str) -> None:
        flags = libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB
        domain.blockCopy(device, copy_target_xml(path=path), None, flags)
        deadline = time.monotonic() + self.copy_timeout
        try:
            while True:
                info = domain.blockJobInfo(device, 0)
                if info and info.get("end", 0) > 0 and info.get("cur") == info.get("end"):
                    break
                if not info:
                    raise PermanentDriverError(f"the copy of {device} stopped before it finished")
                if time.monotonic() > deadline:
                    raise TransientDriverError(f"the copy of {device} did not finish in {self.copy_timeout:.0f} s")
                time.sleep(self.poll_interval)
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                domain.blockJobAbort(device, 0)  # without pivot: the guest stays on its disk, the copy is kept

    def volume_delete(self, name: str) -> None:
        self._call("delete a volume", lambda conn: self._delete_volume(self._pool(conn), self._file(name)))

    def volume_exists(self, name: str) -> bool:
        return self._call("look up a volume", lambda conn: self._volume(self._pool(conn), self._file(name)) is not None)

    def volume_size_gib(self, name: str) -> int:
        return self._call(
            "size a volume", lambda conn: -(-self._require_volume(self._pool(conn), name).info()[1] // GIB)
        )

    @staticmethod
    def _attached_as(domain: libvirt.virDomain, path: str, *, flags: int = 0) -> str:
        """The device (vdb…) as which the domain's definition (`flags`: live or inactive) has the file, or ""."""
        root = ElementTree.fromstring(domain.XMLDesc(flags))
        for disk in root.findall("devices/disk"):
            source = disk.find("source")
            target = disk.find("target")
            if source is not None and target is not None and source.get("file") == path:
                return target.get("dev", "")
        return ""

    def volume_attach(self, uuid: str, name: str, *, device: str) -> None:
        def operation(conn):
            domain = self._require(conn, uuid)
            path = self._require_volume(self._pool(conn), name).path()
            xml = volume_disk_xml(path=path, device=device, serial=volume_serial(name))
            if not self._attached_as(domain, path, flags=libvirt.VIR_DOMAIN_XML_INACTIVE):
                domain.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
            if domain.isActive() and not self._attached_as(domain, path):
                domain.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

        self._call("attach a volume", operation)

    def volume_detach(self, uuid: str, name: str) -> None:
        def operation(conn):
            domain = self._lookup(conn, uuid)
            volume = self._volume(self._pool(conn), self._file(name))
            if domain is None or volume is None:
                return
            path = volume.path()
            if device := self._attached_as(domain, path, flags=libvirt.VIR_DOMAIN_XML_INACTIVE):
                domain.detachDeviceFlags(self._disk_of(device, path), libvirt.VIR_DOMAIN_AFFECT_CONFIG)
            if domain.isActive() and (device := self._attached_as(domain, path)):
                # The guest is asked to let go (a PCI hot-unplug); the disk is gone once it has.
                domain.detachDeviceFlags(self._disk_of(device, path), libvirt.VIR_DOMAIN_AFFECT_LIVE)
                deadline = time.monotonic() + self.detach_timeout
                while domain.isActive() and self._attached_as(domain, path):
                    if time.monotonic() > deadline:
                        raise TransientDriverError(
                            f"the guest has not released {device} after {self.detach_timeout:.0f} s"
                        )
                    time.sleep(self.poll_interval)

        self._call("detach a volume", operation)

    @staticmethod
    def _disk_of(device: str, path: str) -> str:
        disk = ElementTree.Element("disk", type="file", device="disk")
        ElementTree.SubElement(disk, "source", file=path)
        ElementTree.SubElement(disk, "target", dev=device, bus="virtio")
        return ElementTree.tostring(disk, encoding="unicode")

    def volume_extend(self, name: str, *, size_gib: int, uuid: str = "", device: str = "") -> None:
        def operation(conn):
            volume = self._require_volume(self._pool(conn), name)
            wanted = size_gib * GIB
            domain = self._lookup(conn, uuid) if uuid else None
            attached = domain is not None and domain.isActive() and self._attached_as(domain, volume.path())
            if attached:
                # Online: QEMU grows the file and tells the guest, which sees the new size at once.
                if domain.blockInfo(attached)[0] < wanted:
                    domain.blockResize(attached, wanted, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            elif volume.info()[1] < wanted:  # grow only
                volume.resize(wanted, 0)

        self._call("extend a volume", operation)

    def volume_move_to(self, name: str, target: ComputeDriver) -> None:
        """On the same daemon the file is copied into the target's pool; on another it is streamed over."""
        if not isinstance(target, LibvirtDriver):
            raise PermanentDriverError(f"host {self.host} can only move volumes to other libvirt hosts")
        file = self._file(name)

        def copy(source_conn, target_conn):
            source = self._volume(self._pool(source_conn), file)
            target_pool = target._pool(target_conn)
            if target._volume(target_pool, file) is not None:
                if source is not None:
                    self._delete_volume(self._pool(source_conn), file)
                return
            if source is None:
                raise VolumeNotFound(f"neither host {self.host} nor host {target.host} has volume {name}")
            xml = self._copy_xml(name, source)
            try:
                if source_conn is target_conn:
                    self._copy_volume(source_conn, source, target_pool, xml=xml)
                else:
                    _stream_volume(source_conn, source, target_conn, target_pool.createXML(xml, 0))
            except BaseException:
                with contextlib.suppress(libvirt.libvirtError):
                    target._delete_volume(target_pool, file)  # a half copy must not count as moved
                raise
            self._delete_volume(self._pool(source_conn), file)

        if target.uri == self.uri:
            self._call("move a volume", lambda conn: copy(conn, conn))
        else:
            self._call("move a volume", lambda conn: target._call("receive a volume", lambda other: copy(conn, other)))

    def volumes_in_pool(self) -> list[str]:
        def operation(conn):
            pool = self._pool(conn)
            with contextlib.suppress(libvirt.libvirtError):
                pool.refresh(0)
            names = [name.removesuffix(".qcow2") for name in pool.listVolumes()]
            return sorted(
                name
                for name in names
                if name.startswith(("hangar-vol-", "hangar-snap-", "hangar-backup-", "hangar-image-"))
            )

        return self._call("list volumes", operation)

    def _remove_volumes(self, pool: libvirt.virStoragePool, uuid: str) -> None:
        """Deletes the domain's disk, console log and seed from `pool`; those already gone are fine."""
        try:
            pool.refresh(0)  # the console log was written by virtlogd, not through the pool
        except libvirt.libvirtError:
            logger.info("could not refresh pool %s on %s", self.pool_name, self.uri)
        for name in (f"{uuid}.qcow2", f"{uuid}.console.log", seed_volume_name(uuid)):
            self._delete_volume(pool, name)


def _stream_volume(
    source_conn: libvirt.virConnect,
    source: libvirt.virStorageVol,
    target_conn: libvirt.virConnect,
    target: libvirt.virStorageVol,
) -> None:
    """Copies a volume's bytes from one daemon to another (the qcow2 file as it is: its backing file path too)."""
    download, upload = source_conn.newStream(0), target_conn.newStream(0)
    source.download(download, 0, 0, 0)
    target.upload(upload, 0, 0, 0)
    upload.sendAll(lambda _stream, nbytes, _opaque: download.recv(nbytes), None)
    download.finish()
    upload.finish()


def _same_host(first: str, second: str) -> bool:
    parse = ElementTree.fromstring
    return parse(first).attrib == parse(second).attrib


def _network_daemon_namespace() -> str:
    """/proc/<pid>/ns/net of the local libvirt network daemon if it runs in another network namespace, else ""."""
    for pidfile in NETWORK_DAEMON_PIDFILES:
        try:
            with open(pidfile) as handle:
                pid = int(handle.read().strip())
            theirs = f"/proc/{pid}/ns/net"
            if os.stat(theirs).st_ino != os.stat("/proc/self/ns/net").st_ino:
                return theirs
            return ""
        except (OSError, ValueError):
            continue
    return ""


def build_seed_iso(seed: CloudInitSeed) -> bytes:
    """A NoCloud seed: an ISO 9660 image labelled `cidata` holding meta-data, user-data and network-config."""
    tool = shutil.which("genisoimage") or shutil.which("mkisofs") or shutil.which("xorrisofs")
    if tool is None:
        raise PermanentDriverError("cloud-init seeds need genisoimage on the workers: apt-get install genisoimage")
    with tempfile.TemporaryDirectory(prefix="hangar-seed-") as folder:
        names = []
        for name, text in (
            ("meta-data", seed.meta_data),
            ("user-data", seed.user_data),
            ("network-config", seed.network_config),
        ):
            if name == "network-config" and not text:
                continue  # no network-config: cloud-init falls back to DHCP
            with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
                handle.write(text)
            names.append(name)
        output = os.path.join(folder, "seed.iso")
        command = [tool, "-quiet", "-output", output, "-volid", "cidata", "-joliet", "-rock", *names]
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        if result.returncode != 0:
            raise PermanentDriverError(f"{os.path.basename(tool)} failed: {result.stderr.strip()}")
        with open(output, "rb") as handle:
            return handle.read()


def _counters(values: dict) -> DomainCounters:
    """getAllDomainStats' flat record (cpu.time, block.N.rd.bytes, net.N.rx.bytes, …) as one domain's counters."""

    def total(prefix: str, count_key: str, suffix: str) -> int:
        return sum(int(values.get(f"{prefix}.{index}.{suffix}", 0)) for index in range(int(values.get(count_key, 0))))

    return DomainCounters(
        vcpus=int(values.get("vcpu.current", 0)) or 1,
        cpu_time_ns=int(values.get("cpu.time", 0)),
        disk_read_bytes=total("block", "block.count", "rd.bytes"),
        disk_write_bytes=total("block", "block.count", "wr.bytes"),
        net_rx_bytes=total("net", "net.count", "rx.bytes"),
        net_tx_bytes=total("net", "net.count", "tx.bytes"),
    )


def _last_lines(data: bytes, lines: int) -> str:
    """Decode console bytes for display: keep text, tabs and newlines; drop other control characters (escapes)."""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    text = ANSI_ESCAPE.sub("", text)
    text = "".join(char for char in text if char in "\n\t" or char.isprintable())
    return "\n".join(text.rstrip("\n").split("\n")[-lines:]) if text.strip() else ""
