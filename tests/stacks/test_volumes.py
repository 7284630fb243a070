"""Volumes in stack documents: plan, apply, re-plan, destroy, validation and cost."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone

from billing.models import ResourceType
from billing.selectors import resource_price_current
from compute.models import Instance
from compute.stacks.document import DocumentInvalid, read
from compute.stacks.models import STACK_LABEL, Stack
from compute.stacks.selectors import stack_export
from compute.stacks.services import DocumentRefused, stack_destroy, stack_plan_apply
from compute.storage.models import Volume, VolumeState
from portal.errors import Unprocessable
from tenants.models import Quota
from tests.stacks.test_apply import _apply, _plan

pytestmark = pytest.mark.django_db

DOC = """
stack: data
machines:
  db:
    flavor: s1
    image: debian-12
  web:
    flavor: s1
    image: debian-12
    count: 2
volumes:
  pg: {size_gib: 20, attach_to: db, labels: {role: pg}}
"""


def _gib_monthly(size: int) -> Decimal:
    price = resource_price_current(resource_type=ResourceType.VOLUME, at=timezone.now())
    return (price * size).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _live(tenant):
    return Volume.objects.for_tenant(tenant).exclude(state=VolumeState.DELETED)


def test_added_volume_is_created_attached_and_priced(tenant, member, catalog, committed):
    plan = _plan(tenant, member, DOC)
    volume = next(c for c in plan.changes if c["type"] == "volume")
    assert (volume["action"], volume["name"]) == ("create", "pg")
    assert volume["fields"] == {"size_gib": [None, 20], "attached_to": [None, "db"]}
    assert Decimal(volume["monthly_difference"]) == _gib_monthly(20)
    assert Decimal(plan.cost["monthly_after"]) == Decimal("15.00") + _gib_monthly(20)
    assert plan.quota["delta"]["volume_gb"] == 20 and plan.quota["delta"]["volumes"] == 1

    run = _apply(committed, plan, member)
    assert run.state == "succeeded", run.error
    pg = _live(tenant).get()
    assert (pg.name, pg.size_gib, pg.state, pg.instance.name) == ("pg", 20, "in-use", "db")
    assert pg.labels == {"hangar.stack": "data", "hangar.stack.key": "pg", "role": "pg"}
    again = _plan(tenant, member, DOC)
    assert again.no_changes, again.changes


def test_extend_and_reattach_update_in_place(tenant, member, catalog, committed):
    _apply(committed, _plan(tenant, member, DOC), member)
    pg = _live(tenant).get()
    changed = DOC.replace("size_gib: 20, attach_to: db", "size_gib: 30, attach_to: web.2")
    plan = _plan(tenant, member, changed)
    assert [(c["action"], c["type"], c["name"], c["fields"]) for c in plan.changes] == [
        ("update", "volume", "pg", {"size_gib": [20, 30], "attached_to": ["db", "web-2"]})
    ]
    assert Decimal(plan.cost["difference"]) == _gib_monthly(30) - _gib_monthly(20)
    assert plan.quota["delta"]["volume_gb"] == 10 and plan.quota["delta"]["volumes"] == 0

    run = _apply(committed, plan, member)
    assert run.state == "succeeded", run.error
    pg_after = _live(tenant).get()
    assert pg_after.pk == pg.pk and pg_after.size_gib == 30 and pg_after.instance.name == "web-2"
    assert _plan(tenant, member, changed).no_changes

    detached = changed.replace(", attach_to: web.2", "")
    plan = _plan(tenant, member, detached)
    assert [(c["action"], c["fields"]) for c in plan.changes] == [("update", {"attached_to": ["web-2", None]})]
    assert _apply(committed, plan, member).state == "succeeded"
    assert _live(tenant).get().instance is None
    assert _plan(tenant, member, detached).no_changes


def test_shrinking_is_a_replace_and_removing_deletes(tenant, member, catalog, committed):
    _apply(committed, _plan(tenant, member, DOC), member)
    pg = _live(tenant).get()
    smaller = DOC.replace("size_gib: 20", "size_gib: 10")
    plan = _plan(tenant, member, smaller)
    assert [(c["action"], c["reason"]) for c in plan.changes] == [("replace", "volumes only grow")]
    run = _apply(committed, plan, member)
    assert run.state == "succeeded", run.error
    new = _live(tenant).get()
    assert new.pk != pg.pk and new.size_gib == 10 and new.instance.name == "db"
    assert _plan(tenant, member, smaller).no_changes

    without = smaller.split("volumes:")[0]
    plan = _plan(tenant, member, without)
    assert [(c["action"], c["type"], c["name"]) for c in plan.changes] == [("delete", "volume", "pg")]
    assert Decimal(plan.cost["difference"]) == -_gib_monthly(10)
    assert _apply(committed, plan, member).state == "succeeded"
    assert not _live(tenant).exists()


def test_replaced_machine_gets_its_volume_back(tenant, member, catalog, committed):
    _apply(committed, _plan(tenant, member, DOC), member)
    changed = DOC.replace("  db:\n    flavor: s1\n    image: debian-12", "  db:\n    flavor: s1\n    image: ubuntu-24")
    plan = _plan(tenant, member, changed)
    volume = next(c for c in plan.changes if c["type"] == "volume")
    assert (volume["action"], volume["reason"]) == ("update", "its machine is replaced")
    run = _apply(committed, plan, member)
    assert run.state == "succeeded", run.error
    db = Instance.objects.for_tenant(tenant).live().get(name="db")
    assert db.image.name == "ubuntu-24" and _live(tenant).get().instance_id == db.pk
    assert _plan(tenant, member, changed).no_changes


def test_destroy_leaves_no_volume(tenant, member, catalog, committed):
    _apply(committed, _plan(tenant, member, DOC), member)
    with committed():
        run = stack_destroy(tenant=tenant, user=member, name="data")
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    assert not _live(tenant).exists()
    assert not Instance.objects.for_tenant(tenant).live().exists()
    assert not Stack.objects.for_tenant(tenant).exists()


@pytest.mark.parametrize(
    ("volume", "field", "line"),
    [
        ("pg: {size_gib: 20, attach_to: nope}", "volumes.pg.attach_to", 12),
        ("pg: {size_gib: 20, attach_to: web}", "volumes.pg.attach_to", 12),
        ("pg: {size_gib: 20, attach_to: web.3}", "volumes.pg.attach_to", 12),
        ("pg: {size_gib: 0}", "volumes.pg.size_gib", 12),
        ("pg: {size_gib: 20000}", "volumes.pg.size_gib", 12),
        ("pg: {attach_to: db}", "volumes.pg", 12),
        ("pg: {size_gib: 20, shared: true}", "volumes.pg.shared", 12),
    ],
)
def test_validation_names_the_field_and_line(volume, field, line):
    text = DOC.replace("pg: {size_gib: 20, attach_to: db, labels: {role: pg}}", volume)
    with pytest.raises(DocumentInvalid) as invalid:
        read(text)
    assert [(p.field, p.line) for p in invalid.value.problems] == [(field, line)]


def test_refused_document_in_the_api_shape(tenant, member, catalog):
    with pytest.raises(DocumentRefused) as refused:
        _plan(tenant, member, DOC.replace("attach_to: db", "attach_to: cache"))
    assert refused.value.details[0]["field"] == "volumes.pg.attach_to"
    assert "cache is not under `machines`" in refused.value.details[0]["message"]


def test_export_declares_volumes_and_plans_no_change(tenant, member, catalog, committed):
    _apply(committed, _plan(tenant, member, DOC), member)
    exported = stack_export(tenant=tenant, selectors=[(STACK_LABEL, "data")], stack="data")
    assert "volumes:" in exported and "attach_to: db" in exported and "size_gib: 20" in exported
    assert _plan(tenant, member, exported).no_changes


def test_volumes_beyond_the_quota_are_shown_and_cannot_be_applied(tenant, member, catalog):
    Quota.objects.update_or_create(tenant=tenant, defaults={**Quota.defaults(), "volume_gb": 15, "volumes": 1})
    plan = _plan(tenant, member, DOC.replace("volumes:\n", "volumes:\n  logs: {size_gib: 1}\n"))
    assert plan.quota["ok"] is False
    assert plan.quota["problems"] == [
        "This plan needs 21 more GiB of volumes: 21 of your quota of 15.",
        "This plan needs 2 more volumes: 2 of your quota of 1.",
    ]
    with pytest.raises(Unprocessable) as refused:
        stack_plan_apply(plan=plan, user=member)
    assert refused.value.code == "quota_exceeded"
