"""A run that fails half-way says where and why, and the next plan converges; the plan's monthly cost is what the
invoice of a whole month charges for the stack."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Invoice
from billing.pricing import month_start, next_month
from billing.services.metering import invoices_refresh
from compute.models import Host, Instance
from compute.network.models import PublicIPPool
from compute.stacks.services import stack_plan_apply, stack_plan_create

pytestmark = pytest.mark.django_db

DOC = """stack: flaky
machines:
  web:
    flavor: s1
    image: debian-12
    count: 2
    public_ip: true
  db:
    flavor: s3
    image: debian-12
    depends_on: [web]
"""


@pytest.fixture
def pool(db):
    return PublicIPPool.objects.create(name="doc", cidr="203.0.113.0/28")


def _apply(committed, tenant, member, text):
    plan = stack_plan_create(tenant=tenant, user=member, source=text)
    with committed():
        run = stack_plan_apply(plan=plan, user=member)
    run.refresh_from_db()
    return plan, run


def test_a_failed_build_fails_the_run_at_its_step_and_the_next_apply_converges(
    tenant, member, catalog, pool, committed
):
    Host.objects.filter(name="hv-stack").update(fail_next_creates=1, failure_kind="permanent")
    _plan, run = _apply(committed, tenant, member, DOC)
    assert run.state == "failed"
    failed = [(n, s) for n, s in enumerate(run.steps, 1) if s["state"] == "failed"]
    assert len(failed) == 1
    number, step = failed[0]
    assert step["type"] == "machine" and step["name"] == "web-1" and step["error"]
    assert run.error.startswith(f"Step {number} of {run.total} (create machine web-1) failed: web-1 failed to build")
    assert all(s["state"] == "pending" for s in run.steps[number:])  # nothing after it ran
    assert Instance.objects.for_tenant(tenant).get(name="web-1").state == "error"

    retry = stack_plan_create(tenant=tenant, user=member, source=DOC)
    by_name = {c["name"]: c for c in retry.changes}
    assert by_name["web-1"]["action"] == "replace" and "error" in by_name["web-1"]["reason"]
    assert by_name["web-2"]["action"] == "create" and by_name["db"]["action"] == "create"
    with committed():
        run = stack_plan_apply(plan=retry, user=member)
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    assert sorted(Instance.objects.for_tenant(tenant).live().values_list("name", "state")) == [
        ("db", "running"),
        ("web-1", "running"),
        ("web-2", "running"),
    ]
    assert stack_plan_create(tenant=tenant, user=member, source=DOC).no_changes


def test_plan_cost_is_what_a_whole_month_is_invoiced(tenant, member, catalog, pool, committed):
    plan, run = _apply(committed, tenant, member, DOC)
    assert run.state == "succeeded", run.error
    # two s1 (5.00), one s3 (20.00) and two addresses at the IPv4 price
    following = next_month(month_start(timezone.now()))
    invoices_refresh(
        period_start=following,
        as_of=timezone.make_aware(timezone.datetime.combine(next_month(following), timezone.datetime.min.time()))
        - timedelta(seconds=1),
    )
    invoice = Invoice.objects.for_tenant(tenant).get(period_start=following)
    assert Decimal(invoice.subtotal_cents) / 100 == Decimal(plan.cost["monthly_after"])
    assert Decimal(plan.cost["monthly_after"]) >= Decimal("30.00")

    bigger = stack_plan_create(tenant=tenant, user=member, source=DOC.replace("count: 2", "count: 3"))
    assert Decimal(bigger.cost["difference"]) == Decimal(bigger.cost["monthly_after"]) - Decimal(
        bigger.cost["monthly_before"]
    )
    assert Decimal(bigger.cost["monthly_before"]) == Decimal(invoice.subtotal_cents) / 100


def test_a_run_whose_message_was_lost_is_sent_again(tenant, member, catalog, pool, committed):
    from compute.stacks.models import StackRun
    from compute.stacks.services import stacks_resume

    plan = stack_plan_create(tenant=tenant, user=member, source=DOC)
    run = stack_plan_apply(plan=plan, user=member)  # not committed: its message never left
    assert StackRun.objects.get(pk=run.pk).state == "pending"
    assert stacks_resume(now=timezone.now()) == 0  # not idle long enough yet
    with committed():
        assert stacks_resume(now=timezone.now() + timedelta(minutes=2)) == 1
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    assert stacks_resume(now=timezone.now() + timedelta(minutes=10)) == 0
