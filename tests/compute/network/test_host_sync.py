"""Keeping hosts in step: the periodic sync states every host's networking whole again, whatever was lost."""

import pytest

from compute.models import Instance, InstanceState, SimulatedDomain
from compute.network import tasks
from compute.network.models import Port, SimulatedNat, SimulatedNetwork
from compute.network.rulesets import RuleInput
from compute.network.services import firewall_create, instance_firewalls_set, public_ip_allocate

pytestmark = pytest.mark.django_db


def test_a_host_that_lost_its_networking_gets_it_all_back(pool, running, tenant, member, host, committed):
    with committed():
        public_ip = public_ip_allocate(tenant=tenant, user=member, instance=running)
    # The host rebooted: no networks, no NAT, and the domain's filter is gone.
    SimulatedNetwork.objects.all().delete()
    SimulatedNat.objects.all().delete()
    SimulatedDomain.objects.filter(uuid=running.pk).update(firewall=[])

    tasks.sync_hosts.delay()

    port = Port.objects.get(instance=running)
    network = SimulatedNetwork.objects.get(host=host, network_id=str(port.network_id))
    assert network.dhcp_hosts == [{"mac": port.mac, "ip": port.address, "hostname": running.name}]
    assert list(SimulatedNat.objects.values_list("public_ip", "private_ip")) == [(public_ip.address, port.address)]
    assert len(SimulatedDomain.objects.get(uuid=running.pk).firewall) == 3


def test_a_firewall_change_before_the_domain_exists_waits_for_the_build(launch, tenant, member, committed):
    from compute.tasks import build_instance

    instance = launch()  # pending: its build message was not sent (no commit)
    web = firewall_create(tenant=tenant, user=member, name="web", rules=[RuleInput("in", "tcp", 443, 443)])
    with committed():
        instance_firewalls_set(instance=instance, firewalls=[web], user=member)  # the sync finds no domain yet
    assert not SimulatedDomain.objects.filter(uuid=instance.pk).exists()
    build_instance.delay(instance_id=str(instance.pk))
    instance = Instance.objects.get(pk=instance.pk)
    assert instance.state == InstanceState.RUNNING  # the build ran on commit, with the new firewall
    assert [rule["port_min"] for rule in SimulatedDomain.objects.get(uuid=instance.pk).firewall] == [443]


def test_a_sync_for_a_host_or_machine_that_is_gone_does_nothing(db):
    tasks.sync_host_nat.delay(host_id="00000000-0000-0000-0000-000000000000")
    tasks.sync_host_network.delay(host_id="00000000-0000-0000-0000-000000000000", network_id="x")
    tasks.sync_instance_firewall.delay(instance_id="00000000-0000-0000-0000-000000000000")


def test_a_machine_moved_to_another_host_takes_its_address_lease_nat_and_firewall_along(
    pool, running, tenant, member, host, committed, simulated
):
    from compute.services import instance_migrate
    from tests.factories.compute import HostFactory

    spare = HostFactory(name="hv-spare", vcpus=16, ram_mib=65536, disk_gib=1000, region=host.region)
    with committed():
        public_ip = public_ip_allocate(tenant=tenant, user=member, instance=running)
    port = Port.objects.get(instance=running)
    simulated.send(str(running.pk), tx_bytes=5000)

    with committed():
        instance_migrate(instance=running, user=member)

    running.refresh_from_db()
    assert (running.host, running.state, running.private_ip) == (spare, "running", port.address)
    lease = {"mac": port.mac, "ip": port.address, "hostname": running.name}
    assert SimulatedNetwork.objects.get(host=spare, network_id=str(port.network_id)).dhcp_hosts == [lease]
    assert not SimulatedNetwork.objects.filter(host=host).exists()  # it was the network's only machine there
    assert list(SimulatedNat.objects.values_list("host", "public_ip", "private_ip")) == [
        (spare.pk, public_ip.address, port.address)
    ]
    assert len(SimulatedDomain.objects.get(uuid=running.pk, host=spare).firewall) == 3
    from compute.drivers import driver_for

    assert driver_for(spare).connection_allowed(public_ip.address, port=22, source="198.51.100.7")
    from compute.network.models import TrafficCounter

    assert TrafficCounter.objects.get(instance=running).tx_total == 5000  # read before it stopped on the old host
