"""API tokens: creating, revoking and recording their use (what a page lists lives in tenants.selectors).

Who may do what: every member, whatever their role, may create tokens for themselves and revoke their own;
owners and admins (the roles that manage members) also see and may revoke every token of the tenant. A token
never carries more than its user's *current* role: the API resolves the membership on every request.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from portal.errors import Forbidden, InvalidRequest
from tenants.models import ApiToken, EventResult, IdempotencyKey, Membership, TenantEvent
from tenants.networks import parse_networks
from tenants.roles import Permission
from tenants.selectors import user_has_two_factor
from tenants.services.events import tenant_event

# last_used_at is written at most this often per token, so a busy script does not cause a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_create(
    *,
    membership: Membership,
    name: str,
    scope: str,
    expires_at: datetime | None = None,
    allowed_networks: str | Iterable[str] = (),
) -> tuple[ApiToken, str]:
    """A new token for the membership's user in its tenant; returns the row and the secret, shown only once.

    `allowed_networks` (CIDRs) limits where it may be used from; empty: anywhere.
    """
    name = name.strip()
    if not name:
        raise InvalidRequest("Give the token a name.", code="invalid_name")
    if scope not in ApiToken.Scope.values:
        raise InvalidRequest(f"{scope!r} is not a token scope.", code="invalid_scope")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidRequest("The expiry must be in the future.", code="invalid_expiry")
    networks = parse_networks(allowed_networks)
    token, prefix, secret_hash = ApiToken.new_secret()
    with transaction.atomic():
        api_token = ApiToken.objects.create(
            tenant=membership.tenant,
            user=membership.user,
            name=name,
            scope=scope,
            expires_at=expires_at,
            allowed_networks=networks,
            prefix=prefix,
            secret_hash=secret_hash,
        )
        expiry = f"expires {expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if expires_at else "never expires"
        if networks:
            expiry += f", only from {', '.join(networks)}"
        tenant_event(
            tenant=membership.tenant,
            action=TenantEvent.Action.TOKEN_CREATE,
            actor=membership.user,
            message=f"Created the token {_describe(api_token)}: {api_token.get_scope_display().lower()}, {expiry}.",
            resource_id=api_token.pk,
            resource_name=api_token.name,
        )
    return api_token, token


def _describe(api_token: ApiToken) -> str:
    return f"“{api_token.name}” ({api_token.prefix}…)"


def _revoke_locked(api_token: ApiToken, *, actor, message: str) -> None:
    """Revokes a token the caller has locked, with its tenant and user loaded, and logs who did it."""
    api_token.revoked_at = timezone.now()
    api_token.save(update_fields=["revoked_at"])
    tenant_event(
        tenant=api_token.tenant,
        action=TenantEvent.Action.TOKEN_REVOKE,
        actor=actor,
        message=message,
        resource_id=api_token.pk,
        resource_name=api_token.name,
    )


def _lock_tokens():
    # Only the token rows: its tenant and user are read alongside but not locked.
    return ApiToken.objects.select_for_update(of=("self",)).select_related("tenant", "user")


def api_token_can_manage(*, membership: Membership, api_token: ApiToken) -> bool:
    return api_token.user_id == membership.user_id or membership.has(Permission.MANAGE_MEMBERS)


def api_token_revoke(*, api_token: ApiToken, actor_membership: Membership) -> ApiToken:
    """Revokes at once: the next request with the token is a 401. Revoking twice is harmless."""
    if api_token.tenant_id != actor_membership.tenant_id or not api_token_can_manage(
        membership=actor_membership, api_token=api_token
    ):
        raise Forbidden("You can only revoke your own tokens.")
    with transaction.atomic():
        locked = _lock_tokens().get(pk=api_token.pk)
        if locked.revoked_at is None:
            _revoke_locked(
                locked,
                actor=actor_membership.user,
                message=f"Revoked the token {_describe(locked)} of {locked.user.email}.",
            )
    return locked


def api_tokens_revoke_by_operator(*, tokens: QuerySet[ApiToken], actor) -> int:
    """Operators (admin site): revokes every still-active token in `tokens`; returns how many were revoked.

    Each revocation goes into its tenant's log with the operator as actor.
    """
    with transaction.atomic():
        # Locked in pk order, so two operators revoking overlapping selections cannot deadlock.
        locked = list(_lock_tokens().filter(pk__in=tokens.values("pk"), revoked_at__isnull=True).order_by("pk"))
        for api_token in locked:
            _revoke_locked(
                api_token,
                actor=actor,
                message=f"A Hangar operator revoked the token {_describe(api_token)} of {api_token.user.email}.",
            )
    return len(locked)


def api_token_touch(*, api_token: ApiToken, ip_address: str | None = None, now: datetime | None = None) -> None:
    """Records use (time and address): at most once per LAST_USED_RESOLUTION, or at once from a new address."""
    now = now or timezone.now()
    stale = api_token.last_used_at is None or now - api_token.last_used_at >= LAST_USED_RESOLUTION
    if stale or (ip_address and ip_address != api_token.last_used_ip):
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now, last_used_ip=ip_address)
        api_token.last_used_at, api_token.last_used_ip = now, ip_address


def api_token_check_use(*, api_token: ApiToken, membership: Membership, ip_address: str | None) -> None:
    """Refuses a request with a valid token that must not be used: from outside the token's networks, or while the
    organisation requires two-factor log-in and the token's user has none. Refusals go into the activity log (at
    most one a minute per token and reason, so a misconfigured script cannot flood it)."""
    if not api_token.allows_address(ip_address):
        _refuse_use(
            api_token,
            membership,
            reason="network",
            error=Forbidden(
                f"This token may not be used from {ip_address or 'an unknown address'}: it is limited to "
                f"{', '.join(api_token.allowed_networks)}.",
                code="token_network_refused",
                details={"ip_address": ip_address, "allowed_networks": api_token.allowed_networks},
            ),
        )
    if membership.tenant.two_factor_required and not user_has_two_factor(user=membership.user):
        _refuse_use(
            api_token,
            membership,
            reason="two_factor",
            error=Forbidden(
                f"{membership.tenant.name} requires two-factor log-in: {membership.user.email} must turn it on "
                "(dashboard → Security) before this token works again.",
                code="two_factor_required",
            ),
        )


def _refuse_use(api_token: ApiToken, membership: Membership, *, reason: str, error: Forbidden) -> None:
    if cache.add(f"hangar:token-refused:{api_token.pk}:{reason}", 1, timeout=60):
        tenant_event(
            tenant=membership.tenant,
            action=TenantEvent.Action.TOKEN_REFUSED,
            actor=membership.user,
            result=EventResult.REFUSED,
            message=f"Refused the token {_describe(api_token)}: {error.message}",
            resource_id=api_token.pk,
            resource_name=api_token.name,
        )
    raise error


def idempotency_keys_purge(*, now: datetime | None = None) -> int:
    """Deletes idempotency records past their 24 hours; returns how many went."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
