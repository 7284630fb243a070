"""Query-count guards for the compute pages: the count must not grow with the number of instances or events."""

import pytest
from django.urls import reverse

from compute.models import Flavor, Host, Image, Instance, InstanceState
from tests.factories.compute import (
    FlavorFactory,
    HostFactory,
    ImageFactory,
    InstanceEventFactory,
    InstanceFactory,
    SSHKeyFactory,
)
from tests.garbage import done_with, left_for_the_collector

# Session, user and memberships (middleware) are 3 of each; the rest are the page's own reads.
# The table alone (what an htmx poll fetches): 5, + the list's version, which a quiet table sends with its 15 s check
LIST_QUERIES = 6
LIST_PAGE_QUERIES = LIST_QUERIES + 2  # the whole page adds the filter bar's sizes and images in use
# 8; + the public addresses counted in the quota headroom of the resize choices; + networking: interfaces, public
# address, firewalls, and the firewall picker's choices with their rules; + storage: the machine's disks; + backups:
# its backups, its schedule, the backup share and the snapshot price
DETAIL_QUERIES = 18
# 8, and the regions: the list, the default one, what their hosts have room for; + the public addresses counted in
# the quota headroom; + the networks, the firewalls with their rules, and the default region to tick the default
# network of
LAUNCH_QUERIES = 16
KEYS_QUERIES = 4


@pytest.fixture
def member_client(member_client):
    # The first request stores the chosen tenant in the session (a write); measure the steady state after it.
    member_client.get(reverse("home"))
    return member_client


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
def test_instance_list_queries_do_not_grow_with_instances(member_client, tenant, count, django_assert_max_num_queries):
    _fill(tenant, count)
    with django_assert_max_num_queries(LIST_PAGE_QUERIES):
        response = member_client.get(reverse("compute:instance-list"))
    assert response.status_code == 200
    with django_assert_max_num_queries(LIST_QUERIES):
        response = member_client.get(reverse("compute:instance-list"), headers={"HX-Request": "true"})
    assert response.status_code == 200


@pytest.mark.parametrize("count", [3, 30])
def test_filtered_instance_list_queries_do_not_grow_with_instances(
    member_client, tenant, count, django_assert_max_num_queries
):
    _fill(tenant, count)
    filters = {"state": "running", "name": "node", "ordering": "flavor,-image"}
    with django_assert_max_num_queries(LIST_PAGE_QUERIES):
        response = member_client.get(reverse("compute:instance-list"), filters)
    assert response.status_code == 200
    with django_assert_max_num_queries(LIST_QUERIES):
        response = member_client.get(reverse("compute:instance-list"), filters, headers={"HX-Request": "true"})
    assert response.status_code == 200


@pytest.mark.parametrize("count", [3, 30])
def test_instance_list_queries_as_staff(member, member_client, tenant, count, django_assert_max_num_queries):
    member.is_staff = True
    member.save()
    _fill(tenant, count)
    with django_assert_max_num_queries(LIST_PAGE_QUERIES):
        response = member_client.get(reverse("compute:instance-list"))
    assert response.status_code == 200


@pytest.mark.parametrize("count", [3, 30])
def test_instance_detail_queries_do_not_grow_with_instances_or_events(
    member_client, tenant, count, django_assert_max_num_queries
):
    _fill(tenant, count)
    instance = InstanceFactory(tenant=tenant, name="watched", state=InstanceState.STOPPED)
    for _ in range(count):
        InstanceEventFactory(instance=instance, tenant=tenant)
    url = reverse("compute:instance-detail", kwargs={"pk": instance.pk})
    with django_assert_max_num_queries(DETAIL_QUERIES):
        response = member_client.get(url)
    assert response.status_code == 200
    with django_assert_max_num_queries(DETAIL_QUERIES):
        response = member_client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200


@pytest.mark.parametrize("count", [3, 30])
def test_launch_form_queries_do_not_grow_with_instances_or_keys(
    member_client, tenant, count, django_assert_max_num_queries
):
    _fill(tenant, count)
    for number in range(count):
        SSHKeyFactory(tenant=tenant, name=f"key-{number}")
    with django_assert_max_num_queries(LAUNCH_QUERIES):
        response = member_client.get(reverse("compute:instance-launch"))
    assert response.status_code == 200


@pytest.mark.parametrize("count", [3, 30])
def test_ssh_key_page_queries_do_not_grow_with_keys(member_client, tenant, count, django_assert_max_num_queries):
    for number in range(count):
        SSHKeyFactory(tenant=tenant, name=f"key-{number}")
    with django_assert_max_num_queries(KEYS_QUERIES):
        response = member_client.get(reverse("compute:sshkey-list"))
    assert response.status_code == 200


def test_the_list_pages_rows_are_freed_with_the_response_not_by_the_cycle_collector(member_client, tenant):
    """Rendering a template leaves the view's context pushed onto a context that it points back at: unless the
    layer lets go of it, every row of the page waits for the cyclic garbage collector, whose full collections then
    pause some later request for tens of milliseconds."""
    _fill(tenant, 30)
    member_client.get(reverse("compute:instance-list"))

    def request() -> None:
        response = member_client.get(reverse("compute:instance-list"), {"per_page": 200})
        assert b"node-029" in response.content
        assert len(response.context["page_obj"].object_list) == 30
        done_with(response)

    assert left_for_the_collector(request, (Instance, Flavor, Image, Host)) == []
