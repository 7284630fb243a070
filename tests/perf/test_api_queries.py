"""Query-count guards for the API's instance list and launch, and the list's capped count."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.serializers import ModelSerializer

from compute.api.serializers import InstanceAddressSerializer, InstanceSerializer, InstanceTrafficSerializer
from compute.models import Instance, InstanceState
from compute.network.models import Port, TrafficCounter
from compute.network.selectors import instance_ports
from compute.network.services import network_defaults_ensure
from compute.network.services.networks import ports_new
from portal.api import pagination
from tests.api.conftest import api_client_for
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, InstanceFactory, SSHKeyFactory
from tests.garbage import done_with, left_for_the_collector

pytestmark = pytest.mark.django_db

# The token with its membership (authentication), the capped count, and the page (each row with its network
# interfaces, firewalls and public address).
API_LIST_QUERIES = 3
# The token with its membership (authentication); the quota's check-and-reserve (one conditional UPDATE); the used
# addresses of its network; the hosts and the claim on the chosen one (one conditional UPDATE that also reserves);
# the instance, its event, the activity log's entry, its port and its firewall link, in one statement on PostgreSQL and
# one each on SQLite. The catalog (flavor, image, regions) and the tenant's default network and firewall come from
# memory, and the answer is built from what the launch wrote.
LAUNCH_QUERIES = {"postgresql": 6, "sqlite": 10}


@pytest.fixture
def member_api(member, tenant):
    return api_client_for(member, tenant)


def _fill(tenant, count: int) -> None:
    host = HostFactory(name="hv-perf")
    flavors = [FlavorFactory(name=f"perf-{n}", vcpus=n + 1) for n in range(3)]
    images = [ImageFactory(name=f"perf-image-{n}") for n in range(3)]
    for number in range(count):
        InstanceFactory(
            tenant=tenant,
            name=f"node-{number:03d}",
            host=host,
            flavor=flavors[number % 3],
            image=images[number % 3],
            state=InstanceState.RUNNING if number % 2 else InstanceState.STOPPED,
        )


@pytest.mark.parametrize("count", [3, 30])
def test_api_instance_list_queries_do_not_grow_and_never_load_the_catalog(member_api, tenant, count):
    _fill(tenant, count)
    member_api.get("/api/v1/instances/")  # the token's first use is recorded once
    with CaptureQueriesContext(connection) as captured:
        response = member_api.get("/api/v1/instances/", {"per_page": 200})
    assert response.status_code == 200 and len(response.json()["data"]) == count
    assert len(captured.captured_queries) <= API_LIST_QUERIES
    catalog_reads = [
        q["sql"] for q in captured.captured_queries if "compute_flavor" in q["sql"] or "compute_image" in q["sql"]
    ]
    assert not catalog_reads


def test_a_list_pages_rows_are_freed_with_the_response_not_by_the_cycle_collector(member_api, tenant):
    """The view, its request, response and paginator, and a many=True serializer with its child, point at each other:
    unless the API lets go of them, a page's rows wait for the cyclic garbage collector, whose full collections then
    pause a request for tens of milliseconds."""
    _fill(tenant, 30)
    member_api.get("/api/v1/instances/")

    def request() -> None:
        response = member_api.get("/api/v1/instances/", {"per_page": 200})
        assert len(response.json()["data"]) == 30
        done_with(response)

    assert left_for_the_collector(request, Instance) == []


def test_instance_serializer_says_what_its_declared_fields_say(tenant):
    """The hand-written fast path gives exactly what DRF's field-by-field serialization gives."""
    keys = [SSHKeyFactory(tenant=tenant, name=f"key-{n}") for n in range(2)]
    instances = [
        InstanceFactory(tenant=tenant, name="plain"),
        InstanceFactory(tenant=tenant, name="keyed", ssh_keys=[key.snapshot() for key in keys], private_ip="10.0.0.7"),
        InstanceFactory(tenant=tenant, name="resizing", state=InstanceState.STOPPED, resize_flavor=FlavorFactory()),
        InstanceFactory(tenant=tenant, name="broken", state=InstanceState.ERROR, error_reason="it broke"),
    ]
    for instance in [*instances, *Instance.objects.filter(pk__in=[i.pk for i in instances])]:
        serializer = InstanceSerializer()
        assert serializer.to_representation(instance) == ModelSerializer.to_representation(serializer, instance)


def test_addresses_and_traffic_say_what_their_serializers_say(tenant):
    """The list writes each interface and the traffic counters out by hand; DRF's serializers are the reference."""
    network, _firewall = network_defaults_ensure(tenant=tenant)
    instance = InstanceFactory(tenant=tenant, name="wired")
    Port.objects.bulk_create(
        ports_new(instance=instance, networks=[network], interfaces=[("10.9.0.5", "52:54:00:aa:bb:01")])
    )
    TrafficCounter.objects.create(instance=instance, rx_total=2**40, tx_total=7, sampled_at=timezone.now())
    bare = InstanceFactory(tenant=tenant, name="unwired")
    for each in Instance.objects.filter(pk__in=[instance.pk, bare.pk]).select_related("traffic"):
        serializer = InstanceSerializer()
        ports = instance_ports(each)
        assert serializer.get_addresses(each) == InstanceAddressSerializer(ports, many=True).data
        counter = getattr(each, "traffic", None)
        expected_traffic = InstanceTrafficSerializer(counter).data if counter is not None else None
        assert serializer.get_traffic(each) == expected_traffic
    assert InstanceSerializer().get_addresses(instance)[0]["ip"] == "10.9.0.5"


def test_a_list_longer_than_the_count_cap_says_so_and_still_pages_on(member_api, tenant, monkeypatch):
    monkeypatch.setattr(pagination.CappedPaginator, "count_cap", 4)
    _fill(tenant, 7)
    first = member_api.get("/api/v1/instances/", {"per_page": 3}).json()
    assert first["meta"] == {"total": 4, "total_capped": True, "page": 1, "per_page": 3}
    assert first["links"]["last"] is None and "page=2" in first["links"]["next"]
    second = member_api.get("/api/v1/instances/", {"per_page": 3, "page": 2}).json()
    assert len(second["data"]) == 3 and "page=3" in second["links"]["next"]
    third = member_api.get("/api/v1/instances/", {"per_page": 3, "page": 3}).json()
    assert len(third["data"]) == 1 and third["links"]["next"] is None and "page=2" in third["links"]["prev"]
    names = [row["name"] for page in (first, second, third) for row in page["data"]]
    assert len(set(names)) == 7
    assert member_api.get("/api/v1/instances/", {"per_page": 3, "page": 4}).json()["data"] == []
    # Within the cap nothing changes: the exact total, and the last page.
    exact = member_api.get("/api/v1/instances/", {"per_page": 3, "state": "running"}).json()
    assert exact["meta"] == {"total": 3, "page": 1, "per_page": 3} and exact["links"]["last"] is not None


def test_the_dashboard_list_longer_than_the_count_cap_says_more_than(member_client, tenant, monkeypatch):
    monkeypatch.setattr(pagination.CappedPaginator, "count_cap", 4)
    _fill(tenant, 7)
    first = member_client.get("/instances/", {"per_page": 3}).content.decode()
    assert "Page 1 of 2+ · more than 4 in all" in first and "page=2" in first
    third = member_client.get("/instances/", {"per_page": 3, "page": 3}).content.decode()
    assert third.count('<tr id="instance-') == 1 and "Next" not in third
    assert member_client.get("/instances/", {"per_page": 3, "page": 4}).status_code == 404


def test_a_launch_post_takes_a_constant_number_of_queries(member_api, tenant):
    """Savepoints are left out: the test's own transaction turns the launch's transaction into one."""
    for number in range(3):
        HostFactory(name=f"hv-{number}")
    flavor, image = FlavorFactory(), ImageFactory()
    network_defaults_ensure(tenant=tenant)  # as signing up makes them
    _fill(tenant, 5)
    tenant.quota.instances = 100
    tenant.quota.save()
    body = {"flavor": str(flavor.pk), "image": str(image.pk)}
    member_api.post("/api/v1/instances/", {**body, "name": "first"}, format="json")
    with CaptureQueriesContext(connection) as captured:
        response = member_api.post("/api/v1/instances/", {**body, "name": "counted"}, format="json")
    assert response.status_code == 202, response.content
    statements = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= LAUNCH_QUERIES[connection.vendor], "\n".join(statements)
