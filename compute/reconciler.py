"""The reconciler closes the loop so that nothing stays stuck (beat runs it every minute; operators from the admin).

1. Work past its deadline fails, with a reason in the instance's event log.
2. Work whose message is lost (broker down when the transaction committed, worker killed) is sent again; work
   whose message is merely waiting behind a backlog is left alone (see `requeue_lost`). Re-sending is safe
   because every task is idempotent.
3. Each enabled host's domains are compared with the database: the machine of a running or stopped instance
   that has vanished puts it in `error`; a domain no live instance owns is logged and recorded as an
   OrphanDomain for operators; a machine powered off or on behind Hangar's back is followed.
4. The same for volumes and snapshots (compute.storage.reconciler): overdue work fails, lost work is sent again,
   and one whose file vanished from its host's pool goes to `error`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from compute import services
from compute.drivers import driver_for
from compute.drivers.base import DomainNotFound, DriverError, PowerState
from compute.metrics import count_findings
from compute.models import Host, Instance, InstanceState
from compute.storage.backup_reconciler import reconcile_backups
from compute.storage.reconciler import reconcile_storage
from portal.queue import queue_depth, queue_of, wait_for_claims

logger = logging.getLogger(__name__)

STABLE_STATES = (InstanceState.RUNNING, InstanceState.STOPPED)
# Work is recorded as enqueued inside its request's transaction and sent when that commits, so two pieces of work
# may reach the queue in the other order than their enqueue times say, by about a transaction's length.
SEND_ORDER_SLACK = timedelta(seconds=10)


@dataclass
class ReconcileReport:
    """What one pass did, by instance or domain id (the admin shows it; tests assert on it)."""

    overdue: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    power_synced: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    unreachable_hosts: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{len(self.overdue)} overdue failed",
            f"{len(self.requeued)} re-enqueued",
            f"{len(self.queued)} still queued",
            f"{len(self.vanished)} vanished",
            f"{len(self.power_synced)} power state synced",
            f"{len(self.orphans)} unknown domains",
        ]
        if self.unreachable_hosts:
            parts.append(f"unreachable hosts: {', '.join(self.unreachable_hosts)}")
        return "; ".join(parts) + "."


def fail_overdue(*, now, report: ReconcileReport) -> None:
    overdue = (
        Instance.objects.transitional().exclude(task="").filter(task_deadline__lt=now).values_list("pk", flat=True)
    )
    for pk in overdue:
        if services.instance_task_overdue(instance_id=str(pk), now=now) is not None:
            report.overdue.append(str(pk))


def requeue_lost(*, now, grace: timedelta, report: ReconcileReport) -> None:
    """Sends work whose message is lost to the workers again; leaves work whose message is still waiting.

    Work a worker has claimed (it stamps `task_progress_at` when it takes the message, then every few seconds)
    and that has shown no progress for `grace` was lost with its worker. Work no worker has claimed for `grace`
    is either lost or queued behind a backlog; it is lost when
    - its queue holds no message at all (nothing waits, so neither does its message) and it is still unclaimed
      TASK_CLAIM_WAIT_SECONDS later (a worker may have taken the message and not started it yet), or
    - a worker has already claimed work sent to the same queue after it: queues hand out messages first in,
      first out, so its message was passed over (taken by a worker that died before claiming it, or never sent).
    Otherwise it is queued and left alone: re-sending would only put a second copy at the back of the queue (its
    deadline still bounds the wait). When the broker cannot be asked, only the second rule applies.
    """
    stale = list(
        Instance.objects.transitional()
        .exclude(task="")
        .annotate(last_sign=Coalesce("task_progress_at", "task_enqueued_at"))
        .filter(Q(last_sign__lt=now - grace) | Q(last_sign__isnull=True))
        .filter(Q(task_deadline__isnull=True) | Q(task_deadline__gte=now))
        .values_list("pk", "task", "task_enqueued_at", "task_progress_at")
    )
    if not stale:
        return
    seconds = int(grace.total_seconds())
    claimed_up_to = _latest_claimed_by_queue()
    waiting: dict[str, int | None] = {}  # queue → messages waiting, asked once per pass
    lost: list[tuple] = []  # (pk, enqueued_at, progress_at, reason)
    unclaimed_in_empty_queues: list[tuple] = []
    for pk, task, enqueued_at, progress_at in stale:
        queue = _queue_of_task(task)
        if progress_at is not None:
            reason = f"No sign of progress from its worker for {seconds} s (worker stopped)"
        elif enqueued_at is None:
            reason = "It was never sent to the workers"
        elif claimed_up_to.get(queue) and claimed_up_to[queue] > enqueued_at + SEND_ORDER_SLACK:
            reason = f"No worker took it up in {seconds} s while work sent after it has started (lost message)"
        else:
            if queue not in waiting:
                waiting[queue] = queue_depth(queue)
            if waiting[queue] != 0:
                report.queued.append(str(pk))  # waiting behind other messages (or the broker cannot tell us)
                continue
            reason = f"No worker took it up in {seconds} s and nothing waits in its queue (lost message)"
            unclaimed_in_empty_queues.append((pk, enqueued_at, progress_at, reason))
            continue
        lost.append((pk, enqueued_at, progress_at, reason))
    if unclaimed_in_empty_queues:
        wait_for_claims()  # a worker may hold the message, not yet started: the requeue sees a claim made meanwhile
    for pk, enqueued_at, progress_at, reason in [*lost, *unclaimed_in_empty_queues]:
        if services.instance_task_requeue(
            instance_id=str(pk),
            seen_enqueued_at=enqueued_at,
            seen_progress_at=progress_at,
            reason=reason + "; sent to the workers again.",
        ):
            report.requeued.append(str(pk))


def _queue_of_task(task: str) -> str:
    from compute.tasks import TASKS  # the tasks module imports this one

    return queue_of(TASKS[task].name)


def _latest_claimed_by_queue() -> dict:
    """For each queue, the latest enqueue time of work in progress that a worker has claimed."""
    latest: dict = {}
    claimed = (
        Instance.objects.transitional()
        .exclude(task="")
        .filter(task_progress_at__isnull=False, task_enqueued_at__isnull=False)
        .values_list("task", "task_enqueued_at")
    )
    for task, enqueued_at in claimed:
        queue = _queue_of_task(task)
        latest[queue] = max(latest.get(queue, enqueued_at), enqueued_at)
    return latest


def compare_host(host: Host, *, now, report: ReconcileReport) -> None:
    # Read the database before the hypervisor, so an instance that becomes running after this read cannot be
    # mistaken for one whose machine vanished (domains of instances launched since are re-checked below).
    # Machines moving here (a migration in progress) are known too: their domain may already be on this host.
    on_host = Q(host=host) | Q(migration_host=host)
    known = {str(pk): state for pk, state in Instance.objects.filter(on_host).live().values_list("pk", "state")}
    try:
        driver = driver_for(host)
        domains = {_canonical(info.uuid): info for info in driver.list_domains()}
    except DriverError as error:
        logger.warning("Reconciler: cannot list the domains of host %s: %s", host.name, error)
        report.unreachable_hosts.append(host.name)
        return
    for pk, state in known.items():
        if state not in STABLE_STATES:
            continue
        info = domains.get(pk)
        if info is None:
            try:
                driver.state(pk)  # ask once more: the listing may have raced with a (re)create
            except DomainNotFound:
                if services.instance_domain_vanished(instance_id=pk, expected_state=state, host_name=host.name):
                    logger.warning("Reconciler: the machine of instance %s vanished from host %s.", pk, host.name)
                    report.vanished.append(pk)
            except DriverError as error:
                logger.warning("Reconciler: cannot check domain %s on host %s: %s", pk, host.name, error)
            continue
        settled = {InstanceState.RUNNING: PowerState.RUNNING, InstanceState.STOPPED: PowerState.SHUTOFF}[state]
        if info.state in (PowerState.RUNNING, PowerState.SHUTOFF) and info.state != settled:
            _sync_power(driver, pk, state, info.state, report)
    unknown = set(domains) - set(known)
    if unknown:
        # Instances launched after `known` was read may own some of these by now.
        unknown -= {
            str(pk)
            for pk in Instance.objects.filter(on_host, pk__in=_valid_uuids(unknown)).live().values_list("pk", flat=True)
        }
    for domain_uuid in services.orphan_domains_record(host=host, domains=domains, unknown=unknown, now=now):
        logger.warning("Reconciler: host %s has a domain %s that no instance owns.", host.name, domain_uuid)
    report.orphans.extend(sorted(unknown))


def _sync_power(driver, pk: str, state: str, seen: str, report: ReconcileReport) -> None:
    try:
        current = driver.state(pk).state  # ask once more: a worker may be changing it right now
    except DriverError:
        return
    if current == seen and services.instance_power_synced(instance_id=pk, expected_state=state, power_state=seen):
        report.power_synced.append(pk)


def _canonical(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


def _valid_uuids(values) -> list[uuid.UUID]:
    valid = []
    for value in values:
        try:
            valid.append(uuid.UUID(value))
        except ValueError:
            continue  # a domain some other tool created: never an instance of ours
    return valid


def reconcile(*, grace: timedelta | None = None, now=None, hosts=None) -> ReconcileReport:
    """One full pass (`hosts`: compare only these with the database); safe to run concurrently with workers, with
    itself and at any time."""
    now = now or timezone.now()
    grace = grace if grace is not None else timedelta(seconds=settings.COMPUTE_TASK_GRACE_SECONDS)
    report = ReconcileReport()
    fail_overdue(now=now, report=report)
    requeue_lost(now=now, grace=grace, report=report)
    compared = Host.objects.filter(enabled=True)
    if hosts is not None:
        compared = compared.filter(pk__in=[host.pk for host in hosts])
    for host in compared.order_by("name"):
        compare_host(host, now=now, report=report)
    reconcile_storage(now=now, grace=grace, report=report, hosts=compared.order_by("name"))
    reconcile_backups(now=now, grace=grace, report=report, hosts=compared.order_by("name"))
    if any(
        (report.overdue, report.requeued, report.queued, report.vanished, report.power_synced, report.unreachable_hosts)
    ):
        logger.info("Reconciler: %s", report.summary())
    count_findings(report)
    return report
