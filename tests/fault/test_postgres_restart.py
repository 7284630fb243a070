"""PostgreSQL restarted under load: requests fail fast and cleanly while it is away and succeed after; the
workers and beat reconnect by themselves; builds that met the outage are retried, not dropped."""

import json
import re
import threading
import time
from dataclasses import dataclass

import pytest

from tests.fault.harness import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.slow]


@dataclass
class Answer:
    kind: str
    started: float
    status: int
    seconds: float
    body: bytes
    headers: dict


def _load(fault, tenant, stop: threading.Event, answers: list[Answer], worker: int) -> None:
    """Reads the list and launches machines, one request after the other, until told to stop (bounded anyway)."""
    for n in range(400):
        if stop.is_set():
            return
        kind = "launch" if n % 4 == 0 else "list"
        started = time.monotonic()
        if kind == "launch":
            response = fault.launch(tenant, f"load-{worker}-{n}", timeout=15)
        else:
            response = fault.api("GET", "instances/?per_page=5", tenant, timeout=15)
        answers.append(Answer(kind, started, response.status_code, response.seconds, response.body, response.headers))
        time.sleep(0.05)


def test_requests_fail_fast_and_cleanly_during_a_restart_and_everything_reconnects(running_stack):
    fault = running_stack
    tenant = fault.new_tenant(instances_quota=1000)
    fault.only_host(vcpus=1000)
    answers: list[Answer] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_load, args=(fault, tenant, stop, answers, n)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        fault.postgres.stop("fast")  # every session is ended, as a restart or a failover does
        down_at = time.monotonic()
        time.sleep(3)
        fault.postgres.start()
        up_at = time.monotonic()
        beat_log, worker_log = fault.log_size("beat"), fault.log_size("worker")
        time.sleep(3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        if not fault.postgres.answers():
            fault.postgres.start()

    slow = [(a.kind, a.status, round(a.seconds, 1)) for a in answers if a.seconds > 5]
    assert slow == []
    unavailable = [a for a in answers if a.status == 503]
    assert unavailable, "no request met the outage"
    for answer in unavailable:
        assert answer.headers["Content-Type"].startswith("application/json")
        assert answer.headers["Retry-After"].isdigit()
        assert json.loads(answer.body)["error"]["code"] == "service_unavailable"
        assert down_at - 1 <= answer.started <= up_at + 1
    others = sorted({a.status for a in answers if a.status != 503})
    assert others == [200, 202], [(a.status, a.body[:200]) for a in answers if a.status not in (200, 202, 503)]
    after = [a for a in answers if a.started > up_at + 1]
    assert after and {a.status for a in after} <= {200, 202}

    # The worker reconnects: every accepted launch, including those accepted just before the outage, is built.
    launched = [json.loads(a.body)["id"] for a in answers if a.status == 202]
    fault.wait_for_states(dict.fromkeys(launched, "running"), timeout=90)
    # Beat reconnects: it goes on sending the reconciler, which a worker runs against the restarted database.
    wait_until(lambda: "Sending due task compute-reconcile" in fault.log_since("beat", beat_log), what="beat")
    reconciled = re.compile(r"compute\.tasks\.reconcile\[[^\]]+\] succeeded")
    wait_until(lambda: reconciled.search(fault.log_since("worker", worker_log)), what="a reconciler pass")
    assert all(process.poll() is None for process in fault.stack.processes.values())


def test_builds_that_meet_a_database_outage_are_retried_not_dropped(running_stack):
    fault = running_stack
    tenant = fault.new_tenant()
    fault.only_host(vcpus=20)
    fault.stack.kill("beat", sig=15)  # no reconciler: only the tasks' own retries can finish the work
    try:
        worker_log = fault.log_size("worker")
        fault.stack.pause("worker")
        try:
            ids = [fault.launch(tenant, f"blip-{n}").json()["id"] for n in range(3)]
            fault.postgres.stop("fast")
            fault.stack.resume("worker")  # it takes the builds while the database is away
            wait_until(
                lambda: fault.log_since("worker", worker_log).count("compute.tasks.build_instance") >= 3,
                what="the worker to take the builds",
            )
            time.sleep(1)
        finally:
            fault.stack.resume("worker")
            if not fault.postgres.answers():
                fault.postgres.start()

        # Retries back off 2, 4, 8 s at most (full jitter): well within this bound once the database is back.
        fault.wait_for_states(dict.fromkeys(ids, "running"), timeout=25)
        resent = fault.sql(
            "SELECT count(*) FROM compute_instanceevent WHERE instance_id = ANY(%s::uuid[]) AND action = 'reconcile'",
            [ids],
        )
        assert resent == [(0,)]
    finally:
        fault.stack.start_beat()
