"""Helpers for tests of two-factor log-in: an account with an authenticator app, and the codes that app shows."""

import time
from binascii import unhexlify

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants.services import two_factor_new_secret


def enable_two_factor(user) -> TOTPDevice:
    """Gives `user` a confirmed authenticator app (as enrolment would) and returns its device."""
    return TOTPDevice.objects.create(user=user, name="Authenticator app", key=two_factor_new_secret(), confirmed=True)


def code_for(secret: str, *, steps_ahead: int = 0) -> str:
    """The code the app shows now, or `steps_ahead` periods of 30 s later (TOTP accepts each code once)."""
    totp = TOTP(unhexlify(secret.encode()))
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def verified_client(user, device: TOTPDevice | None = None) -> Client:
    """A browser logged in as `user` that has passed the second step."""
    device = device or TOTPDevice.objects.filter(user=user, confirmed=True).first() or enable_two_factor(user)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
