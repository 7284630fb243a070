"""Monitoring benchmark: one minute of usage for 10,000 machines, ingested set-based and rolled up. Prints figures.

The target is under 2 s per minute on PostgreSQL (rates from the previous readings, one upsert of the samples and
one of the readings, the five-minute and hourly roll-ups). Run against a database of its own (it is migrated here;
earlier bench machines are deleted first):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hangar_monitoring_bench .venv/bin/python \
        bench/monitoring_ingest.py [--machines 10000] [--minutes 3]

Without DATABASE_URL it runs on the default SQLite file and says so.
"""

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from compute.drivers.simulated_guest import synthetic_counters  # noqa: E402
from compute.models import Flavor, Host, Image, Instance, InstanceState  # noqa: E402
from compute.monitoring.models import Resolution, Sample  # noqa: E402
from compute.monitoring.services import metrics_ingest, metrics_purge  # noqa: E402
from tenants.models import Tenant  # noqa: E402

START = datetime(2026, 3, 2, 9, 58, tzinfo=UTC)


def machines(count: int) -> list[str]:
    Instance.objects.filter(name__startswith="bench-vm-").delete()
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
    return {instance_id: synthetic_counters(uuid=instance_id, vcpus=2, at=at) for instance_id in ids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=3)
    options = parser.parse_args()

    database = settings.DATABASES["default"]
    print(f"database: {database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}")
    if settings.DATABASE_IS_SQLITE:
        print("(the 2 s target is for PostgreSQL: set DATABASE_URL=postgres://… for the figure that counts)")
    call_command("migrate", "--noinput", verbosity=0)
    ids = machines(options.machines)
    print(f"{len(ids):,} running machines")

    at = START
    metrics_ingest(readings=readings(ids, at), at=at)  # the baseline: readings only, no rates yet
    times = []
    for _ in range(options.minutes):
        at += timedelta(minutes=1)
        batch = readings(ids, at)  # reading the hypervisors is not part of the ingest
        started = time.perf_counter()
        report = metrics_ingest(readings=batch, at=at)
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        print(f"ingest one minute: {report.samples:,} samples + roll-ups    {elapsed:6.2f} s")
    stored = {
        label: Sample.objects.filter(
            resolution=resolution, instance_id__in=Instance.objects.filter(host__name="bench-host")
        ).count()
        for label, resolution in (
            ("minutes", Resolution.MINUTE),
            ("5-minute", Resolution.FIVE_MINUTES),
            ("hourly", Resolution.HOUR),
        )
    }
    print("stored: " + ", ".join(f"{count:,} {label}" for label, count in stored.items()))
    started = time.perf_counter()
    metrics_purge(now=at + timedelta(days=3))
    print(f"retention purge (every raw minute is past 48 h)             {time.perf_counter() - started:6.2f} s")
    worst = max(times)
    verdict = "within" if worst < 2 else "OVER"
    print(f"slowest minute for {len(ids):,} machines: {worst:.2f} s ({verdict} the 2 s target)")
    Instance.objects.filter(name__startswith="bench-vm-").delete()


if __name__ == "__main__":
    main()
