"""Metering and finalization running while machines are launched and deleted: afterwards every invoice equals a
recomputation from the billable segments with billing's own Python rules, and the finalized ones are numbered
without gaps."""

import re
import subprocess
import sys
import uuid

import pytest

from tests.e2e.stack import ROOT
from tests.fault.harness import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.slow]

# Last month's segments for the machines running now (so that their invoices can be finalized during the load).
BACKDATE = """
from datetime import timedelta
from django.utils import timezone
from billing.models import Segment
from billing.pricing import month_start
from billing.services.metering import invoices_refresh
previous = month_start(month_start(timezone.now()) - timedelta(days=1))
Segment.objects.filter(resource_id__in={ids}).update(started_at=timezone.now().replace(
    year=previous.year, month=previous.month, day=3, hour=10))
invoices_refresh(period_start=previous, as_of=timezone.now())
result = str(previous)
"""

# The billing jobs, over and over for a bounded time: the worker's tasks (through the broker) and, at the same time,
# a metering pass in this process too.
JOBS = """
import time
from django.utils import timezone
from billing import tasks
from billing.pricing import month_start
from billing.services.metering import invoices_refresh
started = time.monotonic()
while time.monotonic() - started < {seconds}:
    tasks.meter.delay()
    tasks.finalize_due.delay()
    invoices_refresh(period_start=month_start(timezone.now()), as_of=timezone.now())
    time.sleep(0.5)
"""

# Every invoice of the tenants against its lines recomputed from the segments as of its last metering.
RECOMPUTE = """
from billing.models import Invoice, Segment
from billing.pricing import line_cents, month_bounds, started_hours
problems, summary = [], []
for invoice in Invoice.objects.filter(tenant_id__in={tenants}).order_by("period_start", "tenant_id"):
    start, end = month_bounds(invoice.period_start)
    as_of = invoice.metered_at
    expected = {{}}
    for segment in Segment.objects.filter(tenant_id=invoice.tenant_id).overlapping(start, end):
        hours = started_hours(start=segment.started_at, end=segment.ended_at, period_start=start, period_end=end,
                              as_of=as_of)
        if hours:
            expected[segment.pk] = (hours, line_cents(hours=hours, hourly_rate_units=segment.hourly_rate_units,
                                                      monthly_price_units=segment.monthly_price_units))
    actual = {{line.segment_id: (line.hours, line.amount_cents) for line in invoice.lines.all()}}
    if actual != expected:
        problems.append([str(invoice.pk), invoice.status, sorted(expected.items()), sorted(actual.items())])
    if invoice.subtotal_cents != sum(cents for _, cents in expected.values()):
        problems.append([str(invoice.pk), "subtotal", invoice.subtotal_cents])
    summary.append([str(invoice.period_start), invoice.status, invoice.number, len(actual), invoice.subtotal_cents])
result = {{"problems": problems, "invoices": summary}}
"""


def test_invoices_equal_a_recomputation_from_the_segments_after_metering_under_load(running_stack):
    fault = running_stack
    fault.only_host(vcpus=100)
    tenants = [fault.new_tenant(), fault.new_tenant()]
    old = {tenant.id: [fault.launch(tenant, f"old-{n}").json()["id"] for n in range(3)] for tenant in tenants}
    fault.wait_for_states({pk: "running" for ids in old.values() for pk in ids})
    previous = fault.shell(BACKDATE.format(ids=[pk for ids in old.values() for pk in ids]))
    worker_log = fault.log_size("worker")

    jobs = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", JOBS.format(seconds=8)],
        cwd=ROOT,
        env=fault.stack.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Meanwhile: new machines come and go, and last month's machines are deleted (closing their segments).
        new = {tenant.id: [fault.launch(tenant, f"new-{n}").json()["id"] for n in range(4)] for tenant in tenants}
        fault.wait_for_states({pk: "running" for ids in new.values() for pk in ids})
        deleted = [pk for tenant in tenants for pk in (old[tenant.id][0], new[tenant.id][0], new[tenant.id][1])]
        for tenant in tenants:
            for pk in (old[tenant.id][0], new[tenant.id][0], new[tenant.id][1]):
                assert fault.api("DELETE", f"instances/{pk}/", tenant).status_code == 202
        fault.wait_for_states(dict.fromkeys(deleted, "deleted"))
    finally:
        _, errors = jobs.communicate(timeout=60)
    assert jobs.returncode == 0, errors.decode()[-3000:]

    # Quiet again: one last metering pass by the worker, sent after every other job (the queue is first in, first out).
    final = str(uuid.uuid4())
    fault.shell(f"from billing.tasks import meter\nmeter.apply_async(task_id='{final}')")
    wait_until(lambda: f"[{final}] succeeded" in fault.log_since("worker", worker_log), what="the last metering")
    log = fault.log_since("worker", worker_log)
    assert not re.search(r"billing\.tasks\.\w+\[[^\]]+\] raised", log), log[-3000:]

    report = fault.shell(RECOMPUTE.format(tenants=[tenant.id for tenant in tenants]))
    assert report["problems"] == []
    invoices = report["invoices"]
    assert sorted((period, status) for period, status, *_ in invoices) == [
        (previous, "finalized"),
        (previous, "finalized"),
        *[(period, "draft") for period, status, *_ in invoices if period != previous],
    ]
    assert len(invoices) == 4  # one per tenant and month
    numbers = sorted(int(number.rsplit("-", 1)[1]) for _, status, number, *_ in invoices if status == "finalized")
    assert numbers == list(range(numbers[0], numbers[0] + 2))
    # Every machine of last month is on its finalized invoice; this month's drafts bill the deleted machines too.
    assert [lines for period, _, _, lines, _ in invoices if period == previous] == [3, 3]
    assert [lines for period, _, _, lines, _ in invoices if period != previous] == [7, 7]
