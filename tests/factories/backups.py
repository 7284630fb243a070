"""Factories for backups and their schedules."""

import factory

from compute.models import Image
from compute.storage.backup_models import Backup, BackupPolicy, BackupState
from tests.factories.compute import HostFactory, InstanceFactory
from tests.factories.tenants import TenantFactory


class BackupPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BackupPolicy

    tenant = factory.SubFactory(TenantFactory)
    instance = factory.SubFactory(InstanceFactory, tenant=factory.SelfAttribute("..tenant"))
    hour = 3


class BackupFactory(factory.django.DjangoModelFactory):
    """An available backup of a machine (no file behind it: use the services for real ones)."""

    class Meta:
        model = Backup

    tenant = factory.SubFactory(TenantFactory)
    instance = factory.SubFactory(InstanceFactory, tenant=factory.SelfAttribute("..tenant"))
    name = factory.Sequence(lambda n: f"backup-{n}")
    state = BackupState.AVAILABLE
    source_name = factory.LazyAttribute(lambda o: o.instance.name)
    flavor = factory.LazyAttribute(lambda o: o.instance.flavor)
    image = factory.LazyAttribute(lambda o: o.instance.image)
    size_gib = factory.LazyAttribute(lambda o: o.instance.flavor.disk_gib)
    region = factory.LazyAttribute(lambda o: o.instance.host.region)
    host = factory.LazyAttribute(lambda o: o.instance.host)


class PrivateImageFactory(factory.django.DjangoModelFactory):
    """An available private image of a tenant, kept on a simulated host (no file behind it)."""

    class Meta:
        model = Image

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"golden-{n}")
    os = "Debian"
    version = "12"
    min_disk_gib = 20
    size_gib = 20
    disk_format = "qcow2"
    host = factory.SubFactory(HostFactory)


FACTORIES = {Backup: BackupFactory, Image: PrivateImageFactory}
