"""Regions: hosts stand in one, users pick one at launch (the default preselected), the scheduler places only there,
and a region without room refuses the launch before anything is created or billed."""

import pytest
from django.urls import reverse

from compute.models import Host, Instance, InstanceEvent, Region
from compute.services import instance_launch
from portal.errors import InvalidRequest, Unprocessable
from tests.api.conftest import api_client_for
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, RegionFactory


@pytest.fixture
def north(db):
    return RegionFactory(name="north", label="North")


def test_a_launch_goes_to_the_named_region_and_only_there(tenant, member, flavor, image, host, north):
    north_host = HostFactory(name="hv-north", region=north)

    placed = instance_launch(tenant=tenant, user=member, name="web-1", flavor=flavor, image=image, region=north)
    default = instance_launch(tenant=tenant, user=member, name="web-2", flavor=flavor, image=image)

    assert (placed.region, placed.host) == (north, north_host)
    assert (default.region, default.host) == (host.region, host)
    assert host.region.is_default


def test_a_region_without_room_says_so_before_anything_is_created(
    tenant, member, flavor, image, host, north, announced
):
    HostFactory(name="hv-north", region=north, enabled=False)

    with pytest.raises(Unprocessable) as caught:
        instance_launch(tenant=tenant, user=member, name="web-1", flavor=flavor, image=image, region=north)

    assert caught.value.code == "no_capacity"
    assert caught.value.message.startswith("No host in North has room for a 2 vCPU / 4 GiB machine")
    assert not Instance.objects.exists() and not InstanceEvent.objects.exists()
    assert announced == []


def test_an_image_limited_to_other_regions_is_refused(tenant, member, flavor, host, north):
    image = ImageFactory(name="North only")
    image.regions.set([north])

    with pytest.raises(InvalidRequest) as caught:
        instance_launch(tenant=tenant, user=member, name="web-1", flavor=flavor, image=image)

    assert caught.value.message == "North only is not available in Default region; pick another image or region."


def test_hosts_made_without_a_region_join_the_default_one(db):
    default = RegionFactory()
    host = HostFactory(name="plain", region=None)
    assert host.region == default


def test_the_first_host_of_an_installation_without_regions_brings_the_default_region(db):
    Region.objects.all().delete()
    host = Host.objects.create(name="first", vcpus=8, ram_mib=16384, disk_gib=100)
    assert (host.region.name, host.region.is_default) == ("default", True)


def test_the_launch_form_preselects_the_default_region_and_marks_a_full_one(member_client, flavor, image, host, north):
    body = member_client.get(reverse("compute:instance-launch")).content.decode()

    assert 'value="default" checked' in body
    assert 'value="north" disabled' in body  # no host in North
    assert "No room for a new machine here right now." in body


def test_the_launch_form_refuses_a_full_region_with_its_name(member_client, flavor, image, host, north):
    HostFactory(name="hv-north", region=north, vcpus=1, cpu_allocation_ratio=1)
    body = {"name": "web-1", "region": "north", "flavor": flavor.pk, "image": image.pk}

    response = member_client.post(reverse("compute:instance-launch"), body)

    assert response.status_code == 422
    assert "No host in North has room" in response.content.decode()
    assert not Instance.objects.exists()


def test_the_api_lists_regions_and_launches_into_one(member, tenant, flavor, image, host, north):
    HostFactory(name="hv-north", region=north)
    api = api_client_for(member, tenant)

    names = [row["name"] for row in api.get("/api/v1/regions/").json()["data"]]
    created = api.post(
        "/api/v1/instances/",
        {"name": "web-1", "flavor": str(flavor.pk), "image": str(image.pk), "region": "north"},
        format="json",
    )
    unknown = api.post(
        "/api/v1/instances/",
        {"name": "web-2", "flavor": str(flavor.pk), "image": str(image.pk), "region": "mars"},
        format="json",
    )

    assert names == ["default", "north"]
    assert created.status_code == 202 and created.json()["region"] == "north"
    assert unknown.status_code == 400 and unknown.json()["error"]["details"]["region"]
    assert Region.objects.get(is_default=True).name == "default"


def test_a_full_region_is_422_in_the_api(member, tenant, image, host, north):
    api = api_client_for(member, tenant)
    big = FlavorFactory(name="huge", vcpus=8, ram_mib=4096, disk_gib=4000)

    response = api.post(
        "/api/v1/instances/", {"name": "web-1", "flavor": str(big.pk), "image": str(image.pk)}, format="json"
    )

    assert response.status_code == 422 and response.json()["error"]["code"] == "no_capacity"
