"""Private networks and their addresses (IP address management in the database).

An address is unique per network by constraint (`port_unique_address_per_network`). Allocation locks the networks
it draws from (in primary-key order, so two launches never deadlock), takes the lowest free address, and inserts
under a savepoint: should the constraint refuse the insert anyway, it reads the used addresses again and takes the
next one. Addresses are freed when the machine's deletion has finished, never before: a new machine could otherwise
get the address of one that is still shutting down.
"""

from __future__ import annotations

import ipaddress

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from compute.models import Instance, Region
from compute.network import addressing
from compute.network.models import Network, NetworkEventAction, Port
from compute.network.services.common import after_commit, clean_name
from compute.network.services.events import network_event
from portal import sql
from portal.errors import Conflict, InvalidRequest, Unprocessable
from tenants.labels import labels_checked
from tenants.models import Tenant
from tenants.services.quotas import quota_lock

MAX_NETWORKS_PER_TENANT = 20
# A MAC clash (24 random bits) or a concurrent insert of the same address: read again and retry this often.
ALLOCATION_ATTEMPTS = 8


def _name_taken(tenant_id, name: str, exclude=None) -> bool:
    networks = Network.objects.filter(tenant_id=tenant_id, name__iexact=name)
    if exclude is not None:
        networks = networks.exclude(pk=exclude.pk)
    return networks.exists()


def _name_error(name: str) -> InvalidRequest:
    return InvalidRequest(
        f"You already have a network called {name}; pick another name.", code="name_taken", details={"field": "name"}
    )


def network_create(
    *, tenant: Tenant, user, name: str, cidr: str, region: Region | None = None, labels: dict | None = None
) -> Network:
    """A new private network in `region` (the default one if None): an RFC 1918 range that overlaps none of the
    tenant's other networks."""
    name = clean_name(name, what="network")
    labels = labels_checked(labels)
    network_range = addressing.parse_private_cidr(cidr)
    if region is not None and not isinstance(region, Region):
        raise InvalidRequest(
            "That region does not exist; pick another.", code="invalid_region", details={"field": "region"}
        )
    region = region or Region.objects.default_or_create()
    with transaction.atomic():
        quota_lock(tenant)  # the overlap check and the insert must see the same set of networks
        others = list(Network.objects.for_tenant(tenant).values_list("name", "cidr"))
        if len(others) >= MAX_NETWORKS_PER_TENANT:
            raise Unprocessable(
                f"You can have at most {MAX_NETWORKS_PER_TENANT} networks; delete one you no longer use.",
                code="quota_exceeded",
                details={"resource": "networks", "limit": MAX_NETWORKS_PER_TENANT},
            )
        if (clash := addressing.overlapping(network_range, others)) is not None:
            raise InvalidRequest(
                f"{network_range} overlaps your network {clash}; pick a range that does not.",
                code="cidr_overlap",
                details={"field": "cidr"},
            )
        if _name_taken(tenant.pk, name):
            raise _name_error(name)
        try:
            with transaction.atomic():
                network = Network.objects.create(
                    tenant=tenant, region=region, name=name, cidr=str(network_range), created_by=user, labels=labels
                )
        except IntegrityError:
            raise _name_error(name) from None
        network_event(
            tenant_id=tenant.pk,
            action=NetworkEventAction.NETWORK_CREATE,
            subject=str(network),
            resource_id=network.pk,
            actor=user,
            message=f"{network.capacity} addresses for machines; {network.gateway_ip} is the gateway.",
        )
    return network


def network_rename(*, network: Network, user, name: str) -> Network:
    name = clean_name(name, what="network")
    with transaction.atomic():
        locked = Network.objects.select_for_update().get(pk=network.pk)
        old = locked.name
        if old == name:
            return locked
        if _name_taken(locked.tenant_id, name, exclude=locked):
            raise _name_error(name)
        locked.name = name
        try:
            with transaction.atomic():
                locked.save(update_fields=["name"])
        except IntegrityError:
            raise _name_error(name) from None
        network_event(
            tenant_id=locked.tenant_id,
            action=NetworkEventAction.NETWORK_RENAME,
            subject=str(locked),
            resource_id=locked.pk,
            actor=user,
            message=f"from {old} to {name}",
        )
    return locked


def network_delete(*, network: Network, user) -> None:
    """Only a network no machine uses; the default network stays (machines launched without a choice join it)."""
    with transaction.atomic():
        locked = Network.objects.select_for_update().get(pk=network.pk)
        if locked.is_default:
            raise Conflict(f"{locked.name} is your default network; it cannot be deleted.", code="default_network")
        in_use = list(
            Port.objects.filter(network=locked).select_related("instance").values_list("instance__name", flat=True)
        )
        if in_use:
            names = ", ".join(sorted(in_use)[:5]) + (" …" if len(in_use) > 5 else "")
            raise Conflict(
                f"{locked.name} is in use by {len(in_use)} machine{'s' if len(in_use) != 1 else ''} ({names}); "
                "delete them first.",
                code="network_in_use",
                details={"instances": len(in_use)},
            )
        subject = str(locked)
        locked.delete()
        network_event(
            tenant_id=network.tenant_id,
            action=NetworkEventAction.NETWORK_DELETE,
            subject=subject,
            resource_id=network.pk,
            actor=user,
        )


# --- ports: a machine's interfaces and addresses ------------------------------------------------------------------


def interfaces_choose(*, networks: list[Network]) -> list[tuple[str, str]]:
    """(address, MAC) for a new machine's interface on each network: the lowest free address, and a random MAC no
    interface has, in one read (again only if a MAC clashed). Callers hold the tenant's quota row lock, which keeps
    two launches of the tenant (the only ones that take addresses on its networks) from choosing the same address."""
    lowest_free = _lowest_free_in_sql if connection.vendor == "postgresql" else _lowest_free_in_python
    for _attempt in range(ALLOCATION_ATTEMPTS):
        macs = [addressing.new_mac() for _ in networks]
        free, clash = lowest_free(networks, macs)
        if clash or len(set(macs)) < len(macs):
            continue
        chosen = []
        for network, mac in zip(networks, macs, strict=True):
            address = free[network.pk]
            if address is None:
                raise Unprocessable(
                    f"The network {network.name} ({network.cidr}) has no free address left; pick another network.",
                    code="network_full",
                    details={"field": "networks", "network": str(network.pk)},
                )
            chosen.append((address, mac))
        return chosen
    raise Conflict("Addresses are being handed out concurrently; try again.", code="allocation_contended")


def _lowest_free_in_python(networks: list[Network], macs: list[str]) -> tuple[dict, bool]:
    """({network id: its lowest free address or None}, whether a port has one of `macs`): every address of the
    networks read and compared here."""
    used: dict = {network.pk: set() for network in networks}
    clash = False
    rows = Port.objects.filter(Q(network__in=networks) | Q(mac__in=macs)).order_by()
    for network_id, address, mac in rows.values_list("network", "address", "mac"):
        if network_id in used:
            used[network_id].add(addressing.address_value(address))
        clash = clash or mac in macs
    return {
        network.pk: addressing.first_free_address(network.ip_network, used[network.pk]) for network in networks
    }, clash


def _lowest_free_in_sql(networks: list[Network], macs: list[str]) -> tuple[dict, bool]:
    """What _lowest_free_in_python() answers, found by PostgreSQL (addresses are `inet` there): a launch reads one
    row per network, where it read every address of its networks. The database still walks the taken addresses
    (in the index), but none of them crosses the connection or becomes a Python object.

    The lowest free address is the network's first usable one, the one after the gateway, or one after a taken
    address (whatever lies just below it is taken or is the gateway); each candidate is looked up in the unique
    index of (network, address)."""
    port = sql.table(Port)
    network_id, address, mac = (sql.columns(Port, [name]) for name in ("network", "address", "mac"))
    bounds, params = [], []
    for network in networks:
        first, last, gateway = addressing.usable_bounds(network.ip_network)
        bounds.append("(%s::uuid, %s::inet, %s::inet, %s::inet, %s::inet)")
        params += [
            sql.param(Port, "network", network.pk),
            first,
            last,
            gateway,
            str(ipaddress.IPv4Address(addressing.address_value(gateway) + 1)),
        ]
    statement = (
        f"SELECT n.id, (SELECT host(c) FROM (SELECT n.first UNION ALL SELECT n.past_gateway UNION ALL "
        f"SELECT p.{address} + 1 FROM {port} p WHERE p.{network_id} = n.id AND p.{address} < n.last) AS candidates (c) "
        f"WHERE c BETWEEN n.first AND n.last AND c <> n.gateway AND NOT EXISTS "
        f"(SELECT 1 FROM {port} q WHERE q.{network_id} = n.id AND q.{address} = c) ORDER BY c LIMIT 1), "
        f"EXISTS (SELECT 1 FROM {port} WHERE {mac} = ANY(%s)) "
        f"FROM (VALUES {', '.join(bounds)}) AS n (id, first, last, gateway, past_gateway)"
    )
    with sql.prepared_cursor(connection) as cursor:
        cursor.execute(statement, [macs, *params])  # write-ok: a SELECT
        rows = cursor.fetchall()
    to_pk = Network._meta.pk.to_python
    return {to_pk(pk): free for pk, free, _clash in rows}, rows[0][2]


def ports_new(*, instance: Instance, networks: list[Network], interfaces: list[tuple[str, str]]) -> list[Port]:
    """The machine's interfaces, one per network in order (the first is eth0, the primary), with the addresses and
    MACs interfaces_choose() gave, not yet written."""
    now = timezone.now()
    return [
        Port(
            tenant_id=instance.tenant_id,
            network=network,
            instance=instance,
            address=address,
            mac=mac,
            index=index,
            created_at=now,
        )
        for index, (network, (address, mac)) in enumerate(zip(networks, interfaces, strict=True))
    ]


def ports_release(*, instance: Instance) -> list[str]:
    """Frees the machine's addresses (its deletion has finished); returns the networks that lost a port."""
    ports = Port.objects.filter(instance=instance)
    network_ids = sorted({str(pk) for pk in ports.values_list("network_id", flat=True)})
    ports.delete()
    if instance.host_id is not None:
        host_id = str(instance.host_id)
        for network_id in network_ids:
            after_commit("sync_host_network", host_id=host_id, network_id=network_id)
    return network_ids
