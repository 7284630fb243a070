"""Two-factor log-in (django-otp): an authenticator app (TOTP) plus single-use recovery codes, and an owner's rule
that every member of the organisation must use it.

Enrolment keeps the new secret in the caller's hands (the session) until a code from the app proves it was
scanned; only then is a confirmed device stored, with a fresh set of recovery codes that is shown once.
"""

import secrets
from binascii import unhexlify

from django.db import transaction
from django_otp import verify_token
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from portal.errors import Conflict, Forbidden, InvalidRequest
from tenants.models import Membership, Tenant, TenantEvent
from tenants.roles import Permission
from tenants.selectors import (
    tenant_members_without_two_factor,
    user_has_two_factor,
    user_tenants_requiring_two_factor,
)
from tenants.services.events import tenant_event

RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes are read off paper


def two_factor_new_secret() -> str:
    """A fresh TOTP secret (hex), to be shown as a QR code and confirmed with two_factor_enrol."""
    return random_hex(20)


def normalize_code(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def _new_recovery_codes(device: StaticDevice) -> list[str]:
    device.token_set.all().delete()
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def two_factor_enrol(*, user, secret: str, code: str) -> tuple[TOTPDevice, list[str]]:
    """Turns two-factor on once `code` matches `secret`; returns the device and the recovery codes (shown once)."""
    code = normalize_code(code)
    try:
        key = unhexlify(secret.encode())
    except (ValueError, AttributeError):
        raise InvalidRequest("The set-up expired; start again.", code="two_factor_setup_expired") from None
    totp = TOTP(key)
    if not (code.isdigit() and len(code) == 6 and totp.verify(int(code), tolerance=1)):
        raise InvalidRequest(
            "That code does not match. Check the app shows Hangar and type the current six digits.",
            code="invalid_code",
            details={"code": ["That code does not match."]},
        )
    with transaction.atomic():
        if user_has_two_factor(user=user):
            raise Conflict("Two-factor log-in is already on.", code="two_factor_on")
        TOTPDevice.objects.filter(user=user).delete()
        # last_t: the code just used cannot log in again.
        device = TOTPDevice.objects.create(
            user=user, name="Authenticator app", key=secret, confirmed=True, last_t=totp.t(), drift=totp.drift
        )
        static, _ = StaticDevice.objects.get_or_create(user=user, defaults={"name": "Recovery codes"})
        codes = _new_recovery_codes(static)
    return device, codes


def two_factor_recovery_codes_renew(*, user) -> list[str]:
    """A new set of recovery codes; the old ones stop working."""
    if not user_has_two_factor(user=user):
        raise Conflict("Turn on two-factor log-in first.", code="two_factor_off")
    with transaction.atomic():
        static, _ = StaticDevice.objects.get_or_create(user=user, defaults={"name": "Recovery codes"})
        return _new_recovery_codes(static)


def two_factor_verify(*, user, code: str):
    """The device that accepts `code` (six digits from the app, or a recovery code, used up by this call), or None.

    django-otp throttles each device after a wrong code (1 s, 2 s, 4 s, …); the log-in page also counts failures
    towards the log-in lock-out.
    """
    code = normalize_code(code)
    if not code:
        return None
    if code.isdigit() and len(code) == 6:
        devices = TOTPDevice.objects.devices_for_user(user, confirmed=True)
    else:
        devices = StaticDevice.objects.devices_for_user(user, confirmed=True)
    for device in devices:
        verified = verify_token(user, device.persistent_id, code)
        if verified is not None:
            return verified
    return None


def two_factor_disable(*, user, code: str) -> None:
    """Turns two-factor off after a last check of a code; refused while an organisation of the user requires it."""
    required_by = user_tenants_requiring_two_factor(user=user)
    if required_by:
        names = ", ".join(tenant.name for tenant in required_by)
        raise Conflict(f"{names} requires two-factor log-in of its members.", code="two_factor_required")
    if two_factor_verify(user=user, code=code) is None:
        raise InvalidRequest("That code does not match.", code="invalid_code", details={"code": ["Wrong code."]})
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()


def tenant_require_two_factor(*, tenant: Tenant, required: bool, actor_membership: Membership) -> Tenant:
    """Owners only. Turning it on needs the owner's own two-factor log-in, so nobody locks themselves out."""
    if actor_membership.tenant_id != tenant.pk or not actor_membership.has(Permission.MANAGE_TENANT):
        raise Forbidden("Only owners can change the organisation's security rules.")
    if required and not user_has_two_factor(user=actor_membership.user):
        raise Conflict(
            "Turn on two-factor log-in for your own account first.",
            code="two_factor_off",
            details={"field": "required"},
        )
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if locked.two_factor_required == required:
            return locked
        locked.two_factor_required = required
        locked.save(update_fields=["two_factor_required"])
        if required:
            missing = tenant_members_without_two_factor(tenant=locked).count()
            message = "Two-factor log-in is now required of every member"
            message += f" ({missing} still to enrol)." if missing else "."
        else:
            message = "Two-factor log-in is no longer required."
        tenant_event(tenant=locked, action=TenantEvent.Action.TWO_FACTOR, actor=actor_membership.user, message=message)
    tenant.two_factor_required = required
    return locked
