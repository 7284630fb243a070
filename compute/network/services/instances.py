"""A machine's networking through its life: interfaces, firewalls and a public address at launch; freed at delete.

compute.services.instances calls these inside its own transactions (launch, delete request, delete finished), so
a machine and its networking change together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from compute.models import Instance, Region
from compute.network.models import Firewall, Network, Port
from compute.network.services.common import after_commit, owned_choice
from compute.network.services.defaults import network_defaults_known
from compute.network.services.networks import interfaces_choose, ports_new, ports_release
from compute.network.services.public_ips import instance_public_ip_detach
from compute.network.services.traffic import traffic_baseline_reset
from portal.errors import InvalidRequest
from tenants.models import Tenant

MAX_NETWORKS_PER_INSTANCE = 4


def networks_check(*, tenant_id, networks: Iterable[Network], region: Region | None = None) -> list[Network]:
    """The networks as given (each once, in order), or an InvalidRequest: at most four, all the tenant's, all in
    `region` (the machine's)."""
    chosen = owned_choice(
        networks,
        model=Network,
        tenant_id=tenant_id,
        most=MAX_NETWORKS_PER_INSTANCE,
        field="networks",
        noun="network",
    )
    elsewhere = [network for network in chosen if region is not None and network.region_id != region.pk]
    if elsewhere:
        raise InvalidRequest(
            f"{elsewhere[0].name} is in another region than {region.label}: a machine joins networks of its own "
            "region only.",
            code="network_in_other_region",
            details={"field": "networks"},
        )
    return chosen


@dataclass(frozen=True)
class NetworkingPlan:
    """What a machine being launched gets: its networks (eth0 first), the address on each, and its firewalls."""

    networks: list[Network]
    interfaces: list[tuple[str, str]]  # (address, MAC) on each network
    firewalls: list[Firewall]

    @property
    def private_ip(self) -> str:
        return self.interfaces[0][0]


def instance_networking_plan(
    *, tenant: Tenant, user, region: Region, networks: Iterable[Network] = (), firewalls: Iterable[Firewall] = ()
) -> NetworkingPlan:
    """At launch, inside its transaction and before the machine's row is written: the networks (the tenant's
    default network of the region when none is given), a free address on each and the firewalls (the default one
    when none is given). Call it holding the tenant's quota row lock (the launch's reservation takes it): it is what
    keeps two launches of the tenant from picking the same address, since networks belong to one tenant. The
    networks and firewalls are those networks_check() and firewalls_check() returned, before the transaction."""
    networks, firewalls = list(networks), list(firewalls)
    if not networks or not firewalls:
        default_network, default_firewall = network_defaults_known(tenant=tenant, actor=user, region=region)
        networks = networks or [default_network]
        firewalls = firewalls or [default_firewall]
    return NetworkingPlan(networks=networks, interfaces=interfaces_choose(networks=networks), firewalls=firewalls)


def instance_networking_rows(*, instance: Instance, plan: NetworkingPlan) -> list:
    """At launch, inside its transaction: the machine's interfaces with the planned addresses (the first is the
    primary, its private_ip) and its firewall links, not yet written (the launch writes them in the statement that
    writes the machine; its public address, if asked for, is allocated once that is done). The instance keeps what it
    gets, so answering with it reads nothing again."""
    instance.port_list = ports_new(instance=instance, networks=plan.networks, interfaces=plan.interfaces)
    instance.firewall_ids = [firewall.pk for firewall in plan.firewalls]
    instance.public_address = None
    instance._state.fields_cache["traffic"] = None  # a new machine has no traffic counter yet
    links = [Instance.firewalls.through(instance_id=instance.pk, firewall_id=pk) for pk in instance.firewall_ids]
    return [*instance.port_list, *links]


def instance_networking_detach(*, instance: Instance, user) -> None:
    """Its deletion is requested: its public address is unmapped now (and stays the tenant's)."""
    instance_public_ip_detach(instance=instance, user=user)


def instance_networking_moved(*, instance: Instance, old_host_id) -> None:
    """It has moved to another host (inside the transaction that records it): its public address follows it, the
    old host forgets its leases, and the new one applies its firewall."""
    new_host_id = str(instance.host_id)
    for host_id in {str(old_host_id), new_host_id}:
        after_commit("sync_host_nat", host_id=host_id)
    for network_id in Port.objects.filter(instance=instance).values_list("network_id", flat=True):
        after_commit("sync_host_network", host_id=str(old_host_id), network_id=str(network_id))
    after_commit("sync_instance_firewall", instance_id=str(instance.pk))
    traffic_baseline_reset(instance_id=instance.pk)  # a new NIC on the new host: its counters start from zero


def instance_networking_release(*, instance: Instance) -> None:
    """Its deletion has finished: its addresses are free again and no firewall lists it."""
    ports_release(instance=instance)
    instance.firewalls.clear()
