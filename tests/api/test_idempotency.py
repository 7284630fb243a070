"""Idempotency-Key on POST: retries replay the first response; a reused key with another body is refused."""

import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone

from compute.models import SSHKey
from portal.api.idempotency import TTL, _fingerprint
from tenants.models import IdempotencyKey
from tenants.tasks import idempotency_keys_purge_task
from tests.api.conftest import bearer_client, token_for
from tests.api.test_generic import assert_error
from tests.factories.compute import new_public_key

pytestmark = pytest.mark.django_db


def _post_key(client, key, body):
    return client.post("/api/v1/ssh-keys/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_retry_with_same_key_and_body_replays_without_acting_again(member_api):
    body = {"name": "laptop", "public_key": new_public_key()}
    first = _post_key(member_api, "key-1", body)
    assert first.status_code == 201
    again = _post_key(member_api, "key-1", body)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert SSHKey.objects.count() == 1


def test_without_a_key_a_retry_acts_again(member_api):
    body = {"name": "laptop", "public_key": new_public_key()}
    assert member_api.post("/api/v1/ssh-keys/", body, format="json").status_code == 201
    assert_error(member_api.post("/api/v1/ssh-keys/", body, format="json"), 400, "duplicate_key")


def test_same_key_with_another_body_is_422(member_api):
    assert _post_key(member_api, "key-1", {"name": "a", "public_key": new_public_key()}).status_code == 201
    response = _post_key(member_api, "key-1", {"name": "b", "public_key": new_public_key()})
    assert_error(response, 422, "idempotency_key_reused")
    assert SSHKey.objects.count() == 1


def test_same_key_on_another_endpoint_is_422(member_api):
    assert _post_key(member_api, "key-1", {"name": "a", "public_key": new_public_key()}).status_code == 201
    response = member_api.post("/api/v1/instances/", {}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert_error(response, 422, "idempotency_key_reused")


def test_keys_are_private_to_the_credential(member, tenant):
    body = {"name": "laptop", "public_key": new_public_key()}
    first = bearer_client(token_for(member, tenant)[1])
    second = bearer_client(token_for(member, tenant)[1])
    assert _post_key(first, "shared", body).status_code == 201
    # Another token's key space: the request really runs (and meets the duplicate).
    assert_error(_post_key(second, "shared", body), 400, "duplicate_key")


def test_client_errors_are_replayed_too(member_api):
    body = {"name": "", "public_key": "nope"}
    first = _post_key(member_api, "bad", body)
    assert first.status_code == 400
    again = _post_key(member_api, "bad", body)
    assert again.status_code == 400 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"


def test_a_request_still_in_progress_is_409(member, tenant):
    api_token, secret = token_for(member, tenant)
    body = {"name": "laptop", "public_key": new_public_key()}
    request = SimpleNamespace(method="POST", path="/api/v1/ssh-keys/", data=body)
    # The key is claimed, as by a first request that has not finished yet.
    IdempotencyKey.objects.create(
        owner=f"token:{api_token.pk}", key="busy", fingerprint=_fingerprint(request), expires_at=timezone.now() + TTL
    )
    response = _post_key(bearer_client(secret), "busy", body)
    assert_error(response, 409, "idempotency_request_in_progress")
    assert not SSHKey.objects.exists()


def test_expired_key_can_be_used_again(member_api):
    body = {"name": "laptop", "public_key": new_public_key()}
    assert _post_key(member_api, "old", body).status_code == 201
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    other = {"name": "desktop", "public_key": new_public_key()}
    assert _post_key(member_api, "old", other).status_code == 201
    assert SSHKey.objects.count() == 2


def test_bad_keys_are_400(member_api):
    body = {"name": "laptop", "public_key": new_public_key()}
    for key in ("x" * 256, "caf\u00e9"):
        response = member_api.post("/api/v1/ssh-keys/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert_error(response, 400, "invalid")
    assert not SSHKey.objects.exists()


def test_purge_forgets_keys_after_24_hours(member_api):
    _post_key(member_api, "k", {"name": "a", "public_key": new_public_key()})
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    _post_key(member_api, "fresh", {"name": "b", "public_key": new_public_key()})
    idempotency_keys_purge_task.delay()
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_act_once(member, tenant):
    """Several clients fire the same request with one key at once: exactly one acts."""
    _, secret = token_for(member, tenant)
    body = {"name": "laptop", "public_key": new_public_key()}
    barrier = threading.Barrier(4)
    statuses = []

    def fire():
        client = bearer_client(secret)
        barrier.wait()
        try:
            statuses.append(_post_key(client, "same", body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert SSHKey.objects.count() == 1
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}


def test_purge_is_scheduled_hourly(settings):
    from portal.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["api-idempotency-keys-purge"]
    assert entry["task"] == "tenants.tasks.idempotency_keys_purge"
    assert entry["task"] in app.tasks
    assert entry["schedule"] <= 3600
