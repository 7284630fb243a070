"""Places instances on hosts of their region: enabled, non-draining hosts with room after overcommit, least loaded
first.

Hosts are read without locks, with the running totals of what they hold (Host.held_*, kept by
compute.services.usage); only the chosen host is claimed, inside the caller's transaction, by one conditional UPDATE
that checks its room again and (for a launch) adds the new machine to its totals. It holds that one row's lock until
the commit, and it fails if another claim took the room since it was read, in which case the scheduler tries the next
host or reads again. So two launches cannot take the last slot twice, concurrent launches spread over the hosts
instead of queueing on one, and launches onto different hosts, or a worker building on a host, never wait for each
other. usage_annotations() recounts the same figures from the instance rows (the admin, the repair of the totals).
"""

import functools
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from compute.models import Flavor, Host, Image, Instance, InstanceState, Region
from portal import sql
from portal.errors import Unprocessable

# How many of the best hosts a launch tries without waiting for another claim in progress, before it waits for the
# best one's lock (and checks its room under the lock), so it always makes progress.
OPTIMISTIC_ATTEMPTS = 3
MAX_ATTEMPTS = 50

# A host's running totals of what its machines hold (compute.services.usage keeps them).
HOST_TOTALS = ("held_vcpus", "held_ram_mib", "held_disk_gib", "held_instances")
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


def _held(resource, via: str):
    """What the live instances placed on (`via="host"`) or moving to (`via="migration_host"`) a host hold."""
    rows = (
        Instance.objects.filter(**{via: OuterRef("pk")})
        .exclude(state=InstanceState.DELETED)
        .order_by()
        .values(via)
        .annotate(total=Sum(resource))
        .values("total")
    )
    return Coalesce(Subquery(rows), Value(0))


def _pool_held(model):
    """The GiB that the live volumes or snapshots (`model`) kept in a host's storage pool hold."""
    rows = (
        model.objects.filter(host=OuterRef("pk"))
        .exclude(state="deleted")
        .order_by()
        .values("host")
        .annotate(total=Sum("size_gib"))
        .values("total")
    )
    return Coalesce(Subquery(rows), Value(0))


def usage_annotations() -> dict:
    """Annotations of a Host queryset with what it holds (its own live instances plus those moving to it, and the
    volumes and snapshots in its pool) and how many live instances it has: the scheduler, the admin's host list and
    the operations overview read these."""
    from compute.storage.models import Backup, Snapshot, Volume  # storage's models import this app's

    instances = (
        Instance.objects.filter(host=OuterRef("pk"))
        .exclude(state=InstanceState.DELETED)
        .order_by()
        .values("host")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return {
        "used_vcpus": _held(HELD_VCPUS, "host") + _held(HELD_VCPUS, "migration_host"),
        "used_ram_mib": _held(HELD_RAM_MIB, "host") + _held(HELD_RAM_MIB, "migration_host"),
        "used_disk_gib": _held(HELD_DISK_GIB, "host")
        + _held(HELD_DISK_GIB, "migration_host")
        + _pool_held(Volume)
        + _pool_held(Snapshot)
        + _pool_held(Backup)
        + _pool_held(Image),
        "live_instances": Coalesce(Subquery(instances), Value(0)),
    }


def usage_of(host) -> HostUsage:
    """The usage of a host read from a queryset annotated with usage_annotations()."""
    return HostUsage(
        host=host,
        vcpus_used=int(host.used_vcpus),
        ram_mib_used=int(host.used_ram_mib),
        disk_gib_used=int(host.used_disk_gib),
        instances=int(host.live_instances),
    )


def host_usages(hosts) -> list[HostUsage]:
    """Usage of each host, in one query and in the given order (the hosts may be locked rows: the sums are read
    apart, since PostgreSQL locks no rows of a query with aggregates)."""
    hosts = list(hosts)
    annotated = Host.objects.filter(pk__in=[h.pk for h in hosts]).annotate(**usage_annotations()).in_bulk()
    return [usage_of(annotated[host.pk]) for host in hosts]


def host_usage(host: Host) -> HostUsage:
    return host_usages([host])[0]


def no_capacity(flavor: Flavor, region: Region) -> Unprocessable:
    return Unprocessable(
        f"No host in {region.label or region.name} has room for a {flavor.size_label} machine right now; "
        "try a smaller size, another region or later.",
        code="no_capacity",
        details={"region": region.name, "vcpus": flavor.vcpus, "ram_mib": flavor.ram_mib, "disk_gib": flavor.disk_gib},
    )


def held_usage_of(host: Host) -> HostUsage:
    """The usage of a host from its running totals (compute.services.usage keeps them)."""
    return HostUsage(
        host=host,
        vcpus_used=host.held_vcpus,
        ram_mib_used=host.held_ram_mib,
        disk_gib_used=host.held_disk_gib,
        instances=host.held_instances,
    )


def _claim(host: Host, *, vcpus: int, ram_mib: int, disk_gib: int, instances: int, reserve: bool, wait: bool) -> bool:
    """Claims room on the host for this transaction, in one conditional UPDATE that holds the row's lock until the
    commit: only if the host still takes new machines and the room is still there. With `reserve`, the room is added
    to its totals now (a launch); without, the saved instance adds it (compute.services.usage). Without `wait`, a
    host another transaction is claiming right now is passed over instead of waited for.

    Written once in SQL (every launch claims): the ORM's building of the conditional UPDATE cost more CPU than the
    rest of the launch's statements together."""
    db = sql.current()
    amounts = [vcpus, ram_mib, disk_gib, instances] if reserve else []
    room = [host.vcpus_allocatable - vcpus, host.ram_mib_allocatable - ram_mib, host.disk_gib_allocatable - disk_gib]
    with sql.prepared_cursor(db) as cursor:
        cursor.execute(  # write-ok: the claim, in the caller's transaction
            _claim_sql(reserve=reserve, wait=wait, vendor=db.vendor), [*amounts, sql.param(Host, "id", host.pk), *room]
        )
        return cursor.rowcount == 1


@functools.cache
def _claim_sql(*, reserve: bool, wait: bool, vendor: str) -> str:
    def column(name: str) -> str:
        return sql.columns(Host, [name])

    changes = [f"{column('claim_version')} = {column('claim_version')} + 1"]
    if reserve:
        changes += [f"{column(name)} = {column(name)} + %s" for name in HOST_TOTALS]
    room = (
        f"{column('id')} = %s AND {column('enabled')} AND NOT {column('draining')} "
        f"AND {column('held_vcpus')} <= %s AND {column('held_ram_mib')} <= %s AND {column('held_disk_gib')} <= %s"
    )
    if not wait and vendor == "postgresql":  # SQLite has one writer at a time: nothing to skip
        locked = f"SELECT {column('id')} FROM {sql.table(Host)} WHERE {room} FOR NO KEY UPDATE SKIP LOCKED"
        room = f"{column('id')} IN ({locked})"
    return f"UPDATE {sql.table(Host)} SET {', '.join(changes)} WHERE {room}"


def _candidates(*, region: Region, exclude: Host | None, only: Host | None) -> list[Host]:
    """The region's hosts that take new machines, by id (read in SQL written once: every launch reads them)."""
    db = sql.current()
    params = [sql.param(Host, "region_id", region.pk, db=db)]
    params += [sql.param(Host, "id", host.pk, db=db) for host in (exclude, only) if host is not None]
    with sql.prepared_cursor(db) as cursor:
        cursor.execute(_candidates_sql(exclude is not None, only is not None, db.vendor), params)  # write-ok: a SELECT
        return [sql.instance_from_row(Host, row) for row in cursor.fetchall()]


@functools.cache
def _candidates_sql(exclude: bool, only: bool, vendor: str) -> str:
    def column(name: str) -> str:
        return sql.columns(Host, [name])

    statement = (
        f"SELECT {sql.columns(Host, sql.attnames(Host))} FROM {sql.table(Host)} "
        f"WHERE {column('enabled')} AND NOT {column('draining')} AND {column('region_id')} = %s"
    )
    statement += f" AND {column('id')} <> %s" if exclude else ""
    statement += f" AND {column('id')} = %s" if only else ""
    return statement + f" ORDER BY {column('id')}"


def schedule(
    *, flavor: Flavor, region: Region, exclude: Host | None = None, reserve: bool = False, only: Host | None = None
) -> Host:
    """Chooses and claims the host of `region` for an instance of `flavor` (a new one, or one moving away from
    `exclude`; `only` that host, the one that keeps its disk's file); call inside the transaction that records the
    claim. `reserve`: add the new instance's share to the host's totals now (a launch, whose instance is saved as
    reserved)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("schedule() must run inside the transaction that records the claim.")
    request = {"vcpus": flavor.vcpus, "ram_mib": flavor.ram_mib, "disk_gib": flavor.disk_gib}
    claim = {**request, "instances": 1 if reserve else 0, "reserve": reserve}
    for _attempt in range(MAX_ATTEMPTS):
        candidates = _candidates(region=region, exclude=exclude, only=only)
        fitting = [usage for usage in map(held_usage_of, candidates) if usage.fits(**request)]
        if not fitting:
            break
        fitting.sort(key=lambda usage: (usage.load_after(**request), usage.instances, usage.host.name))
        # The least loaded first; one that another launch is claiming right now is passed over for the next, so
        # concurrent launches spread instead of queueing on one row. When every one is busy, wait for the first.
        for usage in fitting[:OPTIMISTIC_ATTEMPTS]:
            if _claim(usage.host, **claim, wait=False):
                return usage.host
        if _claim(fitting[0].host, **claim, wait=True):
            return fitting[0].host
    if only is not None:
        raise Unprocessable(
            f"The host that keeps the disk to start from has no room for a {flavor.size_label} machine right now "
            "(or takes no new machines); try a smaller size or later.",
            code="no_capacity",
            details={"vcpus": flavor.vcpus, "ram_mib": flavor.ram_mib, "disk_gib": flavor.disk_gib},
        )
    raise no_capacity(flavor, region)


def claim_resize(*, instance: Instance, flavor: Flavor) -> None:
    """Checks, under a claim on the instance's host, that it has room for the growth from the current flavor."""
    if instance.host_id is None:
        return
    host = Host.objects.get(pk=instance.host_id)
    growth = {
        "vcpus": max(flavor.vcpus - instance.flavor.vcpus, 0),
        "ram_mib": max(flavor.ram_mib - instance.flavor.ram_mib, 0),
        "disk_gib": max(flavor.disk_gib - instance.flavor.disk_gib, 0),
    }
    # A disabled or draining host keeps its machines, and they may still grow there. The saved resize adds the
    # growth to the host's totals; this only checks the room under the row's lock.
    room = Host.objects.filter(
        pk=host.pk,
        held_vcpus__lte=host.vcpus_allocatable - growth["vcpus"],
        held_ram_mib__lte=host.ram_mib_allocatable - growth["ram_mib"],
        held_disk_gib__lte=host.disk_gib_allocatable - growth["disk_gib"],
    )
    fits = room.update(claim_version=F("claim_version") + 1)  # write-ok: the claim, in the caller's transaction
    if not fits:
        raise Unprocessable(
            f"The host of {instance.name} has no room to grow it to {flavor.size_label} right now; "
            "try a smaller size or later.",
            code="no_capacity",
            details={"vcpus": flavor.vcpus, "ram_mib": flavor.ram_mib, "disk_gib": flavor.disk_gib},
        )


def no_pool_room(size_gib: int, region: Region) -> Unprocessable:
    return Unprocessable(
        f"No host in {region.label or region.name} has room for {size_gib} GiB of storage right now; "
        "try a smaller size, another region or later.",
        code="no_capacity",
        details={"region": region.name, "disk_gib": size_gib},
    )


def _claim_pool(host: Host, *, disk_gib: int, placing: bool) -> bool:
    """Claims room for `disk_gib` more GiB in the host's storage pool for this transaction, in one conditional UPDATE
    that holds the row's lock until the commit. The saved volume, snapshot, backup or image adds its size to the
    host's totals (compute.storage.services.pool). `placing`: only on a host that still takes new work."""
    room = Host.objects.filter(pk=host.pk, held_disk_gib__lte=host.disk_gib_allocatable - disk_gib)
    if placing:
        room = room.filter(enabled=True, draining=False)
    return room.update(claim_version=F("claim_version") + 1) == 1  # write-ok: the claim, in the caller's transaction


def place_storage(*, size_gib: int, region: Region, host: Host | None = None, prefer=()) -> Host:
    """Chooses and claims the host whose storage pool keeps `size_gib` more GiB (a new volume, snapshot, backup or
    image): `host` if given (a copy stays in its source's pool), else the enabled, non-draining host of `region` that
    fits, those of `prefer` (host ids, best first: where the tenant's machines run, so the volume can attach to them)
    first, then the one with the most room. Call inside the transaction that records the claim; the room is checked
    under the host's claim."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("place_storage() must run inside the transaction that records the claim.")
    if host is None:
        candidates = Host.objects.filter(enabled=True, draining=False, region=region).order_by("pk")
        fitting = [usage for usage in map(held_usage_of, candidates) if usage.disk_gib_free >= size_gib]
        rank = {host_id: position for position, host_id in enumerate(prefer)}
        ranked = [
            usage.host
            for usage in sorted(
                fitting, key=lambda usage: (rank.get(usage.host.pk, len(rank)), -usage.disk_gib_free, usage.host.name)
            )
        ]
    else:
        ranked = [host]
    for candidate in ranked:
        if _claim_pool(candidate, disk_gib=size_gib, placing=host is None):
            return candidate
    raise no_pool_room(size_gib, region)


def claim_storage_growth(*, host: Host, growth_gib: int, what: str) -> None:
    """Checks, under a claim on `host`, that its pool has room for `growth_gib` more GiB (a volume extended, or moved
    there to attach to a machine)."""
    if not _claim_pool(host, disk_gib=growth_gib, placing=False):
        raise Unprocessable(
            f"The storage that keeps {what} has no room for {growth_gib} GiB more right now; try a smaller size or "
            "later.",
            code="no_capacity",
            details={"disk_gib": growth_gib},
        )
