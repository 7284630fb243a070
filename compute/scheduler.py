"""Places instances on hosts: enabled, non-draining hosts with room after overcommit, least loaded first.

Claims are made under row locks on the candidate hosts, taken in primary-key order (so two schedulers never
deadlock), inside the caller's transaction: the instance row that records the claim is written before the
locks are released, so two launches cannot take the last slot twice.
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from compute.models import Flavor, Host, Instance, InstanceState
from portal.errors import Unprocessable

# An instance holds the larger of its flavor and the one a pending resize moves it to.
HELD_VCPUS = Greatest(F("flavor__vcpus"), Coalesce(F("resize_flavor__vcpus"), F("flavor__vcpus")))
HELD_RAM_MIB = Greatest(F("flavor__ram_mib"), Coalesce(F("resize_flavor__ram_mib"), F("flavor__ram_mib")))
HELD_DISK_GIB = Greatest(F("flavor__disk_gib"), Coalesce(F("resize_flavor__disk_gib"), F("flavor__disk_gib")))


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
    """Usage of each host in one query: every instance that is not deleted holds its resources."""
    hosts = list(hosts)
    totals = {
        row["host_id"]: row
        for row in Instance.objects.filter(host__in=[h.pk for h in hosts])
        .exclude(state=InstanceState.DELETED)
        .values("host_id")
        .annotate(
            vcpus=Coalesce(Sum(HELD_VCPUS), Value(0)),
            ram_mib=Coalesce(Sum(HELD_RAM_MIB), Value(0)),
            disk_gib=Coalesce(Sum(HELD_DISK_GIB), Value(0)),
            count=Coalesce(Sum(Value(1)), Value(0)),
        )
        .order_by()
    }
    usages = []
    for host in hosts:
        row = totals.get(host.pk, {})
        usages.append(
            HostUsage(
                host=host,
                vcpus_used=int(row.get("vcpus", 0)),
                ram_mib_used=int(row.get("ram_mib", 0)),
                disk_gib_used=int(row.get("disk_gib", 0)),
                instances=int(row.get("count", 0)),
            )
        )
    return usages


def host_usage(host: Host) -> HostUsage:
    return host_usages([host])[0]


def no_capacity(flavor: Flavor) -> Unprocessable:
    return Unprocessable(
        f"No host has room for a {flavor.size_label} machine right now; try a smaller size or later.",
        code="no_capacity",
        details={"vcpus": flavor.vcpus, "ram_mib": flavor.ram_mib, "disk_gib": flavor.disk_gib},
    )


def schedule(*, flavor: Flavor) -> Host:
    """Chooses and locks the host for a new instance of `flavor`; call inside the transaction that creates it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("schedule() must run inside the transaction that records the claim.")
    candidates = Host.objects.select_for_update().filter(enabled=True, draining=False).order_by("pk")
    request = {"vcpus": flavor.vcpus, "ram_mib": flavor.ram_mib, "disk_gib": flavor.disk_gib}
    fitting = [usage for usage in host_usages(candidates) if usage.fits(**request)]
    if not fitting:
        raise no_capacity(flavor)
    best = min(fitting, key=lambda usage: (usage.load_after(**request), usage.instances, usage.host.name))
    return best.host


def claim_resize(*, instance: Instance, flavor: Flavor) -> None:
    """Checks, under a lock on the instance's host, that it has room for the growth from the current flavor."""
    if instance.host_id is None:
        return
    host = Host.objects.select_for_update().get(pk=instance.host_id)
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
