"""Networks and public addresses belong to a region, like hosts: a machine joins networks of its own region, and a
public address reaches machines of its pool's region."""

import pytest

from compute.network.models import Network, Port, PublicIPPool
from compute.network.services import network_create, public_ip_allocate, public_ip_assign
from portal.errors import Conflict, InvalidRequest, Unprocessable
from tests.factories.compute import HostFactory, RegionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def elsewhere(db):
    """A second region with a host."""
    region = RegionFactory(name="hel1", label="Helsinki")
    HostFactory(name="hv-hel", region=region, vcpus=16, ram_mib=65536, disk_gib=1000)
    return region


def test_each_region_gets_its_own_default_network(launch, committed, tenant, host, elsewhere):
    with committed():
        here = launch(name="a")
        there = launch(name="b", region=elsewhere)
    defaults = {n.region_id: n for n in Network.objects.filter(tenant=tenant, is_default=True)}
    assert set(defaults) == {host.region_id, elsewhere.pk}
    assert defaults[elsewhere.pk].name == "default-hel1"
    assert Port.objects.get(instance=here).network == defaults[host.region_id]
    assert Port.objects.get(instance=there).network == defaults[elsewhere.pk]
    assert defaults[host.region_id].cidr != defaults[elsewhere.pk].cidr


def test_a_machine_joins_networks_of_its_own_region_only(launch, tenant, member, elsewhere):
    helsinki = network_create(tenant=tenant, user=member, name="hel-backend", cidr="10.40.0.0/24", region=elsewhere)
    assert helsinki.region == elsewhere
    with pytest.raises(InvalidRequest) as refused:
        launch(networks=[helsinki])
    assert refused.value.code == "network_in_other_region"
    assert refused.value.message.startswith("hel-backend is in another region than")


def test_an_address_comes_from_the_machines_region_and_stays_there(launch, committed, tenant, member, host, elsewhere):
    PublicIPPool.objects.create(name="fsn", cidr="203.0.113.0/29", region=host.region)
    PublicIPPool.objects.create(name="hel", cidr="198.51.100.0/29", region=elsewhere)
    with committed():
        there = launch(name="b", region=elsewhere)
        here = launch(name="a")
    address = public_ip_allocate(tenant=tenant, user=member, instance=there)
    assert address.address.startswith("198.51.100.")
    with pytest.raises(Conflict) as refused:
        public_ip_assign(public_ip=address, instance=here, user=member)
    assert refused.value.code == "ip_in_other_region"
    unassigned = public_ip_allocate(tenant=tenant, user=member)  # the default region's pool
    assert unassigned.address.startswith("203.0.113.")


def test_a_region_without_a_pool_has_no_address_to_give(launch, committed, tenant, member, host, elsewhere):
    PublicIPPool.objects.create(name="fsn", cidr="203.0.113.0/29", region=host.region)
    with committed():
        there = launch(name="b", region=elsewhere)
    with pytest.raises(Unprocessable) as refused:
        public_ip_allocate(tenant=tenant, user=member, instance=there)
    assert (refused.value.code, refused.value.details) == ("pool_exhausted", {"region": "hel1"})


def test_the_api_names_regions(member_api, tenant, host, elsewhere):
    response = member_api.post(
        "/api/v1/networks/", {"name": "hel", "cidr": "10.40.0.0/24", "region": "hel1"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["region"] == "hel1"
    PublicIPPool.objects.create(name="hel", cidr="198.51.100.0/29", region=elsewhere)
    response = member_api.post("/api/v1/ips/", {"region": "hel1"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["region"] == "hel1"
    response = member_api.post(
        "/api/v1/networks/", {"name": "x", "cidr": "10.41.0.0/24", "region": "nowhere"}, format="json"
    )
    assert response.status_code == 400 and "region" in response.json()["error"]["details"]


def test_the_launch_form_hides_networks_of_other_regions(member_client, tenant, member, host, elsewhere, committed):
    network_create(tenant=tenant, user=member, name="hel-backend", cidr="10.40.0.0/24", region=elsewhere)
    page = member_client.get("/instances/launch/").content.decode()
    assert 'data-network-region="hel1" hidden' in page


@pytest.fixture
def member_api(member, tenant):
    from tests.api.conftest import api_client_for

    return api_client_for(member, tenant)
