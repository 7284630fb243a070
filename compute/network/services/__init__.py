"""Every change to networks, addresses, public IPs, firewalls and traffic records goes through these functions.

The host side (compute.network.services.hosts) states each host's networking whole to its driver; it writes nothing.
"""

from compute.network.services.defaults import network_defaults_ensure
from compute.network.services.firewalls import (
    firewall_create,
    firewall_delete,
    firewall_rule_add,
    firewall_rule_remove,
    firewall_update,
    firewalls_check,
    instance_firewalls_set,
    rules_check,
)
from compute.network.services.instances import (
    instance_networking_detach,
    instance_networking_moved,
    instance_networking_plan,
    instance_networking_release,
    instance_networking_rows,
    networks_check,
)
from compute.network.services.networks import network_create, network_delete, network_rename
from compute.network.services.public_ips import (
    instance_public_ip_detach,
    public_ip_allocate,
    public_ip_assign,
    public_ip_release,
    public_ip_unassign,
)
from compute.network.services.traffic import (
    traffic_baseline_reset,
    traffic_record,
    traffic_sample,
    traffic_sample_quietly,
    traffic_sample_running,
)

__all__ = [
    "firewall_create",
    "firewall_delete",
    "firewall_rule_add",
    "firewall_rule_remove",
    "firewall_update",
    "firewalls_check",
    "instance_firewalls_set",
    "instance_networking_detach",
    "instance_networking_moved",
    "instance_networking_plan",
    "instance_networking_release",
    "instance_networking_rows",
    "instance_public_ip_detach",
    "network_create",
    "network_defaults_ensure",
    "network_delete",
    "network_rename",
    "networks_check",
    "public_ip_allocate",
    "public_ip_assign",
    "public_ip_release",
    "public_ip_unassign",
    "rules_check",
    "traffic_baseline_reset",
    "traffic_record",
    "traffic_sample",
    "traffic_sample_quietly",
    "traffic_sample_running",
]
