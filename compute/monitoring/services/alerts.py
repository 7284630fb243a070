"""Alert policies and their evaluation: every write of policies, incidents and the notices they queue.

Each minute, after sampling, `alerts_evaluate` looks at each enabled policy's window (its last `duration_minutes`
of per-minute samples) on every machine it covers. A machine whose every minute in the window breached the
threshold (all of them present; one may be missing from a window of five minutes or more) *fires*: an incident
opens and one notice per channel is queued, in one transaction. An open incident *recovers* when the latest
minute no longer breaches, or when the machine has sent nothing for a while (stopped, deleted): it closes and
queues one notice per channel. A database constraint
allows one open incident per policy and machine, so however often (or concurrently) evaluation runs, a firing
notifies once and a recovery once: never a storm.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from compute.models import Instance, InstanceState
from compute.monitoring.models import (
    AlertIncident,
    AlertNotification,
    AlertPolicy,
    Comparison,
    Metric,
    NotificationChannel,
    NotificationEvent,
    Resolution,
    Sample,
    new_webhook_secret,
)
from compute.monitoring.services.samples import minute_start
from portal.errors import InvalidRequest
from tenants.labels import labels_filter, parse_selector
from tenants.models import ActivityEntry
from tenants.services import activity_record

NO_DATA_AFTER = timedelta(minutes=5)
POLICY_FIELDS = (
    "name",
    "metric",
    "comparison",
    "threshold",
    "duration_minutes",
    "instance",
    "label_selector",
    "notify_email",
    "webhook_url",
    "enabled",
)


@dataclass
class EvaluationReport:
    fired: list[str] = field(default_factory=list)  # "policy id/instance id"
    recovered: list[str] = field(default_factory=list)


# --- policies --------------------------------------------------------------------------------------------------


def _validated(*, tenant, values: dict) -> dict:
    errors = {}
    name = (values.get("name") or "").strip()
    if not name:
        errors["name"] = "Give the policy a name."
    if values.get("metric") not in Metric.values:
        errors["metric"] = f"Choose one of: {', '.join(Metric.values)}."
    if values.get("comparison", Comparison.ABOVE) not in Comparison.values:
        errors["comparison"] = "Choose above or below."
    threshold = values.get("threshold")
    if not isinstance(threshold, int | float) or threshold < 0:
        errors["threshold"] = "The threshold is a number, 0 or more."
    elif values.get("metric") == Metric.CPU and threshold > 100:
        errors["threshold"] = "CPU is measured in percent: 0 to 100."
    duration = values.get("duration_minutes", 5)
    if not isinstance(duration, int) or not 1 <= duration <= 1440:
        errors["duration_minutes"] = "From 1 to 1440 minutes."
    instance = values.get("instance")
    if instance is not None and (instance.tenant_id != tenant.pk or instance.is_deleted):
        errors["instance"] = "Choose one of your machines, or none for all of them."
    selector = (values.get("label_selector") or "").strip()
    if selector:
        try:
            key, value = parse_selector(selector)
        except ValidationError as error:
            errors["label_selector"] = error.messages[0]
        else:
            selector = key if value is None else f"{key}={value}"
        if instance is not None:
            errors["label_selector"] = "Watch one machine or the machines with a label, not both."
    url = (values.get("webhook_url") or "").strip()
    if url and not url.startswith(("https://", "http://")):
        errors["webhook_url"] = "The webhook must be an http:// or https:// URL."
    if errors:
        raise InvalidRequest("The alert policy is not valid.", details=errors)
    return {**values, "name": name, "webhook_url": url, "label_selector": selector}


@transaction.atomic
def alert_policy_create(*, tenant, user, **values) -> AlertPolicy:
    """Keyword arguments: the fields of POLICY_FIELDS (metric, threshold, … ; instance None for every machine)."""
    values = _validated(tenant=tenant, values={key: value for key, value in values.items() if key in POLICY_FIELDS})
    policy = AlertPolicy.objects.create(tenant=tenant, created_by=user, **values)
    _activity(
        policy, "alert_create", "Alert policy created", user, message=f"{policy.condition} on {policy.scope_label}"
    )
    return policy


@transaction.atomic
def alert_policy_update(*, policy: AlertPolicy, user, **changes) -> AlertPolicy:
    policy = AlertPolicy.objects.select_for_update().get(pk=policy.pk)
    values = {name: getattr(policy, name) for name in POLICY_FIELDS}
    values.update({key: value for key, value in changes.items() if key in POLICY_FIELDS})
    values = _validated(tenant=policy.tenant, values=values)
    condition_changed = any(
        values[name] != getattr(policy, name)
        for name in ("metric", "comparison", "threshold", "instance", "label_selector")
    )
    changed = [name for name in POLICY_FIELDS if values[name] != getattr(policy, name)]
    for name, value in values.items():
        setattr(policy, name, value)
    policy.save(update_fields=list(POLICY_FIELDS))
    if condition_changed or not policy.enabled:
        # What fired under the old condition (or while it was on) no longer stands: closed without a notice.
        AlertIncident.objects.filter(policy=policy, recovered_at__isnull=True).update(recovered_at=timezone.now())
    if changed:
        names = ", ".join(name.replace("_", " ") for name in changed)
        message = f"{names} changed: {policy.condition} on {policy.scope_label}"
        _activity(policy, "alert_update", "Alert policy changed", user, message=message)
    return policy


@transaction.atomic
def alert_policy_rotate_secret(*, policy: AlertPolicy, user) -> AlertPolicy:
    policy.webhook_secret = new_webhook_secret()
    policy.save(update_fields=["webhook_secret"])
    return policy


@transaction.atomic
def alert_policy_delete(*, policy: AlertPolicy, user) -> None:
    """Deletes the policy with its history and any notice not yet sent."""
    _activity(
        policy, "alert_delete", "Alert policy deleted", user, message=f"{policy.condition} on {policy.scope_label}"
    )
    policy.delete()


def _activity(policy: AlertPolicy, action: str, label: str, user, *, message: str) -> None:
    activity_record(
        tenant_id=policy.tenant_id,
        resource_type=ActivityEntry.ResourceType.ALERT_POLICY,
        resource_id=policy.pk,
        resource_name=policy.name,
        action=action,
        action_label=label,
        actor=user,
        message=message,
    )


# --- evaluation ------------------------------------------------------------------------------------------------


def _covered_instances(policy: AlertPolicy) -> list[str]:
    if policy.instance_id is not None:
        return [str(policy.instance_id)]
    running = Instance.objects.filter(tenant_id=policy.tenant_id, state=InstanceState.RUNNING)
    if policy.label_selector:
        running = labels_filter(running, [policy.label_selector])
    return [str(pk) for pk in running.values_list("pk", flat=True)]


def alerts_evaluate(*, now: datetime | None = None) -> EvaluationReport:
    """Fires and recovers incidents of every enabled policy from the per-minute samples up to `now`."""
    now = now or timezone.now()
    latest_minute = minute_start(now)
    report = EvaluationReport()
    open_incidents = defaultdict(dict)
    for incident in AlertIncident.objects.filter(recovered_at__isnull=True, policy__enabled=True):
        open_incidents[incident.policy_id][str(incident.instance_id)] = incident
    for policy in AlertPolicy.objects.filter(enabled=True).order_by("pk"):
        covered = set(_covered_instances(policy)) | set(open_incidents[policy.pk])
        if not covered:
            continue
        window_start = latest_minute - (policy.duration_minutes - 1) * 60
        oldest = min(window_start, latest_minute - int(NO_DATA_AFTER.total_seconds()))
        minutes: dict[str, dict[int, float]] = defaultdict(dict)
        for instance_id, period_start, value in Sample.objects.filter(
            resolution=Resolution.MINUTE,
            period_start__gte=oldest,
            period_start__lte=latest_minute,
            instance_id__in=covered,
        ).values_list("instance_id", "period_start", policy.metric):
            minutes[str(instance_id)][period_start] = value
        for instance_id in sorted(covered):
            series = minutes.get(instance_id, {})
            incident = open_incidents[policy.pk].get(instance_id)
            latest = series[max(series)] if series else None
            if incident is None:
                window = [value for start, value in series.items() if start >= window_start]
                complete = len(window) >= _minutes_needed(policy.duration_minutes)
                breached = complete and all(policy.breached_by(value) for value in window)
                if breached and _fire(policy=policy, instance_id=instance_id, value=latest, at=now):
                    report.fired.append(f"{policy.pk}/{instance_id}")
            else:
                quiet = not series or max(series) < latest_minute - int(NO_DATA_AFTER.total_seconds())
                calm = quiet or not policy.breached_by(latest)
                if calm and _recover(incident=incident, value=None if quiet else latest, at=now):
                    report.recovered.append(f"{policy.pk}/{instance_id}")
    return report


def _minutes_needed(duration: int) -> int:
    """Every minute of the window must have breached; from five minutes on, one missed sample (a late beat) is
    forgiven, so a long window does not wait a whole window more for one gap."""
    return duration - 1 if duration >= 5 else duration


def _channels(policy: AlertPolicy) -> list[str]:
    channels = []
    if policy.notify_email:
        channels.append(NotificationChannel.EMAIL)
    if policy.webhook_url:
        channels.append(NotificationChannel.WEBHOOK)
    return channels


def _queue(incident: AlertIncident, event: str, policy: AlertPolicy) -> None:
    from compute.monitoring.tasks import notification_deliver

    for channel in _channels(policy):
        notification = AlertNotification.objects.create(
            tenant_id=incident.tenant_id, incident=incident, event=event, channel=channel
        )
        transaction.on_commit(lambda pk=notification.pk: notification_deliver.delay(notification_id=str(pk)))


def _fire(*, policy: AlertPolicy, instance_id: str, value: float, at: datetime) -> bool:
    try:
        with transaction.atomic():
            incident = AlertIncident.objects.create(
                tenant_id=policy.tenant_id, policy=policy, instance_id=instance_id, fired_at=at, fired_value=value
            )
            _queue(incident, NotificationEvent.FIRED, policy)
    except IntegrityError:
        return False  # another evaluation opened it a moment ago: it notified
    return True


def _recover(*, incident: AlertIncident, value: float | None, at: datetime) -> bool:
    with transaction.atomic():
        # A conditional update claims the recovery: a concurrent evaluation that also saw it open changes nothing.
        claimed = AlertIncident.objects.filter(pk=incident.pk, recovered_at__isnull=True).update(
            recovered_at=at, recovered_value=value
        )
        if not claimed:
            return False
        _queue(incident, NotificationEvent.RECOVERED, incident.policy)
    return True
