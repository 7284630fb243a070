"""Monitoring: one minute of usage for 10,000 machines, ingested set-based and rolled up.

The target is under 2 s per minute on PostgreSQL (rates from the previous readings, one upsert of the samples and
one of the readings, the five-minute and hourly roll-ups), on a fresh database of its own like every benchmark
here. Prints its figures and appends them to bench/RESULTS.md.

    python bench/monitoring_ingest.py [--machines 10000] [--minutes 3]
"""

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import harness

START = datetime(2026, 3, 2, 9, 58, tzinfo=UTC)


def machines(count: int) -> list[str]:
    from compute.models import Flavor, Host, Image, Instance, InstanceState
    from tenants.models import Tenant

    tenant, _ = Tenant.objects.get_or_create(name="bench-monitoring")
    flavor, _ = Flavor.objects.get_or_create(
        name="bench.small", defaults={"vcpus": 2, "ram_mib": 2048, "disk_gib": 20, "monthly_price": Decimal("5")}
    )
    image, _ = Image.objects.get_or_create(name="bench image", defaults={"os": "Linux", "version": "1"})
    host, _ = Host.objects.get_or_create(
        name="bench-host", defaults={"vcpus": 100_000, "ram_mib": 10**8, "disk_gib": 10**7}
    )
    instances = [
        Instance(
            tenant=tenant,
            name=f"bench-vm-{index:05d}",
            flavor=flavor,
            image=image,
            host=host,
            state=InstanceState.RUNNING,
        )
        for index in range(count)
    ]
    Instance.objects.bulk_create(instances, batch_size=5000)
    return [str(instance.pk) for instance in instances]


def readings(ids: list[str], at: datetime) -> dict:
    from compute.drivers.simulated_guest import synthetic_counters

    return {instance_id: synthetic_counters(uuid=instance_id, vcpus=2, at=at) for instance_id in ids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=3)
    options = parser.parse_args()

    environment = harness.bench_environment("monitoring")
    harness.setup_django(environment)
    from compute.monitoring.models import Resolution, Sample
    from compute.monitoring.services import metrics_ingest, metrics_purge

    ids = machines(options.machines)
    at = START
    metrics_ingest(readings=readings(ids, at), at=at)  # the baseline: readings only, no rates yet
    times = []
    for _ in range(options.minutes):
        at += timedelta(minutes=1)
        batch = readings(ids, at)  # reading the hypervisors is not part of the ingest
        started = time.perf_counter()
        metrics_ingest(readings=batch, at=at)
        times.append(time.perf_counter() - started)
    stored = {
        label: Sample.objects.filter(resolution=resolution).count()
        for label, resolution in (
            ("minutes", Resolution.MINUTE),
            ("5-minute", Resolution.FIVE_MINUTES),
            ("hourly", Resolution.HOUR),
        )
    }
    started = time.perf_counter()
    metrics_purge(now=at + timedelta(days=3))
    purge = time.perf_counter() - started
    worst = max(times)
    harness.report(
        "Monitoring ingest (bench/monitoring_ingest.py)",
        [
            (
                f"ingest one minute of {len(ids):,} machines (samples and roll-ups), median",
                f"{harness.median(times):.2f} s",
            ),
            ("ingest one minute, slowest", f"{worst:.2f} s ({'within' if worst < 2 else 'OVER'} the 2 s target)"),
            ("stored", ", ".join(f"{count:,} {label}" for label, count in stored.items())),
            ("retention purge (every raw minute past 48 h)", f"{purge:.2f} s"),
        ],
        ("step", "figure"),
        notes=[f"{options.minutes} minutes after a baseline minute; fresh PostgreSQL database."],
    )
    harness.cleanup(environment)


if __name__ == "__main__":
    main()
