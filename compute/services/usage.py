"""Running usage totals: what each tenant's live machines hold against its quota (Quota.held_*) and what each host
holds (Host.held_*), kept in the same transactions as the changes that move them.

A launch reads two rows instead of summing every machine of the tenant and of every host: it checks and reserves
its share in one conditional UPDATE of the quota row and one of the chosen host's row (compute.scheduler), and marks
the new instance as reserved. Every other change of what an instance holds (a resize asked for, finished or failed,
a move, a retry placed elsewhere, a deletion finished, an operator's edit, a row deleted) is applied here from the
instance's save: the difference between what the row held when it was read and what it holds now. Quota rows are
updated before host rows, the order the launch locks them in, so the two never wait for each other in a cycle.

`usage_totals_repair` recomputes the totals from the instance rows and corrects any that differ (the reconciler's
hourly pass and `manage.py usage_repair`); tests check that the totals always equal that recomputation.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict

from django.db import transaction
from django.db.models import Count, F, Sum, Value
from django.db.models.functions import Coalesce
from django.db.models.signals import post_delete, post_save

from compute import catalog
from compute.models import DEFERRED_FIELD, USAGE_FIELDS, Flavor, Host, Instance, InstanceState
from compute.rules import quota_refusal
from compute.scheduler import HELD_RAM_MIB, HELD_VCPUS, HOST_TOTALS, usage_annotations
from portal import sql
from tenants.models import Quota
from tenants.services import quota_lock

logger = logging.getLogger(__name__)

QUOTA_RESOURCES = ("instances", "vcpus", "ram_mib")
QUOTA_TOTALS = tuple(f"held_{resource}" for resource in QUOTA_RESOURCES)


def _sizes(flavor_id) -> tuple[int, int, int]:
    if flavor_id is None:
        return (0, 0, 0)
    flavor = catalog.flavor(flavor_id)
    return (flavor.vcpus, flavor.ram_mib, flavor.disk_gib)


def _shares(fields: tuple | None) -> tuple[dict, dict]:
    """What an instance with these USAGE_FIELDS values holds: ({tenant_id: (instances, vcpus, ram)},
    {host_id: (vcpus, ram, disk, instances)})."""
    if fields is None:
        return {}, {}
    tenant_id, state, flavor_id, resize_flavor_id, host_id, migration_host_id = fields
    if state == InstanceState.DELETED:
        return {}, {}
    size, resize = _sizes(flavor_id), _sizes(resize_flavor_id)
    vcpus, ram, disk = (max(a, b) for a, b in zip(size, resize, strict=True))
    hosts: dict = defaultdict(lambda: (0, 0, 0, 0))
    if host_id is not None:
        hosts[host_id] = (vcpus, ram, disk, 1)
    if migration_host_id is not None:
        held = hosts[migration_host_id]
        hosts[migration_host_id] = (held[0] + vcpus, held[1] + ram, held[2] + disk, held[3])
    return {tenant_id: (1, vcpus, ram)}, dict(hosts)


def _difference(before: dict, after: dict) -> dict:
    keys = set(before) | set(after)
    width = len(next(iter(before.values() or after.values())))
    changes = {}
    for key in keys:
        old, new = before.get(key, (0,) * width), after.get(key, (0,) * width)
        delta = tuple(b - a for a, b in zip(old, new, strict=True))
        if any(delta):
            changes[key] = delta
    return changes


def _apply(*, tenants: dict, hosts: dict) -> None:
    for tenant_id, delta in sorted(tenants.items(), key=lambda item: str(item[0])):
        changes = {name: F(name) + amount for name, amount in zip(QUOTA_TOTALS, delta, strict=True) if amount}
        Quota.objects.filter(tenant_id=tenant_id).update(**changes)
    for host_id, delta in sorted(hosts.items(), key=lambda item: str(item[0])):
        changes = {name: F(name) + amount for name, amount in zip(HOST_TOTALS, delta, strict=True) if amount}
        Host.objects.filter(pk=host_id).update(**changes)


def _holding(fields: tuple | None) -> tuple | None:
    """What decides an instance's shares (_shares): its USAGE_FIELDS, with the state reduced to deleted or not."""
    if fields is None:
        return None
    state_index = USAGE_FIELDS.index("state")
    return (*fields[:state_index], fields[state_index] == InstanceState.DELETED, *fields[state_index + 1 :])


def _fields(instance: Instance) -> tuple:
    return tuple(getattr(instance, name) for name in USAGE_FIELDS)


def _known(fields: tuple | None) -> bool:
    return fields is None or DEFERRED_FIELD not in fields


def _on_save(sender, instance: Instance, created: bool, update_fields=None, raw: bool = False, **_) -> None:
    if raw:
        return
    if (
        not created
        and update_fields is not None
        and not {f.removesuffix("_id") for f in update_fields} & {name.removesuffix("_id") for name in USAGE_FIELDS}
    ):
        return
    after = _fields(instance)
    before = None if created else getattr(instance, "_usage_read", DEFERRED_FIELD)
    instance._usage_read = after
    if created and getattr(instance, "_usage_reserved", False):
        return  # the launch reserved its share on the quota and host rows already
    if before is DEFERRED_FIELD or not _known(before):
        # Saved from an object not read from the database: what it held before is unknown, so recount its rows.
        usage_totals_repair(tenant_ids=[instance.tenant_id], host_ids=[instance.host_id, instance.migration_host_id])
        return
    if _holding(before) == _holding(after):
        return  # e.g. building → running: nothing held changes, and no flavor needs looking up to know it
    before_tenants, before_hosts = _shares(before)
    after_tenants, after_hosts = _shares(after)
    if not (before_tenants or after_tenants or before_hosts or after_hosts):
        return
    _apply(
        tenants=_difference(before_tenants, after_tenants) if before_tenants or after_tenants else {},
        hosts=_difference(before_hosts, after_hosts) if before_hosts or after_hosts else {},
    )


def _on_delete(sender, instance: Instance, **_) -> None:
    before = getattr(instance, "_usage_read", None)
    before = before if before is not None and _known(before) else _fields(instance)
    tenants, hosts = _shares(before)
    if tenants or hosts:
        _apply(
            tenants=_difference(tenants, {}) if tenants else {},
            hosts=_difference(hosts, {}) if hosts else {},
        )


def _on_quota_created(sender, instance: Quota, created: bool, raw: bool = False, **_) -> None:
    if created and not raw and Instance.objects.filter(tenant_id=instance.tenant_id).live().exists():
        usage_totals_repair(tenant_ids=[instance.tenant_id], host_ids=[])


def _on_flavor_saved(sender, instance: Flavor, created: bool, raw: bool = False, **_) -> None:
    # A size edited in the admin changes what every machine of that size holds.
    if not created and not raw and Instance.objects.live().filter(flavor=instance).exists():
        usage_totals_repair()


def subscribe() -> None:
    """Called once from ComputeConfig.ready()."""
    post_save.connect(_on_save, sender=Instance, dispatch_uid="usage.instance_saved")
    post_delete.connect(_on_delete, sender=Instance, dispatch_uid="usage.instance_deleted")
    post_save.connect(_on_quota_created, sender=Quota, dispatch_uid="usage.quota_created")
    post_save.connect(_on_flavor_saved, sender=Flavor, dispatch_uid="usage.flavor_saved")


# --- reservation ----------------------------------------------------------------------------------------------------


def quota_held(quota: Quota) -> dict[str, dict[str, int]]:
    """The quota's limits and running totals in the shape compute.rules.quota_refusal() reads (public addresses
    are counted by their own service)."""
    return {
        resource: {"used": getattr(quota, f"held_{resource}"), "limit": getattr(quota, resource)}
        for resource in QUOTA_RESOURCES
    }


def quota_reserve(*, tenant, requested: dict[str, int]) -> None:
    """Checks a launch's share (instances, vCPUs, RAM) against the tenant's quota and adds it to the running
    totals, in one conditional UPDATE that holds the quota row's lock until the commit; raises the refusal (or a
    missing quota row is made, with its totals counted, and the reservation tried again)."""
    share = {resource: requested.get(resource, 0) for resource in QUOTA_RESOURCES}
    if _quota_add(tenant, share):
        return
    quota = quota_lock(tenant)
    if (refusal := quota_refusal(usage=quota_held(quota), requested=share)) is not None:
        raise refusal
    if not _quota_add(tenant, share):  # pragma: no cover - locked above
        raise RuntimeError("The quota reservation failed under the quota row's lock.")


def _quota_add(tenant, share: dict[str, int]) -> bool:
    """The conditional UPDATE, written once in SQL (every launch reserves: the ORM's building of it cost more CPU
    than sending it)."""
    db = sql.current()
    amounts = [share[resource] for resource in QUOTA_RESOURCES]
    with sql.prepared_cursor(db) as cursor:
        cursor.execute(  # write-ok: the reservation, in the caller's transaction
            _quota_add_sql(db.vendor), [*amounts, sql.param(Quota, "tenant_id", tenant.pk), *amounts]
        )
        return cursor.rowcount == 1


@functools.cache
def _quota_add_sql(vendor: str) -> str:
    def column(name: str) -> str:
        return sql.columns(Quota, [name])

    held = [column(name) for name in QUOTA_TOTALS]
    changes = ", ".join(f"{name} = {name} + %s" for name in held)
    room = " AND ".join(
        f"{name} <= {column(resource)} - %s" for name, resource in zip(held, QUOTA_RESOURCES, strict=True)
    )
    return f"UPDATE {sql.table(Quota)} SET {changes} WHERE {column('tenant_id')} = %s AND {room}"


# --- recomputation and repair ---------------------------------------------------------------------------------------


def tenant_usage_recount(*, tenant_ids) -> dict:
    """{tenant_id: (instances, vcpus, ram_mib)} summed from the live instance rows."""
    rows = (
        Instance.objects.live()
        .filter(tenant_id__in=list(tenant_ids))
        .order_by()
        .values("tenant_id")
        .annotate(
            instances=Count("id"),
            vcpus=Coalesce(Sum(HELD_VCPUS), Value(0)),
            ram_mib=Coalesce(Sum(HELD_RAM_MIB), Value(0)),
        )
    )
    counted = {row["tenant_id"]: (row["instances"], int(row["vcpus"]), int(row["ram_mib"])) for row in rows}
    return {tenant_id: counted.get(tenant_id, (0, 0, 0)) for tenant_id in tenant_ids}


def host_usage_recount(*, host_ids) -> dict:
    """{host_id: (vcpus, ram_mib, disk_gib, instances)} summed from the live instance rows."""
    hosts = Host.objects.filter(pk__in=list(host_ids)).annotate(**usage_annotations())
    return {
        host.pk: (int(host.used_vcpus), int(host.used_ram_mib), int(host.used_disk_gib), int(host.live_instances))
        for host in hosts
    }


def usage_totals_repair(*, tenant_ids=None, host_ids=None) -> list[str]:
    """Recomputes the totals of the given tenants and hosts (all when None) under their row locks and corrects those
    that differ; returns what it corrected ("quota <tenant>: … → …"). Safe under concurrent launches: a change that
    committed before the lock is in the recount, one that waits for the lock applies its difference afterwards."""
    fixed = []
    with transaction.atomic():
        quotas = Quota.objects.select_for_update().order_by("tenant_id")
        if tenant_ids is not None:
            quotas = quotas.filter(tenant_id__in=[t for t in tenant_ids if t is not None])
        locked = list(quotas)
        counted = tenant_usage_recount(tenant_ids=[quota.tenant_id for quota in locked])
        for quota in locked:
            held = tuple(getattr(quota, name) for name in QUOTA_TOTALS)
            if held != counted[quota.tenant_id]:
                fixed.append(f"quota {quota.tenant_id}: {held} → {counted[quota.tenant_id]}")
                Quota.objects.filter(tenant_id=quota.tenant_id).update(
                    **dict(zip(QUOTA_TOTALS, counted[quota.tenant_id], strict=True))
                )
        hosts = Host.objects.select_for_update().order_by("pk")
        if host_ids is not None:
            hosts = hosts.filter(pk__in=[h for h in host_ids if h is not None])
        locked_hosts = list(hosts.only("pk", *HOST_TOTALS))
        recounted = host_usage_recount(host_ids=[host.pk for host in locked_hosts])
        for host in locked_hosts:
            held = tuple(getattr(host, name) for name in HOST_TOTALS)
            if held != recounted[host.pk]:
                fixed.append(f"host {host.pk}: {held} → {recounted[host.pk]}")
                Host.objects.filter(pk=host.pk).update(**dict(zip(HOST_TOTALS, recounted[host.pk], strict=True)))
    if fixed and tenant_ids is None:
        logger.warning("Usage totals corrected: %s", "; ".join(fixed))
    return fixed
