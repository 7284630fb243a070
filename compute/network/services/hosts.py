"""Keeping hosts in step with the database: networks, firewalls and 1:1 NAT, each stated whole to the driver.

Called by the thin tasks in compute/network/tasks.py (after a change commits, and periodically for every host) and
by the build of a machine (compute.services.operations). Every driver call states the whole desired state (a build:
its own machine's leases), so repeating one — a retry, a duplicate delivery, the periodic sync — changes
nothing. These functions read the database and drive hypervisors; they write nothing.
"""

from __future__ import annotations

import logging

from compute.drivers import driver_for
from compute.drivers.base import ComputeDriver, DhcpHost, DomainNotFound, DriverError, NetworkSpec
from compute.models import Host, Instance
from compute.network.models import Network
from compute.network.selectors import (
    firewall_specs,
    host_networks,
    instance_ports,
    instances_with_domains,
    nat_mappings,
    network_spec,
)

logger = logging.getLogger(__name__)


def host_network_sync(*, host: Host, network_id: str, driver: ComputeDriver | None = None) -> None:
    """The network on `host` gets exactly its live machines' DHCP leases; with none left there, it is removed."""
    driver = driver or driver_for(host)
    network = Network.objects.filter(pk=network_id).first()
    spec = network_spec(network=network, host=host) if network is not None else None
    if spec is None or not spec.dhcp_hosts:
        driver.network_remove(str(network_id))
    else:
        driver.network_ensure(spec)


def host_nat_sync(*, host: Host, driver: ComputeDriver | None = None) -> None:
    """The host's 1:1 NAT becomes exactly the public addresses assigned to its live machines."""
    (driver or driver_for(host)).nat_apply(nat_mappings(host=host))


def instance_firewall_sync(*, instance: Instance, driver: ComputeDriver | None = None) -> None:
    """The machine's interfaces get the union of its firewalls' rules, live. No domain yet: its build applies them."""
    if instance.host is None:
        return
    try:
        (driver or driver_for(instance.host)).firewall_apply(str(instance.pk), firewall_specs(instance=instance))
    except DomainNotFound:
        logger.info("No domain for %s on %s yet; its build applies the firewall.", instance.pk, instance.host)


def instance_networks_prepare(*, instance: Instance, driver: ComputeDriver) -> None:
    """Before a machine is created on its host (or moved to another: `driver` is the host's it goes to): each of its
    networks exists there, with the machine's lease in it. Only its own lease is stated (the network's other leases
    are the host's already); a finished deletion and the periodic sync state the whole set again, and drop what is
    left over."""
    hostname = instance.name
    for port in sorted(instance_ports(instance), key=lambda port: port.network_id):  # read once for the build too
        network = port.network
        driver.network_leases_add(
            NetworkSpec(
                id=str(network.pk),
                name=network.name,
                cidr=network.cidr,
                gateway_ip=network.gateway_ip,
                dhcp_hosts=(DhcpHost(mac=port.mac, ip=port.address, hostname=hostname),),
            )
        )


def host_sync(*, host: Host) -> list[str]:
    """States everything networking on `host` again (the periodic sync); returns what could not be applied."""
    driver = driver_for(host)
    problems = []
    for network in host_networks(host=host).order_by("pk"):
        try:
            driver.network_ensure(network_spec(network=network, host=host))
        except DriverError as error:
            problems.append(f"network {network.pk}: {error}")
    try:
        host_nat_sync(host=host, driver=driver)
    except DriverError as error:
        problems.append(f"NAT: {error}")
    for instance in instances_with_domains(host=host).select_related("host"):
        try:
            instance_firewall_sync(instance=instance, driver=driver)
        except DriverError as error:
            problems.append(f"firewall of {instance.pk}: {error}")
    for problem in problems:
        logger.warning("Host %s networking sync: %s", host.name, problem)
    return problems
