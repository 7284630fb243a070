"""A worker SIGKILLed while it creates, attaches, extends and deletes volumes: after a restart and the reconciler's
storage pass every volume ends where its user asked, nothing is created twice in the host's pool, the host's pool
total equals a recount, and the billing segments match.

The simulated pool answers at once, so the scenario makes it slow the way a busy hypervisor is: from a connection of
its own it holds the host's hypervisor lock (creates, attaches and extends wait for it) and a row lock on the pool
file being deleted, until the worker is dead.
"""

import contextlib

import psycopg
import pytest

from compute.drivers.simulated import HYPERVISOR_LOCK
from tests.fault.harness import DATABASE, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.slow]


@contextlib.contextmanager
def slow_pool(fault, host: str, *, deleting: tuple[str, ...] = ()):
    """Holds the host's hypervisor lock, and row locks on the named pool files, until the block ends."""
    with psycopg.connect(fault.postgres.url(DATABASE), connect_timeout=5) as connection:
        connection.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", [HYPERVISOR_LOCK, int(host.replace("-", ""), 16) % 2**31]
        )
        locked = connection.execute(
            "SELECT name FROM storage_simulatedvolume WHERE host_id = %s AND name = ANY(%s) FOR UPDATE",
            [host, list(deleting)],
        ).fetchall()
        assert len(locked) == len(deleting), locked
        try:
            yield
        finally:
            connection.rollback()


def kill_worker_during(fault, host: str, start, *, deleting: tuple[str, ...] = ()) -> list[str]:
    """Starts the work with the pool held (`start()` returns the volumes it set going), waits until the worker is
    inside the driver for every one, SIGKILLs it, lets the pool go and starts a new worker."""
    with slow_pool(fault, host, deleting=deleting):
        volumes = start()
        wait_until(
            lambda: (
                fault.sql(
                    "SELECT count(*) FROM storage_volume WHERE id = ANY(%s::uuid[]) AND task_progress_at IS NOT NULL",
                    [volumes],
                )
                == [(len(volumes),)]
            ),
            what=f"the worker to be at work on {volumes}",
        )
        fault.stack.kill("worker")  # SIGKILL to the whole process group, both slots waiting on the pool
    fault.stack.start_worker()
    return volumes


def wait_for_volumes(fault, expected: dict[str, str], *, timeout: float = 90) -> None:
    def states():
        return dict(
            fault.sql("SELECT id::text, state FROM storage_volume WHERE id = ANY(%s::uuid[])", [list(expected)])
        )

    try:
        wait_until(lambda: states() == expected, what="every volume to settle", timeout=timeout, interval=0.5)
    except AssertionError:
        raise AssertionError(f"expected {expected}, found {states()}\n{fault.stack.tail_logs(6000)}") from None


def test_a_worker_killed_mid_volume_work_leaves_every_volume_right(running_stack):
    fault = running_stack
    tenant = fault.new_tenant()
    fault.shell(
        f"from tenants.models import Quota\nQuota.objects.filter(tenant_id='{tenant.id}').update(volume_gb=10**4)"
    )
    host = fault.only_host(vcpus=20)
    machine = fault.launch(tenant, "vm").json()["id"]
    fault.wait_for_states({machine: "running"}, timeout=30)

    def create(name: str) -> str:
        response = fault.api("POST", "volumes/", tenant, {"name": name, "size_gib": 10})
        assert response.status_code == 202, response.body[:300]
        return response.json()["id"]

    def act(name: str, method: str, path: str = "", body=None) -> None:
        response = fault.api(method, f"volumes/{ids[name]}/{path}", tenant, body)
        assert response.status_code == 202, response.body[:300]

    ids = {name: create(name) for name in ("attach-me", "extend-me", "delete-me")}
    wait_for_volumes(fault, dict.fromkeys(ids.values(), "available"), timeout=30)
    names = {pk: name for name, pk in ids.items()}

    # Round one: the worker dies while it creates one volume and attaches another.
    def create_and_attach():
        ids["create-me"] = create("create-me")
        act("attach-me", "POST", "attach/", {"instance": machine})
        return [ids["create-me"], ids["attach-me"]]

    killed = kill_worker_during(fault, host, create_and_attach)
    names[ids["create-me"]] = "create-me"
    wait_for_volumes(fault, {ids["create-me"]: "available", ids["attach-me"]: "in-use"})

    # Round two: the worker dies while it extends one volume and deletes another.
    def extend_and_delete():
        act("extend-me", "POST", "extend/", {"size_gib": 25})
        act("delete-me", "DELETE")
        return [ids["extend-me"], ids["delete-me"]]

    killed += kill_worker_during(fault, host, extend_and_delete, deleting=(f"hangar-vol-{ids['delete-me']}",))
    expected = {"create-me": "available", "attach-me": "in-use", "extend-me": "available", "delete-me": "deleted"}
    wait_for_volumes(fault, {ids[name]: state for name, state in expected.items()})

    volumes = {
        names[pk]: (size, instance)
        for pk, size, instance in fault.sql(
            "SELECT id::text, size_gib, instance_id::text FROM storage_volume WHERE id = ANY(%s::uuid[])",
            [list(ids.values())],
        )
    }
    assert volumes == {
        "create-me": (10, None),
        "attach-me": (10, machine),
        "extend-me": (25, None),
        "delete-me": (10, None),
    }

    # The pool holds exactly the live volumes, each once, at their size, attached where the database says.
    files = fault.sql(
        "SELECT name, count(*), max(size_gib), max(domain) FROM storage_simulatedvolume WHERE host_id = %s"
        " GROUP BY name",
        [host],
    )
    assert {name: (count, size, domain) for name, count, size, domain in files} == {
        f"hangar-vol-{ids['create-me']}": (1, 10, ""),
        f"hangar-vol-{ids['attach-me']}": (1, 10, machine),
        f"hangar-vol-{ids['extend-me']}": (1, 25, ""),
    }

    # The four the worker died in were found silent by the storage pass and sent again.
    resent = fault.sql(
        "SELECT DISTINCT volume_id::text FROM storage_storageevent WHERE volume_id = ANY(%s::uuid[])"
        " AND message LIKE '%%worker stopped%%'",
        [killed],
    )
    assert sorted(pk for (pk,) in resent) == sorted(killed)

    # The host's running total is what a recount finds: the machine's disk and the three live volumes.
    held, disk = fault.sql(
        "SELECT h.held_disk_gib, f.disk_gib FROM compute_host h, compute_instance i JOIN compute_flavor f"
        " ON f.id = i.flavor_id WHERE h.id = %s AND i.id = %s",
        [host, machine],
    )[0]
    assert held == disk + 10 + 10 + 25
    recount = fault.shell(f"""
from compute.models import Host
from compute.services.usage import HOST_TOTALS, host_usage_recount
host = Host.objects.get(pk="{host}")
result = [[getattr(host, name) for name in HOST_TOTALS], list(host_usage_recount(host_ids=[host.pk])[host.pk])]
""")
    assert recount[0] == recount[1], recount

    # Billing: one open segment per live volume, at its size; none open for the deleted one.
    segments = fault.sql(
        "SELECT resource_id::text, quantity FROM billing_segment"
        " WHERE resource_id = ANY(%s::uuid[]) AND ended_at IS NULL",
        [list(ids.values())],
    )
    assert sorted((names[pk], quantity) for pk, quantity in segments) == [
        ("attach-me", 10),
        ("create-me", 10),
        ("extend-me", 25),
    ]
    created = fault.sql("SELECT count(*) FROM billing_segment WHERE resource_id = %s::uuid", [ids["create-me"]])
    assert created == [(1,)]
