"""Sampling machines' usage, rolling it up and expiring it: every write of samples and counter readings.

Once a minute `metrics_sample` reads every running machine's counters from its host (one driver call per host),
and `metrics_ingest` turns them into rates against the previous reading, stores them (one set-based insert), and
rolls the minute into its five-minute and hourly periods with two INSERT … SELECT … GROUP BY statements. Running it
twice for the same minute changes nothing: every write is an upsert on (machine, resolution, period).
"""

from __future__ import annotations

import logging
import uuid
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


def _rates(previous: tuple, counters: DomainCounters, seconds: float) -> tuple[float, ...] | None:
    """Average rates between two readings (RATE_FIELDS' order); None if a counter went back (the domain restarted)."""
    deltas = [getattr(counters, field) - before for field, before in zip(COUNTER_FIELDS, previous, strict=True)]
    if any(delta < 0 for delta in deltas):
        return None
    cpu_ns, disk_read, disk_write, net_rx, net_tx = deltas
    cpu_percent = cpu_ns / (seconds * 1e9 * max(counters.vcpus, 1)) * 100
    return (
        round(min(max(cpu_percent, 0.0), 100.0), 3),
        round(disk_read / seconds, 3),
        round(disk_write / seconds, 3),
        round(net_rx / seconds, 3),
        round(net_tx / seconds, 3),
    )


SAMPLE_COLUMNS = {
    "instance_id": "uuid",
    "resolution": "integer",
    "period_start": "bigint",
    "samples": "integer",
    **{field: "double precision" for field in RATE_FIELDS},
}
READING_COLUMNS = {
    "instance_id": "uuid",
    "read_at": "timestamptz",
    **{field: "bigint" for field in COUNTER_FIELDS},
}


def _upsert(model, columns: dict[str, str], conflict: tuple[str, ...], rows: list[tuple]) -> None:
    """One set-based upsert of `rows`: on PostgreSQL a single INSERT … SELECT FROM unnest(one array per column);
    on SQLite the same statement per row through executemany (SQLite has no round trips to save)."""
    names = ", ".join(columns)
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in conflict)
    tail = f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{kind}[]" for kind in columns.values())
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {tail}",
                [list(column) for column in zip(*rows, strict=True)],
            )
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders}) {tail}", rows)


@transaction.atomic
def metrics_ingest(*, readings: dict[str, DomainCounters], at: datetime) -> IngestReport:
    """Stores one minute of rates from `readings` (instance id → counters read at `at`) and rolls it up.

    Rows go to the database as plain tuples in two set-based upserts: building 20,000 model objects for 10,000
    machines cost more than the database work itself.
    """
    minute = minute_start(at)
    previous = {
        str(row[0]): row[1:]
        for row in CounterReading.objects.filter(read_at__lt=at, read_at__gte=at - MAX_READING_GAP).values_list(
            "instance_id", "read_at", *COUNTER_FIELDS
        )
    }
    vendor_at = connection.ops.adapt_datetimefield_value(at)
    # The database's form of an instance id: a uuid on PostgreSQL, 32 hex digits on SQLite.
    vendor_id = Instance._meta.pk.get_db_prep_value
    samples, cursors = [], []
    for instance_id, counters in readings.items():
        key = vendor_id(uuid.UUID(instance_id), connection)
        cursors.append((key, vendor_at, *(getattr(counters, field) for field in COUNTER_FIELDS)))
        last = previous.get(instance_id)
        if last is None:
            continue
        rates = _rates(last[1:], counters, (at - last[0]).total_seconds())
        if rates is not None:
            samples.append((key, Resolution.MINUTE.value, minute, 1, *rates))
    if samples:
        _upsert(Sample, SAMPLE_COLUMNS, ("instance_id", "resolution", "period_start"), samples)
    if cursors:
        _upsert(CounterReading, READING_COLUMNS, ("instance_id",), cursors)
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
