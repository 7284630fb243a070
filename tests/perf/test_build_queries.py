"""Query-count guards for the worker's build: a constant, small number of statements, whatever the host, the network
or the organisation already holds, and none of the reads the build no longer makes."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Segment
from billing.services.prices import flavor_price_set
from compute import tasks
from compute.drivers.simulated import SimulatedDriver
from compute.models import Instance, InstanceEvent, InstanceState, SimulatedDomain
from compute.network.selectors import firewall_specs
from compute.services import instance_launch
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory
from tests.factories.network import FirewallFactory, FirewallRuleFactory

# BEGIN, COMMIT and savepoints aside. PostgreSQL: the claim (an UPDATE in a WITH query, returning the row with its
# interfaces and firewall rules, joined to its host), its lease added to the host's network (one UPDATE), the
# hypervisor's lock and the domain's INSERT (one query of two statements), the outcome's conditional UPDATE with the
# event's INSERT (one WITH query), the billing segment's INSERT. SQLite: the host read after the claim, the leases
# read and written back, no lock, the event on its own.
BUILD_STATEMENTS = {"postgresql": 5, "sqlite": 8}
# Reads a build used to make on their own, each of which its claim or the catalog in memory now answers.
GONE = (
    'FROM "network_port"',  # the interfaces: returned by the claim
    'FROM "network_firewallrule"',  # the firewall rules: returned by the claim
    'FROM "billing_price"',  # the dated price: kept with the catalog
    'FROM "compute_flavor"',  # the plan's name and traffic allowance: the catalog
    'FROM "compute_instance"',  # the claimed row and the outcome's: returned by their UPDATEs
)


@pytest.fixture
def setting(db, tenant, owner):
    host = HostFactory(name="hv-perf", vcpus=512, ram_mib=1024 * 1024, disk_gib=100_000, boot_seconds=0)
    flavor = FlavorFactory(name="perf.small", vcpus=1, ram_mib=1024, disk_gib=10)
    image = ImageFactory(name="Debian 12")
    return {"host": host, "flavor": flavor, "image": image, "tenant": tenant, "user": owner}


def _launch(setting, django_capture_on_commit_callbacks, *, name: str, **extra) -> Instance:
    """Launched without its build (the on-commit enqueue is captured, not run)."""
    with django_capture_on_commit_callbacks():
        return instance_launch(
            tenant=setting["tenant"],
            user=setting["user"],
            name=name,
            flavor=setting["flavor"],
            image=setting["image"],
            **extra,
        )


def _build(instance: Instance) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        tasks.build_instance.delay(instance_id=str(instance.pk))
    instance.refresh_from_db()
    assert instance.state == InstanceState.RUNNING
    return [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"] not in ("BEGIN", "COMMIT") and "SAVEPOINT" not in query["sql"]
    ]


def test_a_build_takes_a_constant_number_of_statements(setting, django_capture_on_commit_callbacks):
    """The first build on the host makes its network and reads the catalog; the tenth, with nine machines on that
    network and host already, takes exactly as many statements as the second."""
    built = []
    for number in range(10):
        instance = _launch(setting, django_capture_on_commit_callbacks, name=f"node-{number}")
        built.append(_build(instance))

    second, tenth = built[1], built[9]
    assert len(second) == BUILD_STATEMENTS[connection.vendor], "\n".join(statement[:200] for statement in second)
    assert len(tenth) == BUILD_STATEMENTS[connection.vendor], "\n".join(statement[:200] for statement in tenth)
    for statement in tenth:
        assert "FOR UPDATE" not in statement, statement  # the outcome is a conditional UPDATE, not lock and write
        if statement.startswith("SELECT"):
            assert not any(gone in statement for gone in GONE), statement
    segments = Segment.objects.filter(resource_type="instance")
    assert sorted(segments.values_list("resource_name", "tenant_id")) == sorted(
        Instance.objects.values_list("name", "tenant_id")
    )
    events = InstanceEvent.objects.filter(action="build", result="succeeded")
    assert sorted(events.values_list("instance_id", "tenant_id")) == sorted(
        Instance.objects.values_list("pk", "tenant_id")
    )


def test_the_build_applies_the_firewall_rules_firewall_specs_reads(setting, django_capture_on_commit_callbacks):
    """The rules the claim returns are those, in the order, that firewall_specs() reads: firewalls by name (mixed
    case), rules by position, a rule of two firewalls once."""
    tenant = setting["tenant"]
    web = FirewallFactory(tenant=tenant, name="Web")
    admin = FirewallFactory(tenant=tenant, name="admin")
    FirewallRuleFactory(firewall=web, position=2, protocol="tcp", port_min=443, port_max=443)
    FirewallRuleFactory(firewall=web, position=1, protocol="tcp", port_min=80, port_max=80)
    FirewallRuleFactory(firewall=admin, position=0, protocol="tcp", port_min=22, port_max=22)
    FirewallRuleFactory(firewall=admin, position=1, protocol="tcp", port_min=80, port_max=80)
    instance = _launch(setting, django_capture_on_commit_callbacks, name="fw", firewalls=[web, admin])

    _build(instance)

    domain = SimulatedDomain.objects.get(uuid=instance.pk)
    expected = [
        {
            "direction": r.direction,
            "protocol": r.protocol,
            "port_min": r.port_min,
            "port_max": r.port_max,
            "cidr": r.cidr,
        }
        for r in firewall_specs(instance=Instance.objects.get(pk=instance.pk))
    ]
    assert domain.firewall == expected
    assert len(expected) == 3  # tcp 80 is in both firewalls, applied once
    assert [nic["ip"] for nic in domain.nics] == [instance.private_ip]
    event = instance.events.get(action="build", result="succeeded")
    assert (event.message, event.actor_id) == (f"Running, private IP {instance.private_ip}", None)


def test_a_build_adds_its_lease_and_keeps_the_others(setting, django_capture_on_commit_callbacks):
    """Each build states only its own lease; a lease left with the address (a deletion not yet synced) is
    replaced."""
    from compute.network.models import SimulatedNetwork

    first = _launch(setting, django_capture_on_commit_callbacks, name="first")
    _build(first)
    second = _launch(setting, django_capture_on_commit_callbacks, name="second")
    network = SimulatedNetwork.objects.get(host=setting["host"])
    stale = {"mac": "52:54:00:00:00:99", "ip": second.private_ip, "hostname": "gone"}
    SimulatedNetwork.objects.filter(pk=network.pk).update(dhcp_hosts=[*network.dhcp_hosts, stale])

    _build(second)

    network.refresh_from_db()
    assert [(lease["hostname"], lease["ip"]) for lease in network.dhcp_hosts] == [
        ("first", first.private_ip),
        ("second", second.private_ip),
    ]


def test_a_build_opens_its_segment_at_the_price_set_since_the_last_one(
    setting, django_capture_on_commit_callbacks, admin_user
):
    """The price is kept in memory with the catalog, and a new dated price is seen by the next build."""
    first = _launch(setting, django_capture_on_commit_callbacks, name="before")
    _build(first)
    flavor_price_set(flavor=setting["flavor"], monthly_price=Decimal("99.00"), actor=admin_user)
    second = _launch(setting, django_capture_on_commit_callbacks, name="after")

    _build(second)

    prices = dict(Segment.objects.values_list("resource_name", "unit_monthly_price"))
    assert prices["after"] == Decimal("99.00")
    assert prices["before"] != Decimal("99.00")


def test_a_create_that_finds_no_room_takes_the_full_path_and_says_why(setting, django_capture_on_commit_callbacks):
    instance = _launch(setting, django_capture_on_commit_callbacks, name="too-big")
    SimulatedDomain.objects.create(
        uuid="00000000-0000-0000-0000-000000000001",
        host=setting["host"],
        name="filler",
        vcpus=setting["host"].vcpus_allocatable,
        ram_mib=1,
        disk_gib=1,
        private_ip="10.9.9.9",
    )

    tasks.build_instance.delay(instance_id=str(instance.pk))

    instance.refresh_from_db()
    assert instance.state == InstanceState.ERROR
    assert "cannot hold it" in instance.error_reason
    assert not SimulatedDomain.objects.filter(uuid=instance.pk).exists()
    assert not Segment.objects.filter(resource_id=instance.pk).exists()


def test_a_create_repeated_after_a_crash_adopts_the_domain(setting, django_capture_on_commit_callbacks):
    """The one-statement INSERT finds the domain made by an attempt that died before its outcome: the full path
    adopts it."""
    from compute.services import operations

    instance = _launch(setting, django_capture_on_commit_callbacks, name="adopted")
    claimed = operations.instance_task_claim(instance_id=str(instance.pk), task="build")
    SimulatedDriver(claimed.host).create(operations.domain_spec(claimed))

    _build(instance)

    assert SimulatedDomain.objects.filter(uuid=instance.pk).count() == 1
    assert Segment.objects.filter(resource_id=instance.pk).count() == 1
