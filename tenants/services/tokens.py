"""API tokens: creating, revoking and recording their use (what a page lists lives in tenants.selectors).

Who may do what: every member, whatever their role, may create tokens for themselves and revoke their own;
owners and admins (the roles that manage members) also see and may revoke every token of the tenant. A token
never carries more than its user's *current* role: the API resolves the membership on every request.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from portal.errors import Forbidden, InvalidRequest
from tenants.models import ApiToken, IdempotencyKey, Membership
from tenants.roles import Permission

# last_used_at is written at most this often per token, so a busy script does not cause a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_create(
    *, membership: Membership, name: str, scope: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for the membership's user in its tenant; returns the row and the secret, shown only once."""
    name = name.strip()
    if not name:
        raise InvalidRequest("Give the token a name.", code="invalid_name")
    if scope not in ApiToken.Scope.values:
        raise InvalidRequest(f"{scope!r} is not a token scope.", code="invalid_scope")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidRequest("The expiry must be in the future.", code="invalid_expiry")
    token, prefix, secret_hash = ApiToken.new_secret()
    api_token = ApiToken.objects.create(
        tenant=membership.tenant,
        user=membership.user,
        name=name,
        scope=scope,
        expires_at=expires_at,
        prefix=prefix,
        secret_hash=secret_hash,
    )
    return api_token, token


def api_token_can_manage(*, membership: Membership, api_token: ApiToken) -> bool:
    return api_token.user_id == membership.user_id or membership.has(Permission.MANAGE_MEMBERS)


def api_token_revoke(*, api_token: ApiToken, actor_membership: Membership) -> ApiToken:
    """Revokes at once: the next request with the token is a 401. Revoking twice is harmless."""
    if api_token.tenant_id != actor_membership.tenant_id or not api_token_can_manage(
        membership=actor_membership, api_token=api_token
    ):
        raise Forbidden("You can only revoke your own tokens.")
    with transaction.atomic():
        locked = ApiToken.objects.select_for_update().get(pk=api_token.pk)
        if locked.revoked_at is None:
            locked.revoked_at = timezone.now()
            locked.save(update_fields=["revoked_at"])
    return locked


def api_tokens_revoke_by_operator(*, tokens: QuerySet[ApiToken]) -> int:
    """Operators (admin site): revokes every still-active token in `tokens`; returns how many were revoked."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_token_touch(*, api_token: ApiToken, now: datetime | None = None) -> None:
    """Records use, at most once per LAST_USED_RESOLUTION."""
    now = now or timezone.now()
    if api_token.last_used_at is None or now - api_token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
        api_token.last_used_at = now


def idempotency_keys_purge(*, now: datetime | None = None) -> int:
    """Deletes idempotency records past their 24 hours; returns how many went."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
