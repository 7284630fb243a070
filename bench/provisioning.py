"""Provisioning end to end: launches through the API on the simulated driver at zero boot time, real workers.

Each round sends a burst of no-op tasks, then for each scenario `--launches` POST /api/v1/instances/ over several
connections, waits until every machine is `running`, and sends as many no-op tasks again on the schedule the builds
arrived on (each no-op at the instant its launch was accepted, counted from the first). Reports launches/s (first
request to last `running`), request → `running` p50/p95, the POST's own latency, queries per launch POST, the CPU
per launch of the web processes and of the local PostgreSQL server, and worker CPU per machine against worker CPU
per no-op task.

The baseline of the worker's CPU is the no-op on the builds' schedule: a worker spends more per task on tasks that
arrive one by one (each wakes it, is fetched and acknowledged alone) than on a burst, and that part of a build's
cost is the delivery's, not the build's. The burst's figure is reported beside it.

    python bench/provisioning.py [--rounds 3] [--launches 500] [--threads 8]
"""

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import harness


def noop_round_trips(count: int = 20) -> list[float]:
    """Seconds from send to done of lone no-op tasks, one at a time."""
    from django.core.cache import cache

    from bench.support.tasks import DONE_KEY, noop

    round_trips = []
    for _ in range(count):
        cache.set(DONE_KEY, 0, timeout=3600)
        started = time.perf_counter()
        noop.delay()
        while not cache.get(DONE_KEY):
            time.sleep(0.0005)
        round_trips.append(time.perf_counter() - started)
    return round_trips


def noop_batch(worker: harness.Service, schedule: list[float]) -> tuple[float, float]:
    """No-op tasks sent at `schedule`'s offsets (seconds from the first; all zero: a burst), until all have run:
    (tasks/s, worker CPU seconds per task)."""
    from django.core.cache import cache

    from bench.support.tasks import DONE_KEY, noop

    cache.set(DONE_KEY, 0, timeout=3600)
    cpu_before = worker.cpu_seconds()
    started = time.perf_counter()
    for offset in sorted(schedule):
        wait = started + offset - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        noop.delay()
    while (cache.get(DONE_KEY) or 0) < len(schedule):
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    time.sleep(0.3)  # let the sampler see the last CPU ticks
    return len(schedule) / elapsed, (worker.cpu_seconds() - cpu_before) / len(schedule)


def launch_batch(port: int, members, body: dict, *, prefix: str, count: int, threads: int, worker, web, postgres):
    """`count` launches over `threads` connections; connection i launches as members[i % len(members)]."""
    from compute.models import Instance, InstanceEvent, InstanceState

    sent: dict[str, float] = {}
    accepted: list[float] = []  # when each build was sent to the workers (its launch's answer), from `first`
    post_latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    numbers = iter(range(count))

    def run(member) -> None:
        import json

        client = harness.Client(port, member.api_headers())
        while True:
            with lock:
                number = next(numbers, None)
            if number is None:
                break
            at = time.time()
            status, data, elapsed = client.request("POST", "/api/v1/instances/", {**body, "name": f"{prefix}-{number}"})
            with lock:
                statuses.append(status)
                post_latencies.append(elapsed)
                if status == 202:
                    sent[json.loads(data)["id"]] = at
                    accepted.append(at + elapsed - first)
        client.close()

    cpu_before, web_cpu_before, postgres_cpu_before = worker.cpu_seconds(), web.cpu_seconds(), postgres.cpu_seconds()
    first = time.time()
    workers = [threading.Thread(target=run, args=(members[n % len(members)],)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    posted = time.time()
    harness.fail_if_errors("launch", statuses, ok=(202,))
    deadline = time.monotonic() + 600
    live = Instance.objects.filter(pk__in=list(sent))
    while live.exclude(state=InstanceState.RUNNING).exists():
        if live.filter(state=InstanceState.ERROR).exists() or time.monotonic() > deadline:
            raise RuntimeError(f"launches did not all reach running: {dict(live.values_list('state', 'error_reason'))}")
        time.sleep(0.05)
    time.sleep(0.3)
    cpu = worker.cpu_seconds() - cpu_before
    web_cpu = web.cpu_seconds() - web_cpu_before
    postgres_cpu = postgres.cpu_seconds() - postgres_cpu_before
    running_at = dict(
        InstanceEvent.objects.filter(instance_id__in=list(sent), action="build", result="succeeded").values_list(
            "instance_id", "created_at"
        )
    )
    to_running = [running_at[pk].timestamp() - sent[str(pk)] for pk in running_at]
    last = max(at.timestamp() for at in running_at.values())
    return {
        "launches_per_s": count / (last - first),
        "posts_per_s": count / (posted - first),
        "post": post_latencies,
        "to_running": to_running,
        "cpu_per_machine": cpu / count,
        "web_cpu_per_launch": web_cpu / count,
        "postgres_cpu_per_launch": postgres_cpu / count,
        "arrivals": accepted,
    }


def launch_queries(member, body: dict) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {member.token}")
    # The first launch of a tenant in a process looks its default network and firewall up; later ones know them.
    for name in ("warm-up", "warm-up-2"):
        client.post("/api/v1/instances/", {**body, "name": name}, content_type="application/json")
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/api/v1/instances/", {**body, "name": "counted"}, content_type="application/json")
    if response.status_code != 202:
        raise RuntimeError(f"launch: {response.status_code} {response.content[:300]}")
    statements = [query["sql"] for query in captured.captured_queries]
    if os.environ.get("BENCH_SHOW_QUERIES"):
        print("\n".join(sql[:160] for sql in statements))
    return len([sql for sql in statements if sql not in ("BEGIN", "COMMIT")])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--launches", type=int, default=500, help="launches per round and scenario")
    parser.add_argument("--threads", type=int, default=8, help="client connections sending launches")
    options = parser.parse_args()

    environment = harness.bench_environment("provisioning", ALLOWED_HOSTS="127.0.0.1,localhost,testserver")
    harness.setup_django(environment)
    from bench.support import fixtures
    from tenants.models import Quota

    flavors, images, hosts = fixtures.catalog(hosts=4, boot_seconds=0)
    everyone = fixtures.tenants(100)
    fixtures.large_default_networks(everyone[:8], region=hosts[0].region)
    members = [fixtures.member(tenant, email=f"owner-{n}@bench.example") for n, tenant in enumerate(everyone[:8])]
    member = members[0]
    Quota.objects.filter(tenant__in=everyone[:8]).update(instances=10**6, vcpus=10**7, ram_mib=10**9)
    body = {"flavor": str(flavors[0].pk), "image": str(images[0].pk), "ssh_keys": []}
    # One tenant's launches queue on its quota lock (by design); many tenants' launches run side by side.
    scenarios = {"one tenant": [member], f"{len(members)} tenants": members}

    rounds = []
    with harness.Stack(environment) as stack:
        web = stack.web()
        worker = stack.worker()
        queries = launch_queries(member, body)
        for number in range(options.rounds):
            noop_rate, noop_cpu = noop_batch(worker, [0.0] * options.launches)
            measured = {"noop_rate": noop_rate, "noop_cpu": noop_cpu, "noop_trips": noop_round_trips()}
            for scenario, who in scenarios.items():
                launched = launch_batch(
                    stack.port,
                    who,
                    body,
                    prefix=f"r{number}-{len(who)}",
                    count=options.launches,
                    threads=options.threads,
                    worker=worker,
                    web=web,
                    postgres=stack.postgres,
                )
                measured.update({f"{scenario}: {key}": value for key, value in launched.items()})
                _, measured[f"{scenario}: noop_cpu"] = noop_batch(worker, launched["arrivals"])
            rounds.append(measured)
        web_rss, worker_rss = web.peak_rss_mib(), worker.peak_rss_mib()

    def med(key):
        return harness.median([r[key] for r in rounds])

    def pooled(key):
        return [value for r in rounds for value in r[key]]

    trips = pooled("noop_trips")
    rows = []
    for scenario in scenarios:
        to_running, post = pooled(f"{scenario}: to_running"), pooled(f"{scenario}: post")
        cpu, paced = med(f"{scenario}: cpu_per_machine"), med(f"{scenario}: noop_cpu")
        rows += [
            (f"{scenario}: launches/s, first request to last running", f"{med(f'{scenario}: launches_per_s'):.1f}", ""),
            (f"{scenario}: launch POSTs/s accepted", f"{med(f'{scenario}: posts_per_s'):.1f}", ""),
            (
                f"{scenario}: launch POST latency p50 / p95 ms",
                f"{harness.ms(harness.median(post))} / {harness.ms(harness.percentile(post, 0.95))}",
                "",
            ),
            (
                f"{scenario}: request → running p50 / p95 ms",
                f"{harness.ms(harness.median(to_running))} / {harness.ms(harness.percentile(to_running, 0.95))}",
                "",
            ),
            (
                f"{scenario}: worker CPU per machine ms",
                harness.ms(cpu),
                f"{cpu / paced:.1f}x a no-op on the builds' schedule ({cpu / med('noop_cpu'):.1f}x a no-op burst)",
            ),
            (f"{scenario}: no-op task on the builds' schedule: worker CPU per task ms", harness.ms(paced), "baseline"),
            (f"{scenario}: web CPU per launch ms", harness.ms(med(f"{scenario}: web_cpu_per_launch")), ""),
            (
                f"{scenario}: PostgreSQL CPU per launch ms",
                harness.ms(med(f"{scenario}: postgres_cpu_per_launch")),
                "the POST and the build",
            ),
        ]
    rows += [
        ("queries per launch POST (BEGIN and COMMIT left out)", queries, ""),
        ("no-op burst: worker CPU per task ms", harness.ms(med("noop_cpu")), ""),
        ("no-op burst: tasks/s", f"{med('noop_rate'):.0f}", ""),
        (
            "no-op task: lone round trip p50 / p95 ms",
            f"{harness.ms(harness.median(trips))} / {harness.ms(harness.percentile(trips, 0.95))}",
            "",
        ),
        ("peak RSS web / worker process MiB", f"{web_rss:.0f} / {worker_rss:.0f}", ""),
    ]
    harness.report(
        "Provisioning (bench/provisioning.py)",
        rows,
        ("figure", "value", "ratio"),
        notes=[
            f"{options.rounds} rounds, each a burst of {options.launches} no-op tasks, then {options.launches} "
            f"launches by one tenant and {options.launches} by {len(members)} tenants, over {options.threads} "
            "connections, each followed by as many no-op tasks on the schedule its builds arrived on; "
            "simulated driver, boot time 0, 4 hosts; gunicorn "
            f"{harness.WEB_WORKERS} workers, Celery prefork concurrency {harness.WORKER_CONCURRENCY}."
        ],
    )
    harness.cleanup(environment)


if __name__ == "__main__":
    main()
