"""The page a locked-out log-in gets says how long to wait in words, not as an ISO 8601 duration."""

from datetime import timedelta

import pytest
from django.urls import reverse

from tests.factories.tenants import UserFactory


def _lock_out(client, settings):
    UserFactory(email="kim@example.com", password="a-long-passphrase")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "kim@example.com", "password": "wrong"})
    return client.post(reverse("login"), {"username": "kim@example.com", "password": "wrong"})


@pytest.mark.django_db
def test_lock_out_page_gives_the_wait_in_minutes(client, settings):
    response = _lock_out(client, settings)
    assert response.status_code == 429
    assert b"Try again in 15 minutes" in response.content
    assert b"PT15M" not in response.content


@pytest.mark.django_db
def test_a_one_minute_cool_off_is_singular(client, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    assert b"Try again in 1 minute," in _lock_out(client, settings).content
