"""SSH keys: every change goes through these functions."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from compute.models import SSHKey
from compute.sshkeys import parse_public_key
from portal.errors import InvalidRequest
from tenants.models import Tenant


def sshkey_create(*, tenant: Tenant, user, name: str, public_key: str) -> SSHKey:
    """Validates and fingerprints the key; a name or key the tenant already has is refused."""
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
            return SSHKey.objects.create(
                tenant=tenant,
                name=name,
                public_key=parsed.normalized,
                fingerprint=parsed.fingerprint,
                key_type=parsed.key_type,
                bits=parsed.bits,
                created_by=user,
            )
    except IntegrityError:
        raise InvalidRequest("You already have this key or a key with this name.", code="duplicate_key") from None


def sshkey_delete(*, key: SSHKey, user) -> None:
    """Removes the key from the tenant; instances keep the copy they were launched with."""
    SSHKey.objects.filter(pk=key.pk).delete()
