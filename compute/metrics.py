"""Compute's series for monitoring: provisioning time and reconciler findings (observed where they happen) and, read
at scrape time, machines by state, host capacity and unknown domains (portal.metrics serves them)."""

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

PROVISIONING_SECONDS = Histogram(
    "hangar_instance_provisioning_seconds",
    "Time from a launch request to the machine running.",
    buckets=(5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900),
)
RECONCILER_FINDINGS = Counter(
    "hangar_reconciler_findings",
    "What reconciler passes found: overdue, requeued, vanished, power_synced, orphans, unreachable_hosts.",
    ["kind"],
)
FINDING_KINDS = ("overdue", "requeued", "vanished", "power_synced", "orphans", "unreachable_hosts")


def count_findings(report) -> None:
    for kind in FINDING_KINDS:
        found = len(getattr(report, kind))
        if found:
            RECONCILER_FINDINGS.labels(kind).inc(found)


class ComputeCollector:
    """Machines by state, each host's capacity used and allocatable, and open unknown-domain findings."""

    def collect(self):
        from compute.selectors import hosts_by_region, instance_state_counts, open_orphan_count

        machines = GaugeMetricFamily("hangar_instances", "Live machines by state.", labels=["state"])
        for state, count in instance_state_counts().items():
            machines.add_metric([state], count)
        yield machines
        labels = ["host", "region", "resource"]
        used = GaugeMetricFamily("hangar_host_capacity_used", "What a host's machines hold.", labels=labels)
        allocatable = GaugeMetricFamily(
            "hangar_host_capacity_allocatable", "What a host may hold after overcommit.", labels=labels
        )
        ratio = GaugeMetricFamily("hangar_host_capacity_used_ratio", "Used / allocatable (0 to 1).", labels=labels)
        schedulable = GaugeMetricFamily(
            "hangar_host_schedulable",
            "1 if the host takes new machines (enabled, not draining).",
            labels=["host", "region"],
        )
        for region, usages in hosts_by_region():
            for usage in usages:
                host = usage.host
                schedulable.add_metric([host.name, region.name], int(host.schedulable))
                for resource, held, limit in (
                    ("vcpus", usage.vcpus_used, host.vcpus_allocatable),
                    ("ram_mib", usage.ram_mib_used, host.ram_mib_allocatable),
                    ("disk_gib", usage.disk_gib_used, host.disk_gib_allocatable),
                ):
                    used.add_metric([host.name, region.name, resource], held)
                    allocatable.add_metric([host.name, region.name, resource], limit)
                    ratio.add_metric([host.name, region.name, resource], held / limit if limit else 1)
        yield from (used, allocatable, ratio, schedulable)
        orphans = GaugeMetricFamily("hangar_orphan_domains_open", "Domains on hosts that no machine owns.")
        orphans.add_metric([], open_orphan_count())
        yield orphans
