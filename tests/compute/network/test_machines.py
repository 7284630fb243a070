"""A machine's networking through its life, through the services: launch, build on the simulated host, delete."""

import ipaddress

import pytest
import yaml

from compute.models import SimulatedDomain
from compute.network.models import Firewall, Network, Port, SimulatedNetwork
from compute.services import instance_delete
from tenants.models import Quota
from tenants.services import tenant_create
from tests.factories import UserFactory
from tests.factories.network import FirewallFactory, NetworkFactory

pytestmark = pytest.mark.django_db


def test_a_new_organisation_gets_a_default_network_and_firewall():
    tenant = tenant_create(name="Acme", owner=UserFactory())

    network = Network.objects.get(tenant=tenant)
    assert network.is_default and network.name == "default"
    assert ipaddress.IPv4Network(network.cidr).prefixlen == 24
    firewall = Firewall.objects.get(tenant=tenant)
    assert firewall.is_default
    assert [(r.direction, r.protocol, r.port_min, r.cidr) for r in firewall.rules.all()] == [
        ("in", "tcp", 22, "0.0.0.0/0"),
        ("in", "icmp", None, "0.0.0.0/0"),
        ("out", "any", None, "0.0.0.0/0"),
    ]


def test_default_networks_of_different_organisations_never_share_a_range():
    first = tenant_create(name="One", owner=UserFactory())
    second = tenant_create(name="Two", owner=UserFactory())
    ranges = [Network.objects.get(tenant=t, is_default=True).cidr for t in (first, second)]
    assert ranges[0] != ranges[1]
    assert not ipaddress.IPv4Network(ranges[0]).overlaps(ipaddress.IPv4Network(ranges[1]))


def test_launch_without_a_choice_joins_the_default_network_with_the_default_firewall(running, tenant):
    network = Network.objects.get(tenant=tenant, is_default=True)
    port = Port.objects.get(instance=running)
    assert port.network == network and port.index == 0
    assert port.address == str(ipaddress.IPv4Network(network.cidr).network_address + 2)  # .1 is the gateway
    assert port.mac.startswith("52:54:00:")
    assert running.private_ip == port.address
    assert [f.name for f in running.firewalls.all()] == ["default"]


def test_the_host_gets_the_network_with_a_lease_and_the_domain_its_nics_seed_and_firewall(running, host, tenant, key):
    port = Port.objects.get(instance=running)
    realized = SimulatedNetwork.objects.get(host=host, network_id=str(port.network_id))
    assert realized.gateway_ip == port.network.gateway_ip
    assert realized.dhcp_hosts == [{"mac": port.mac, "ip": port.address, "hostname": running.name}]
    domain = SimulatedDomain.objects.get(uuid=running.pk)
    assert domain.private_ip == port.address
    assert domain.nics == [{"mac": port.mac, "network_id": str(port.network_id), "ip": port.address, "prefix": 24}]
    assert {"direction": "in", "protocol": "tcp", "port_min": 22, "port_max": 22, "cidr": "0.0.0.0/0"} in (
        domain.firewall
    )
    meta = yaml.safe_load(domain.seed["meta_data"])
    assert meta == {"instance-id": str(running.pk), "local-hostname": running.name}
    network_config = yaml.safe_load(domain.seed["network_config"])
    assert network_config["ethernets"]["eth0"]["match"] == {"macaddress": port.mac}
    assert network_config["ethernets"]["eth0"]["addresses"] == [f"{port.address}/24"]


def test_seed_carries_the_keys_and_the_users_cloud_config(launch, committed, key):
    user_data = "#cloud-config\nwrite_files:\n  - path: /root/hello\n    content: hi\n"
    with committed():
        instance = launch(name="web-7", keys=[key], user_data=user_data)
    instance.refresh_from_db()
    assert instance.user_data == user_data
    seed = SimulatedDomain.objects.get(uuid=instance.pk).seed
    assert yaml.safe_load(seed["meta_data"])["public-keys"] == [key.public_key]
    document = yaml.safe_load(seed["user_data"])
    assert seed["user_data"].startswith("#cloud-config\n")
    assert document["hostname"] == "web-7"
    assert document["ssh_authorized_keys"] == [key.public_key]
    assert document["disable_root"] is False
    assert document["write_files"] == [{"path": "/root/hello", "content": "hi"}]


def test_a_script_is_passed_as_it_is(launch, committed, key):
    script = "#!/bin/sh\necho hello > /root/hello\n"
    with committed():
        instance = launch(keys=[key], user_data=script)
    assert SimulatedDomain.objects.get(uuid=instance.pk).seed["user_data"] == script


def test_launch_on_several_networks_gives_one_interface_each_in_order(launch, committed, tenant):
    backend = NetworkFactory(tenant=tenant, name="backend", cidr="192.168.10.0/28")
    storage = NetworkFactory(tenant=tenant, name="storage", cidr="172.20.0.0/24")
    with committed():
        instance = launch(networks=[backend, storage])
    ports = list(Port.objects.filter(instance=instance).order_by("index"))
    assert [(p.network.name, p.address, p.index) for p in ports] == [
        ("backend", "192.168.10.2", 0),
        ("storage", "172.20.0.2", 1),
    ]
    domain = SimulatedDomain.objects.get(uuid=instance.pk)
    config = yaml.safe_load(domain.seed["network_config"])
    assert config["ethernets"]["eth0"]["routes"] == [{"to": "0.0.0.0/0", "via": "192.168.10.1"}]
    assert "routes" not in config["ethernets"]["eth1"]


def test_addresses_are_handed_out_lowest_first_and_freed_on_delete(launch, committed, tenant, member, host):
    network = NetworkFactory(tenant=tenant, name="tiny", cidr="192.168.50.0/28")  # 13 addresses: .2 to .14
    with committed():
        first = launch(name="a", networks=[network])
        second = launch(name="b", networks=[network])
    assert [Port.objects.get(instance=i).address for i in (first, second)] == ["192.168.50.2", "192.168.50.3"]
    with committed():
        instance_delete(instance=first, user=member)
    first.refresh_from_db()
    assert first.state == "deleted"
    assert not Port.objects.filter(instance=first).exists()
    lease_ips = [lease["ip"] for lease in SimulatedNetwork.objects.get(network_id=str(network.pk)).dhcp_hosts]
    assert lease_ips == ["192.168.50.3"]
    with committed():
        third = launch(name="c", networks=[network])
    assert Port.objects.get(instance=third).address == "192.168.50.2"


def test_holes_left_by_deleted_machines_are_filled_lowest_first_then_the_network_is_full(
    launch, committed, tenant, member
):
    Quota.objects.filter(tenant=tenant).update(instances=20, vcpus=100, ram_mib=10**6)
    network = NetworkFactory(tenant=tenant, name="small", cidr="192.168.60.0/29")  # .1 the gateway, .2 to .6
    with committed():
        machines = [launch(name=f"m{number}", networks=[network]) for number in range(5)]
    assert [Port.objects.get(instance=machine).address for machine in machines] == [
        f"192.168.60.{last}" for last in range(2, 7)
    ]
    with committed():
        for machine in (machines[3], machines[1]):
            instance_delete(instance=machine, user=member)
    with committed():
        refills = [launch(name=f"r{number}", networks=[network]) for number in range(2)]
    assert [Port.objects.get(instance=machine).address for machine in refills] == ["192.168.60.3", "192.168.60.5"]
    with pytest.raises(Exception) as refused:
        launch(name="one-too-many", networks=[network])
    assert refused.value.code == "network_full"


def test_the_last_machine_deleted_from_a_host_takes_the_network_off_it(running, committed, member, host):
    network_id = str(Port.objects.get(instance=running).network_id)
    with committed():
        instance_delete(instance=running, user=member)
    assert not SimulatedNetwork.objects.filter(host=host, network_id=network_id).exists()


def test_a_full_network_refuses_the_launch_with_a_clear_error(launch, committed, tenant):
    Quota.objects.filter(tenant=tenant).update(instances=20, vcpus=100, ram_mib=10**6)
    network = NetworkFactory(tenant=tenant, name="tiny", cidr="192.168.50.0/28")
    with committed():
        for number in range(13):
            launch(name=f"n{number}", networks=[network])
    with pytest.raises(Exception) as refused:
        launch(name="one-too-many", networks=[network])
    assert refused.value.code == "network_full"
    assert "192.168.50.0/28" in refused.value.message


def test_another_tenants_network_or_firewall_is_refused(launch):
    with pytest.raises(Exception) as refused:
        launch(networks=[NetworkFactory()])
    assert refused.value.code == "invalid_network"
    with pytest.raises(Exception) as refused:
        launch(firewalls=[FirewallFactory()])
    assert refused.value.code == "invalid_firewall"


def test_user_data_that_is_not_text_is_refused_by_the_service_too(launch):
    with pytest.raises(Exception) as refused:
        launch(user_data="#!/bin/sh\n\ud800")
    assert refused.value.code == "invalid_user_data"
