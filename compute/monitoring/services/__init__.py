"""Every write of the monitoring app: samples and roll-ups, alert policies, incidents and their notices."""

from compute.monitoring.services.alerts import (
    alert_policy_create,
    alert_policy_delete,
    alert_policy_rotate_secret,
    alert_policy_update,
    alerts_evaluate,
)
from compute.monitoring.services.notifications import notification_deliver, notifications_due
from compute.monitoring.services.samples import metrics_ingest, metrics_purge, metrics_roll_up, metrics_sample

__all__ = [
    "alert_policy_create",
    "alert_policy_delete",
    "alert_policy_rotate_secret",
    "alert_policy_update",
    "alerts_evaluate",
    "metrics_ingest",
    "metrics_purge",
    "metrics_roll_up",
    "metrics_sample",
    "notification_deliver",
    "notifications_due",
]
