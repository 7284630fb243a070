"""A worker SIGKILLed while it builds, stops and deletes machines: after a restart and the reconciler's passes every
machine ends where its user asked, nothing is created twice on the hypervisor, and the billing segments match.

(tests/compute/test_worker_crash.py kills a build on the embedded broker; this is the same on Redis and PostgreSQL,
with every kind of work in flight or queued behind it.)
"""

import pytest

from tests.fault.harness import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.slow]


def test_a_worker_killed_mid_work_leaves_every_machine_right(running_stack):
    fault = running_stack
    tenant = fault.new_tenant()
    host = fault.only_host(vcpus=20, boot_seconds=3, stop_seconds=3)
    ids = {name: fault.launch(tenant, name).json()["id"] for name in ("stop-1", "stop-2", "delete-1", "delete-2")}
    fault.wait_for_states(dict.fromkeys(ids.values(), "running"), timeout=30)

    # Interleaved, so that the worker's two slots hold a build and a stop when it dies and the rest waits behind.
    ids["build-1"] = fault.launch(tenant, "build-1").json()["id"]
    assert fault.api("POST", f"instances/{ids['stop-1']}/actions/", tenant, {"type": "stop"}).status_code == 202
    assert fault.api("DELETE", f"instances/{ids['delete-1']}/", tenant).status_code == 202
    ids["build-2"] = fault.launch(tenant, "build-2").json()["id"]
    assert fault.api("POST", f"instances/{ids['stop-2']}/actions/", tenant, {"type": "stop"}).status_code == 202
    assert fault.api("DELETE", f"instances/{ids['delete-2']}/", tenant).status_code == 202
    in_progress = [ids["build-1"], ids["stop-1"]]
    wait_until(
        lambda: (
            fault.sql(
                "SELECT count(*) FROM compute_instance WHERE id = ANY(%s::uuid[]) AND task_progress_at IS NOT NULL",
                [in_progress],
            )
            == [(2,)]
        ),
        what="the worker to be building one machine and stopping another",
    )
    fault.stack.kill("worker")  # SIGKILL to the whole process group, in the middle of both
    fault.stack.start_worker()

    expected = {"build-1": "running", "build-2": "running", "stop-1": "stopped", "stop-2": "stopped",
                "delete-1": "deleted", "delete-2": "deleted"}  # fmt: skip
    fault.wait_for_states({ids[name]: state for name, state in expected.items()}, timeout=90)

    # The hypervisor holds exactly the live machines, each created once, powered as asked; nothing unknown to us.
    domains = dict(fault.sql("SELECT uuid::text, power FROM compute_simulateddomain WHERE host_id = %s", [host]))
    assert domains == {
        ids["build-1"]: "running",
        ids["build-2"]: "running",
        ids["stop-1"]: "shutoff",
        ids["stop-2"]: "shutoff",
    }
    assert fault.sql("SELECT count(*) FROM compute_orphandomain WHERE host_id = %s", [host]) == [(0,)]
    builds = dict(
        fault.sql(
            "SELECT instance_id::text, count(*) FROM compute_instanceevent WHERE instance_id = ANY(%s::uuid[])"
            " AND action = 'build' AND result = 'succeeded' GROUP BY instance_id",
            [list(ids.values())],
        )
    )
    assert builds == dict.fromkeys(ids.values(), 1)
    # The two the worker died in were found silent and sent again; the rest ran from the queue.
    resent = fault.sql(
        "SELECT DISTINCT instance_id::text FROM compute_instanceevent WHERE instance_id = ANY(%s::uuid[])"
        " AND action = 'reconcile' AND message LIKE '%%worker stopped%%'",
        [in_progress],
    )
    assert sorted(resent) == sorted((pk,) for pk in in_progress)

    # Billing: one segment per machine since its build, still open unless the machine was deleted.
    segments = fault.sql(
        "SELECT resource_id::text, count(*), count(*) FILTER (WHERE ended_at IS NULL) FROM billing_segment"
        " WHERE resource_id = ANY(%s::uuid[]) GROUP BY resource_id",
        [list(ids.values())],
    )
    assert {pk: (total, open_) for pk, total, open_ in segments} == {
        ids[name]: (1, 0 if state == "deleted" else 1) for name, state in expected.items()
    }
