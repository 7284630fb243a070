"""Factories for networks, public addresses and firewalls."""

import factory

from compute.models import Region
from compute.network.models import Firewall, FirewallRule, Network, PublicIP, PublicIPPool, PublicIPState
from tests.factories.tenants import TenantFactory


class NetworkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Network

    tenant = factory.SubFactory(TenantFactory)
    region = factory.LazyFunction(lambda: Region.objects.default_or_create())
    name = factory.Sequence(lambda n: f"net-{n}")
    cidr = factory.Sequence(lambda n: f"172.{16 + n // 256 % 16}.{n % 256}.0/24")


class PublicIPPoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PublicIPPool
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"pool-{n}")
    cidr = "203.0.113.0/24"
    excluded = "203.0.113.1"


class PublicIPFactory(factory.django.DjangoModelFactory):
    """An allocated address (not through the service: no billing segment)."""

    class Meta:
        model = PublicIP

    tenant = factory.SubFactory(TenantFactory)
    pool = factory.SubFactory(PublicIPPoolFactory, name="factory-pool", cidr="198.51.100.0/24", excluded="")
    address = factory.Sequence(lambda n: f"198.51.100.{n % 250 + 2}")
    state = PublicIPState.ALLOCATED


class FirewallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Firewall

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"firewall-{n}")


class FirewallRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FirewallRule

    firewall = factory.SubFactory(FirewallFactory)
    direction = "in"
    protocol = "tcp"
    port_min = 22
    port_max = 22
    cidr = "0.0.0.0/0"


FACTORIES = {Network: NetworkFactory, PublicIP: PublicIPFactory, Firewall: FirewallFactory}

__all__ = [
    "FACTORIES",
    "FirewallFactory",
    "FirewallRuleFactory",
    "NetworkFactory",
    "PublicIPFactory",
    "PublicIPPoolFactory",
]
