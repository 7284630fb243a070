import factory

from compute.storage.models import Snapshot, StorageEvent, Volume
from tests.factories.compute import HostFactory, RegionFactory
from tests.factories.tenants import TenantFactory


class VolumeFactory(factory.django.DjangoModelFactory):
    """A volume row in `available` (its file is not made: build through the services for that)."""

    class Meta:
        model = Volume

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"volume-{n}")
    size_gib = 10
    state = "available"
    region = factory.SubFactory(RegionFactory)
    host = factory.SubFactory(HostFactory)


class SnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Snapshot

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"snapshot-{n}")
    size_gib = 10
    state = "available"
    region = factory.SubFactory(RegionFactory)
    host = factory.SubFactory(HostFactory)
    source_name = "volume"


class StorageEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StorageEvent

    tenant = factory.SubFactory(TenantFactory)
    action = "volume_create"
    subject = "volume"


FACTORIES = {Volume: VolumeFactory, Snapshot: SnapshotFactory, StorageEvent: StorageEventFactory}
