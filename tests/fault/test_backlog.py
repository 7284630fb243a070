"""A backlog of builds older than the reconciler's grace period: the queued builds are left to wait (not re-sent as
"lost"), and the reconciler keeps running meanwhile, from its own queue."""

import re
import time

import pytest

pytestmark = [pytest.mark.fault, pytest.mark.slow]


def test_a_backlog_is_queued_not_lost_and_the_reconciler_runs_beside_it(running_stack):
    fault = running_stack
    tenant = fault.new_tenant()
    fault.only_host(vcpus=100, boot_seconds=2)
    worker_log = fault.log_size("worker")

    # Builds of 2 s or more on the worker's two slots: ten at once, then more while beat sends the reconciler every
    # 2 s. Builds sent after a reconciler's message wait past the grace period (8 s) behind the ones before it.
    ids = [fault.launch(tenant, f"backlog-{n}").json()["id"] for n in range(10)]
    for n in range(10, 16):
        time.sleep(0.5)
        ids.append(fault.launch(tenant, f"backlog-{n}").json()["id"])
    fault.wait_for_states(dict.fromkeys(ids, "running"), timeout=90)

    resent = fault.sql(
        "SELECT count(*) FROM compute_instanceevent WHERE instance_id = ANY(%s::uuid[]) AND action = 'reconcile'",
        [ids],
    )
    assert resent == [(0,)]
    log = fault.log_since("worker", worker_log)
    builds_done = [match.start() for match in re.finditer(r"build_instance\[[^\]]+\] succeeded", log)]
    passes_during = re.findall(r"compute\.tasks\.reconcile\[[^\]]+\] succeeded", log[builds_done[0] : builds_done[-1]])
    assert len(passes_during) >= 2, "the reconciler waited behind the builds"
    queued = [int(n) for n in re.findall(r"(\d+) still queued", log[: builds_done[-1]])]
    assert max(queued) > 0, "no reconciler pass saw the backlog"
