"""The Networking section of the dashboard, the launch form's networking and the instance page's networking."""

import pytest
from django.urls import reverse

from compute.network.models import Firewall, Network, PublicIP
from compute.network.services import public_ip_allocate
from tenants.models import Quota
from tests.factories.compute import SSHKeyFactory
from tests.factories.network import FirewallFactory, FirewallRuleFactory, NetworkFactory

pytestmark = pytest.mark.django_db

NETWORKS = reverse("network:network-list")
IPS = reverse("network:ip-list")
FIREWALLS = reverse("network:firewall-list")
LAUNCH = reverse("compute:instance-launch")


def _post(client, url, data, committed):
    with committed():
        return client.post(url, data)


# --- networks -----------------------------------------------------------------------------------------------------


def test_create_a_network_from_the_list_page(member_client, tenant, committed):
    response = _post(member_client, NETWORKS, {"name": "backend", "cidr": "10.20.0.0/24"}, committed)
    network = Network.objects.get(tenant=tenant, name="backend")
    assert response.status_code == 302 and response.url == reverse("network:network-detail", args=[network.pk])
    page = member_client.get(response.url).content.decode()
    assert "10.20.0.1" in page and "253" in page


def test_a_bad_range_is_shown_on_its_field(member_client, tenant):
    NetworkFactory(tenant=tenant, name="office", cidr="192.168.0.0/16")
    response = member_client.post(NETWORKS, {"name": "lab", "cidr": "192.168.4.0/24"})
    assert response.status_code == 400
    assert "overlaps your network office (192.168.0.0/16)" in response.content.decode()
    response = member_client.post(NETWORKS, {"name": "lab", "cidr": "8.8.8.0/24"})
    assert "is not a private range" in response.content.decode()


def test_a_network_in_use_is_not_deleted_and_says_why(member_client, running, tenant, committed):
    network = Network.objects.get(tenant=tenant, is_default=True)
    response = member_client.post(reverse("network:network-delete", args=[network.pk]), follow=True)
    assert "is your default network; it cannot be deleted" in response.content.decode()
    spare = NetworkFactory(tenant=tenant)
    response = member_client.post(reverse("network:network-delete", args=[spare.pk]))
    assert response.url == NETWORKS
    assert not Network.objects.filter(pk=spare.pk).exists()


def test_rename_a_network_with_a_bad_name_reopens_the_dialog(member_client, tenant):
    network = NetworkFactory(tenant=tenant, name="net")
    response = member_client.post(reverse("network:network-rename", args=[network.pk]), {"name": "!!"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="rename-dialog" open data-reopen-modal' in page and "Use 1 to 63 letters" in page


# --- public addresses ---------------------------------------------------------------------------------------------


def test_allocate_and_assign_from_the_ips_page(member_client, running, pool, tenant, committed):
    response = _post(member_client, IPS, {"instance": str(running.pk)}, committed)
    assert response.status_code == 302
    public_ip = PublicIP.objects.get(tenant=tenant)
    assert public_ip.instance == running
    page = member_client.get(IPS).content.decode()
    assert public_ip.address in page and running.name in page and "Release" in page
    assert "1.00 EUR a month per address" in page


def test_move_unassign_and_release(member_client, running, launch, pool, tenant, member, committed):
    with committed():
        other = launch(name="web-2")
    public_ip = public_ip_allocate(tenant=tenant, user=member, instance=running)
    _post(member_client, reverse("network:ip-assign", args=[public_ip.pk]), {"instance": str(other.pk)}, committed)
    public_ip.refresh_from_db()
    assert public_ip.instance == other
    _post(member_client, reverse("network:ip-unassign", args=[public_ip.pk]), {}, committed)
    public_ip.refresh_from_db()
    assert public_ip.state == "allocated"
    response = _post(member_client, reverse("network:ip-release", args=[public_ip.pk]), {}, committed)
    public_ip.refresh_from_db()
    assert public_ip.state == "released"
    assert "was released; billing for it has stopped" in member_client.get(response.url).content.decode()


def test_the_quota_and_an_empty_pool_are_shown_not_a_500(member_client, tenant, pool):
    Quota.objects.filter(tenant=tenant).update(public_ips=0)
    page = member_client.get(IPS).content.decode()
    assert "Your quota of 0 public IPv4 addresses is used up" in page
    response = member_client.post(IPS, {})
    assert response.status_code == 422
    assert "Your quota of 0 public IPv4 addresses is used up." in response.content.decode()
    pool.delete()
    Quota.objects.filter(tenant=tenant).update(public_ips=5)
    response = member_client.post(IPS, {})
    assert response.status_code == 422
    assert "No public IPv4 address is free right now" in response.content.decode()


def test_a_viewer_sees_the_addresses_but_no_buttons(viewer_client, tenant, member, pool):
    public_ip = public_ip_allocate(tenant=tenant, user=member)
    page = viewer_client.get(IPS).content.decode()
    assert public_ip.address in page and "Release" not in page and "Allocate an address" not in page
    assert viewer_client.post(reverse("network:ip-release", args=[public_ip.pk])).status_code == 403


# --- firewalls ----------------------------------------------------------------------------------------------------


def test_add_and_remove_rules_with_field_errors(member_client, tenant, running, committed):
    firewall = Firewall.objects.get(tenant=tenant, is_default=True)
    url = reverse("network:firewall-rule-add", args=[firewall.pk])
    bad = {"direction": "in", "protocol": "tcp", "ports": "9000-8000", "cidr": "0.0.0.0/0"}
    response = member_client.post(url, bad)
    assert response.status_code == 400
    assert "The range runs backwards: 9000 to 8000" in response.content.decode()
    response = member_client.post(url, {**bad, "ports": "0"})
    assert "A port is from 1 to 65535; 0 is not." in response.content.decode()
    response = member_client.post(url, {**bad, "ports": "http"})
    assert "http is not a port or a range" in response.content.decode()
    response = member_client.post(url, {**bad, "ports": "22", "cidr": "10.0.0.1/8"})
    assert "did you mean 10.0.0.0/8?" in response.content.decode()

    response = _post(member_client, url, {**bad, "ports": "8000-8100", "description": "app"}, committed)
    assert response.status_code == 302
    assert firewall.rules.filter(port_min=8000, port_max=8100).exists()
    page = member_client.get(response.url).content.decode()
    assert "8000-8100" in page and running.name in page
    _post(member_client, reverse("network:firewall-rule-remove", args=[firewall.pk, 3]), {}, committed)
    assert not firewall.rules.filter(port_min=8000).exists()


def test_the_firewall_list_summarises_the_rules(member_client, tenant):
    firewall = FirewallFactory(tenant=tenant, name="web")
    FirewallRuleFactory(firewall=firewall, port_min=443, port_max=443, cidr="198.51.100.0/24")
    page = member_client.get(FIREWALLS).content.decode()
    assert "web" in page and "TCP 443 from 198.51.100.0/24" in page and "nothing gets out" in page


def test_change_a_machines_firewalls_from_its_page(member_client, running, tenant, committed):
    web = FirewallFactory(tenant=tenant, name="web")
    url = reverse("network:instance-firewalls", args=[running.pk])
    response = _post(member_client, url, {"firewalls": [str(web.pk)]}, committed)
    assert response.url.endswith("#networking")
    assert list(running.firewalls.all()) == [web]
    response = member_client.post(url, {}, follow=True)
    assert "A machine needs at least one firewall" in response.content.decode()
    other = FirewallFactory()
    response = member_client.post(url, {"firewalls": [str(other.pk)]}, follow=True)
    assert "One of the firewalls is not one of yours." in response.content.decode()


# --- the launch form and the instance page ------------------------------------------------------------------------


def test_the_launch_form_ticks_the_default_network_and_firewall(member_client, running, tenant):
    page = member_client.get(LAUNCH).content.decode()
    network = Network.objects.get(tenant=tenant, is_default=True)
    firewall = Firewall.objects.get(tenant=tenant, is_default=True)
    assert f'name="networks" value="{network.pk}" checked' in page
    assert f'name="firewalls" value="{firewall.pk}" checked' in page
    assert "Assign a new public IPv4 address" in page and "1.00 EUR / month" in page


def test_launch_with_bad_user_data_names_the_line(member_client, flavor, image, host):
    data = {"name": "web-9", "flavor": flavor.pk, "image": image.pk, "user_data": "#cloud-config\na: [\n"}
    response = member_client.post(LAUNCH, data)
    assert response.status_code == 400
    assert "The cloud-config is not valid YAML: line 3" in response.content.decode()


def test_launch_with_a_public_address_and_user_data_then_the_page_shows_the_ssh_line(
    member_client, flavor, image, host, pool, tenant, committed
):
    key = SSHKeyFactory(tenant=tenant)
    user_data = "#!/bin/sh\necho hi > /root/hi\n"
    data = {
        "name": "web-9",
        "flavor": flavor.pk,
        "image": image.pk,
        "keys": [key.pk],
        "public_ip": "on",
        "user_data": user_data,
    }
    response = _post(member_client, LAUNCH, data, committed)
    assert response.status_code == 302, response.content.decode()[:2000]
    public_ip = PublicIP.objects.get(tenant=tenant)
    page = member_client.get(response.url).content.decode()
    assert f'<code id="ssh-command">ssh root@{public_ip.address}</code>' in page
    assert 'data-copy="#ssh-command"' in page
    assert "echo hi &gt; /root/hi" in page
    assert "default" in page  # its firewall


def test_without_a_public_address_the_ssh_line_uses_the_private_one(member_client, launch, key, committed):
    with committed():
        instance = launch(keys=[key])
    instance.refresh_from_db()
    page = member_client.get(reverse("compute:instance-detail", args=[instance.pk])).content.decode()
    assert f"ssh root@{instance.private_ip}" in page
    assert "assign a public IP" in page


def test_a_machine_launched_without_a_key_says_so_by_its_ssh_line(member_client, running):
    page = member_client.get(reverse("compute:instance-detail", args=[running.pk])).content.decode()
    assert "No SSH key was picked at launch" in page
