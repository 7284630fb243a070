"""Reads of tenants, members, invitations and API tokens that pages and the API show."""

import functools

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet

from portal import sql
from tenants.models import ActivityEntry, ApiToken, Invitation, Membership, Tenant, TenantEvent, UserSession
from tenants.roles import Permission

User = get_user_model()


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
    """The active token with this secret, or None (unknown, revoked, expired, or its user deactivated).

    Its `membership` (None once the user has left the token's tenant) comes in the same query: every API request
    needs both, and reads the membership afresh, so a removed or demoted member's token loses its rights at once.
    The query is written once in SQL (every API request runs it: the ORM's building of its joins cost more CPU than
    the rest of a small request).
    """
    if not token.startswith(ApiToken.PREFIX) or len(token) > 200:
        return None
    user_model = get_user_model()
    db = sql.current()
    with sql.prepared_cursor(db) as cursor:
        cursor.execute(_api_token_sql(db.vendor), [ApiToken.hash_token(token)])  # write-ok: a SELECT
        row = cursor.fetchone()
    if row is None:
        return None
    models = (ApiToken, user_model, Tenant)
    objects, start = [], 0
    for model in models:
        end = start + len(sql.attnames(model))
        objects.append(sql.instance_from_row(model, row[start:end]))
        start = end
    api_token, user, tenant = objects
    api_token.user, api_token.tenant = user, tenant
    if not api_token.is_active or not user.is_active:
        return None
    api_token.membership = None
    membership_id, role, created_at = sql.reader(Membership, _MEMBERSHIP_COLUMNS)(row[start:])
    if membership_id is not None:
        api_token.membership = Membership.from_db(
            DEFAULT_DB_ALIAS,
            ["id", "user_id", "tenant_id", "role", "created_at"],
            [membership_id, user.pk, tenant.pk, role, created_at],
        )
        api_token.membership.user, api_token.membership.tenant = user, tenant
    return api_token


_MEMBERSHIP_COLUMNS = ("id", "role", "created_at")


@functools.cache
def _api_token_sql(vendor: str) -> str:
    user_model = get_user_model()

    def every(model, alias: str) -> str:
        return sql.columns(model, sql.attnames(model), alias=alias)

    def column(model, name: str, alias: str) -> str:
        return sql.columns(model, [name], alias=alias)

    return (
        f"SELECT {every(ApiToken, 'k')}, {every(user_model, 'u')}, {every(Tenant, 't')}, "
        f"{sql.columns(Membership, _MEMBERSHIP_COLUMNS, alias='m')} "
        f"FROM {sql.table(ApiToken)} k "
        f"INNER JOIN {sql.table(user_model)} u ON {column(user_model, 'id', 'u')} = {column(ApiToken, 'user_id', 'k')} "
        f"INNER JOIN {sql.table(Tenant)} t ON {column(Tenant, 'id', 't')} = {column(ApiToken, 'tenant_id', 'k')} "
        f"LEFT OUTER JOIN {sql.table(Membership)} m ON {column(Membership, 'user_id', 'm')} = "
        f"{column(ApiToken, 'user_id', 'k')} AND {column(Membership, 'tenant_id', 'm')} = "
        f"{column(ApiToken, 'tenant_id', 'k')} "
        f"WHERE {column(ApiToken, 'secret_hash', 'k')} = %s"
    )


# --- two-factor log-in ---------------------------------------------------------------------------------------------


def user_has_two_factor(*, user) -> bool:
    """True when the user logs in with an authenticator app (recovery codes alone do not count)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return user.is_authenticated and TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def user_recovery_codes_left(*, user) -> int:
    from django_otp.plugins.otp_static.models import StaticToken

    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def user_tenants_requiring_two_factor(*, user) -> list[Tenant]:
    return list(Tenant.objects.filter(memberships__user=user, two_factor_required=True).order_by("name", "pk"))


def tenant_members_without_two_factor(*, tenant: Tenant) -> QuerySet[Membership]:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    enrolled = TOTPDevice.objects.filter(confirmed=True).values("user_id")
    return tenant_members(tenant=tenant).exclude(user__in=enrolled)


# --- activity log and sessions -------------------------------------------------------------------------------------


def activity_entries(*, tenant: Tenant) -> QuerySet[ActivityEntry]:
    """The organisation's activity log, newest first (filters narrow it further)."""
    return ActivityEntry.objects.for_tenant(tenant).order_by("-created_at", "-id")


def activity_actors(*, tenant: Tenant) -> QuerySet:
    """Everyone who appears in the organisation's activity log (members, former members, operators)."""
    return User.objects.filter(pk__in=ActivityEntry.objects.for_tenant(tenant).values("actor_id")).order_by("email")


def user_sessions(*, user) -> QuerySet[UserSession]:
    return UserSession.objects.filter(user=user).order_by("-last_seen_at", "pk")


def tenants_not_active() -> QuerySet[Tenant]:
    """For operators: organisations on hold or suspended, the longest-standing first."""
    return Tenant.objects.exclude(status=Tenant.Status.ACTIVE).order_by("hold_since", "name", "pk")
