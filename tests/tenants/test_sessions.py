"""Signed-in sessions: listed with browser, address and last seen; ended one by one or all at once; a password change
ends the others; a log-in from a browser new to the account is e-mailed about."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tenants.middleware import DEVICE_COOKIE
from tenants.models import KnownDevice, UserSession
from tenants.services import user_sessions_purge

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


def browser(user, *, user_agent=FIREFOX, ip="192.0.2.1") -> Client:
    client = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    response = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_the_page_lists_each_browser_with_address_and_marks_this_one(member):
    laptop = browser(member, ip="192.0.2.1")
    browser(member, user_agent=SAFARI, ip="198.51.100.2")
    page = laptop.get(reverse("security"))
    sessions = page.context["sessions"]
    assert sorted((s.device, s.ip_address) for s in sessions) == [
        ("Firefox on Linux", "192.0.2.1"),
        ("Safari on iPhone", "198.51.100.2"),
    ]
    assert [s.device for s in sessions if s.is_current] == ["Firefox on Linux"]
    html = page.content.decode()
    assert "this browser" in html and "Safari on iPhone" in html
    # The session store's key never reaches the page: sessions are named by their own id.
    for session in sessions:
        assert session.session_key not in html


def test_ending_a_session_from_another_browser_logs_that_browser_out(member):
    laptop = browser(member)
    phone = browser(member, user_agent=SAFARI)
    assert phone.get(reverse("home")).status_code == 200
    phone_session = UserSession.objects.get(user=member, user_agent=SAFARI)
    response = laptop.post(reverse("session-end", args=[phone_session.pk]))
    assert response.status_code == 302
    assert not UserSession.objects.filter(pk=phone_session.pk).exists()
    assert not Session.objects.filter(session_key=phone_session.session_key).exists()
    response = phone.get(reverse("home"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert laptop.get(reverse("home")).status_code == 200


def test_someone_elses_session_is_a_404_and_this_one_cannot_be_ended_here(member, owner):
    laptop = browser(member)
    other = browser(owner)
    assert other.get(reverse("home")).status_code == 200
    theirs = UserSession.objects.get(user=owner)
    assert laptop.post(reverse("session-end", args=[theirs.pk])).status_code == 404
    mine = UserSession.objects.get(user=member)
    laptop.post(reverse("session-end", args=[mine.pk]))
    assert UserSession.objects.filter(pk=mine.pk).exists()
    assert laptop.get(reverse("home")).status_code == 200


def test_ending_all_other_sessions(member):
    laptop = browser(member)
    others = [browser(member, user_agent=SAFARI), browser(member, ip="203.0.113.5")]
    laptop.post(reverse("sessions-end-others"))
    assert UserSession.objects.filter(user=member).count() == 1
    for other in others:
        assert other.get(reverse("home")).status_code == 302
    assert laptop.get(reverse("home")).status_code == 200


def test_changing_the_password_keeps_this_session_and_ends_the_others(member):
    laptop = browser(member)
    phone = browser(member, user_agent=SAFARI)
    response = laptop.post(
        reverse("password-change"),
        {"old_password": PASSWORD, "new_password1": "a-new-long-phrase-9", "new_password2": "a-new-long-phrase-9"},
    )
    assert response.status_code == 302
    assert laptop.get(reverse("home")).status_code == 200
    assert phone.get(reverse("home")).status_code == 302
    [remaining] = UserSession.objects.filter(user=member)
    assert remaining.session_key == laptop.session.session_key
    assert remaining.user_agent == FIREFOX


def test_logging_out_forgets_the_session(member):
    laptop = browser(member)
    laptop.post(reverse("logout"))
    assert not UserSession.objects.filter(user=member).exists()


def test_last_seen_is_written_at_most_once_a_minute(member):
    laptop = browser(member)
    session = UserSession.objects.get(user=member)
    first = session.last_seen_at
    laptop.get(reverse("profile"))
    session.refresh_from_db()
    assert session.last_seen_at == first
    stored = laptop.session
    stored["session_seen_at"] -= 61
    stored.save()
    laptop.get(reverse("profile"))
    session.refresh_from_db()
    assert session.last_seen_at > first


def test_expired_sessions_are_forgotten(member, settings):
    browser(member)
    UserSession.objects.update(last_seen_at=timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE + 60))
    assert user_sessions_purge() == 1


# --- new browsers -------------------------------------------------------------------------------------------------


def test_a_log_in_from_a_new_browser_is_e_mailed(member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        laptop = browser(member)
    assert mail.outbox == []  # the first browser an account ever uses is not news
    assert laptop.cookies[DEVICE_COOKIE]["httponly"]
    with django_capture_on_commit_callbacks(execute=True):
        browser(member, user_agent=SAFARI, ip="198.51.100.2")
    [message] = mail.outbox
    assert message.to == [member.email]
    assert message.subject == "New log-in to your Hangar account"
    assert "Safari on iPhone" in message.body and "198.51.100.2" in message.body
    assert "/accounts/security/" in message.body


def test_logging_in_again_from_a_known_browser_is_not(member, django_capture_on_commit_callbacks):
    laptop = browser(member)
    browser(member, user_agent=SAFARI)
    laptop.post(reverse("logout"))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        laptop.post(reverse("login"), {"username": member.email, "password": PASSWORD})
    assert callbacks == [] and mail.outbox == []
    assert KnownDevice.objects.filter(user=member).count() == 2
