"""Factories for hosts, the catalog, SSH keys and instances."""

from decimal import Decimal

import factory
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from compute.drivers.base import PowerState
from compute.models import (
    EventAction,
    Flavor,
    Host,
    Image,
    Instance,
    InstanceEvent,
    InstanceState,
    OrphanDomain,
    Region,
    SimulatedDomain,
    SSHKey,
)
from compute.sshkeys import parse_public_key
from tenants.models import EventResult
from tests.factories.tenants import TenantFactory, UserFactory


def new_public_key(comment: str = "test@example.com") -> str:
    """A fresh ed25519 public key in OpenSSH format."""
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return f"{raw} {comment}"


class RegionFactory(factory.django.DjangoModelFactory):
    """The default region unless named otherwise (migrations make it; a flushed test database needs it again)."""

    class Meta:
        model = Region
        django_get_or_create = ["name"]

    name = "default"
    label = factory.LazyAttribute(lambda o: "Default region" if o.name == "default" else o.name.upper())
    is_default = factory.LazyAttribute(lambda o: o.name == "default")


class HostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Host
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"hv-{n:02d}")
    region = factory.SubFactory(RegionFactory)
    driver = "simulated"
    vcpus = 32
    ram_mib = 131072
    disk_gib = 2000
    boot_seconds = 0
    stop_seconds = 0
    traffic_bytes_per_second = 0


class FlavorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Flavor
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"s{n}.small")
    vcpus = 2
    ram_mib = 4096
    disk_gib = 40
    monthly_price = Decimal("12.00")


class ImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Image
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"Debian 12 ({n})")
    os = "Debian"
    version = "12"
    min_disk_gib = 2
    min_ram_mib = 256
    disk_path = "/var/lib/hangar/images/debian-12.raw"


class SSHKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SSHKey
        exclude = ["parsed"]

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"laptop-{n}")
    public_key = factory.LazyFunction(new_public_key)
    parsed = factory.LazyAttribute(lambda o: parse_public_key(o.public_key))
    fingerprint = factory.LazyAttribute(lambda o: o.parsed.fingerprint)
    key_type = factory.LazyAttribute(lambda o: o.parsed.key_type)
    bits = factory.LazyAttribute(lambda o: o.parsed.bits)


class InstanceFactory(factory.django.DjangoModelFactory):
    """A running instance on a simulated host (no domain behind it: use the services for real lifecycles)."""

    class Meta:
        model = Instance

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"web-{n}")
    flavor = factory.SubFactory(FlavorFactory)
    image = factory.SubFactory(ImageFactory)
    host = factory.SubFactory(HostFactory)
    region = factory.LazyAttribute(lambda o: o.host.region if o.host else None)
    state = InstanceState.RUNNING
    power_state = PowerState.RUNNING
    private_ip = factory.Sequence(lambda n: f"10.0.{n // 250}.{n % 250 + 2}")
    created_by = factory.SubFactory(UserFactory)


class InstanceEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InstanceEvent

    instance = factory.SubFactory(InstanceFactory)
    tenant = factory.LazyAttribute(lambda o: o.instance.tenant)
    action = EventAction.LAUNCH
    result = EventResult.REQUESTED

    @classmethod
    def _adjust_kwargs(cls, **kwargs):
        # InstanceEventFactory(tenant=t) must build the instance in t too.
        instance, tenant = kwargs.get("instance"), kwargs.get("tenant")
        if instance is not None and tenant is not None and instance.tenant_id != tenant.pk:
            kwargs["instance"] = InstanceFactory(tenant=tenant)
        return kwargs


class SimulatedDomainFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SimulatedDomain

    uuid = factory.Faker("uuid4")
    host = factory.SubFactory(HostFactory)
    name = factory.Sequence(lambda n: f"domain-{n}")
    vcpus = 1
    ram_mib = 1024
    disk_gib = 10
    power = PowerState.RUNNING
    private_ip = factory.Sequence(lambda n: f"10.99.{n // 250}.{n % 250 + 2}")


class OrphanDomainFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrphanDomain

    host = factory.SubFactory(HostFactory)
    uuid = factory.Faker("uuid4")
    power_state = PowerState.RUNNING


FACTORIES = {
    SSHKey: SSHKeyFactory,
    Instance: InstanceFactory,
    InstanceEvent: InstanceEventFactory,
}

__all__ = [
    "FACTORIES",
    "FlavorFactory",
    "HostFactory",
    "ImageFactory",
    "InstanceEventFactory",
    "InstanceFactory",
    "OrphanDomainFactory",
    "RegionFactory",
    "SSHKeyFactory",
    "SimulatedDomainFactory",
    "new_public_key",
]
