"""Usage metrics: sampling from the driver, rates from counters, roll-ups to five minutes and hours, retention."""

from datetime import UTC, datetime, timedelta

import pytest

from compute.drivers.base import DomainCounters
from compute.monitoring.models import CounterReading, Resolution, Sample
from compute.monitoring.services import metrics_ingest, metrics_purge, metrics_sample

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a period start for minutes, five minutes and hours alike


def counters(*, cpu_seconds=0.0, read=0, write=0, rx=0, tx=0, vcpus=2) -> DomainCounters:
    return DomainCounters(
        vcpus=vcpus,
        cpu_time_ns=int(cpu_seconds * 1e9),
        disk_read_bytes=read,
        disk_write_bytes=write,
        net_rx_bytes=rx,
        net_tx_bytes=tx,
    )


def rows(instance, resolution) -> list[tuple]:
    return list(
        Sample.objects.filter(instance=instance, resolution=resolution)
        .order_by("period_start")
        .values_list("period_start", "samples", "cpu_percent", "net_in_bps")
    )


def minute(n: int) -> int:
    return int((T0 + timedelta(minutes=n)).timestamp())


def test_rates_are_the_difference_of_two_readings(running):
    instance_id = str(running.pk)

    first = metrics_ingest(readings={instance_id: counters()}, at=T0)
    second = metrics_ingest(
        readings={instance_id: counters(cpu_seconds=60, read=6000, write=1200, rx=600, tx=60)},
        at=T0 + timedelta(minutes=1),
    )

    assert (first.samples, second.samples) == (0, 1)  # the first reading only sets the baseline
    sample = Sample.objects.get(instance=running, resolution=Resolution.MINUTE)
    assert sample.at == T0 + timedelta(minutes=1)
    # 60 CPU-seconds over 60 s on 2 vCPUs: half the machine.
    assert (sample.cpu_percent, sample.disk_read_bps, sample.disk_write_bps) == (50.0, 100.0, 20.0)
    assert (sample.net_in_bps, sample.net_out_bps) == (10.0, 1.0)


def test_a_restarted_machine_or_a_long_gap_starts_afresh(running):
    instance_id = str(running.pk)
    metrics_ingest(readings={instance_id: counters(cpu_seconds=100)}, at=T0)

    restarted = metrics_ingest(readings={instance_id: counters(cpu_seconds=1)}, at=T0 + timedelta(minutes=1))
    after_a_gap = metrics_ingest(readings={instance_id: counters(cpu_seconds=50)}, at=T0 + timedelta(minutes=30))

    assert (restarted.samples, after_a_gap.samples) == (0, 0)
    assert CounterReading.objects.get(instance=running).cpu_time_ns == 50 * 10**9


def test_minutes_roll_up_into_five_minutes_and_hours(running):
    instance_id = str(running.pk)
    cpu = 0.0
    metrics_ingest(readings={instance_id: counters(cpu_seconds=cpu)}, at=T0 - timedelta(minutes=1))
    # Minutes 0..6 at 10 %, 20 %, … 70 % of 2 vCPUs.
    for n in range(7):
        cpu += 0.1 * (n + 1) * 2 * 60
        metrics_ingest(readings={instance_id: counters(cpu_seconds=cpu)}, at=T0 + timedelta(minutes=n))

    assert [row[2] for row in rows(running, Resolution.MINUTE)] == pytest.approx([10, 20, 30, 40, 50, 60, 70])
    five = rows(running, Resolution.FIVE_MINUTES)
    assert [(start, count) for start, count, _, _ in five] == [(minute(0), 5), (minute(5), 2)]
    assert [row[2] for row in five] == pytest.approx([30, 65])
    # The hour is the average of its minutes, not of its five-minute averages.
    assert rows(running, Resolution.HOUR) == [(minute(0), 7, pytest.approx(40), 0.0)]


def test_ingesting_the_same_minute_again_changes_nothing(running):
    instance_id = str(running.pk)
    metrics_ingest(readings={instance_id: counters()}, at=T0)
    reading = {instance_id: counters(cpu_seconds=30, rx=6000)}
    metrics_ingest(readings=reading, at=T0 + timedelta(minutes=1))
    before = [rows(running, resolution) for resolution in Resolution]

    again = metrics_ingest(readings=reading, at=T0 + timedelta(minutes=1))

    assert again.samples == 0
    assert [rows(running, resolution) for resolution in Resolution] == before
    assert CounterReading.objects.get(instance=running).cpu_time_ns == 30 * 10**9


def _sample(instance, resolution, at) -> Sample:
    return Sample.objects.create(
        instance=instance,
        resolution=resolution,
        period_start=int(at.timestamp()) // resolution * resolution,
        cpu_percent=1,
        disk_read_bps=0,
        disk_write_bps=0,
        net_in_bps=0,
        net_out_bps=0,
    )


def test_retention_keeps_raw_48_hours_five_minutes_30_days_hours_13_months(running):
    now = T0
    kept = [
        _sample(running, Resolution.MINUTE, now - timedelta(hours=47, minutes=59)),
        _sample(running, Resolution.FIVE_MINUTES, now - timedelta(days=29, hours=23)),
        _sample(running, Resolution.HOUR, now - timedelta(days=395)),
    ]
    _sample(running, Resolution.MINUTE, now - timedelta(hours=48, minutes=1))
    _sample(running, Resolution.FIVE_MINUTES, now - timedelta(days=30, minutes=10))
    _sample(running, Resolution.HOUR, now - timedelta(days=397))

    deleted = metrics_purge(now=now)

    assert deleted == 3
    assert set(Sample.objects.values_list("pk", flat=True)) == {sample.pk for sample in kept}


def test_the_sampler_reads_running_machines_from_their_driver(running, launch, committed, monkeypatch):
    from compute.drivers import simulated

    with committed():
        stopped = launch(name="web-2")
    stopped.state = "stopped"
    stopped.save(update_fields=["state"])

    # The simulated hypervisor's clock: its counters are those of the minute the sampler reads them in.
    for minute in (0, 1):
        monkeypatch.setattr(simulated.timezone, "now", lambda minute=minute: T0 + timedelta(minutes=minute))
        report = metrics_sample(now=T0 + timedelta(minutes=minute))

    assert report.readings == 1 and report.samples == 1
    sample = Sample.objects.get(resolution=Resolution.MINUTE)
    assert sample.instance_id == running.pk
    # The simulated machine's synthetic day: busy, but never beyond the machine.
    assert 0 < sample.cpu_percent < 100
    assert sample.disk_read_bps > 0 and sample.net_out_bps > 0
