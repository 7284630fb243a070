"""Labels on every tenant resource: validation, setting them through the API, filtering every list, the activity log."""

import pytest

from compute.models import Instance, SSHKey
from compute.network.models import Firewall, Network, PublicIP, PublicIPPool
from compute.services import resource_labels_set
from tenants.labels import labels_filter, labels_parse_text, validate_labels
from tenants.models import ActivityEntry
from tests.api.test_generic import assert_error
from tests.factories.compute import InstanceFactory, SSHKeyFactory
from tests.factories.network import FirewallFactory, NetworkFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "labels",
    [
        {"Team": "web"},
        {"-team": "web"},
        {"team-": "web"},
        {"a" * 64: "x"},
        {"team": "x" * 64},
        {"team": 3},
        {f"k{n}": "v" for n in range(33)},
        ["team=web"],
    ],
)
def test_invalid_labels_are_refused(labels):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        validate_labels(labels)


def test_valid_labels_and_the_text_form():
    validate_labels({"hangar.stack": "web", "example.com/role": "", "a": "b" * 63})
    assert labels_parse_text("team=web\n tier = front ,solo") == {"solo": "", "team": "web", "tier": "front"}


def test_selector_matches_key_and_value_with_dots_and_slashes(tenant):
    a = SSHKeyFactory(tenant=tenant, labels={"hangar.stack": "web", "example.com/role": "db"})
    b = SSHKeyFactory(tenant=tenant, labels={"hangar.stack": "api"})
    SSHKeyFactory(tenant=tenant)
    keys = SSHKey.objects.for_tenant(tenant)
    assert list(labels_filter(keys, ["hangar.stack=web"])) == [a]
    assert set(labels_filter(keys, ["hangar.stack"])) == {a, b}
    assert list(labels_filter(keys, ["hangar.stack", "example.com/role=db"])) == [a]
    assert list(labels_filter(keys, ["hangar.stack="])) == []


LISTS = [
    ("/api/v1/instances/", lambda tenant, labels: InstanceFactory(tenant=tenant, labels=labels)),
    ("/api/v1/ssh-keys/", lambda tenant, labels: SSHKeyFactory(tenant=tenant, labels=labels)),
    ("/api/v1/networks/", lambda tenant, labels: NetworkFactory(tenant=tenant, labels=labels)),
    ("/api/v1/firewalls/", lambda tenant, labels: FirewallFactory(tenant=tenant, labels=labels)),
]


@pytest.mark.parametrize(("url", "make"), LISTS)
def test_every_list_filters_by_label(member_api, tenant, url, make):
    wanted = make(tenant, {"team": "web", "tier": "front"})
    make(tenant, {"team": "db"})
    response = member_api.get(url, {"label": ["team=web", "tier"]})
    assert response.status_code == 200, response.content
    assert [row["id"] for row in response.json()["data"]] == [str(wanted.pk)]
    assert response.json()["data"][0]["labels"] == {"team": "web", "tier": "front"}


@pytest.mark.parametrize("url", [url for url, _ in LISTS] + ["/api/v1/ips/"])
def test_a_bad_label_selector_is_a_400(member_api, url):
    assert_error(member_api.get(url, {"label": "Not A Key"}), 400)
    assert_error(member_api.get(url, {"label": ""}), 400)


def test_labels_set_on_create_and_patch_and_logged(member_api, tenant, member):
    key = member_api.post(
        "/api/v1/ssh-keys/",
        {
            "name": "laptop",
            "public_key": SSHKeyFactory.build().public_key,
            "labels": {"team": "web"},
        },
        format="json",
    )
    assert key.status_code == 201, key.content
    assert key.json()["labels"] == {"team": "web"}
    response = member_api.patch(
        f"/api/v1/ssh-keys/{key.json()['id']}/", {"labels": {"team": "api", "env": "prod"}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["labels"] == {"env": "prod", "team": "api"}
    entry = ActivityEntry.objects.for_tenant(tenant).get(action="labels")
    assert entry.actor == member and entry.channel == "api"
    assert entry.message == "added env=prod; changed team: web → api"
    assert_error(
        member_api.patch(f"/api/v1/ssh-keys/{key.json()['id']}/", {"labels": {"BAD": "x"}}, format="json"), 400
    )


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/api/v1/instances/{}/", lambda t: InstanceFactory(tenant=t)),
        ("/api/v1/networks/{}/", lambda t: NetworkFactory(tenant=t)),
        ("/api/v1/firewalls/{}/", lambda t: FirewallFactory(tenant=t)),
    ],
)
def test_patch_labels_of_each_resource(member_api, tenant, url, make):
    obj = make(tenant)
    response = member_api.patch(url.format(obj.pk), {"labels": {"team": "web"}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["labels"] == {"team": "web"}
    obj.refresh_from_db()
    assert obj.labels == {"team": "web"}


def test_public_ip_labels(member_api, tenant, member):
    PublicIPPool.objects.create(name="doc", cidr="203.0.113.0/29")
    created = member_api.post("/api/v1/ips/", {"labels": {"role": "lb"}}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["labels"] == {"role": "lb"}
    member_api.post("/api/v1/ips/", {}, format="json")
    listed = member_api.get("/api/v1/ips/", {"label": "role=lb"}).json()["data"]
    assert [row["id"] for row in listed] == [created.json()["id"]]
    patched = member_api.patch(f"/api/v1/ips/{created.json()['id']}/", {"labels": {}}, format="json")
    assert patched.json()["labels"] == {}
    assert PublicIP.objects.get(pk=created.json()["id"]).labels == {}


def test_same_labels_change_nothing(tenant, member):
    network = NetworkFactory(tenant=tenant, labels={"a": "b"})
    resource_labels_set(resource=network, user=member, labels={"a": "b"})
    assert not ActivityEntry.objects.for_tenant(tenant).filter(action="labels").exists()
    assert Network.objects.get(pk=network.pk).labels == {"a": "b"}
    assert Instance and Firewall  # every labelled model is imported by this module's tests


# --- the dashboard -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/instances/", lambda tenant, labels: InstanceFactory(tenant=tenant, labels=labels)),
        ("/ssh-keys/", lambda tenant, labels: SSHKeyFactory(tenant=tenant, labels=labels)),
        ("/networks/", lambda tenant, labels: NetworkFactory(tenant=tenant, labels=labels)),
        ("/firewalls/", lambda tenant, labels: FirewallFactory(tenant=tenant, labels=labels)),
    ],
)
def test_dashboard_lists_show_chips_and_filter_by_label(member_client, tenant, url, make):
    wanted = make(tenant, {"team": "web"})
    other = make(tenant, {"team": "db"})
    page = member_client.get(url, {"label": "team=web"})
    assert page.status_code == 200
    text = page.content.decode()
    assert wanted.name in text and other.name not in text
    assert "team=web" in text  # the chip, and the filter box keeps it
    bad = member_client.get(url, {"label": "NOT VALID"}).content.decode()
    assert str(wanted.pk) not in bad and ("cannot be applied" in bad or "could not be applied" in bad)


@pytest.mark.parametrize(
    ("kind", "make", "model"),
    [
        ("instances", lambda t: InstanceFactory(tenant=t), Instance),
        ("ssh-keys", lambda t: SSHKeyFactory(tenant=t), SSHKey),
        ("networks", lambda t: NetworkFactory(tenant=t), Network),
        ("firewalls", lambda t: FirewallFactory(tenant=t), Firewall),
    ],
)
def test_labels_are_edited_from_the_dashboard(member_client, tenant, kind, make, model):
    obj = make(tenant)
    url = f"/{kind}/{obj.pk}/labels/"
    assert member_client.get(url).status_code == 200
    response = member_client.post(url, {"labels": "team=web\ntier = front"})
    assert response.status_code == 302, response.content
    assert model.objects.get(pk=obj.pk).labels == {"team": "web", "tier": "front"}
    refused = member_client.post(url, {"labels": "Bad Key=1"})
    assert refused.status_code == 400 and "is not valid" in refused.content.decode()
    entry = ActivityEntry.objects.for_tenant(tenant).get(action="labels")
    assert entry.channel == "dashboard" and entry.message == "added team=web, tier=front"


def test_viewer_and_outsider_cannot_edit_labels(viewer_client, outsider_client, tenant):
    network = NetworkFactory(tenant=tenant)
    assert viewer_client.post(f"/networks/{network.pk}/labels/", {"labels": "a=b"}).status_code == 403
    assert outsider_client.get(f"/networks/{network.pk}/labels/").status_code == 404
    assert viewer_client.get(f"/instances/{network.pk}/labels/").status_code == 404
