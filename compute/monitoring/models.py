"""Usage metrics of machines (per minute, rolled up to five minutes and hours) and alert policies on them.

Samples are keyed by the Unix second (UTC) their period starts at, an integer: rolling minutes up into five-minute
and hourly periods is then integer division in SQL, the same on PostgreSQL and SQLite. Rates are averages over the
period: CPU in percent of the machine's vCPUs, disk and network in bytes per second.
"""

import secrets
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from compute.models import Instance
from tenants.models import TenantOwned


class Resolution(models.IntegerChoices):
    MINUTE = 60, "1 minute"
    FIVE_MINUTES = 300, "5 minutes"
    HOUR = 3600, "1 hour"


class Metric(models.TextChoices):
    CPU = "cpu_percent", "CPU"
    DISK_READ = "disk_read_bps", "Disk read"
    DISK_WRITE = "disk_write_bps", "Disk write"
    NET_IN = "net_in_bps", "Network in"
    NET_OUT = "net_out_bps", "Network out"


METRIC_UNITS = {Metric.CPU: "%"} | {metric: "bytes/s" for metric in Metric if metric != Metric.CPU}


class Sample(models.Model):
    """One machine's average usage over one period: a minute (raw), five minutes or an hour (roll-ups)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+", db_index=False)
    resolution = models.PositiveIntegerField(choices=Resolution.choices)
    period_start = models.BigIntegerField(help_text="Unix time (UTC seconds) the period starts at.")
    samples = models.PositiveIntegerField(default=1, help_text="How many one-minute samples the averages cover.")
    cpu_percent = models.FloatField()
    disk_read_bps = models.FloatField()
    disk_write_bps = models.FloatField()
    net_in_bps = models.FloatField()
    net_out_bps = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "resolution", "period_start"], name="sample_unique_period")
        ]
        # Retention deletes, and the alert evaluator reads recent minutes of every machine, by period.
        indexes = [models.Index(fields=["resolution", "period_start"], name="sample_resolution_period")]

    def __str__(self) -> str:
        return f"{self.instance_id} {self.get_resolution_display()} from {self.at:%Y-%m-%d %H:%M} UTC"

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.period_start, tz=UTC)


class CounterReading(models.Model):
    """The last cumulative counters read from a running machine: the next reading's rates are the difference."""

    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, primary_key=True, related_name="+")
    read_at = models.DateTimeField()
    cpu_time_ns = models.BigIntegerField()
    disk_read_bytes = models.BigIntegerField()
    disk_write_bytes = models.BigIntegerField()
    net_rx_bytes = models.BigIntegerField()
    net_tx_bytes = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.instance_id} at {self.read_at:%Y-%m-%d %H:%M:%S}"


# --- alerts ----------------------------------------------------------------------------------------------------


class Comparison(models.TextChoices):
    ABOVE = "above", "above"
    BELOW = "below", "below"


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


class AlertPolicy(TenantOwned):
    """Notify when a metric of one machine (or of every machine) stays above or below a threshold for a while."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    metric = models.CharField(max_length=32, choices=Metric.choices)
    comparison = models.CharField(max_length=8, choices=Comparison.choices, default=Comparison.ABOVE)
    threshold = models.FloatField(help_text="CPU in percent; disk and network in bytes per second.")
    duration_minutes = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(1440)], help_text="For how long, in minutes."
    )
    instance = models.ForeignKey(
        Instance,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="One machine; empty for every machine of the organisation (or those with the label below).",
    )
    label_selector = models.CharField(
        "machines with the label",
        max_length=127,
        blank=True,
        help_text="key=value (or key alone): only the machines carrying this label; empty for every machine.",
    )
    notify_email = models.BooleanField(default=True, help_text="E-mail the organisation's owners and admins.")
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret = models.CharField(max_length=64, default=new_webhook_secret, editable=False)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(metric__in=Metric.values), name="alertpolicy_metric_valid"),
            models.CheckConstraint(
                condition=models.Q(comparison__in=Comparison.values), name="alertpolicy_comparison_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def unit(self) -> str:
        return METRIC_UNITS[self.metric]

    @property
    def condition(self) -> str:
        """ "CPU above 90 % for 5 min"."""
        unit = " %" if self.metric == Metric.CPU else " bytes/s"
        return f"{self.get_metric_display()} {self.comparison} {self.threshold:g}{unit} for {self.duration_minutes} min"

    @property
    def scope(self) -> str:
        """What it watches: "instance" (one machine), "label" (machines with a label) or "all"."""
        if self.instance_id is not None:
            return "instance"
        return "label" if self.label_selector else "all"

    @property
    def scope_label(self) -> str:
        if self.instance_id is not None:
            return self.instance.name
        return f"machines labelled {self.label_selector}" if self.label_selector else "every machine"

    def breached_by(self, value: float) -> bool:
        return value > self.threshold if self.comparison == Comparison.ABOVE else value < self.threshold


class AlertIncident(TenantOwned):
    """One firing of a policy on one machine, from the minute it fired to the minute it recovered: the history."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    policy = models.ForeignKey(AlertPolicy, on_delete=models.CASCADE, related_name="incidents")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    fired_at = models.DateTimeField()
    fired_value = models.FloatField(help_text="The metric's latest minute when it fired.")
    recovered_at = models.DateTimeField(null=True, blank=True)
    recovered_value = models.FloatField(null=True, blank=True, help_text="Empty when no data came any more.")

    class Meta:
        ordering = ["-fired_at", "id"]
        constraints = [
            # One open incident per policy and machine: a second evaluation (or a concurrent one) cannot fire again.
            models.UniqueConstraint(
                fields=["policy", "instance"],
                condition=models.Q(recovered_at__isnull=True),
                name="alertincident_one_open",
            )
        ]

    @property
    def is_open(self) -> bool:
        return self.recovered_at is None


class NotificationEvent(models.TextChoices):
    FIRED = "fired", "Fired"
    RECOVERED = "recovered", "Recovered"


class NotificationChannel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class AlertNotification(TenantOwned):
    """One notice (fired or recovered) to one channel, written with the incident change and sent by a task."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    incident = models.ForeignKey(AlertIncident, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=16, choices=NotificationEvent.choices)
    channel = models.CharField(max_length=16, choices=NotificationChannel.choices)
    status = models.CharField(max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Never a storm: each incident sends each notice to each channel once.
            models.UniqueConstraint(fields=["incident", "event", "channel"], name="alertnotification_once"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="alertnotification_due")]
