"""The instance list's filters: one FilterSet, so the dashboard and the API answer the same inputs the same way."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from compute.models import Instance, InstanceState
from tests.factories.compute import FlavorFactory, ImageFactory, InstanceFactory

LIST = reverse("compute:instance-list")
API = "/api/v1/instances/"


@pytest.fixture
def fleet(tenant):
    """web-a (oldest), web-b, db-a (newest) and a deleted one; created an hour apart so the default order is known."""
    small, large = FlavorFactory(name="s1.small"), FlavorFactory(name="s4.large")
    debian, ubuntu = ImageFactory(name="Debian 12"), ImageFactory(name="Ubuntu 24.04")
    rows = [
        ("web-a", InstanceState.RUNNING, small, debian),
        ("web-b", InstanceState.STOPPED, large, debian),
        ("db-a", InstanceState.RUNNING, large, ubuntu),
        ("gone", InstanceState.DELETED, small, ubuntu),
    ]
    start = timezone.now() - timedelta(days=1)
    for hour, (name, state, flavor, image) in enumerate(rows):
        instance = InstanceFactory(tenant=tenant, name=name, state=state, flavor=flavor, image=image)
        Instance.objects.filter(pk=instance.pk).update(created_at=start + timedelta(hours=hour))
    InstanceFactory(name="web-elsewhere")  # another tenant's
    return {"large": large, "ubuntu": ubuntu}


def _dashboard_names(response) -> list[str]:
    return re.findall(r'<tr id="instance-[^"]+">\s*<td class="nowrap"><a [^>]+><strong>([^<]+)</strong>', response.text)


def _api_names(response) -> list[str]:
    return [row["name"] for row in response.json()["data"]]


CASES = [
    ({}, ["db-a", "web-b", "web-a"]),
    ({"state": "running"}, ["db-a", "web-a"]),
    ({"state": ["running", "stopped"]}, ["db-a", "web-b", "web-a"]),
    ({"name": "WEB"}, ["web-b", "web-a"]),
    ({"flavor": "large"}, ["db-a", "web-b"]),
    ({"image": "ubuntu"}, ["db-a"]),
    ({"state": "stopped", "name": "web"}, ["web-b"]),
    ({"ordering": "name"}, ["db-a", "web-a", "web-b"]),
    ({"ordering": "-name"}, ["web-b", "web-a", "db-a"]),
    ({"ordering": "created"}, ["web-a", "web-b", "db-a"]),
    ({"ordering": "flavor,-name"}, ["web-a", "web-b", "db-a"]),
    ({"ordering": "image", "state": "running"}, ["web-a", "db-a"]),
]


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_the_dashboard_and_the_api_list_the_same_instances(member_client, fleet, query, expected):
    query = {key: str(fleet[value].pk) if key in ("flavor", "image") else value for key, value in query.items()}

    page = member_client.get(LIST, query)
    api = member_client.get(API, query)  # the API also takes the dashboard's session

    assert page.status_code == 200 and api.status_code == 200
    assert _dashboard_names(page) == _api_names(api) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"state": "exploded"}, "State"),
        ({"flavor": "xyz"}, "Size"),
        ({"ordering": "password"}, "Sort by"),
        ({"ordering": "name,,"}, "Sort by"),
        ({"created_after": "yesterday"}, "Created after"),
    ],
)
def test_a_bad_filter_value_is_an_error_on_both_surfaces(member_client, fleet, query, field):
    page = member_client.get(LIST, query)
    api = member_client.get(API, query)

    assert api.status_code == 400
    assert set(api.json()) == {"error"} and api.json()["error"]["code"] == "invalid"
    assert page.status_code == 400
    assert "These filters could not be applied" in page.text
    assert re.search(rf'<li id="[^"]+_error">{field}: [^<]+</li>', page.text)
    assert _dashboard_names(page) == []  # not silently the unfiltered list


def test_a_field_left_blank_in_the_filter_bar_means_any_but_is_a_mistake_in_the_api(member_client, fleet):
    blank_form = {"state": "", "name": " ", "flavor": "", "image": "", "ordering": ""}

    page = member_client.get(LIST, blank_form)

    assert page.status_code == 200
    assert _dashboard_names(page) == ["db-a", "web-b", "web-a"]
    assert member_client.get(API, {"image": ""}).status_code == 400


def test_the_filter_bar_shows_the_chosen_filters_and_only_the_tenants_sizes_and_images(member_client, fleet, tenant):
    FlavorFactory(name="s9.unused")
    chosen = {"state": "running", "flavor": str(fleet["large"].pk), "ordering": "-name", "created_after": "2000-01-01"}
    page = member_client.get(LIST, chosen).text

    assert '<option value="running" selected>Running</option>' in page
    assert f'<option value="{fleet["large"].pk}" selected>s4.large</option>' in page
    assert '<option value="-name" selected>' in page
    assert '<input type="hidden" name="created_after" value="2000-01-01"' in page  # kept when the bar is submitted
    assert "s1.small" in page and "s9.unused" not in page
    assert 'value="deleted"' not in page  # deleted instances are never in this list


def test_polling_keeps_the_filters(member_client, tenant, fleet):
    InstanceFactory(tenant=tenant, name="web-new", state=InstanceState.BUILDING)

    partial = member_client.get(LIST, {"name": "web", "ordering": "name"}, headers={"HX-Request": "true"})

    assert partial.status_code == 200
    assert f'hx-get="{LIST}?name=web&amp;ordering=name"' in partial.text
    assert _dashboard_names(partial) == ["web-a", "web-b", "web-new"]
