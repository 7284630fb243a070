"""Networks, public IPv4 addresses, firewalls and the instances' networking through the API."""

import pytest

from compute.models import SimulatedDomain
from compute.network.models import Firewall, Network, PublicIP, PublicIPPool, SimulatedNat
from tenants.models import Quota
from tests.api.test_generic import assert_error
from tests.api.test_instances import CommittingClient, _launch, catalog  # noqa: F401  (the catalog fixture)
from tests.factories.compute import InstanceFactory, SSHKeyFactory
from tests.factories.network import FirewallFactory, NetworkFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(member_api, django_capture_on_commit_callbacks):
    return CommittingClient(member_api, django_capture_on_commit_callbacks)


@pytest.fixture
def pool(db):
    return PublicIPPool.objects.create(name="doc", cidr="203.0.113.0/29", excluded="203.0.113.1")


def _running(api, catalog, **extra) -> dict:  # noqa: F811
    response = _launch(api, catalog, **extra)
    assert response.status_code == 202, response.content
    return api.get(response["Location"]).json()


# --- networks -----------------------------------------------------------------------------------------------------


def test_create_a_network_then_launch_on_it(api, catalog):  # noqa: F811
    response = api.post("/api/v1/networks/", {"name": "backend", "cidr": "10.20.0.0/24"}, format="json")
    assert response.status_code == 201, response.content
    network = response.json()
    assert network["gateway_ip"] == "10.20.0.1" and network["capacity"] == 253 and network["is_default"] is False
    assert response["Location"].endswith(f"/api/v1/networks/{network['id']}/")

    instance = _running(api, catalog, networks=[network["id"]])
    assert instance["private_ip"] == "10.20.0.2"
    assert instance["addresses"][0] == {
        "interface": "eth0",
        "network": network["id"],
        "ip": "10.20.0.2",
        "prefix": 24,
        "mac": instance["addresses"][0]["mac"],
    }
    assert api.get(f"/api/v1/networks/{network['id']}/").json()["machine_count"] == 1


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("8.8.8.0/24", "is not a private range"),
        ("10.20.0.5/24", "did you mean 10.20.0.0/24?"),
        ("10.0.0.0/8", "between /16"),
        ("10.20.0.0", "has no prefix length"),
        ("banana/24", "is not an IPv4 range"),
    ],
)
def test_a_bad_range_is_a_field_error(api, cidr, message):
    response = api.post("/api/v1/networks/", {"name": "x", "cidr": cidr}, format="json")
    assert_error(response, 400, "invalid_cidr")
    body = response.json()["error"]
    assert message in body["message"] and body["details"] == {"field": "cidr"}


def test_a_range_overlapping_another_of_yours_is_refused(api, tenant):
    NetworkFactory(tenant=tenant, name="office", cidr="192.168.0.0/16")
    response = api.post("/api/v1/networks/", {"name": "lab", "cidr": "192.168.4.0/24"}, format="json")
    assert_error(response, 400, "cidr_overlap")
    assert response.json()["error"]["message"] == (
        "192.168.4.0/24 overlaps your network office (192.168.0.0/16); pick a range that does not."
    )
    NetworkFactory(cidr="172.30.0.0/24")  # another organisation's: no business of ours
    assert api.post("/api/v1/networks/", {"name": "lab", "cidr": "172.30.0.0/24"}, format="json").status_code == 201


def test_a_network_in_use_or_the_default_one_is_not_deleted(api, catalog, tenant):  # noqa: F811
    instance = _running(api, catalog)
    default = Network.objects.get(tenant=tenant, is_default=True)
    assert instance["addresses"][0]["network"] == str(default.pk)
    assert_error(api.delete(f"/api/v1/networks/{default.pk}/"), 409, "default_network")
    spare = NetworkFactory(tenant=tenant)
    assert api.delete(f"/api/v1/networks/{spare.pk}/").status_code == 204
    used = NetworkFactory(tenant=tenant, cidr="172.31.0.0/24")
    _running(api, catalog, name="web-2", networks=[str(used.pk)])
    response = api.delete(f"/api/v1/networks/{used.pk}/")
    assert_error(response, 409, "network_in_use")


def test_another_tenants_network_reads_as_unknown_at_launch(api, catalog):  # noqa: F811
    response = _launch(api, catalog, networks=[str(NetworkFactory().pk)])
    assert_error(response, 400, "invalid")
    assert "networks" in response.json()["error"]["details"]


# --- public addresses ---------------------------------------------------------------------------------------------


def test_allocate_assign_move_unassign_release(api, catalog, pool, tenant):  # noqa: F811
    first = _running(api, catalog, name="web-1")
    second = _running(api, catalog, name="web-2")
    response = api.post("/api/v1/ips/", {}, format="json")
    assert response.status_code == 201, response.content
    address = response.json()
    assert (address["state"], address["instance"]) == ("allocated", None)
    url = f"/api/v1/ips/{address['id']}/"

    response = api.post(url + "actions/", {"type": "assign", "instance": first["id"]}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["instance"] == first["id"]
    assert api.get(f"/api/v1/instances/{first['id']}/").json()["public_ip"] == address["address"]
    assert list(SimulatedNat.objects.values_list("public_ip", "private_ip")) == [
        (address["address"], first["private_ip"])
    ]

    api.post(url + "actions/", {"type": "assign", "instance": second["id"]}, format="json")
    assert list(SimulatedNat.objects.values_list("private_ip", flat=True)) == [second["private_ip"]]
    assert api.get(f"/api/v1/instances/{first['id']}/").json()["public_ip"] is None

    response = api.post(url + "actions/", {"type": "unassign"}, format="json")
    assert response.json()["state"] == "allocated"
    assert not SimulatedNat.objects.exists()

    assert api.delete(url).status_code == 204
    assert_error(api.get(url), 404, "not_found")
    assert PublicIP.objects.get(pk=address["id"]).state == "released"


def test_launch_with_a_public_address(api, catalog, pool):  # noqa: F811
    instance = _running(api, catalog, public_ip=True)
    assert instance["public_ip"].startswith("203.0.113.")
    listed = api.get("/api/v1/ips/").json()
    assert listed["meta"]["total"] == 1
    assert listed["data"][0]["instance"] == instance["id"]


def test_quota_and_empty_pool_are_clear_errors(api, pool, tenant):
    Quota.objects.filter(tenant=tenant).update(public_ips=1)
    assert api.post("/api/v1/ips/", {}, format="json").status_code == 201
    response = api.post("/api/v1/ips/", {}, format="json")
    assert_error(response, 422, "quota_exceeded")
    assert response.json()["error"]["message"] == "Your quota of 1 public IPv4 addresses is used up."
    Quota.objects.filter(tenant=tenant).update(public_ips=10)
    for _ in range(4):  # the pool has five: .2 to .6
        assert api.post("/api/v1/ips/", {}, format="json").status_code == 201
    response = api.post("/api/v1/ips/", {}, format="json")
    assert_error(response, 422, "pool_exhausted")


def test_a_retry_with_the_same_idempotency_key_allocates_once(api, pool):
    first = api.post("/api/v1/ips/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/v1/ips/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert PublicIP.objects.count() == 1


def test_assign_input_is_checked(api, pool, tenant):
    address = api.post("/api/v1/ips/", {}, format="json").json()
    url = f"/api/v1/ips/{address['id']}/actions/"
    response = api.post(url, {"type": "assign"}, format="json")
    assert_error(response, 400, "invalid")
    assert response.json()["error"]["details"] == {"instance": ["Name the machine to assign the address to."]}
    other = InstanceFactory()  # another organisation's machine: it does not exist for us
    response = api.post(url, {"type": "assign", "instance": str(other.pk)}, format="json")
    assert_error(response, 400, "invalid")
    assert "instance" in response.json()["error"]["details"]
    assert_error(api.post(url, {"type": "unassign"}, format="json"), 409, "ip_not_assigned")


# --- firewalls ----------------------------------------------------------------------------------------------------


def test_bad_rules_are_field_errors_per_rule(api):
    rules = [
        {"direction": "in", "protocol": "tcp", "port_min": 22},
        {"direction": "in", "protocol": "tcp", "port_min": 0},
        {"direction": "in", "protocol": "udp", "port_min": 9000, "port_max": 8000},
        {"direction": "in", "protocol": "tcp", "port_min": 70000},
        {"direction": "in", "protocol": "tcp", "port_min": 22, "cidr": "10.0.0.0/33"},
        {"direction": "up", "protocol": "tcp"},
    ]
    response = api.post("/api/v1/firewalls/", {"name": "web", "rules": rules}, format="json")
    assert_error(response, 400, "invalid")
    errors = response.json()["error"]["details"]["rules"]  # by the index of each bad rule
    assert set(errors) == {"1", "2", "3", "4", "5"}
    assert errors["1"] == {"port_min": ["A port is from 1 to 65535; 0 is not."]}
    assert errors["2"] == {"port_max": ["The range runs backwards: 9000 to 8000. Put the lower port first."]}
    assert errors["3"] == {"port_min": ["A port is from 1 to 65535; 70000 is not."]}
    assert list(errors["4"]) == ["cidr"]
    assert list(errors["5"]) == ["direction"]
    assert not Firewall.objects.filter(name="web").exists()


def test_replace_a_machines_firewall_and_change_rules_live(api, catalog, tenant):  # noqa: F811
    instance = _running(api, catalog)
    default = Firewall.objects.get(tenant=tenant, is_default=True)
    assert instance["firewalls"] == [str(default.pk)]
    web = api.post(
        "/api/v1/firewalls/",
        {"name": "web", "rules": [{"direction": "in", "protocol": "tcp", "port_min": 443}]},
        format="json",
    ).json()
    assert web["rules"] == [
        {"direction": "in", "protocol": "tcp", "port_min": 443, "port_max": 443, "cidr": "0.0.0.0/0", "description": ""}
    ]

    response = api.patch(f"/api/v1/instances/{instance['id']}/", {"firewalls": [web["id"]]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["firewalls"] == [web["id"]]
    domain = SimulatedDomain.objects.get(uuid=instance["id"])
    assert [rule["port_min"] for rule in domain.firewall] == [443]

    rules = [*web["rules"], {"direction": "in", "protocol": "tcp", "port_min": 22, "port_max": 22}]
    response = api.patch(f"/api/v1/firewalls/{web['id']}/", {"rules": rules}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["instances"] == [instance["id"]]
    domain.refresh_from_db()
    assert sorted(rule["port_min"] for rule in domain.firewall) == [22, 443]

    assert_error(
        api.patch(f"/api/v1/instances/{instance['id']}/", {"firewalls": []}, format="json"), 400, "no_firewall"
    )
    assert_error(api.delete(f"/api/v1/firewalls/{web['id']}/"), 409, "firewall_in_use")
    assert_error(api.delete(f"/api/v1/firewalls/{default.pk}/"), 409, "default_firewall")


def test_another_tenants_firewall_reads_as_unknown(api, catalog):  # noqa: F811
    instance = _running(api, catalog)
    response = api.patch(
        f"/api/v1/instances/{instance['id']}/", {"firewalls": [str(FirewallFactory().pk)]}, format="json"
    )
    assert_error(response, 400, "invalid")


# --- user-data ----------------------------------------------------------------------------------------------------


def test_launch_with_user_data_and_a_key_shows_it_back(api, catalog, tenant):  # noqa: F811
    key = SSHKeyFactory(tenant=tenant)
    user_data = "#!/bin/sh\necho hello > /root/hello\n"
    instance = _running(api, catalog, ssh_keys=[str(key.pk)], user_data=user_data)
    assert instance["user_data"] == user_data
    assert SimulatedDomain.objects.get(uuid=instance["id"]).seed["user_data"] == user_data


@pytest.mark.parametrize(
    ("user_data", "message", "line"),
    [
        ("#cloud-config\npackages:\n  - nginx\n bad: [\n", "line 4", 4),
        ("echo hello\n", "starts with #cloud-config", 1),
        ("#cloud-config\n" + "# padding\n" * 4000, "at most 32 KiB", None),
    ],
    ids=["bad-yaml", "unknown-format", "too-large"],
)
def test_bad_user_data_is_refused_with_the_line(api, catalog, user_data, message, line):  # noqa: F811
    response = _launch(api, catalog, user_data=user_data)
    assert_error(response, 400, "invalid_user_data")
    error = response.json()["error"]
    assert message in error["message"]
    assert error["details"].get("line") == line
    assert error["details"]["field"] == "user_data"


def test_the_instance_shows_its_traffic(api, catalog):  # noqa: F811
    from compute.drivers import driver_for
    from compute.models import Instance
    from compute.network.services import traffic_sample_running

    instance = _running(api, catalog)
    assert instance["traffic"] is None
    machine = Instance.objects.select_related("host").get(pk=instance["id"])
    driver_for(machine.host).send(instance["id"], tx_bytes=2 * 1024 * 1024, rx_bytes=1000)
    traffic_sample_running()
    traffic = api.get(f"/api/v1/instances/{instance['id']}/").json()["traffic"]
    assert (traffic["tx_bytes"], traffic["rx_bytes"]) == (2 * 1024 * 1024, 1000)
    assert traffic["sampled_at"]


def test_user_data_that_is_not_text_is_refused(api, catalog):  # noqa: F811
    # A lone surrogate escaped in JSON, as only a hand-written body carries it.
    body = f'{{"name": "web-1", "flavor": "{catalog["small"].pk}", "image": "{catalog["image"].pk}", '
    body += '"user_data": "#!/bin/sh\\n\\ud800"}'
    response = api.post("/api/v1/instances/", body, content_type="application/json")
    assert_error(response, 400, "invalid")
    assert "user_data" in response.json()["error"]["details"]


def test_the_list_shows_each_machines_interfaces_firewalls_and_public_address(api, catalog, pool, tenant):  # noqa: F811
    """The list reads them in its own query: every interface eth0 first, the firewalls in their order (the default
    first, then by name), the assigned public address; a machine without them shows none."""
    backend = api.post("/api/v1/networks/", {"name": "backend", "cidr": "10.20.0.0/24"}, format="json").json()
    front = api.post("/api/v1/networks/", {"name": "front", "cidr": "10.30.0.0/24"}, format="json").json()
    zeta = api.post("/api/v1/firewalls/", {"name": "zeta", "rules": []}, format="json").json()
    alpha = api.post("/api/v1/firewalls/", {"name": "alpha", "rules": []}, format="json").json()
    plain = _running(api, catalog, name="plain")
    default = Firewall.objects.get(tenant=tenant, is_default=True)
    both = _running(
        api,
        catalog,
        name="both",
        networks=[front["id"], backend["id"]],
        firewalls=[zeta["id"], str(default.pk), alpha["id"]],
        public_ip=True,
    )

    listed = {row["name"]: row for row in api.get("/api/v1/instances/").json()["data"]}
    row = listed["both"]
    assert [(a["interface"], a["network"], a["ip"], a["prefix"]) for a in row["addresses"]] == [
        ("eth0", front["id"], "10.30.0.2", 24),
        ("eth1", backend["id"], "10.20.0.2", 24),
    ]
    assert [a["mac"] for a in row["addresses"]] == [a["mac"] for a in both["addresses"]]
    assert row["firewalls"] == [str(default.pk), alpha["id"], zeta["id"]]
    assert row["public_ip"] == both["public_ip"] and row["public_ip"].startswith("203.0.113.")
    assert row == api.get(f"/api/v1/instances/{both['id']}/").json()
    assert listed["plain"]["firewalls"] == [str(default.pk)] and listed["plain"]["public_ip"] is None
    assert listed["plain"]["addresses"] == plain["addresses"] and len(plain["addresses"]) == 1
