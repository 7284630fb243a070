"""Traffic metering: counter readings become bytes per machine per hour, across counter resets."""

from datetime import UTC, datetime

import pytest

from compute.drivers.base import InterfaceCounters
from compute.network.models import TrafficCounter, TrafficUsage
from compute.network.services import traffic_record, traffic_sample_running
from compute.services import instance_delete, instance_start, instance_stop

pytestmark = pytest.mark.django_db


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _hours(instance) -> list[tuple[int, int, int]]:
    return [(u.hour.hour, u.rx_bytes, u.tx_bytes) for u in TrafficUsage.objects.filter(instance=instance)]


def test_readings_become_deltas_per_hour(running):
    traffic_record(instance=running, counters=InterfaceCounters(rx_bytes=100, tx_bytes=10), at=at(2026, 3, 1, 10, 5))
    traffic_record(instance=running, counters=InterfaceCounters(rx_bytes=250, tx_bytes=40), at=at(2026, 3, 1, 10, 50))
    traffic_record(instance=running, counters=InterfaceCounters(rx_bytes=300, tx_bytes=100), at=at(2026, 3, 1, 11, 1))
    assert _hours(running) == [(10, 250, 40), (11, 50, 60)]
    counter = TrafficCounter.objects.get(instance=running)
    assert (counter.rx_total, counter.tx_total) == (300, 100)


def test_a_reading_lower_than_the_last_is_a_reset_and_counts_whole(running):
    traffic_record(instance=running, counters=InterfaceCounters(rx_bytes=5000, tx_bytes=9000), at=at(2026, 3, 1, 10))
    traffic_record(instance=running, counters=InterfaceCounters(rx_bytes=300, tx_bytes=700), at=at(2026, 3, 1, 10, 30))
    assert _hours(running) == [(10, 5300, 9700)]


def test_the_same_reading_recorded_twice_counts_once(running):
    counters = InterfaceCounters(rx_bytes=100, tx_bytes=100)
    traffic_record(instance=running, counters=counters, at=at(2026, 3, 1, 10))
    repeat = traffic_record(instance=running, counters=counters, at=at(2026, 3, 1, 10, 1))
    assert (repeat.rx_bytes, repeat.tx_bytes) == (0, 0)
    assert _hours(running) == [(10, 100, 100)]


def test_sent_bytes_survive_a_stop_and_start_that_resets_the_nic(running, member, committed, simulated):
    simulated.send(str(running.pk), tx_bytes=2 * 1024 * 1024)
    assert traffic_sample_running() == 1
    with committed():
        instance_stop(instance=running, user=member)
    with committed():
        instance_start(instance=running, user=member)
    simulated.send(str(running.pk), tx_bytes=1000)
    traffic_sample_running()
    counter = TrafficCounter.objects.get(instance=running)
    assert counter.tx_total == 2 * 1024 * 1024 + 1000
    assert sum(u.tx_bytes for u in TrafficUsage.objects.filter(instance=running)) == counter.tx_total


def test_bytes_sent_just_before_a_stop_or_delete_are_not_lost(running, member, committed, simulated):
    simulated.send(str(running.pk), tx_bytes=4096)
    with committed():
        instance_delete(instance=running, user=member)
    assert TrafficCounter.objects.get(instance=running).tx_total == 4096


def test_the_simulated_host_sends_plausible_traffic_by_itself(running, host, simulated):
    from compute.models import SimulatedDomain

    host.traffic_bytes_per_second = 1000
    host.save(update_fields=["traffic_bytes_per_second"])
    domain = SimulatedDomain.objects.get(uuid=running.pk)
    domain.counters_at = domain.counters_at.replace(year=domain.counters_at.year - 1)
    domain.save(update_fields=["counters_at"])
    counters = simulated.interface_counters(str(running.pk))
    assert counters.tx_bytes > 365 * 86400 * 1000 * 0.99
    assert counters.rx_bytes == 2 * counters.tx_bytes
