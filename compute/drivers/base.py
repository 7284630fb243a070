"""The hypervisor driver interface (after Nova's ComputeDriver).

Every call is idempotent on the instance uuid: creating a domain that exists adopts it, destroying one that is
gone succeeds. Failures are split in two: TransientDriverError (retry later: connection lost, host busy) and
PermanentDriverError (retrying cannot help: bad image, invalid definition) — tasks retry the first and put the
instance in `error` on the second.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class DriverError(Exception):
    """Base of every driver failure; the message is shown to operators and in the instance's event log."""


class TransientDriverError(DriverError):
    """The call may succeed if retried later."""


class PermanentDriverError(DriverError):
    """The call cannot succeed as asked; the instance goes to `error`."""


class DomainNotFound(PermanentDriverError):
    """The hypervisor has no domain with that uuid."""


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

    def console_output(self, uuid: str, *, lines: int = 100) -> str:
        """The last lines of the domain's serial console; empty if the driver has none."""
        return ""
