"""Instance-list latency by tenant size: the dashboard and the API, default page and 200 per page.

Tenants with 100, 1,000 and 10,000 machines (plus a tenth as many deleted ones) among 1,000 tenants that have 20
each, on PostgreSQL, served by gunicorn. Interleaved rounds, one request at a time; medians and p95 per case, the
ratio to the same request for the 100-machine tenant, and for the API the ratio to a plain DRF ModelViewSet over
the same rows. Queries per request are counted in-process with Django's test client against the same database.

    python bench/list_latency.py [--rounds 7] [--requests 15]
"""

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import harness

SIZES = (100, 1_000, 10_000)
OTHER_TENANTS = 997
OTHER_MACHINES = 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=15, help="requests per case per round")
    options = parser.parse_args()

    environment = harness.bench_environment("list", ALLOWED_HOSTS="127.0.0.1,localhost,testserver")
    harness.setup_django(environment)
    from bench.support import fixtures

    flavors, images, hosts = fixtures.catalog()
    everyone = fixtures.tenants(len(SIZES) + OTHER_TENANTS)
    members = {}
    for size, tenant in zip(SIZES, everyone, strict=False):
        members[size] = fixtures.member(tenant, email=f"owner-{size}@bench.example")
        fixtures.instances(
            tenant_ids=[tenant.pk], live=size, deleted=size // 10, flavors=flavors, images=images, hosts=hosts
        )
    fixtures.instances(
        tenant_ids=[t.pk for t in everyone[len(SIZES) :]],
        live=OTHER_MACHINES,
        deleted=2,
        flavors=flavors,
        images=images,
        hosts=hosts,
    )

    cases = {}  # name -> (size, kind, path, headers)
    for size, member in members.items():
        for per_page, suffix in ((None, "default page"), (200, "200 per page")):
            query = f"?per_page={per_page}" if per_page else ""
            cases[f"dashboard {size} {suffix}"] = (size, "dashboard", f"/instances/{query}", member.browser_headers())
            cases[f"api {size} {suffix}"] = (size, "api", f"/api/v1/instances/{query}", member.api_headers())
            if size == SIZES[-1]:
                cases[f"plain DRF {size} {suffix}"] = (
                    size,
                    "plain",
                    f"/bench/plain/instances/{query}",
                    member.api_headers(),
                )

    queries = count_queries(cases)
    timings = {name: [] for name in cases}
    cpu = dict.fromkeys(cases, 0.0)  # the web processes' CPU seconds while each case's requests ran
    with harness.Stack(environment) as stack:
        web = stack.web()
        clients = {name: harness.Client(stack.port, headers) for name, (_, _, _, headers) in cases.items()}
        for name, client in clients.items():  # warm-up: templates, connections, caches
            for _ in range(3):
                status, _, _ = client.request("GET", cases[name][2])
                harness.fail_if_errors(name, [status])
        for _ in range(options.rounds):
            order = list(cases)
            random.shuffle(order)
            for name in order:
                cpu_before = web.cpu_seconds()
                for _ in range(options.requests):
                    status, _, elapsed = clients[name].request("GET", cases[name][2])
                    harness.fail_if_errors(name, [status])
                    timings[name].append(elapsed)
                cpu[name] += web.cpu_seconds() - cpu_before
        web_rss = web.peak_rss_mib()

    rows = []
    for name, (size, kind, _, _) in cases.items():
        p50, p95 = harness.median(timings[name]), harness.percentile(timings[name], 0.95)
        smallest = harness.median(timings[name.replace(str(size), str(SIZES[0]), 1)]) if kind != "plain" else None
        middle = harness.median(timings[name.replace(str(size), str(SIZES[1]), 1)]) if kind != "plain" else None
        plain_name = f"plain DRF {SIZES[-1]} " + name.split(" ", 2)[2]
        plain = harness.median(timings[plain_name]) if kind == "api" and size == SIZES[-1] else None
        rows.append(
            (
                name,
                harness.ms(p50),
                harness.ms(p95),
                f"{p95 / p50:.2f}",
                f"{p50 / smallest:.2f}" if smallest else "—",
                f"{p50 / middle:.2f}" if middle else "—",
                f"{p50 / plain:.2f}" if plain else "—",
                harness.ms(cpu[name] / len(timings[name])),
                queries[name],
            )
        )
    harness.report(
        "List latency (bench/list_latency.py)",
        rows,
        (
            "request",
            "p50 ms",
            "p95 ms",
            "p95/p50",
            "÷ same at 100",
            "÷ same at 1,000",
            "÷ plain DRF",
            "web CPU ms",
            "queries",
        ),
        notes=[
            f"{options.rounds} interleaved rounds x {options.requests} requests per case, one at a time; gunicorn "
            f"{harness.WEB_WORKERS} workers. Peak RSS of a web process: {web_rss:.0f} MiB. The 100-machine tenant's "
            "200-per-page page holds 100 rows, hence the ratio to the 1,000-machine tenant's (a full page too). "
            "Web CPU ms: the gunicorn processes' CPU time per request (10 ms clock ticks summed over every request of "
            "the case), which other load on the machine moves far less than latency."
        ],
    )
    harness.cleanup(environment)


def count_queries(cases: dict) -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for name, (_, _, path, headers) in cases.items():
        client = Client()
        cookie = headers.get("Cookie")
        if cookie:
            key, value = cookie.split("=", 1)
            client.cookies[key] = value
        extra = {f"HTTP_{key.upper()}": value for key, value in headers.items() if key != "Cookie"}
        client.get(path, **extra)  # the first request may write the session
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path, **extra)
        if response.status_code != 200:
            raise RuntimeError(f"{name}: {response.status_code}")
        counts[name] = len(captured.captured_queries)
    return counts


if __name__ == "__main__":
    main()
