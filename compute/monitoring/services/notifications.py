"""Sending alert notices: e-mail to the organisation's owners and admins, and signed webhooks, retried with backoff.

A notice is claimed with a conditional UPDATE (due, and pending or left `sending` by a worker that died), so a
duplicate task does nothing. Webhooks POST JSON whose HMAC-SHA256 (the policy's secret over the raw body) is in
`X-Hangar-Signature-256: sha256=<hex>`; `X-Hangar-Delivery` is the notice's id, the same on every retry, so a
receiver can ignore one it already handled. Redirects are not followed, and unless ALERT_WEBHOOK_ALLOW_PRIVATE is
on, addresses on loopback, private or link-local networks are refused: tenants do not get to probe the inside of
the network the workers run in.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F, Q
from django.utils import timezone

from compute.monitoring.models import (
    AlertNotification,
    NotificationChannel,
    NotificationEvent,
    NotificationStatus,
)
from tenants.models import Membership
from tenants.roles import Role

MAX_ATTEMPTS = 6
FIRST_RETRY = timedelta(seconds=30)  # then 1, 2, 4 and 8 minutes
SENDING_LEASE = timedelta(minutes=5)  # a notice `sending` this long was lost with its worker: due again
WEBHOOK_TIMEOUT = 10


class DeliveryFailed(Exception):
    pass


@dataclass(frozen=True)
class DeliveryResult:
    status: str  # sent, retry, failed or skipped
    retry_at: datetime | None = None


def webhook_signature(*, secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def notifications_due(*, now: datetime | None = None) -> list[str]:
    """Ids of notices whose (next) attempt is due."""
    now = now or timezone.now()
    due = AlertNotification.objects.filter(
        Q(status=NotificationStatus.PENDING) | Q(status=NotificationStatus.SENDING), next_attempt_at__lte=now
    )
    return [str(pk) for pk in due.order_by("next_attempt_at").values_list("pk", flat=True)[:500]]


def notification_deliver(*, notification_id: str, now: datetime | None = None) -> DeliveryResult:
    now = now or timezone.now()
    claimed = AlertNotification.objects.filter(
        Q(status=NotificationStatus.PENDING) | Q(status=NotificationStatus.SENDING),
        pk=notification_id,
        next_attempt_at__lte=now,
    ).update(status=NotificationStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + SENDING_LEASE)
    if not claimed:
        return DeliveryResult("skipped")
    notification = AlertNotification.objects.select_related("tenant", "incident__policy", "incident__instance").get(
        pk=notification_id
    )
    try:
        if notification.channel == NotificationChannel.EMAIL:
            _send_email(notification)
        else:
            _send_webhook(notification)
    except DeliveryFailed as error:
        if notification.attempts >= MAX_ATTEMPTS:
            AlertNotification.objects.filter(pk=notification.pk).update(
                status=NotificationStatus.FAILED, last_error=str(error)[:1000]
            )
            return DeliveryResult("failed")
        retry_at = now + FIRST_RETRY * 2 ** (notification.attempts - 1)
        AlertNotification.objects.filter(pk=notification.pk).update(
            status=NotificationStatus.PENDING, next_attempt_at=retry_at, last_error=str(error)[:1000]
        )
        return DeliveryResult("retry", retry_at=retry_at)
    AlertNotification.objects.filter(pk=notification.pk).update(
        status=NotificationStatus.SENT, sent_at=timezone.now(), last_error=""
    )
    return DeliveryResult("sent")


def notification_payload(notification: AlertNotification) -> dict:
    incident, policy = notification.incident, notification.incident.policy
    fired = notification.event == NotificationEvent.FIRED
    return {
        "id": str(notification.pk),
        "event": f"alert.{notification.event}",
        "occurred_at": (incident.fired_at if fired else incident.recovered_at).isoformat(),
        "organisation": {"id": str(notification.tenant_id), "name": notification.tenant.name},
        "policy": {
            "id": str(policy.pk),
            "name": policy.name,
            "metric": policy.metric,
            "comparison": policy.comparison,
            "threshold": policy.threshold,
            "duration_minutes": policy.duration_minutes,
            "condition": policy.condition,
        },
        "instance": {"id": str(incident.instance_id), "name": incident.instance.name},
        "incident": {
            "id": str(incident.pk),
            "fired_at": incident.fired_at.isoformat(),
            "fired_value": incident.fired_value,
            "recovered_at": incident.recovered_at.isoformat() if incident.recovered_at else None,
            "recovered_value": incident.recovered_value,
        },
    }


def _subject_and_text(notification: AlertNotification) -> tuple[str, str]:
    incident, policy = notification.incident, notification.incident.policy
    machine = incident.instance.name
    if notification.event == NotificationEvent.FIRED:
        return (
            f"[Hangar] Alert: {machine}: {policy.condition}",
            f"The alert policy “{policy.name}” fired for {machine} at {incident.fired_at:%Y-%m-%d %H:%M} UTC: "
            f"{policy.condition} (latest minute: {incident.fired_value:g} {policy.unit}).\n\n"
            f"You will get one more message when it recovers.\n{settings.SITE_URL}/alerts/{policy.pk}/\n",
        )
    value = (
        f"latest minute: {incident.recovered_value:g} {policy.unit}"
        if incident.recovered_value is not None
        else "the machine stopped sending data"
    )
    return (
        f"[Hangar] Recovered: {machine}: {policy.condition}",
        f"The alert policy “{policy.name}” recovered for {machine} at {incident.recovered_at:%Y-%m-%d %H:%M} UTC "
        f"({value}).\n{settings.SITE_URL}/alerts/{policy.pk}/\n",
    )


def _send_email(notification: AlertNotification) -> None:
    recipients = sorted(
        Membership.objects.filter(tenant_id=notification.tenant_id, role__in=[Role.OWNER, Role.ADMIN]).values_list(
            "user__email", flat=True
        )
    )
    if not recipients:
        return
    subject, text = _subject_and_text(notification)
    try:
        send_mail(subject, text, None, recipients)
    except (OSError, ValueError) as error:
        raise DeliveryFailed(f"e-mail: {error}") from error


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is an answer like any other non-2xx: a failure


def _check_destination(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryFailed(f"not an http(s) URL: {url}")
    if settings.ALERT_WEBHOOK_ALLOW_PRIVATE:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or None)}
    except OSError as error:
        raise DeliveryFailed(f"cannot resolve {parts.hostname}: {error}") from error
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise DeliveryFailed(f"{parts.hostname} resolves to {ip}, which is not a public address")


def _send_webhook(notification: AlertNotification) -> None:
    policy = notification.incident.policy
    _check_destination(policy.webhook_url)
    body = json.dumps(notification_payload(notification), separators=(",", ":")).encode()
    request = urllib.request.Request(
        policy.webhook_url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Hangar-Alerts/1",
            "X-Hangar-Event": f"alert.{notification.event}",
            "X-Hangar-Delivery": str(notification.pk),
            "X-Hangar-Signature-256": webhook_signature(secret=policy.webhook_secret, body=body),
        },
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=WEBHOOK_TIMEOUT) as response:
            response.read(1024)
    except urllib.error.HTTPError as error:
        raise DeliveryFailed(f"webhook answered HTTP {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        raise DeliveryFailed(f"webhook: {getattr(error, 'reason', error)}") from error
