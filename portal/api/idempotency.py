"""Idempotency-Key for POST: the first response is stored for 24 hours per credential and replayed to retries.

The key row is claimed *before* acting, in its own transaction, under a unique constraint: of two concurrent
requests with one key exactly one inserts the row and acts; the other finds it unfinished and gets a 409.
"""

# write-ok-file: API plumbing: the stored first response that retries replay

import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from portal.api.exceptions import IdempotentReplay
from portal.errors import Conflict, Unprocessable
from tenants.models import IdempotencyKey

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
# Statuses that say "try again later": remembering them would make the retry they invite impossible.
NOT_STORED = {409, 429}
REPLAYED_HEADERS = ("Location",)


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    raw = f"{request.method}\n{request.path}\n{body}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _key_from(request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationError({HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."]})
    return key


def claim(*, request, owner: str) -> IdempotencyKey | None:
    """Claims the request's key for this request; None when it sent no key.

    Raises IdempotentReplay with the stored response for a finished retry, Unprocessable for a key reused with
    another request, and Conflict while the first request with the key is still being handled.
    """
    key = _key_from(request)
    if key is None:
        return None
    fingerprint = _fingerprint(request)
    for _attempt in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    owner=owner, key=key, fingerprint=fingerprint, created_at=now, expires_at=now + TTL
                )
        except IntegrityError:
            existing = IdempotencyKey.objects.filter(owner=owner, key=key).first()
        if existing is None:
            continue  # released or purged in between: claim again
        if existing.expires_at <= now:
            IdempotencyKey.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if existing.fingerprint != fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was already used with a different request; use a new key.",
                code="idempotency_key_reused",
            )
        if existing.status_code is None:
            raise Conflict(
                "A request with this Idempotency-Key is still being handled; retry shortly.",
                code="idempotency_request_in_progress",
            )
        headers = {**existing.response_headers, "Idempotent-Replayed": "true"}
        raise IdempotentReplay(Response(existing.response_body, status=existing.status_code, headers=headers))
    raise Conflict(
        "A request with this Idempotency-Key is still being handled; retry shortly.",
        code="idempotency_request_in_progress",
    )


def record(*, claimed: IdempotencyKey, response) -> None:
    """Stores the response to replay, or releases the key when the outcome should not be replayed."""
    if response.status_code >= 500 or response.status_code in NOT_STORED:
        release(claimed=claimed)
        return
    claimed.status_code = response.status_code
    claimed.response_body = json.loads(json.dumps(getattr(response, "data", None), default=str))
    claimed.response_headers = {name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)}
    claimed.save(update_fields=["status_code", "response_body", "response_headers"])


def release(*, claimed: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=claimed.pk, status_code__isnull=True).delete()
