"""Reads for networking: what the pages and the API list, and what each host should have (the driver specs)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet, Sum, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from compute.drivers.base import DhcpHost, FirewallRuleSpec, NatMapping, NetworkSpec, NicSpec
from compute.models import Host, Instance, InstanceState
from compute.network.models import (
    Firewall,
    FirewallRule,
    Network,
    NetworkEvent,
    Port,
    PublicIP,
    PublicIPPool,
    PublicIPState,
    TrafficUsage,
)
from portal import sql
from tenants.models import Tenant

LIVE = ~Q(instance__state=InstanceState.DELETED)


# --- the tenant's view ------------------------------------------------------------------------------------------


def network_list(*, tenant: Tenant) -> QuerySet[Network]:
    """The tenant's networks, default first, with how many machines use each."""
    return (
        Network.objects.for_tenant(tenant)
        .select_related("region")
        .annotate(machine_count=Count("ports", distinct=True))
        .order_by("-is_default", "name", "id")
    )


def network_ports(*, network: Network) -> QuerySet[Port]:
    return Port.objects.filter(network=network).select_related("instance").order_by("address", "id")


def public_ip_list(*, tenant: Tenant) -> QuerySet[PublicIP]:
    """The addresses the tenant holds (released ones are history), newest first."""
    return (
        PublicIP.objects.for_tenant(tenant)
        .held()
        .select_related("instance", "pool__region")
        .order_by("-allocated_at", "id")
    )


def firewall_list(*, tenant: Tenant) -> QuerySet[Firewall]:
    """The tenant's firewalls, default first, with their rules and how many live machines each protects."""
    return (
        Firewall.objects.for_tenant(tenant)
        .annotate(machine_count=Count("instances", filter=~Q(instances__state=InstanceState.DELETED), distinct=True))
        .prefetch_related(Prefetch("rules", queryset=FirewallRule.objects.order_by("position", "id")))
        .order_by("-is_default", "name", "id")
    )


def firewall_machines(*, firewall: Firewall) -> QuerySet[Instance]:
    return firewall.instances.exclude(state=InstanceState.DELETED).order_by("name", "id")


def network_events(*, tenant: Tenant, actions: tuple[str, ...] = ()) -> QuerySet[NetworkEvent]:
    events = NetworkEvent.objects.for_tenant(tenant).select_related("actor")
    if actions:
        events = events.filter(action__in=actions)
    return events.order_by("-created_at", "-id")


@dataclass(frozen=True)
class InstanceNetworking:
    """What the instance page shows: its interfaces, its public address, its firewalls and how to log in."""

    ports: list[Port]
    public_ip: PublicIP | None
    firewalls: list[Firewall]

    @property
    def ssh_address(self) -> str:
        if self.public_ip is not None:
            return self.public_ip.address
        return self.ports[0].address if self.ports else ""


def instance_networking(*, instance: Instance) -> InstanceNetworking:
    firewalls = list(instance.firewalls.order_by("-is_default", "name"))
    return InstanceNetworking(
        ports=instance_ports(instance), public_ip=instance_public_ip(instance), firewalls=firewalls
    )


def assignable_instances(*, tenant: Tenant) -> QuerySet[Instance]:
    """Machines a public address can be assigned to: live, with a private address and no public one yet."""
    return (
        Instance.objects.for_tenant(tenant)
        .exclude(state__in=[InstanceState.DELETING, InstanceState.DELETED])
        .filter(ports__index=0)
        .exclude(public_ips__state=PublicIPState.ASSIGNED)
        .order_by("name", "id")
    )


# --- traffic ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrafficTotals:
    rx_bytes: int
    tx_bytes: int


def instance_traffic(*, instance: Instance, start: datetime, end: datetime) -> TrafficTotals:
    """Bytes the machine received and sent in the hours that begin in [start, end)."""
    totals = TrafficUsage.objects.filter(instance=instance, hour__gte=start, hour__lt=end).aggregate(
        rx=Coalesce(Sum("rx_bytes"), 0), tx=Coalesce(Sum("tx_bytes"), 0)
    )
    return TrafficTotals(rx_bytes=int(totals["rx"]), tx_bytes=int(totals["tx"]))


def tenant_outbound_bytes(*, tenant: Tenant, start: datetime, end: datetime) -> int:
    """Everything the tenant's machines sent in the hours that begin in [start, end): what billing meters."""
    total = (
        TrafficUsage.objects.for_tenant(tenant)
        .filter(hour__gte=start, hour__lt=end)
        .aggregate(tx=Coalesce(Sum("tx_bytes"), 0))
    )
    return int(total["tx"])


# --- what hosts should have (the driver specs) --------------------------------------------------------------------


def with_networking(instances: QuerySet[Instance]) -> QuerySet[Instance]:
    """Instances with what instance_ports(), instance_public_address() and instance_firewall_ids() read, in the same
    query: three scalar subqueries, the interfaces and the firewalls each as one JSON array (a list's page is one
    query instead of three; a prefetch cost more to build and send than its rows)."""
    ports, firewalls, public_address = _networking_sql(connection.vendor)
    return instances.annotate(
        port_rows=RawSQL(ports, (), output_field=TextField()),
        firewall_rows=RawSQL(firewalls, (), output_field=TextField()),
        public_address=RawSQL(public_address, (), output_field=TextField()),
    )


@functools.cache
def _networking_sql(vendor: str) -> tuple[str, str, str]:
    instance_id = f"{sql.table(Instance)}.{sql.columns(Instance, ['id'])}"
    ports, _rules = _build_reads_sql(instance_id, vendor)
    attached = Firewall.instances.through
    # The firewalls' own order (-is_default, name, id); SQLite before 3.44 cannot order inside an aggregate, and
    # aggregates the rows of an ordered subquery in their order.
    order = ", ".join(
        f"f.{sql.columns(Firewall, [name.lstrip('-')])}{' DESC' if name.startswith('-') else ''}"
        for name in Firewall._meta.ordering
    )
    joined = (
        f"FROM {sql.table(attached)} a INNER JOIN {sql.table(Firewall)} f "
        f"ON f.{sql.columns(Firewall, ['id'])} = a.{sql.columns(attached, ['firewall_id'])} "
        f"WHERE a.{sql.columns(attached, ['instance_id'])} = {instance_id}"
    )
    firewall_id = f"a.{sql.columns(attached, ['firewall_id'])}"
    address = f"i.{sql.columns(PublicIP, ['address'])}"
    if vendor == "postgresql":
        # As text: a list filtered on a to-many relation is DISTINCT, and json has no equality.
        ports = f"({ports}::text)"
        firewalls = f"((SELECT json_agg({firewall_id} ORDER BY {order}) {joined})::text)"
        address = f"host({address})"
    else:
        firewalls = (
            f"(SELECT json_group_array(firewall_id) "
            f"FROM (SELECT {firewall_id} AS firewall_id {joined} ORDER BY {order}))"
        )
    public_address = (
        f"(SELECT {address} FROM {sql.table(PublicIP)} i WHERE i.{sql.columns(PublicIP, ['instance_id'])} = "
        f"{instance_id} AND i.{sql.columns(PublicIP, ['state'])} = {sql.literal(PublicIPState.ASSIGNED)} LIMIT 1)"
    )
    return ports, firewalls, public_address


def instance_firewall_ids(instance: Instance) -> list:
    """The ids of the firewalls whose rules apply to the machine (known to one just launched, prefetched by
    with_networking(), or read now)."""
    for known in (getattr(instance, "firewall_ids", None), getattr(instance, "firewall_list", None)):
        if known is not None:
            return [getattr(firewall, "pk", firewall) for firewall in known]
    if "firewall_rows" in instance.__dict__:
        uuid = Firewall._meta.pk.to_python
        return [uuid(pk) for pk in _json_rows(instance.firewall_rows)]
    return list(instance.firewalls.values_list("pk", flat=True))


def instance_ports(instance: Instance) -> list[Port]:
    """The machine's interfaces with their networks, eth0 first (prefetched by with_networking(), or read now).

    Read in SQL written once (every build reads them): the ORM's select_related query cost more CPU than the rows."""
    prefetched = getattr(instance, "port_list", None)
    if prefetched is not None:
        return prefetched
    if "port_rows" in instance.__dict__:
        instance.port_list = _ports_from_rows(instance, _json_rows(instance.port_rows))
        return instance.port_list
    port_columns, network_columns = sql.attnames(Port), sql.attnames(Network)
    with sql.prepared_cursor(connection) as cursor:
        ports_sql = _ports_sql(connection.vendor)
        cursor.execute(ports_sql, [sql.param(Port, "instance_id", instance.pk)])  # write-ok: a SELECT
        rows = cursor.fetchall()
    ports = []
    for row in rows:
        port = sql.instance_from_row(Port, row[: len(port_columns)])
        port.network = sql.instance_from_row(Network, row[len(port_columns) : len(port_columns) + len(network_columns)])
        ports.append(port)
    return ports


@functools.cache
def _ports_sql(vendor: str) -> str:
    return (
        f"SELECT {sql.columns(Port, sql.attnames(Port), alias='p')}, "
        f"{sql.columns(Network, sql.attnames(Network), alias='n')} "
        f"FROM {sql.table(Port)} p INNER JOIN {sql.table(Network)} n "
        f"ON n.{sql.columns(Network, ['id'])} = p.{sql.columns(Port, ['network_id'])} "
        f"WHERE p.{sql.columns(Port, ['instance_id'])} = %s ORDER BY p.{sql.columns(Port, ['index'])}"
    )


def instance_public_ip(instance: Instance) -> PublicIP | None:
    return PublicIP.objects.filter(instance=instance, state=PublicIPState.ASSIGNED).first()


def instance_public_address(instance: Instance) -> str | None:
    """The public address assigned to the machine (annotated by with_networking(), or read now)."""
    if hasattr(instance, "public_address"):
        return instance.public_address
    public_ip = instance_public_ip(instance)
    return public_ip.address if public_ip is not None else None


def nic_specs(ports: list[Port]) -> tuple[NicSpec, ...]:
    return tuple(
        NicSpec(mac=port.mac, network_id=str(port.network_id), ip=port.address, prefix=port.network.prefix)
        for port in ports
    )


def network_spec(*, network: Network, host: Host) -> NetworkSpec:
    """The network as `host` should realize it: a fixed DHCP lease for every live machine of it on that host."""
    # Plain values, not Port and Instance objects: a network with thousands of machines on one host is stated whole
    # by the periodic sync and by every finished deletion there (a build adds only its own lease).
    leases = (
        Port.objects.filter(network=network)
        .filter(instance__host=host)
        .filter(LIVE)
        .order_by("address", "id")
        .values_list("mac", "address", "instance__name")
    )
    return NetworkSpec(
        id=str(network.pk),
        name=network.name,
        cidr=network.cidr,
        gateway_ip=network.gateway_ip,
        dhcp_hosts=tuple(DhcpHost(mac=mac, ip=address, hostname=name) for mac, address, name in leases),
    )


def host_networks(*, host: Host) -> QuerySet[Network]:
    """Networks that have a live machine on `host`."""
    live = Port.objects.filter(instance__host=host).filter(LIVE)
    return Network.objects.filter(pk__in=live.values("network_id"))


def firewall_specs(*, instance: Instance) -> tuple[FirewallRuleSpec, ...]:
    """The union of the machine's firewalls' rules, each once, in a stable order (read with a build's claim, or
    now)."""
    known = getattr(instance, "firewall_rules", None)
    if known is not None:
        return known
    with sql.prepared_cursor(connection) as cursor:
        rules = _firewall_rules_sql(connection.vendor)
        cursor.execute(rules, [sql.param(Instance, "id", instance.pk)])  # write-ok: a SELECT
        rows = cursor.fetchall()
    return tuple(dict.fromkeys(FirewallRuleSpec(*row) for row in rows))


@functools.cache
def _firewall_rules_sql(vendor: str) -> str:
    """The rules of the machine's firewalls in the firewalls' names' order (written once: every build reads them)."""
    attached = Firewall.instances.through
    fields = ["direction", "protocol", "port_min", "port_max", "cidr"]
    firewall_id = sql.columns(Firewall, ["id"])
    return (
        f"SELECT {sql.columns(FirewallRule, fields, alias='r')} FROM {sql.table(FirewallRule)} r "
        f"INNER JOIN {sql.table(Firewall)} f ON f.{firewall_id} = r.{sql.columns(FirewallRule, ['firewall_id'])} "
        f"INNER JOIN {sql.table(attached)} a ON a.{sql.columns(attached, ['firewall_id'])} = f.{firewall_id} "
        f"WHERE a.{sql.columns(attached, ['instance_id'])} = %s "
        f"ORDER BY f.{sql.columns(Firewall, ['name'])}, f.{firewall_id}, "
        f"r.{sql.columns(FirewallRule, ['position'])}, r.{sql.columns(FirewallRule, ['id'])}"
    )


def nat_mappings(*, host: Host) -> tuple[NatMapping, ...]:
    """Every public address assigned to a live machine on `host`, mapped onto that machine's primary address."""
    assigned = (
        PublicIP.objects.filter(state=PublicIPState.ASSIGNED, instance__host=host)
        .exclude(instance__state=InstanceState.DELETED)
        .order_by("address")
        .values_list("address", "instance_id")
    )
    primary = dict(
        Port.objects.filter(instance_id__in=[instance_id for _, instance_id in assigned], index=0).values_list(
            "instance_id", "address"
        )
    )
    return tuple(
        NatMapping(public_ip=address, private_ip=primary[instance_id])
        for address, instance_id in assigned
        if instance_id in primary
    )


def instances_with_domains(*, host: Host) -> QuerySet[Instance]:
    """Live machines on `host` whose domain exists (firewalls can be applied to them)."""
    return Instance.objects.filter(host=host, state__in=[InstanceState.RUNNING, InstanceState.STOPPED]).order_by("pk")


# --- operators ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolUsage:
    pool: PublicIPPool
    size: int
    held: int

    @property
    def free(self) -> int:
        return max(self.size - self.held, 0)


def pool_usages() -> list[PoolUsage]:
    held = dict(PublicIP.objects.held().values("pool_id").annotate(count=Count("id")).values_list("pool_id", "count"))
    return [
        PoolUsage(pool=pool, size=len(pool.addresses()), held=held.get(pool.pk, 0))
        for pool in PublicIPPool.objects.order_by("name")
    ]


# --- what a build reads with its claim --------------------------------------------------------------------------


def build_reads_sql(instance_id: str) -> tuple[str, str]:
    """Two scalar subqueries for the RETURNING clause of a build's claim (`instance_id`: the claimed row's id
    column): the machine's interfaces with their networks and its firewalls' rules, each as one JSON array. A build
    reads them with the claim, in one statement instead of three; build_reads_attach() turns them into what
    instance_ports() and firewall_specs() answer."""
    return _build_reads_sql(instance_id, connection.vendor)


@functools.cache
def _build_reads_sql(instance_id: str, vendor: str) -> tuple[str, str]:
    postgresql = vendor == "postgresql"
    aggregate, array = ("json_agg", "json_build_array") if postgresql else ("json_group_array", "json_array")
    attached = Firewall.instances.through

    def port(name: str) -> str:
        return "p." + sql.columns(Port, [name])

    def network(name: str) -> str:
        return "n." + sql.columns(Network, [name])

    def rule(name: str) -> str:
        return "r." + sql.columns(FirewallRule, [name])

    def firewall(name: str) -> str:
        return "f." + sql.columns(Firewall, [name])

    # PostgreSQL orders inside the aggregate (firewall names by the database's collation, as firewall_specs() reads
    # them); SQLite before 3.44 cannot, and build_reads_attach() sorts its rows as its BINARY collation would.
    port_order = f" ORDER BY {port('index')}" if postgresql else ""
    rule_order = (
        f" ORDER BY {firewall('name')}, {firewall('id')}, {rule('position')}, {rule('id')}" if postgresql else ""
    )
    ports = (
        f"(SELECT {aggregate}({array}({port('mac')}, {port('address')}, {port('index')}, {port('network_id')}, "
        f"{network('name')}, {network('cidr')}, {port('id')}){port_order}) "
        f"FROM {sql.table(Port)} p INNER JOIN {sql.table(Network)} n ON {network('id')} = {port('network_id')} "
        f"WHERE {port('instance_id')} = {instance_id})"
    )
    rules = (
        f"(SELECT {aggregate}({array}({rule('direction')}, {rule('protocol')}, {rule('port_min')}, "
        f"{rule('port_max')}, {rule('cidr')}, {firewall('name')}, {firewall('id')}, {rule('position')}, "
        f"{rule('id')}){rule_order}) "
        f"FROM {sql.table(FirewallRule)} r "
        f"INNER JOIN {sql.table(Firewall)} f ON {firewall('id')} = {rule('firewall_id')} "
        f"INNER JOIN {sql.table(attached)} a ON a.{sql.columns(attached, ['firewall_id'])} = {firewall('id')} "
        f"WHERE a.{sql.columns(attached, ['instance_id'])} = {instance_id})"
    )
    return ports, rules


def build_reads_attach(instance: Instance, *, ports, rules) -> None:
    """Sets what build_reads_sql() returned on the claimed instance, in the orders instance_ports() (eth0 first)
    and firewall_specs() (the firewalls' names, then the rules' positions) give."""
    rules = _json_rows(rules)
    if connection.vendor != "postgresql":
        # BINARY collation: names by code point, ids (32 hex digits) as text.
        rules.sort(key=lambda row: (row[5], row[6], row[7], row[8]))
    instance.port_list = _ports_from_rows(instance, _json_rows(ports))
    instance.firewall_rules = tuple(dict.fromkeys(FirewallRuleSpec(*row[:5]) for row in rules))


def _ports_from_rows(instance: Instance, rows: list) -> list[Port]:
    """The interfaces (with their networks) of the ports subquery of _build_reads_sql(), eth0 first."""
    if connection.vendor != "postgresql":
        rows.sort(key=lambda row: row[2])
    uuid = Port._meta.pk.to_python
    ports = []
    for mac, address, index, network_id, name, cidr, pk in rows:
        network_pk = uuid(network_id)
        port = Port(id=uuid(pk), tenant_id=instance.tenant_id, instance_id=instance.pk, network_id=network_pk)
        port.mac, port.address, port.index = mac, address, index
        port.network = Network(id=network_pk, tenant_id=instance.tenant_id, name=name, cidr=cidr)
        ports.append(port)
    return ports


def _json_rows(value) -> list:
    """A JSON array from the database: decoded already (PostgreSQL's json), text (SQLite), or NULL (no rows)."""
    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else value
