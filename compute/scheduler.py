"""Places instances on hosts: enabled, non-draining hosts with room after overcommit, least loaded first.

Hosts are read without locks; only the chosen host is claimed, inside the caller's transaction, by a conditional
UPDATE of its `claim_version` from the value read: it holds that one row's lock until the instance row that records
the claim is committed, and it fails if another launch (or resize) claimed the host since it was read, in which
case the reading is stale and the scheduler reads again. So two launches cannot take the last slot twice, and
launches onto different hosts, or a worker building on a host, never wait for each other.
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from compute.models import Flavor, Host, Instance, InstanceState
from portal.errors import Unprocessable

# How many times a launch reads the hosts again after losing the host it chose to another claim, before it waits
# for the chosen host's lock instead (and checks its room under the lock), so it always makes progress.
OPTIMISTIC_ATTEMPTS = 3
MAX_ATTEMPTS = 50


def _held(resource: str, prefix: str = ""):
    """What an instance holds of `resource`: the larger of its flavor and the one a pending resize moves it to."""
    current = F(f"{prefix}flavor__{resource}")
    return Greatest(current, Coalesce(F(f"{prefix}resize_flavor__{resource}"), current))


HELD_VCPUS = _held("vcpus")
HELD_RAM_MIB = _held("ram_mib")
HELD_DISK_GIB = _held("disk_gib")


@dataclass(frozen=True)
class HostUsage:
    """What a host holds (after overcommit) and what is left."""

    host: Host
    vcpus_used: int
    ram_mib_used: int
    disk_gib_used: int
    instances: int

    @property
    def vcpus_free(self) -> int:
        return self.host.vcpus_allocatable - self.vcpus_used

    @property
    def ram_mib_free(self) -> int:
        return self.host.ram_mib_allocatable - self.ram_mib_used

    @property
    def disk_gib_free(self) -> int:
        return self.host.disk_gib_allocatable - self.disk_gib_used

    def fits(self, *, vcpus: int, ram_mib: int, disk_gib: int) -> bool:
        return vcpus <= self.vcpus_free and ram_mib <= self.ram_mib_free and disk_gib <= self.disk_gib_free

    def load_after(self, *, vcpus: int, ram_mib: int, disk_gib: int) -> float:
        """The fullest resource after placing the request: the spreading key (lower is better)."""
        return max(
            (self.vcpus_used + vcpus) / max(self.host.vcpus_allocatable, 1),
            (self.ram_mib_used + ram_mib) / max(self.host.ram_mib_allocatable, 1),
            (self.disk_gib_used + disk_gib) / max(self.host.disk_gib_allocatable, 1),
        )


def host_usages(hosts) -> list[HostUsage]:
    """Usage of each host (a queryset, or hosts) in one query: every instance not deleted holds its resources."""
    if not isinstance(hosts, QuerySet):
        hosts = Host.objects.filter(pk__in=[host.pk for host in hosts]).order_by("name")
    live = ~Q(instances__state=InstanceState.DELETED)
    annotated = hosts.annotate(
        vcpus_used=Coalesce(Sum(_held("vcpus", "instances__"), filter=live), Value(0)),
        ram_mib_used=Coalesce(Sum(_held("ram_mib", "instances__"), filter=live), Value(0)),
        disk_gib_used=Coalesce(Sum(_held("disk_gib", "instances__"), filter=live), Value(0)),
        instance_count=Count("instances", filter=live),
    )
    return [
        HostUsage(
            host=host,
            vcpus_used=int(host.vcpus_used),
            ram_mib_used=int(host.ram_mib_used),
            disk_gib_used=int(host.disk_gib_used),
            instances=int(host.instance_count),
        )
        for host in annotated
    ]


def host_usage(host: Host) -> HostUsage:
    return host_usages(Host.objects.filter(pk=host.pk))[0]


def no_capacity(flavor: Flavor) -> Unprocessable:
    return Unprocessable(
        f"No host has room for a {flavor.size_label} machine right now; try a smaller size or later.",
        code="no_capacity",
        details={"vcpus": flavor.vcpus, "ram_mib": flavor.ram_mib, "disk_gib": flavor.disk_gib},
    )


def _claim(host: Host, *, read_version: int | None = None) -> bool:
    """Claims the host for this transaction: bumps its claim_version, holding its row lock until the commit.

    With `read_version`, only if nobody claimed it since it was read (False: the reading is stale); without, waits
    for whoever holds it.
    """
    hosts = Host.objects.filter(pk=host.pk)
    if read_version is not None:
        hosts = hosts.filter(claim_version=read_version)
    return hosts.update(claim_version=F("claim_version") + 1) == 1  # write-ok: the launch's claim, in its transaction


def schedule(*, flavor: Flavor) -> Host:
    """Chooses and claims the host for a new instance of `flavor`; call inside the transaction that creates it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("schedule() must run inside the transaction that records the claim.")
    candidates = Host.objects.filter(enabled=True, draining=False).order_by("pk")
    request = {"vcpus": flavor.vcpus, "ram_mib": flavor.ram_mib, "disk_gib": flavor.disk_gib}
    for attempt in range(MAX_ATTEMPTS):
        fitting = [usage for usage in host_usages(candidates) if usage.fits(**request)]
        if not fitting:
            break
        host = min(fitting, key=lambda usage: (usage.load_after(**request), usage.instances, usage.host.name)).host
        if attempt < OPTIMISTIC_ATTEMPTS:
            if _claim(host, read_version=host.claim_version):
                return host
        elif _claim(host) and host_usage(host).fits(**request):
            return host  # checked under the host's lock: nobody can claim it before this transaction ends
    raise no_capacity(flavor)


def claim_resize(*, instance: Instance, flavor: Flavor) -> None:
    """Checks, under a claim on the instance's host, that it has room for the growth from the current flavor."""
    if instance.host_id is None:
        return
    host = Host(pk=instance.host_id)
    _claim(host)
    usage = host_usage(host)
    growth = {
        "vcpus": max(flavor.vcpus - instance.flavor.vcpus, 0),
        "ram_mib": max(flavor.ram_mib - instance.flavor.ram_mib, 0),
        "disk_gib": max(flavor.disk_gib - instance.flavor.disk_gib, 0),
    }
    if not usage.fits(**growth):
        raise Unprocessable(
            f"The host of {instance.name} has no room to grow it to {flavor.size_label} right now; "
            "try a smaller size or later.",
            code="no_capacity",
            details={"vcpus": flavor.vcpus, "ram_mib": flavor.ram_mib, "disk_gib": flavor.disk_gib},
        )
