"""Reads of tenants, members, invitations and API tokens that pages and the API show."""

from django.db.models import QuerySet

from tenants.models import ApiToken, Invitation, Membership, Tenant, TenantEvent
from tenants.roles import Permission


def tenant_members(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.for_tenant(tenant).select_related("user").order_by("user__email")


def tenant_pending_invitations(*, tenant: Tenant) -> QuerySet[Invitation]:
    return Invitation.objects.for_tenant(tenant).pending().select_related("invited_by").order_by("-created_at")


def tenant_events(*, tenant: Tenant, limit: int = 50) -> QuerySet[TenantEvent]:
    """The organisation's latest log entries, newest first, with who made each change."""
    return TenantEvent.objects.for_tenant(tenant).select_related("actor").order_by("-created_at", "-id")[:limit]


def api_tokens_visible(*, membership: Membership, tokens: QuerySet[ApiToken] | None = None) -> QuerySet[ApiToken]:
    """The tokens a member may see: their own, or all of the tenant's for owners and admins.

    `tokens` narrows an already tenant-scoped queryset (a view's); by default the tenant's tokens.
    """
    if tokens is None:
        tokens = ApiToken.objects.for_tenant(membership.tenant)
    tokens = tokens.select_related("user")
    if not membership.has(Permission.MANAGE_MEMBERS):
        tokens = tokens.filter(user=membership.user)
    return tokens.order_by("-created_at", "id")


def api_token_find(*, token: str) -> ApiToken | None:
    """The active token with this secret, or None (unknown, revoked, expired, or its user deactivated)."""
    if not token.startswith(ApiToken.PREFIX) or len(token) > 200:
        return None
    api_token = ApiToken.objects.select_related("user", "tenant").filter(secret_hash=ApiToken.hash_token(token)).first()
    if api_token is None or not api_token.is_active or not api_token.user.is_active:
        return None
    return api_token


def tenants_not_active() -> QuerySet[Tenant]:
    """For operators: organisations on hold or suspended, the longest-standing first."""
    return Tenant.objects.exclude(status=Tenant.Status.ACTIVE).order_by("hold_since", "name", "pk")
