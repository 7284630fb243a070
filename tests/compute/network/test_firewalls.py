"""Firewalls through the services, and the simulated host enforcing them: the integration scenario, simulated."""

import pytest

from compute.models import SimulatedDomain
from compute.network.models import Firewall
from compute.network.rulesets import RuleInput, allows, parse_ports, rule_errors, to_spec
from compute.network.services import (
    firewall_create,
    firewall_delete,
    firewall_rule_add,
    firewall_update,
    instance_firewalls_set,
    public_ip_allocate,
)
from portal.errors import Conflict, InvalidRequest

pytestmark = pytest.mark.django_db

WEB = [RuleInput("in", "tcp", 80, 80), RuleInput("in", "tcp", 443, 443), RuleInput("out", "any")]
OUTSIDE = "198.51.100.77"


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        (RuleInput("in", "tcp", 0, 0), "port_min", "A port is from 1 to 65535; 0 is not."),
        (RuleInput("in", "tcp", 22, 70000), "port_max", "A port is from 1 to 65535; 70000 is not."),
        (RuleInput("in", "udp", 9000, 8000), "port_max", "The range runs backwards: 9000 to 8000."),
        (RuleInput("in", "tcp", 22, 22, "10.0.0.300/8"), "cidr", "10.0.0.300/8 is not an IPv4 address or range"),
        (RuleInput("in", "tcp", 22, 22, "10.0.0.1/8"), "cidr", "did you mean 10.0.0.0/8?"),
        (RuleInput("in", "tcp", 22, 22, ""), "cidr", "0.0.0.0/0 means anywhere"),
        (RuleInput("in", "icmp", 22, 22), "port_min", "Only TCP and UDP rules have ports"),
        (RuleInput("sideways", "tcp", 22, 22), "direction", "The direction is in or out."),
        (RuleInput("in", "sctp"), "protocol", "The protocol is tcp, udp, icmp or any."),
        (RuleInput("in", "tcp", None, 80), "port_min", "Give the first port of the range."),
    ],
)
def test_bad_rules_are_field_errors(rule, field, message):
    errors = rule_errors(rule)
    assert field in errors
    assert message in errors[field]


def test_the_service_names_the_bad_rule_and_its_field(tenant, member):
    with pytest.raises(InvalidRequest) as refused:
        firewall_create(tenant=tenant, user=member, name="web", rules=[*WEB, RuleInput("in", "tcp", 5, 1)])
    assert refused.value.code == "invalid_rule"
    assert refused.value.message.startswith("Rule 4: The range runs backwards")
    assert refused.value.details == {"field": "rules", "rules": {3: {"port_max": refused.value.message[8:]}}}
    assert not Firewall.objects.filter(tenant=tenant, name="web").exists()


def test_ports_are_written_as_people_write_them():
    assert parse_ports("22") == (22, 22)
    assert parse_ports(" 8000-8100 ") == (8000, 8100)
    assert parse_ports("") == (None, None)
    with pytest.raises(ValueError, match="not a port"):
        parse_ports("ssh")


def test_the_rule_model_allows_only_what_a_rule_allows():
    rules = tuple(to_spec(rule) for rule in [RuleInput("in", "tcp", 22, 22, "203.0.113.0/24"), RuleInput("in", "icmp")])
    assert allows(rules, direction="in", protocol="tcp", port=22, peer="203.0.113.9")
    assert not allows(rules, direction="in", protocol="tcp", port=22, peer="198.51.100.9")  # not from there
    assert not allows(rules, direction="in", protocol="tcp", port=80, peer="203.0.113.9")
    assert allows(rules, direction="in", protocol="icmp", port=None, peer="198.51.100.9")
    assert not allows(rules, direction="out", protocol="tcp", port=443, peer="198.51.100.9")


def test_names_are_unique_per_tenant_any_case(tenant, member):
    firewall_create(tenant=tenant, user=member, name="Web")
    with pytest.raises(InvalidRequest) as refused:
        firewall_create(tenant=tenant, user=member, name="web")
    assert refused.value.code == "name_taken"


def test_ssh_through_the_public_address_follows_the_firewall_live(pool, running, tenant, member, committed, simulated):
    """The libvirt integration scenario on the simulated host: reach, cut port 22, add it back, live."""
    with committed():
        public_ip = public_ip_allocate(tenant=tenant, user=member, instance=running)
    assert simulated.connection_allowed(running.private_ip, port=22, source=OUTSIDE)
    assert simulated.connection_allowed(public_ip.address, port=22, source=OUTSIDE)
    assert not simulated.connection_allowed(public_ip.address, port=80, source=OUTSIDE)

    web = firewall_create(tenant=tenant, user=member, name="web only", rules=WEB)
    with committed():
        instance_firewalls_set(instance=running, firewalls=[web], user=member)
    assert not simulated.connection_allowed(public_ip.address, port=22, source=OUTSIDE)
    assert simulated.connection_allowed(public_ip.address, port=443, source=OUTSIDE)

    with committed():
        firewall_rule_add(firewall=web, user=member, rule=RuleInput("in", "tcp", 22, 22, "0.0.0.0/0", "SSH"))
    assert simulated.connection_allowed(public_ip.address, port=22, source=OUTSIDE)
    domain = SimulatedDomain.objects.get(uuid=running.pk)
    assert len(domain.firewall) == 4


def test_a_stopped_machine_is_not_reachable(running, member, committed, simulated):
    from compute.services import instance_stop

    with committed():
        instance_stop(instance=running, user=member)
    assert not simulated.connection_allowed(running.private_ip, port=22, source=OUTSIDE)


def test_a_machine_keeps_at_least_one_firewall(running, member):
    with pytest.raises(InvalidRequest) as refused:
        instance_firewalls_set(instance=running, firewalls=[], user=member)
    assert refused.value.code == "no_firewall"


def test_a_firewall_in_use_or_the_default_one_cannot_be_deleted(running, tenant, member):
    default = Firewall.objects.get(tenant=tenant, is_default=True)
    with pytest.raises(Conflict) as refused:
        firewall_delete(firewall=default, user=member)
    assert refused.value.code == "default_firewall"
    web = firewall_create(tenant=tenant, user=member, name="web", rules=WEB)
    instance_firewalls_set(instance=running, firewalls=[web], user=member)
    with pytest.raises(Conflict) as refused:
        firewall_delete(firewall=web, user=member)
    assert refused.value.code == "firewall_in_use"
    instance_firewalls_set(instance=running, firewalls=[default], user=member)
    firewall_delete(firewall=web, user=member)
    assert not Firewall.objects.filter(pk=web.pk).exists()


def test_renaming_keeps_the_rules(tenant, member):
    web = firewall_create(tenant=tenant, user=member, name="web", rules=WEB)
    firewall_update(firewall=web, user=member, name="frontend")
    web.refresh_from_db()
    assert web.name == "frontend" and web.rules.count() == 3


def test_text_the_database_cannot_store_is_a_clear_error(tenant, member):
    with pytest.raises(InvalidRequest) as refused:
        firewall_create(tenant=tenant, user=member, name="web", description="bad \ud800")
    assert refused.value.details == {"field": "description"}
    assert rule_errors(RuleInput("in", "tcp", 22, 22, "0.0.0.0/0", "x\ud800")) == {"description": "Use plain text."}
