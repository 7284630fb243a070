"""Reads for the compute app: what the dashboard, the API and the admin list and count."""

import hashlib

from django.db.models import Count, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from compute.models import (
    TRANSITIONAL_STATES,
    Flavor,
    Host,
    Image,
    Instance,
    InstanceEvent,
    InstanceState,
    OrphanDomain,
    Region,
    SSHKey,
)
from compute.network.models import PublicIP
from compute.scheduler import HELD_RAM_MIB, HELD_VCPUS, HostUsage, host_usages, usage_annotations, usage_of
from compute.storage.selectors import volume_usage
from tenants.models import Quota, Tenant

QUOTA_RESOURCES = ("instances", "vcpus", "ram_mib", "volume_gb", "volumes", "public_ips")
# What the launch and resize forms weigh a machine against.
MACHINE_QUOTAS = ("instances", "vcpus", "ram_mib", "public_ips")


def instance_usage(*, tenant: Tenant) -> dict[str, int]:
    """What the tenant's instances hold now: every instance that is not deleted counts, errors included."""
    totals = (
        Instance.objects.for_tenant(tenant)
        .live()
        .aggregate(
            instances=Count("id"),
            vcpus=Coalesce(Sum(HELD_VCPUS), Value(0)),
            ram_mib=Coalesce(Sum(HELD_RAM_MIB), Value(0)),
        )
    )
    return {key: int(value) for key, value in totals.items()}


def held_usage(*, tenant: Tenant, resources=None) -> dict[str, int]:
    """What the tenant holds against its quota: its instances' share, its volumes, and the public addresses it
    holds; only the groups `resources` (quota names) need when given, so a launch does not count volumes."""
    wanted = set(QUOTA_RESOURCES if resources is None else resources)
    held = {}
    if wanted & {"instances", "vcpus", "ram_mib"}:
        held |= instance_usage(tenant=tenant)
    if wanted & {"volume_gb", "volumes"}:
        held |= volume_usage(tenant=tenant)
    if "public_ips" in wanted:
        held["public_ips"] = PublicIP.objects.for_tenant(tenant).held().count()
    return held


def quota_usage(*, tenant: Tenant, resources=QUOTA_RESOURCES) -> dict[str, dict[str, int]]:
    """Per quota resource (of `resources`: a page reads what it shows): {"used", "limit", "free", "percent"} (percent
    of the limit, 0 to 100, rounded down)."""
    quota = Quota.objects.filter(tenant=tenant).first()
    limits = (
        {resource: getattr(quota, resource) for resource in QUOTA_RESOURCES} if quota is not None else Quota.defaults()
    )
    used = {**dict.fromkeys(QUOTA_RESOURCES, 0), **held_usage(tenant=tenant, resources=resources)}
    result = {}
    for resource in resources:
        limit = limits[resource]
        result[resource] = {
            "used": used[resource],
            "limit": limit,
            "free": max(limit - used[resource], 0),
            "percent": min(100, used[resource] * 100 // limit) if limit else (100 if used[resource] else 0),
        }
    return result


def instance_list(*, tenant: Tenant, state: str = "", name: str = "") -> QuerySet[Instance]:
    """The tenant's instances, newest first, without deleted ones; `state` and `name` (substring) filter."""
    queryset = Instance.objects.for_tenant(tenant).live().select_related("flavor", "image")
    if state:
        queryset = queryset.filter(state=state)
    if name:
        queryset = queryset.filter(name__icontains=name)
    return queryset.order_by("-created_at", "id")


def instance_get(*, tenant: Tenant, pk) -> Instance | None:
    """One instance of the tenant (deleted ones too: their event log stays readable), or None."""
    return (
        Instance.objects.for_tenant(tenant)
        .select_related("flavor", "image", "resize_flavor", "created_by")
        .filter(pk=pk)
        .first()
    )


def instance_events(*, instance: Instance) -> QuerySet[InstanceEvent]:
    return (
        InstanceEvent.objects.for_tenant(instance.tenant)
        .filter(instance=instance)
        .select_related("actor")
        .order_by("-created_at", "-id")
    )


def instance_counts(*, tenant: Tenant) -> dict[str, int]:
    """{"total", "running", "transitional"} over the tenant's live instances, in one query."""
    return (
        Instance.objects.for_tenant(tenant)
        .live()
        .aggregate(
            total=Count("id"),
            running=Count("id", filter=Q(state=InstanceState.RUNNING)),
            transitional=Count("id", filter=Q(state__in=TRANSITIONAL_STATES)),
        )
    )


def instance_list_version(*, tenant: Tenant) -> str:
    """A short token that changes whenever the instance list would: every change of a machine the list shows (its
    launch, a state, its name, its deletion) saves the machine's `updated_at`, so the newest `updated_at` of the
    tenant's machines changes with it. One probe of the index of (tenant, updated_at), whatever the tenant's size:
    an open list asks every few seconds whether it is stale (counting the machines by state read every row each
    time). A change stamped earlier than the newest one, by a host whose clock is behind, shows at the next change;
    a page with a machine in transition polls without the token anyway."""
    newest = Instance.objects.for_tenant(tenant).order_by().aggregate(newest=Max("updated_at"))["newest"]
    return hashlib.sha256(repr(newest and newest.isoformat()).encode()).hexdigest()[:16]


def tenant_has_transitional(*, tenant: Tenant) -> bool:
    return Instance.objects.for_tenant(tenant).transitional().exists()


def sshkey_list(*, tenant: Tenant) -> QuerySet[SSHKey]:
    return SSHKey.objects.for_tenant(tenant).order_by("name", "id")


def flavor_list() -> QuerySet[Flavor]:
    """Flavors a tenant may launch, smallest first."""
    return Flavor.objects.active().order_by("vcpus", "ram_mib", "disk_gib", "name")


def region_list() -> QuerySet[Region]:
    return Region.objects.order_by("name")


def several_regions() -> bool:
    """Whether pages need to say which region things are in."""
    return Region.objects.count() > 1


def region_choices(*, flavors) -> list[dict]:
    """Each region with the sizes its enabled hosts have room for now: {"region", "fits": set of flavor ids,
    "hosts": how many take new machines}. A region where nothing fits says so on the launch form."""
    hosts = Host.objects.filter(enabled=True, draining=False).annotate(**usage_annotations()).order_by("name")
    usages = [usage_of(host) for host in hosts]
    choices = []
    for region in region_list():
        in_region = [usage for usage in usages if usage.host.region_id == region.pk]
        fits = {
            flavor.pk
            for flavor in flavors
            if any(u.fits(vcpus=flavor.vcpus, ram_mib=flavor.ram_mib, disk_gib=flavor.disk_gib) for u in in_region)
        }
        choices.append({"region": region, "fits": fits, "hosts": len(in_region)})
    return choices


def image_list(*, tenant=None) -> QuerySet[Image]:
    """Catalog images anyone may launch, grouped by OS (newest version first within an OS); with `tenant`, its
    private images that are ready too (the launch form shows them apart, as "My images")."""
    images = Image.objects.active()
    images = images.public() if tenant is None else images.visible_to(tenant).filter(state=Image.State.AVAILABLE)
    return images.select_related("host__region").order_by("os", "-version", "name")


def host_capacity_list() -> list[HostUsage]:
    """Every host with what it holds and what is free after overcommit (for operators)."""
    return host_usages(Host.objects.order_by("name"))


# --- operators (the operations overview, metrics): across every tenant ------------------------------------------


def hosts_by_region() -> list[tuple[Region, list[HostUsage]]]:
    """Every region with its hosts' usage after overcommit, in one query (regions without hosts included)."""
    hosts = Host.objects.select_related("region").annotate(**usage_annotations()).order_by("region__name", "name")
    grouped: dict = {region.pk: (region, []) for region in region_list()}
    for host in hosts:
        grouped.setdefault(host.region_id, (host.region, []))[1].append(usage_of(host))
    return list(grouped.values())


def instance_state_counts() -> dict[str, int]:
    """Live machines of every tenant by state (deleted ones left out), every state present with 0 if none."""
    counts = dict.fromkeys((value for value in InstanceState.values if value != InstanceState.DELETED), 0)
    for row in Instance.objects.live().order_by().values("state").annotate(count=Count("pk")):
        counts[row["state"]] = row["count"]
    return counts


def instances_in_trouble(*, now, limit: int = 20) -> tuple[list[Instance], int]:
    """Machines in error or whose work is past its deadline (the reconciler fails those within a minute), worst
    first: the first `limit` and how many there are."""
    trouble = Q(state=InstanceState.ERROR) | Q(state__in=TRANSITIONAL_STATES, task_deadline__lt=now)
    queryset = Instance.objects.filter(trouble).select_related("tenant", "host").order_by("-updated_at", "pk")
    return list(queryset[:limit]), queryset.count()


def failed_events(*, since, limit: int = 10) -> tuple[list[InstanceEvent], int]:
    """Work on machines that failed since `since` (builds, starts, stops, moves…), newest first, and the count."""
    queryset = InstanceEvent.objects.filter(result="failed", created_at__gte=since)
    rows = queryset.select_related("instance", "tenant").order_by("-created_at", "-id")
    return list(rows[:limit]), queryset.count()


def open_orphan_count() -> int:
    return OrphanDomain.objects.filter(resolved_at__isnull=True).count()
