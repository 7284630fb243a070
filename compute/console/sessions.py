"""Who may open a machine's interactive console, and which session has it.

The instance page asks compute:instance-console-ticket (a POST, so TenantScopedMixin checks the member may change
resources, the tenant's two-factor rule applies and the CSRF token is checked) for a ticket: the instance, the
user and the tenant, signed, valid for a minute. The WebSocket consumer accepts a ticket only from the same
signed-in user, and checks again that the membership still allows it and the machine still runs.

One session per machine: each new session takes a lease (the cache, shared by every web process) and tells the
others through the channel layer; a session that no longer holds the lease ends with a notice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache

from compute.models import Host, Instance, InstanceState
from tenants.models import Membership
from tenants.roles import Permission

TICKET_SALT = "compute.console.ticket"
TICKET_MAX_AGE = 60  # seconds between asking for a ticket and opening the WebSocket


class ConsoleRefused(Exception):
    """The console cannot be opened; the message is shown in the terminal."""


@dataclass(frozen=True)
class ConsoleGrant:
    instance_id: str
    instance_name: str
    host: Host


def console_ticket(*, instance: Instance, user) -> str:
    return signing.dumps({"i": str(instance.pk), "u": user.pk, "t": str(instance.tenant_id)}, salt=TICKET_SALT)


def console_grant(*, ticket: str, instance_id: str, user) -> ConsoleGrant:
    """The machine behind a valid ticket, if this user may still act on it and it runs; else ConsoleRefused."""
    try:
        data = signing.loads(ticket, salt=TICKET_SALT, max_age=TICKET_MAX_AGE)
    except signing.SignatureExpired:
        raise ConsoleRefused("The console link expired; reconnect to get a new one.") from None
    except signing.BadSignature:
        raise ConsoleRefused("This console link is not valid.") from None
    if not getattr(user, "is_authenticated", False) or data.get("u") != user.pk or data.get("i") != instance_id:
        raise ConsoleRefused("This console link belongs to another session.")
    membership = Membership.objects.select_related("tenant").filter(user=user, tenant_id=data.get("t")).first()
    if membership is None or not membership.has(Permission.CHANGE_RESOURCES):
        raise ConsoleRefused("Your role does not allow using the console.")
    instance = console_instance(tenant=membership.tenant, instance_id=instance_id)
    if instance is None:
        raise ConsoleRefused("This machine does not exist.")
    if instance.state != InstanceState.RUNNING or instance.host is None:
        raise ConsoleRefused(f"{instance.name} is {instance.get_state_display().lower()}; start it to use the console.")
    return ConsoleGrant(instance_id=str(instance.pk), instance_name=instance.name, host=instance.host)


def console_instance(*, tenant, instance_id: str) -> Instance | None:
    return Instance.objects.for_tenant(tenant).select_related("host").filter(pk=instance_id).first()


# --- the lease: which session has a machine's console ------------------------------------------------------------


def _lease_key(instance_id: str) -> str:
    return f"console-lease:{instance_id}"


def console_lease_take(*, instance_id: str) -> str:
    """Makes a new session the holder of the machine's console; returns its token."""
    token = secrets.token_hex(16)
    timeout = int(settings.CONSOLE_MAX_DURATION.total_seconds()) + 60
    cache.set(_lease_key(instance_id), token, timeout=timeout)
    return token


def console_lease_held(*, instance_id: str, token: str) -> bool:
    return cache.get(_lease_key(instance_id)) == token


def console_lease_release(*, instance_id: str, token: str) -> None:
    if console_lease_held(instance_id=instance_id, token=token):
        cache.delete(_lease_key(instance_id))  # write-ok: the cache entry of the lease, not a model
