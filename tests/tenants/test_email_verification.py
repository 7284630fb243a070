"""E-mail verification: a signed, expiring link at sign-up; until it is followed the account looks around but
launches nothing (nor adds keys or invites people); invited and seeded accounts are verified already."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from portal.errors import Unprocessable
from tenants.models import Invitation, Membership
from tenants.roles import Role
from tests.api.conftest import bearer_client, token_for
from tests.api.test_generic import assert_error
from tests.factories import InvitationFactory, UserFactory
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, new_public_key

pytestmark = pytest.mark.django_db
User = get_user_model()


def _sign_up(client, django_capture_on_commit_callbacks, email="ada@example.com"):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("signup"),
            {"full_name": "Ada", "email": email, "organisation": "Engines", "password": "engine-of-1843"},
        )
    assert response.status_code == 302
    return User.objects.get(email=email)


def _link(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/verify-email/\S+/)", message.body).group(1)


def test_sign_up_e_mails_a_link_that_verifies_the_address(client, django_capture_on_commit_callbacks):
    user = _sign_up(client, django_capture_on_commit_callbacks)
    assert not user.email_verified
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    home = client.get(reverse("home")).content.decode()
    assert "Confirm your e-mail address" in home and "Resend the link" in home
    response = client.get(_link(message))
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email_verified
    assert "Confirm your e-mail address" not in client.get(reverse("home")).content.decode()
    # Following it again is harmless.
    assert client.get(_link(message)).status_code == 302


def test_an_unverified_account_cannot_launch_add_keys_or_invite(client, django_capture_on_commit_callbacks):
    user = _sign_up(client, django_capture_on_commit_callbacks)
    tenant = Membership.objects.get(user=user).tenant
    HostFactory()
    flavor, image = FlavorFactory(), ImageFactory()
    _, secret = token_for(user, tenant)
    api = bearer_client(secret)
    response = api.post(
        "/api/v1/instances/", {"name": "web-1", "flavor": str(flavor.pk), "image": str(image.pk)}, format="json"
    )
    assert_error(response, 422, "email_unverified")
    assert "Confirm your e-mail address before you launch a machine" in response.json()["error"]["message"]
    response = api.post("/api/v1/ssh-keys/", {"name": "k", "public_key": new_public_key()}, format="json")
    assert_error(response, 422, "email_unverified")
    page = client.post(reverse("team"), {"email": "friend@example.com", "role": Role.MEMBER})
    assert page.status_code == 400 and "Confirm your e-mail address" in page.content.decode()
    assert not Invitation.objects.exists()
    # Once confirmed, the same requests go through.
    client.get(_link(mail.outbox[0]))
    response = api.post(
        "/api/v1/instances/", {"name": "web-1", "flavor": str(flavor.pk), "image": str(image.pk)}, format="json"
    )
    assert response.status_code == 202, response.content


def test_the_dashboard_launch_says_why(client, django_capture_on_commit_callbacks):
    _sign_up(client, django_capture_on_commit_callbacks)
    HostFactory()
    flavor, image = FlavorFactory(), ImageFactory()
    response = client.post(
        reverse("compute:instance-launch"), {"name": "web-1", "flavor": flavor.pk, "image": image.pk}, follow=True
    )
    assert "Confirm your e-mail address before you launch a machine" in response.content.decode()


def test_resending_sends_a_new_link(client, django_capture_on_commit_callbacks):
    _sign_up(client, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("email-verify-resend"), {"next": "/team/"})
    assert response.status_code == 302 and response.url == "/team/"
    assert len(mail.outbox) == 2
    # Not again within the minute: one button cannot flood the inbox.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("email-verify-resend"))
    assert len(mail.outbox) == 2


def test_expired_and_forged_links_are_refused(client, settings, django_capture_on_commit_callbacks):
    user = _sign_up(client, django_capture_on_commit_callbacks)
    link = _link(mail.outbox[0])
    settings.EMAIL_VERIFICATION_TTL = timedelta(seconds=-1)
    response = client.get(link, follow=True)
    assert "expired" in response.content.decode()
    settings.EMAIL_VERIFICATION_TTL = timedelta(days=3)
    response = client.get(link.replace("/verify-email/", "/verify-email/x"), follow=True)
    assert "not valid" in response.content.decode()
    user.refresh_from_db()
    assert not user.email_verified


def test_a_link_for_an_old_address_does_not_verify_a_new_one(client, django_capture_on_commit_callbacks):
    user = _sign_up(client, django_capture_on_commit_callbacks)
    link = _link(mail.outbox[0])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("profile"), {"full_name": "Ada", "email": "ada@elsewhere.example"})
    client.get(link)
    user.refresh_from_db()
    assert user.email == "ada@elsewhere.example" and not user.email_verified
    client.get(_link(mail.outbox[-1]))
    user.refresh_from_db()
    assert user.email_verified


def test_changing_the_address_asks_to_confirm_the_new_one(django_capture_on_commit_callbacks):
    from tests.conftest import login_client

    user = UserFactory(email="kim@example.com")
    client = login_client(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("profile"), {"full_name": "Kim", "email": "kim@new.example"})
    user.refresh_from_db()
    assert not user.email_verified
    assert mail.outbox[-1].to == ["kim@new.example"]


def test_invited_accounts_are_verified(tenant):
    token, token_hash = Invitation.new_token()
    InvitationFactory(tenant=tenant, email="new@example.com", role=Role.MEMBER, token_hash=token_hash)
    from django.test import Client

    client = Client()
    client.post(reverse("invitation-signup", args=[token]), {"full_name": "New", "password": "a-long-passphrase-1"})
    assert User.objects.get(email="new@example.com").email_verified


def test_the_demo_accounts_are_verified():
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert User.objects.get(email="demo@hangar.local").email_verified
    assert User.objects.get(email="operator@hangar.local").email_verified


def test_the_check_lets_verified_and_system_callers_through():
    from tenants.services import user_check_verified

    user_check_verified(user=None, verb="launch")
    user_check_verified(user=UserFactory(), verb="launch")
    with pytest.raises(Unprocessable):
        user_check_verified(user=UserFactory(email_verified_at=None), verb="launch")
