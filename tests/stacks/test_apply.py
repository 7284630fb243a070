"""Plan → apply → plan again: the engine through its services, with the simulated hypervisor and eager tasks."""

from decimal import Decimal

import pytest

from compute.models import Instance, InstanceState
from compute.network.models import Firewall, Network, PublicIP, PublicIPPool
from compute.stacks.models import Stack, StackRun
from compute.stacks.services import stack_destroy, stack_plan_apply, stack_plan_create
from portal.errors import Conflict

pytestmark = pytest.mark.django_db

DOC = """
stack: shop
networks:
  backend: {cidr: 10.40.0.0/24}
firewalls:
  web:
    rules:
      - {direction: in, protocol: tcp, ports: 80}
      - {direction: in, protocol: tcp, ports: 22}
      - {direction: out, protocol: any}
keys:
  ops: {public_key: "%(key)s"}
machines:
  web:
    flavor: s1
    image: debian-12
    count: 2
    keys: [ops]
    networks: [backend]
    firewalls: [web]
    public_ip: true
    labels: {tier: front}
  db:
    flavor: s2
    image: debian-12
    networks: [backend]
    depends_on: [web]
"""


@pytest.fixture
def pool(db):
    return PublicIPPool.objects.create(name="doc", cidr="203.0.113.0/28")


def _plan(tenant, member, text):
    return stack_plan_create(tenant=tenant, user=member, source=text)


def _apply(committed, plan, member):
    with committed():
        run = stack_plan_apply(plan=plan, user=member)
    run.refresh_from_db()
    return run


def test_plan_apply_then_nothing_to_do(tenant, member, catalog, pool, committed, public_key):
    text = DOC % {"key": public_key}
    plan = _plan(tenant, member, text)
    kinds = sorted((c["action"], c["type"], c["name"]) for c in plan.changes)
    assert kinds == [
        ("create", "address", "public IPv4 of web-1"),
        ("create", "address", "public IPv4 of web-2"),
        ("create", "firewall", "web"),
        ("create", "key", "ops"),
        ("create", "machine", "db"),
        ("create", "machine", "web-1"),
        ("create", "machine", "web-2"),
        ("create", "network", "backend"),
    ]
    assert plan.cost["monthly_before"] == "0.00"
    assert plan.quota["ok"] is True
    assert Instance.objects.count() == 0  # planning writes nothing but the plan

    run = _apply(committed, plan, member)
    assert run.state == StackRun.State.SUCCEEDED, run.error
    assert run.done == run.total == 8
    machines = Instance.objects.for_tenant(tenant).live().order_by("name")
    assert [(m.name, m.state) for m in machines] == [("db", "running"), ("web-1", "running"), ("web-2", "running")]
    web1 = machines.get(name="web-1")
    assert web1.labels == {"hangar.stack": "shop", "hangar.stack.key": "web.1", "tier": "front"}
    assert [f.name for f in web1.firewalls.all()] == ["web"]
    assert PublicIP.objects.for_tenant(tenant).held().get(instance=web1).labels["hangar.stack.key"] == "web.1/ip"
    assert Stack.objects.for_tenant(tenant).get().name == "shop"

    again = _plan(tenant, member, text)
    assert again.changes == [] and again.no_changes
    assert again.cost["monthly_before"] == again.cost["monthly_after"]
    assert again.cost["difference"] == "0.00"


def test_resize_count_and_rules_update_in_place_then_converge(tenant, member, catalog, pool, committed, public_key):
    text = DOC % {"key": public_key}
    _apply(committed, _plan(tenant, member, text), member)
    db_before = Instance.objects.for_tenant(tenant).get(name="db")
    changed = (
        text.replace("flavor: s2", "flavor: s3").replace("ports: 80}", "ports: 443}").replace("count: 2", "count: 3")
    )
    plan = _plan(tenant, member, changed)
    summary = sorted((c["action"], c["type"], c["name"]) for c in plan.changes)
    assert summary == [
        ("create", "address", "public IPv4 of web-3"),
        ("create", "machine", "web-3"),
        ("update", "firewall", "web"),
        ("update", "machine", "db"),
    ]
    db = next(c for c in plan.changes if c["name"] == "db")
    assert db["fields"] == {"flavor": ["s2", "s3"]}
    # one more s1 machine (5.00) and its address (the IPv4 price), db from 10.00 to 20.00
    ipv4 = Decimal(plan.cost["monthly_after"]) - Decimal(plan.cost["monthly_before"]) - Decimal("15.00")
    assert ipv4 >= 0 and Decimal(plan.cost["difference"]) == Decimal("15.00") + ipv4

    run = _apply(committed, plan, member)
    assert run.state == "succeeded", run.error
    db_after = Instance.objects.for_tenant(tenant).get(name="db")
    assert db_after.pk == db_before.pk and db_after.flavor.name == "s3" and db_after.state == "running"
    rules = Firewall.objects.for_tenant(tenant).get(name="web").rules.values_list("port_min", flat=True)
    assert 443 in rules and 80 not in rules
    assert _plan(tenant, member, changed).no_changes


def test_image_change_is_a_replace_with_reason(tenant, member, catalog, pool, committed, public_key):
    text = DOC % {"key": public_key}
    _apply(committed, _plan(tenant, member, text), member)
    plan = _plan(tenant, member, text.replace("flavor: s2\n    image: debian-12", "flavor: s2\n    image: ubuntu-24"))
    assert [(c["action"], c["name"], c["reason"]) for c in plan.changes] == [
        ("replace", "db", "the image changes (the disk is built from it)")
    ]
    run = _apply(committed, plan, member)
    assert run.state == "succeeded", run.error
    db = Instance.objects.for_tenant(tenant).live().get(name="db")
    assert db.image.name == "ubuntu-24" and db.state == "running"
    assert _plan(
        tenant, member, text.replace("flavor: s2\n    image: debian-12", "flavor: s2\n    image: ubuntu-24")
    ).no_changes


def test_stale_plan_is_refused(tenant, member, catalog, pool, committed, public_key):
    text = DOC % {"key": public_key}
    _apply(committed, _plan(tenant, member, text), member)
    plan = _plan(tenant, member, text.replace("count: 2", "count: 3"))
    Firewall.objects.for_tenant(tenant).filter(name="web").update(description="changed by hand")
    with pytest.raises(Conflict) as refused:
        stack_plan_apply(plan=plan, user=member)
    assert refused.value.code == "plan_stale"


def test_destroy_leaves_nothing(tenant, member, catalog, pool, committed, public_key):
    _apply(committed, _plan(tenant, member, DOC % {"key": public_key}), member)
    with committed():
        run = stack_destroy(tenant=tenant, user=member, name="shop")
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    assert not Instance.objects.for_tenant(tenant).live().exists()
    assert not Network.objects.for_tenant(tenant).filter(name="backend").exists()
    assert not PublicIP.objects.for_tenant(tenant).held().exists()
    assert not Stack.objects.for_tenant(tenant).exists()
    assert Decimal(0) == 0 and InstanceState
