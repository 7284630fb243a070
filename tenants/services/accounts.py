"""E-mail verification: a signed, expiring link e-mailed at sign-up; until it is followed the account may look
around but not create anything (machines, keys, invitations)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from portal.errors import InvalidRequest, Unprocessable

User = get_user_model()
SALT = "hangar.tenants.email-verification"


def email_verification_send(*, user) -> None:
    """E-mails the link (after the commit). The token names the account and the address, so a link sent before
    the address changed does not verify the new one."""
    token = signing.dumps({"user": user.pk, "email": user.email}, salt=SALT, compress=True)
    link = settings.SITE_URL + reverse("email-verify", args=[token])
    context = {"user": user, "link": link, "ttl_days": settings.EMAIL_VERIFICATION_TTL.days}
    recipient = user.email
    transaction.on_commit(
        lambda: send_mail(
            subject="Confirm your e-mail address for Hangar",
            message=render_to_string("tenants/email/verify_email.txt", context),
            from_email=None,
            recipient_list=[recipient],
        )
    )


def email_verify(*, token: str):
    """Marks the account behind a link as verified; following it twice is harmless."""
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.EMAIL_VERIFICATION_TTL)
    except signing.SignatureExpired:
        raise InvalidRequest(
            "This link has expired; log in and ask for a new one.", code="verification_expired"
        ) from None
    except signing.BadSignature:
        raise InvalidRequest("This link is not valid.", code="verification_invalid") from None
    user = User.objects.filter(pk=data.get("user"), email=data.get("email")).first()
    if user is None:
        raise InvalidRequest("This link is not valid.", code="verification_invalid")
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    return user


def user_profile_update(*, user, full_name: str, email: str):
    """Saves the name and address; a new address must be confirmed again (a link goes to it)."""
    email = User.objects.normalize_email(email).lower()
    fields = ["full_name"]
    user.full_name = full_name.strip()
    # Read from the database: a model form has already copied the new address onto `user`.
    if email != User.objects.filter(pk=user.pk).values_list("email", flat=True).get():
        user.email, user.email_verified_at = email, None
        fields += ["email", "email_verified_at"]
    with transaction.atomic():
        user.save(update_fields=fields)
        if "email" in fields:
            email_verification_send(user=user)
    return user


def user_mark_email_verified(*, user) -> None:
    """The address was proven another way (an invitation link that reached it)."""
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])


def user_check_verified(*, user, verb: str) -> None:
    """Refuses resource-creating requests of an account whose address is not confirmed yet."""
    if user is not None and getattr(user, "email_verified_at", True) is None:
        raise Unprocessable(
            f"Confirm your e-mail address before you {verb}: follow the link we e-mailed to {user.email}, or ask "
            "for a new one on the dashboard.",
            code="email_unverified",
        )
