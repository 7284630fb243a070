"""SSH keys: every change goes through these functions."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from compute.models import SSHKey
from compute.sshkeys import parse_public_key
from portal.errors import InvalidRequest
from tenants.labels import labels_checked
from tenants.models import ActivityEntry, Tenant
from tenants.services import activity_record, user_check_verified


def sshkey_create(*, tenant: Tenant, user, name: str, public_key: str, labels: dict | None = None) -> SSHKey:
    """Validates and fingerprints the key; a name or key the tenant already has is refused."""
    user_check_verified(user=user, verb="add an SSH key")
    labels = labels_checked(labels)
    name = (name or "").strip()
    if not name:
        raise InvalidRequest("Give the key a name.", code="invalid_name", details={"field": "name"})
    if len(name) > 100:
        raise InvalidRequest("The name is too long: at most 100 characters.", code="invalid_name")
    try:
        parsed = parse_public_key(public_key)
    except ValidationError as error:
        raise InvalidRequest(error.messages[0], code="invalid_key", details={"field": "public_key"}) from None
    existing = SSHKey.objects.for_tenant(tenant).filter(fingerprint=parsed.fingerprint).first()
    if existing is not None:
        raise InvalidRequest(
            f"This key is already saved as {existing.name}.", code="duplicate_key", details={"field": "public_key"}
        )
    if SSHKey.objects.for_tenant(tenant).filter(name=name).exists():
        raise InvalidRequest(f"You already have a key called {name}.", code="duplicate_name", details={"field": "name"})
    try:
        with transaction.atomic():
            key = SSHKey.objects.create(
                tenant=tenant,
                name=name,
                public_key=parsed.normalized,
                fingerprint=parsed.fingerprint,
                key_type=parsed.key_type,
                bits=parsed.bits,
                labels=labels,
                created_by=user,
            )
            _activity(key, "create", "SSH key added", user, message=f"{key.key_type} {key.fingerprint}")
            return key
    except IntegrityError:
        raise InvalidRequest("You already have this key or a key with this name.", code="duplicate_key") from None


def sshkey_delete(*, key: SSHKey, user) -> None:
    """Removes the key from the tenant; instances keep the copy they were launched with."""
    with transaction.atomic():
        if SSHKey.objects.filter(pk=key.pk).delete()[0]:
            _activity(key, "delete", "SSH key deleted", user, message=key.fingerprint)


def _activity(key: SSHKey, action: str, label: str, user, *, message: str) -> None:
    activity_record(
        tenant_id=key.tenant_id,
        resource_type=ActivityEntry.ResourceType.SSH_KEY,
        resource_id=key.pk,
        resource_name=key.name,
        action=action,
        action_label=label,
        actor=user,
        message=message,
    )
