"""Boot-disk snapshots and private images through the services and the (eager) worker tasks."""

import pytest

from billing.models import ResourceType, Segment
from compute.models import Image, SimulatedDomain
from compute.selectors import image_list
from compute.services import instance_delete, instance_stop
from compute.storage.models import SimulatedVolume, StorageEvent
from compute.storage.services.boot_snapshots import CRASH_CONSISTENT_WARNING, instance_snapshot
from compute.storage.services.images import image_create, image_delete
from portal.errors import Conflict, InvalidRequest
from tests.factories import TenantFactory
from tests.factories.compute import HostFactory, RegionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def snapshot(running, member, committed):
    with committed():
        taken = instance_snapshot(instance=running, user=member, name="web-1 golden")
    taken.refresh_from_db()
    return taken


@pytest.fixture
def private_image(snapshot, member, committed):
    with committed():
        made = image_create(snapshot=snapshot, user=member, name="golden")
    made.refresh_from_db()
    return made


def test_a_running_machines_snapshot_is_crash_consistent_and_says_so(running, member, committed):
    with committed():
        snapshot = instance_snapshot(instance=running, user=member, name="live")
        assert snapshot.state == "creating" and snapshot.crash_consistent
    snapshot.refresh_from_db()
    assert snapshot.state == "available"
    assert (snapshot.source_instance_id, snapshot.size_gib) == (running.pk, running.flavor.disk_gib)
    assert SimulatedVolume.objects.get(name=snapshot.driver_name).host_id == running.host_id
    requested = StorageEvent.objects.get(action="snapshot_create", result="requested")
    assert CRASH_CONSISTENT_WARNING in requested.message
    assert Segment.objects.get(resource_type=ResourceType.SNAPSHOT, resource_id=snapshot.pk).ended_at is None


def test_a_stopped_machines_snapshot_is_clean(running, member, committed):
    with committed():
        instance_stop(instance=running, user=member)
    running.refresh_from_db()
    with committed():
        snapshot = instance_snapshot(instance=running, user=member, name="clean")
    snapshot.refresh_from_db()
    assert (snapshot.state, snapshot.crash_consistent) == ("available", False)


def test_a_busy_machine_cannot_be_snapshotted_and_names_must_be_free(running, member, snapshot):
    with pytest.raises(InvalidRequest) as taken:
        instance_snapshot(instance=running, user=member, name="WEB-1 golden")
    assert taken.value.code == "name_taken"
    instance_stop(instance=running, user=member)  # not committed: still stopping
    with pytest.raises(Conflict) as busy:
        instance_snapshot(instance=running, user=member, name="other")
    assert busy.value.code == "instance_busy" and "stopping" in busy.value.message


def test_a_private_image_from_a_snapshot_is_launchable_and_billed(private_image, snapshot, running, tenant):
    assert private_image.state == "available"
    assert (private_image.tenant_id, private_image.host_id) == (tenant.pk, snapshot.host_id)
    assert (private_image.os, private_image.size_gib) == (running.image.os, snapshot.size_gib)
    assert private_image.min_disk_gib == snapshot.size_gib
    assert SimulatedVolume.objects.filter(name=private_image.driver_name).exists()
    assert private_image in image_list(tenant=tenant)
    assert private_image not in image_list()  # not in the public catalog
    assert private_image not in image_list(tenant=TenantFactory())  # nor another organisation's
    segment = Segment.objects.get(resource_type=ResourceType.IMAGE, resource_id=private_image.pk)
    assert (segment.quantity, segment.plan_name, segment.ended_at) == (40, "Private image (40 GiB)", None)


def test_launching_from_a_private_image_places_the_machine_on_the_host_that_keeps_it(
    private_image, launch, committed, snapshot
):
    HostFactory(name="hv-empty", vcpus=64, ram_mib=262144, disk_gib=4000)  # roomier: a catalog launch would go there
    with committed():
        machine = launch(name="from-golden", image=private_image)
    machine.refresh_from_db()
    assert machine.state == "running"
    assert machine.host_id == snapshot.host_id
    assert SimulatedDomain.objects.get(uuid=machine.pk).image == private_image.driver_name


def test_a_private_image_of_another_region_is_refused(private_image, launch):
    elsewhere = RegionFactory(name="far")
    HostFactory(name="hv-far", region=elsewhere)
    with pytest.raises(InvalidRequest) as refused:
        launch(name="far-away", image=private_image, region=elsewhere)
    assert refused.value.code == "invalid_region"


def test_another_organisations_private_image_is_not_launchable(private_image, flavor, host):
    from compute.services import instance_launch
    from tests.factories import MembershipFactory

    stranger = MembershipFactory(tenant=TenantFactory(), role="member")
    with pytest.raises(InvalidRequest) as refused:
        instance_launch(
            tenant=stranger.tenant, user=stranger.user, name="x", flavor=flavor, image=private_image, keys=[]
        )
    assert refused.value.code == "invalid_image"


def test_an_image_in_use_cannot_be_deleted_and_the_refusal_names_the_machines(private_image, launch, committed, member):
    with committed():
        first = launch(name="golden-a", image=private_image)
        launch(name="golden-b", image=private_image)
    with pytest.raises(Conflict) as refused:
        image_delete(image=private_image, user=member)
    assert refused.value.code == "image_in_use"
    assert "golden-a, golden-b" in refused.value.message
    assert refused.value.details["instances"] == ["golden-a", "golden-b"]

    with committed():
        instance_delete(instance=first, user=member)
        instance_delete(instance=Image.objects.get(pk=private_image.pk).instances.get(name="golden-b"), user=member)
    with committed():
        image_delete(image=private_image, user=member)
    private_image.refresh_from_db()
    assert (private_image.state, private_image.active) == ("deleted", False)
    assert not SimulatedVolume.objects.filter(name=private_image.driver_name).exists()
    segment = Segment.objects.get(resource_type=ResourceType.IMAGE, resource_id=private_image.pk)
    assert segment.ended_at is not None
    assert private_image not in image_list(tenant=private_image.tenant)


def test_catalog_images_cannot_be_deleted(image, member):
    with pytest.raises(Conflict) as refused:
        image_delete(image=image, user=member)
    assert refused.value.code == "image_public"


def test_image_names_are_unique_per_organisation(private_image, snapshot, member):
    with pytest.raises(InvalidRequest) as taken:
        image_create(snapshot=snapshot, user=member, name="GOLDEN")
    assert taken.value.code == "name_taken"


def test_a_snapshot_being_made_cannot_become_an_image(running, member):
    snapshot = instance_snapshot(instance=running, user=member, name="pending")  # not committed: creating
    with pytest.raises(Conflict) as refused:
        image_create(snapshot=snapshot, user=member, name="too-early")
    assert refused.value.code == "snapshot_busy"


def test_a_machine_on_a_private_image_cannot_be_moved_off_its_host(private_image, launch, committed, member):
    from compute.services.migration import instance_migrate

    HostFactory(name="hv-other")
    with committed():
        machine = launch(name="pinned", image=private_image)
    machine.refresh_from_db()
    with pytest.raises(Conflict) as refused:
        instance_migrate(instance=machine, user=member)
    assert refused.value.code == "private_image"
