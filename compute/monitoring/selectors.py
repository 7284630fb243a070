"""Reads of the monitoring app: a machine's usage over a range, alert policies and their history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from compute.models import Instance
from compute.monitoring.models import AlertIncident, AlertPolicy, Resolution, Sample
from compute.monitoring.services.samples import RATE_FIELDS


@dataclass(frozen=True)
class UsageRange:
    key: str
    label: str
    span: timedelta
    resolution: int


USAGE_RANGES = {
    usage_range.key: usage_range
    for usage_range in (
        UsageRange("1h", "1 hour", timedelta(hours=1), Resolution.MINUTE),
        UsageRange("24h", "24 hours", timedelta(hours=24), Resolution.FIVE_MINUTES),
        UsageRange("7d", "7 days", timedelta(days=7), Resolution.HOUR),
        UsageRange("30d", "30 days", timedelta(days=30), Resolution.HOUR),
    )
}


def instance_usage(*, instance: Instance, range_key: str, now: datetime | None = None) -> dict:
    """The machine's usage over the range, one point per period of the range's resolution, oldest first.

    Periods without a sample (the machine was off) are None, so a graph shows a gap rather than a line across it.
    """
    usage_range = USAGE_RANGES[range_key]
    now = now or timezone.now()
    step = usage_range.resolution
    last = int(now.timestamp()) // step * step
    first = last - int(usage_range.span.total_seconds()) + step
    stored = {
        row[0]: row[1:]
        for row in Sample.objects.filter(
            instance=instance, resolution=step, period_start__gte=first, period_start__lte=last
        ).values_list("period_start", *RATE_FIELDS)
    }
    timestamps = list(range(first, last + step, step))
    series = {field: [] for field in RATE_FIELDS}
    for start in timestamps:
        values = stored.get(start)
        for index, field in enumerate(RATE_FIELDS):
            series[field].append(values[index] if values is not None else None)
    return {
        "range": usage_range.key,
        "resolution_seconds": step,
        "start": datetime.fromtimestamp(first, tz=UTC),
        "end": datetime.fromtimestamp(last + step, tz=UTC),
        "timestamps": timestamps,
        **series,
    }


def alert_policy_list(*, tenant) -> QuerySet[AlertPolicy]:
    return (
        AlertPolicy.objects.for_tenant(tenant)
        .select_related("instance")
        .annotate(open_incidents=Count("incidents", filter=Q(incidents__recovered_at__isnull=True)))
        .order_by("name", "id")
    )


def alert_incidents(*, policy: AlertPolicy) -> QuerySet[AlertIncident]:
    return (
        AlertIncident.objects.for_tenant(policy.tenant)
        .filter(policy=policy)
        .select_related("instance")
        .prefetch_related("notifications")
        .order_by("-fired_at", "id")
    )


def alertable_instances(*, tenant) -> QuerySet[Instance]:
    """The machines a policy may watch: the organisation's, not deleted."""
    return Instance.objects.for_tenant(tenant).live().order_by("name", "id")


def recent_incidents(*, tenant, since: timedelta = timedelta(days=7)) -> QuerySet[AlertIncident]:
    return (
        AlertIncident.objects.for_tenant(tenant)
        .filter(Q(recovered_at__isnull=True) | Q(fired_at__gte=timezone.now() - since))
        .select_related("policy", "instance")
        .order_by("-fired_at", "id")
    )
