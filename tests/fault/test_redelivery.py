"""The same task delivered twice, out of order, or after its machine was deleted: harmless. The messages go through
the real broker to the real worker, exactly as a redelivery after a crash (or the reconciler's re-send) would."""

import json
import uuid

import pytest

from tests.fault.harness import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.slow]

KINDS = ("build", "start", "stop", "reboot", "resize", "delete")


def send(fault, messages: list[tuple[str, str]]) -> list[str]:
    """Publishes the instance task of each (kind, instance id) to the broker; returns the messages' ids."""
    messages = [(kind, instance_id, str(uuid.uuid4())) for kind, instance_id in messages]
    fault.shell(f"""
from compute.tasks import TASKS
for kind, instance_id, task_id in {json.dumps(messages)}:
    TASKS[kind].apply_async(kwargs={{"instance_id": instance_id}}, task_id=task_id)
""")
    return [task_id for _, _, task_id in messages]


def wait_until_done(fault, task_ids: list[str], offset: int) -> None:
    wait_until(
        lambda: all(f"[{task_id}] succeeded" in fault.log_since("worker", offset) for task_id in task_ids),
        what=f"the worker to finish {len(task_ids)} messages",
        timeout=30,
    )


def snapshot(fault, instance_ids: list[str]) -> dict:
    """Everything a task could change about these machines: state, events, domains, segments."""
    return {
        "instances": fault.sql(
            "SELECT id::text, state, power_state, task FROM compute_instance WHERE id = ANY(%s::uuid[]) ORDER BY id",
            [instance_ids],
        ),
        "events": fault.sql(
            "SELECT instance_id::text, action, result FROM compute_instanceevent WHERE instance_id = ANY(%s::uuid[])"
            " ORDER BY id",
            [instance_ids],
        ),
        "domains": fault.sql(
            "SELECT uuid::text, power, created_at FROM compute_simulateddomain WHERE uuid = ANY(%s::uuid[])"
            " ORDER BY uuid",
            [instance_ids],
        ),
        "segments": fault.sql(
            "SELECT resource_id::text, started_at, ended_at FROM billing_segment WHERE resource_id = ANY(%s::uuid[])"
            " ORDER BY id",
            [instance_ids],
        ),
    }


def test_duplicate_late_out_of_order_and_orphaned_messages_are_harmless(running_stack):
    fault = running_stack
    tenant = fault.new_tenant()
    host = fault.only_host(vcpus=20, boot_seconds=1, stop_seconds=1)
    offset = fault.log_size("worker")

    # Twice at once: the build a launch enqueued, and a copy of it, reach the worker's two slots together.
    fault.stack.pause("worker")
    try:
        twice = fault.launch(tenant, "twice").json()["id"]
        duplicates = send(fault, [("build", twice)])
    finally:
        fault.stack.resume("worker")
    wait_until_done(fault, duplicates, offset)
    fault.wait_for_states({twice: "running"}, timeout=30)
    events = snapshot(fault, [twice])["events"]
    assert [(action, result) for _, action, result in events].count(("build", "succeeded")) == 1

    # Late: every kind of message for a machine that is running (the work is done, or was never asked for).
    before = snapshot(fault, [twice])
    wait_until_done(fault, send(fault, [(kind, twice) for kind in KINDS]), offset)
    assert snapshot(fault, [twice]) == before

    # Out of order: stale messages queued ahead of a real stop request; only the stop happens.
    fault.stack.pause("worker")
    try:
        stale = send(fault, [("start", twice), ("build", twice), ("reboot", twice), ("resize", twice)])
        assert fault.api("POST", f"instances/{twice}/actions/", tenant, {"type": "stop"}).status_code == 202
        stale += send(fault, [("stop", twice)])  # and a copy of the stop itself
    finally:
        fault.stack.resume("worker")
    wait_until_done(fault, stale, offset)
    fault.wait_for_states({twice: "stopped"}, timeout=30)
    actions = [action for _, action, result in snapshot(fault, [twice])["events"] if result == "succeeded"]
    assert actions == ["build", "stop"]

    # After deletion: nothing comes back to life, nothing is billed again.
    gone = fault.launch(tenant, "gone").json()["id"]
    fault.wait_for_states({gone: "running"}, timeout=30)
    assert fault.api("DELETE", f"instances/{gone}/", tenant).status_code == 202
    fault.wait_for_states({gone: "deleted"}, timeout=30)
    before = snapshot(fault, [gone, twice])
    unknown = str(uuid.uuid4())
    wait_until_done(fault, send(fault, [(kind, gone) for kind in KINDS] + [(kind, unknown) for kind in KINDS]), offset)
    after = snapshot(fault, [gone, twice])
    assert after == before
    assert [(pk, ended is not None) for pk, _, ended in after["segments"] if pk == gone] == [(gone, True)]
    assert fault.sql("SELECT count(*) FROM compute_simulateddomain WHERE host_id = %s", [host]) == [(1,)]
    assert fault.stack.processes["worker"].poll() is None
