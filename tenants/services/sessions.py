"""Signed-in browser sessions and the browsers (devices) a user logs in from.

A UserSession row mirrors a session in Django's session store with what a person recognises it by (browser,
address, last seen), written on log-in and then at most once a minute by SessionActivityMiddleware. Ending a
session deletes it from the store, so that browser is logged out on its next request.
"""

import secrets
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from portal.errors import Conflict
from tenants.devices import describe_user_agent
from tenants.models import KnownDevice, UserSession

# A session's row is refreshed at most this often, so browsing costs no write per page.
SEEN_RESOLUTION = timedelta(minutes=1)


def _session_store(session_key: str):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def user_session_seen(*, user, session_key: str, user_agent: str, ip_address: str | None, now=None) -> UserSession:
    """Creates or refreshes the row of a signed-in session."""
    now = now or timezone.now()
    session, _ = UserSession.objects.update_or_create(
        session_key=session_key,
        defaults={"user": user, "user_agent": user_agent[:300], "ip_address": ip_address, "last_seen_at": now},
        create_defaults={
            "user": user,
            "user_agent": user_agent[:300],
            "ip_address": ip_address,
            "created_at": now,
            "last_seen_at": now,
        },
    )
    return session


def user_session_forget(*, session_key: str) -> None:
    """The session ended by itself (log-out): only its row remains to go."""
    UserSession.objects.filter(session_key=session_key).delete()


def user_session_end(*, user, session: UserSession, current_session_key: str) -> None:
    """Logs one of the user's other browsers out at once."""
    if session.user_id != user.pk:
        raise Conflict("That is not one of your sessions.", code="not_your_session")
    if session.session_key == current_session_key:
        raise Conflict("This is the session you are using; log out instead.", code="current_session")
    _session_store(session.session_key).delete()
    session.delete()


def user_sessions_end_others(*, user, current_session_key: str | None) -> int:
    """Logs every other browser of the user out; returns how many sessions ended."""
    others = list(UserSession.objects.filter(user=user).exclude(session_key=current_session_key or ""))
    for session in others:
        _session_store(session.session_key).delete()
    UserSession.objects.filter(pk__in=[session.pk for session in others]).delete()
    return len(others)


def user_password_changed(*, user, old_session_key: str | None, session_key: str | None) -> int:
    """After a password change the current session lives on under its new key and every other one ends."""
    if old_session_key and session_key and old_session_key != session_key:
        UserSession.objects.filter(session_key=old_session_key, user=user).update(session_key=session_key)
    return user_sessions_end_others(user=user, current_session_key=session_key)


def user_sessions_purge(*, now: datetime | None = None) -> int:
    """Forgets rows of sessions that expired without a log-out (the store drops those sessions itself)."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    deleted, _ = UserSession.objects.filter(last_seen_at__lt=cutoff).delete()
    return deleted


def user_device_logged_in(
    *, user, device_key: str | None, user_agent: str, ip_address: str | None, now=None
) -> tuple[str, bool]:
    """Records a log-in from the browser carrying `device_key` (a cookie); returns the key the browser should keep
    and whether it was new to this user. A new browser is e-mailed about, unless it is the user's first."""
    now = now or timezone.now()
    if device_key:
        known = KnownDevice.objects.filter(user=user, key_hash=KnownDevice.hash_key(device_key))
        if known.update(last_seen_at=now, ip_address=ip_address, user_agent=user_agent[:300]):
            return device_key, False
    first_ever = not KnownDevice.objects.filter(user=user).exists()
    device_key = secrets.token_urlsafe(32)
    KnownDevice.objects.create(
        user=user,
        key_hash=KnownDevice.hash_key(device_key),
        user_agent=user_agent[:300],
        ip_address=ip_address,
        first_seen_at=now,
        last_seen_at=now,
    )
    if not first_ever:
        context = {
            "user": user,
            "device": describe_user_agent(user_agent),
            "ip_address": ip_address or "an unknown address",
            "when": now,
            "security_url": settings.SITE_URL + reverse("security"),
        }
        transaction.on_commit(
            lambda: send_mail(
                subject="New log-in to your Hangar account",
                message=render_to_string("tenants/email/new_device.txt", context),
                from_email=None,
                recipient_list=[user.email],
            )
        )
    return device_key, True
