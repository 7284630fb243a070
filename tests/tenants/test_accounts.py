import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from tenants.models import Membership
from tenants.roles import Role
from tests.factories import UserFactory

User = get_user_model()


@pytest.mark.django_db
def test_sign_up_creates_the_user_and_their_own_tenant_as_owner(client):
    response = client.post(
        reverse("signup"),
        {
            "full_name": "Ada Lovelace",
            "email": "Ada@Example.com",
            "organisation": "Analytical",
            "password": "engine-of-1843",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="ada@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.tenant.name == "Analytical"
    assert membership.tenant.quota.instances > 0
    home = client.get(reverse("home"))
    assert home.status_code == 200
    assert b"Analytical" in home.content


@pytest.mark.django_db
def test_sign_up_rejects_weak_passwords_and_taken_addresses(client):
    UserFactory(email="taken@example.com")
    response = client.post(
        reverse("signup"), {"full_name": "X", "email": "taken@example.com", "organisation": "", "password": "123"}
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "already exists" in errors["email"][0]
    assert errors["password"]
    assert User.objects.filter(email="taken@example.com").count() == 1


@pytest.mark.django_db
def test_log_in_with_email_and_password(client):
    UserFactory(email="kim@example.com", password="a-long-passphrase")
    response = client.post(reverse("login"), {"username": "kim@example.com", "password": "a-long-passphrase"})
    assert response.status_code == 302
    assert client.get(reverse("profile")).status_code == 200


@pytest.mark.django_db
def test_log_in_is_throttled_per_account(client, settings):
    UserFactory(email="kim@example.com", password="a-long-passphrase")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "kim@example.com", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
    # Even the right password from a fresh address is refused while the account is locked.
    response = client.post(
        reverse("login"), {"username": "kim@example.com", "password": "a-long-passphrase"}, REMOTE_ADDR="10.0.0.2"
    )
    assert response.status_code == 429
    assert b"Too many failed log-ins" in response.content


@pytest.mark.django_db
def test_log_in_is_throttled_per_address(client, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": f"guess{n}@example.com", "password": "x"}, REMOTE_ADDR="10.0.0.9")
    UserFactory(email="kim@example.com", password="a-long-passphrase")
    response = client.post(
        reverse("login"), {"username": "kim@example.com", "password": "a-long-passphrase"}, REMOTE_ADDR="10.0.0.9"
    )
    assert response.status_code == 429


@pytest.mark.django_db
def test_password_reset_by_email_link(client):
    UserFactory(email="kim@example.com", password="old-passphrase-1")
    client.post(reverse("password_reset"), {"email": "kim@example.com"})
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"]
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "brand-new-phrase-2", "new_password2": "brand-new-phrase-2"}
    )
    assert response.status_code == 302
    assert User.objects.get(email="kim@example.com").check_password("brand-new-phrase-2")


@pytest.mark.django_db
def test_profile_updates_name_and_refuses_a_taken_email(client):
    UserFactory(email="other@example.com")
    user = UserFactory(email="kim@example.com")
    client.force_login(user)
    response = client.post(reverse("profile"), {"full_name": "Kim K", "email": "other@example.com"})
    assert response.status_code == 200
    assert "Another account" in response.context["form"].errors["email"][0]
    client.post(reverse("profile"), {"full_name": "Kim K", "email": "kim@example.com"})
    user.refresh_from_db()
    assert user.full_name == "Kim K"


@pytest.mark.django_db
def test_pages_send_security_headers(client):
    response = client.get(reverse("login"))
    assert response["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
