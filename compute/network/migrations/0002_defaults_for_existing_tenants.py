"""Organisations that existed before networking get their default network and firewall.

New organisations get theirs when they are created (compute.network.services.defaults); this gives the same to the
ones already there, with frozen copies of the rules so that later changes to the services do not change history.
"""

import ipaddress
import uuid

from django.db import migrations

DEFAULT_RULES = [
    ("in", "tcp", 22, 22, "SSH"),
    ("in", "icmp", None, None, "Ping"),
    ("out", "any", None, None, "Everything out"),
]


def _free_ranges(taken):
    blocked = set()
    for cidr in taken:
        network = ipaddress.IPv4Network(cidr)
        if network.overlaps(ipaddress.IPv4Network("10.0.0.0/8")):
            for subnet in network.subnets(new_prefix=24) if network.prefixlen <= 24 else [network.supernet(new_prefix=24)]:
                blocked.add(int(subnet.network_address) >> 8)
    for index in range(1, 2**16):
        block = (10 << 16) + index
        if block not in blocked:
            yield str(ipaddress.IPv4Network((block << 8, 24)))


def add_defaults(apps, schema_editor):
    Tenant = apps.get_model("tenants", "Tenant")
    Network = apps.get_model("network", "Network")
    Firewall = apps.get_model("network", "Firewall")
    FirewallRule = apps.get_model("network", "FirewallRule")
    taken = set(Network.objects.values_list("cidr", flat=True))
    for tenant in Tenant.objects.order_by("created_at", "pk"):
        if not Network.objects.filter(tenant=tenant, is_default=True).exists():
            cidr = next(_free_ranges(taken))
            taken.add(cidr)
            Network.objects.create(id=uuid.uuid4(), tenant=tenant, name="default", cidr=cidr, is_default=True)
        if not Firewall.objects.filter(tenant=tenant, is_default=True).exists():
            firewall = Firewall.objects.create(
                id=uuid.uuid4(),
                tenant=tenant,
                name="default",
                description="SSH and ping in, everything out.",
                is_default=True,
            )
            FirewallRule.objects.bulk_create(
                FirewallRule(
                    firewall=firewall,
                    position=position,
                    direction=direction,
                    protocol=protocol,
                    port_min=port_min,
                    port_max=port_max,
                    cidr="0.0.0.0/0",
                    description=description,
                )
                for position, (direction, protocol, port_min, port_max, description) in enumerate(DEFAULT_RULES)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("network", "0001_initial"),
        ("tenants", "0004_tenant_standing"),
    ]

    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
