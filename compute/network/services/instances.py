"""A machine's networking through its life: interfaces, firewalls and a public address at launch; freed at delete.

compute.services.instances calls these inside its own transactions (launch, delete request, delete finished), so
a machine and its networking change together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from compute.models import Instance, Region
from compute.network.models import Firewall, Network, Port
from compute.network.services.common import after_commit, owned_choice
from compute.network.services.defaults import network_defaults_ensure
from compute.network.services.firewalls import firewalls_check
from compute.network.services.networks import ports_allocate, ports_release
from compute.network.services.public_ips import instance_public_ip_detach, public_ip_allocate
from compute.network.services.traffic import traffic_baseline_reset
from portal.errors import InvalidRequest

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


def instance_networking_attach(
    *, instance: Instance, user, networks: Iterable[Network] = (), firewalls: Iterable[Firewall] = (), public_ip=False
) -> None:
    """At launch, inside its transaction: an interface and address on each network (the tenant's default network when
    none is given; the first is the primary), the firewalls (the default one when none is given), and a new public
    address if asked for. Sets the instance's private_ip to the primary address."""
    networks = networks_check(tenant_id=instance.tenant_id, networks=networks, region=instance.region)
    firewalls = list(firewalls)
    if firewalls:
        firewalls = firewalls_check(tenant_id=instance.tenant_id, firewalls=firewalls)
    if not networks or not firewalls:
        default_network, default_firewall = network_defaults_ensure(
            tenant=instance.tenant, actor=user, region=instance.region
        )
        networks = networks or [default_network]
        firewalls = firewalls or [default_firewall]
    ports = ports_allocate(instance=instance, networks=networks)
    instance.private_ip = ports[0].address
    instance.save(update_fields=["private_ip"])
    instance.firewalls.set(firewalls)
    if public_ip:
        public_ip_allocate(tenant=instance.tenant, user=user, instance=instance)


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
