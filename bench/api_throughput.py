"""API throughput, list and detail, against a constant-JSON view served by the same gunicorn.

A bounded load generator: N threads, each with one keep-alive connection, send a fixed number of requests per case
(or stop at the duration cap), in interleaved rounds. Reports requests/s (median of the rounds), latency p50/p95
and the ratio to the constant view.

    python bench/api_throughput.py [--rounds 3] [--requests 1200] [--threads 4] [--cap 20]
"""

import argparse
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import harness


def load(port: int, headers: dict, paths: list[str], *, requests: int, threads: int, cap: float):
    """Sends `requests` GETs over `threads` connections (stopping at `cap` seconds); returns (rate, latencies)."""
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    remaining = [requests]
    deadline = time.monotonic() + cap

    def run() -> None:
        client = harness.Client(port, headers)
        mine, codes = [], []
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            status, _, elapsed = client.request("GET", random.choice(paths))
            mine.append(elapsed)
            codes.append(status)
        client.close()
        with lock:
            latencies.extend(mine)
            statuses.extend(codes)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    harness.fail_if_errors(str(paths[0]), statuses)
    return len(latencies) / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1200, help="requests per case per round")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cap", type=float, default=20.0, help="seconds at most per case per round")
    options = parser.parse_args()

    environment = harness.bench_environment("throughput")
    harness.setup_django(environment)
    from bench.support import fixtures
    from compute.models import Instance

    flavors, images, hosts = fixtures.catalog()
    everyone = fixtures.tenants(100)
    member = fixtures.member(everyone[0], email="owner@bench.example")
    fixtures.instances(tenant_ids=[everyone[0].pk], live=1000, deleted=100, flavors=flavors, images=images, hosts=hosts)
    fixtures.instances(
        tenant_ids=[t.pk for t in everyone[1:]], live=20, deleted=2, flavors=flavors, images=images, hosts=hosts
    )
    ids = list(Instance.objects.filter(tenant=everyone[0]).live().values_list("pk", flat=True)[:200])
    cases = {
        "constant JSON": ["/bench/constant/"],
        "api list (default page)": ["/api/v1/instances/"],
        "api detail": [f"/api/v1/instances/{pk}/" for pk in ids],
    }
    rates = {name: [] for name in cases}
    latencies = {name: [] for name in cases}
    with harness.Stack(environment) as stack:
        web = stack.web()
        for paths in cases.values():  # warm-up
            load(stack.port, member.api_headers(), paths, requests=40, threads=options.threads, cap=options.cap)
        for _ in range(options.rounds):
            order = list(cases)
            random.shuffle(order)
            for name in order:
                rate, samples = load(
                    stack.port,
                    member.api_headers(),
                    cases[name],
                    requests=options.requests,
                    threads=options.threads,
                    cap=options.cap,
                )
                rates[name].append(rate)
                latencies[name] += samples
        web_rss = web.peak_rss_mib()

    baseline = harness.median(rates["constant JSON"])
    rows = [
        (
            name,
            f"{harness.median(rates[name]):.0f}",
            harness.ms(harness.median(latencies[name])),
            harness.ms(harness.percentile(latencies[name], 0.95)),
            f"{harness.median(rates[name]) / baseline:.2f}",
        )
        for name in cases
    ]
    harness.report(
        "API throughput (bench/api_throughput.py)",
        rows,
        ("endpoint", "requests/s", "p50 ms", "p95 ms", "÷ constant JSON"),
        notes=[
            f"{options.rounds} interleaved rounds x {options.requests} requests per case over {options.threads} "
            f"keep-alive connections (cap {options.cap:.0f} s each), tenant with 1,000 machines; gunicorn "
            f"{harness.WEB_WORKERS} workers; load generator on the same 2 cores. "
            f"Peak RSS of a web process: {web_rss:.0f} MiB."
        ],
    )
    harness.cleanup(environment)


if __name__ == "__main__":
    main()
