"""Traffic metering: turns interface counter readings into bytes per machine per hour.

Counters restart from zero whenever a guest's NIC does (the machine is started again, the hypervisor restarts),
so each reading is compared with the last one: a higher reading adds the difference, a lower one is a reset and
adds the whole reading. A start resets the baseline to zero explicitly (a reading that has already passed the old
value would otherwise hide the bytes sent before it). Two samplers racing on one machine are harmless: the baseline
moves by a conditional UPDATE, and only the sampler that moved it records the bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from compute.drivers import driver_for
from compute.drivers.base import DriverError, InterfaceCounters
from compute.models import Instance, InstanceState
from compute.network.models import TrafficCounter, TrafficUsage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrafficDelta:
    rx_bytes: int
    tx_bytes: int


def _delta(reading: int, last: int) -> int:
    reading = max(int(reading), 0)
    return reading - last if reading >= last else reading


def _usage_add(*, tenant_id, instance_id, hour: datetime, rx: int, tx: int) -> None:
    usage = TrafficUsage.objects.filter(instance_id=instance_id, hour=hour)
    if usage.update(rx_bytes=F("rx_bytes") + rx, tx_bytes=F("tx_bytes") + tx):
        return
    try:
        with transaction.atomic():
            TrafficUsage.objects.create(
                tenant_id=tenant_id, instance_id=instance_id, hour=hour, rx_bytes=rx, tx_bytes=tx
            )
    except IntegrityError:
        usage.update(rx_bytes=F("rx_bytes") + rx, tx_bytes=F("tx_bytes") + tx)  # another sampler made the row


def traffic_record(
    *, instance: Instance, counters: InterfaceCounters, at: datetime | None = None
) -> TrafficDelta | None:
    """Records one reading of the machine's counters; None when a concurrent sampler recorded it already."""
    at = at or timezone.now()
    with transaction.atomic():
        counter, _ = TrafficCounter.objects.get_or_create(instance_id=instance.pk)
        rx = _delta(counters.rx_bytes, counter.rx_last)
        tx = _delta(counters.tx_bytes, counter.tx_last)
        moved = TrafficCounter.objects.filter(
            pk=instance.pk, rx_last=counter.rx_last, tx_last=counter.tx_last, sampled_at=counter.sampled_at
        ).update(
            rx_last=max(int(counters.rx_bytes), 0),
            tx_last=max(int(counters.tx_bytes), 0),
            rx_total=F("rx_total") + rx,
            tx_total=F("tx_total") + tx,
            sampled_at=at,
        )
        if not moved:
            return None
        if rx or tx:
            hour = at.replace(minute=0, second=0, microsecond=0)
            _usage_add(tenant_id=instance.tenant_id, instance_id=instance.pk, hour=hour, rx=rx, tx=tx)
    return TrafficDelta(rx_bytes=rx, tx_bytes=tx)


def traffic_baseline_reset(*, instance_id) -> None:
    """The machine's NIC has just started: its counters begin at zero again."""
    TrafficCounter.objects.filter(pk=instance_id).update(rx_last=0, tx_last=0)


def traffic_sample(*, instance: Instance) -> TrafficDelta | None:
    """Reads the machine's counters from its host and records them; DriverError propagates."""
    counters = driver_for(instance.host).interface_counters(str(instance.pk))
    return traffic_record(instance=instance, counters=counters)


def traffic_sample_quietly(*, instance: Instance) -> None:
    """A last reading before the NIC goes away (stop, delete): a failure only loses what the next sample would."""
    try:
        traffic_sample(instance=instance)
    except DriverError as error:
        logger.info("No last traffic reading of %s before it stops: %s", instance.pk, error)


def traffic_sample_running() -> int:
    """Samples every running machine (beat, every minute); returns how many readings were recorded."""
    recorded = 0
    instances = Instance.objects.filter(state=InstanceState.RUNNING, host__isnull=False).select_related("host")
    for instance in instances.order_by("host_id", "pk"):
        try:
            if traffic_sample(instance=instance) is not None:
                recorded += 1
        except DriverError as error:
            logger.warning("Could not read the traffic counters of %s: %s", instance.pk, error)
    return recorded
