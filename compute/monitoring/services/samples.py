"""Sampling machines' usage, rolling it up and expiring it: every write of samples and counter readings.

Once a minute `metrics_sample` reads every running machine's counters from its host (one driver call per host),
and `metrics_ingest` turns them into rates against the previous reading, stores them (one set-based insert), and
rolls the minute into its five-minute and hourly periods with two INSERT … SELECT … GROUP BY statements. Running it
twice for the same minute changes nothing: every write is an upsert on (machine, resolution, period).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from compute.drivers import driver_for
from compute.drivers.base import DomainCounters, DriverError
from compute.models import Host, Instance, InstanceState
from compute.monitoring.models import CounterReading, Resolution, Sample

logger = logging.getLogger(__name__)

RETENTION = {
    Resolution.MINUTE: timedelta(hours=48),
    Resolution.FIVE_MINUTES: timedelta(days=30),
    Resolution.HOUR: timedelta(days=396),  # 13 months
}
# A reading older than this (the machine was off, sampling stopped) starts afresh instead of averaging a long gap.
MAX_READING_GAP = timedelta(minutes=10)
RATE_FIELDS = ("cpu_percent", "disk_read_bps", "disk_write_bps", "net_in_bps", "net_out_bps")
COUNTER_FIELDS = ("cpu_time_ns", "disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes")


@dataclass(frozen=True)
class IngestReport:
    readings: int
    samples: int


def minute_start(at: datetime) -> int:
    return int(at.timestamp()) // 60 * 60


def metrics_sample(*, now: datetime | None = None) -> IngestReport:
    """Reads every running machine's counters (one call per host) and ingests them; an unreachable host is skipped."""
    now = now or timezone.now()
    by_host: dict = defaultdict(list)
    for instance_id, host_id in Instance.objects.filter(state=InstanceState.RUNNING, host__isnull=False).values_list(
        "pk", "host_id"
    ):
        by_host[host_id].append(str(instance_id))
    readings: dict[str, DomainCounters] = {}
    for host in Host.objects.filter(pk__in=by_host):
        try:
            readings.update(driver_for(host).domain_stats(by_host[host.pk]))
        except (DriverError, NotImplementedError) as error:
            logger.warning("could not read usage counters from host %s: %s", host.name, error)
    return metrics_ingest(readings=readings, at=now)


def _rates(previous: CounterReading, counters: DomainCounters, seconds: float) -> dict[str, float] | None:
    deltas = [getattr(counters, field) - getattr(previous, field) for field in COUNTER_FIELDS]
    if any(delta < 0 for delta in deltas):
        return None  # the domain restarted: its counters began again
    cpu_ns, disk_read, disk_write, net_rx, net_tx = deltas
    cpu_percent = cpu_ns / (seconds * 1e9 * max(counters.vcpus, 1)) * 100
    return {
        "cpu_percent": round(min(max(cpu_percent, 0.0), 100.0), 3),
        "disk_read_bps": round(disk_read / seconds, 3),
        "disk_write_bps": round(disk_write / seconds, 3),
        "net_in_bps": round(net_rx / seconds, 3),
        "net_out_bps": round(net_tx / seconds, 3),
    }


@transaction.atomic
def metrics_ingest(*, readings: dict[str, DomainCounters], at: datetime) -> IngestReport:
    """Stores one minute of rates from `readings` (instance id → counters read at `at`) and rolls it up."""
    minute = minute_start(at)
    previous = {str(reading.instance_id): reading for reading in CounterReading.objects.filter(read_at__lt=at)}
    samples, cursors = [], []
    for instance_id, counters in readings.items():
        cursors.append(
            CounterReading(
                instance_id=instance_id, read_at=at, **{field: getattr(counters, field) for field in COUNTER_FIELDS}
            )
        )
        last = previous.get(instance_id)
        if last is None or at - last.read_at > MAX_READING_GAP:
            continue
        rates = _rates(last, counters, (at - last.read_at).total_seconds())
        if rates is not None:
            samples.append(
                Sample(instance_id=instance_id, resolution=Resolution.MINUTE, period_start=minute, samples=1, **rates)
            )
    Sample.objects.bulk_create(
        samples,
        batch_size=5000,
        update_conflicts=True,
        unique_fields=["instance", "resolution", "period_start"],
        update_fields=list(RATE_FIELDS),
    )
    CounterReading.objects.bulk_create(
        cursors,
        batch_size=5000,
        update_conflicts=True,
        unique_fields=["instance"],
        update_fields=["read_at", *COUNTER_FIELDS],
    )
    if samples:
        metrics_roll_up(minute=minute)
    return IngestReport(readings=len(readings), samples=len(samples))


def _roll_up_sql(table: str, *, source: int, target: int) -> str:
    averages = ", ".join(f"SUM({field} * samples) / SUM(samples)" for field in RATE_FIELDS)
    updates = ", ".join(f"{field} = excluded.{field}" for field in ("samples", *RATE_FIELDS))
    return (
        f"INSERT INTO {table} (instance_id, resolution, period_start, samples, {', '.join(RATE_FIELDS)}) "
        f"SELECT instance_id, {target}, (period_start / {target}) * {target}, SUM(samples), {averages} "
        f"FROM {table} WHERE resolution = {source} AND period_start >= %s AND period_start < %s "
        f"GROUP BY instance_id, (period_start / {target}) * {target} "
        f"ON CONFLICT (instance_id, resolution, period_start) DO UPDATE SET {updates}"
    )


def metrics_roll_up(*, minute: int) -> None:
    """Recomputes the five-minute period and the hour holding `minute` (Unix seconds), for every machine at once.

    Five minutes average the minutes; the hour averages its five-minute periods weighted by the minutes each holds,
    so it equals the average of its minutes.
    """
    table = Sample._meta.db_table
    five = minute // Resolution.FIVE_MINUTES * Resolution.FIVE_MINUTES
    hour = minute // Resolution.HOUR * Resolution.HOUR
    with connection.cursor() as cursor:
        cursor.execute(
            _roll_up_sql(table, source=Resolution.MINUTE, target=Resolution.FIVE_MINUTES),
            [five, five + Resolution.FIVE_MINUTES],
        )
        cursor.execute(
            _roll_up_sql(table, source=Resolution.FIVE_MINUTES, target=Resolution.HOUR),
            [hour, hour + Resolution.HOUR],
        )


def metrics_purge(*, now: datetime | None = None) -> int:
    """Deletes samples past their resolution's retention (raw 48 h, five-minute 30 days, hourly 13 months), and
    counter readings of machines no longer sampled. Returns how many samples went."""
    now = now or timezone.now()
    deleted = 0
    for resolution, keep in RETENTION.items():
        cutoff = int((now - keep).timestamp())
        deleted += Sample.objects.filter(resolution=resolution, period_start__lt=cutoff).delete()[0]
    CounterReading.objects.filter(read_at__lt=now - timedelta(days=1)).delete()
    return deleted
