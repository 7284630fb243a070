"""Every change to tenants, memberships, invitations and API tokens goes through these functions."""

from tenants.services.events import tenant_event
from tenants.services.memberships import (
    invitation_accept,
    invitation_create,
    invitation_find,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    tenant_create,
    tenant_rename,
    user_sign_up,
    user_sign_up_invited,
)
from tenants.services.quotas import tenant_quota_set
from tenants.services.standing import tenant_hold, tenant_resume, tenant_suspend
from tenants.services.tokens import (
    api_token_can_manage,
    api_token_create,
    api_token_revoke,
    api_token_touch,
    api_tokens_revoke_by_operator,
    idempotency_keys_purge,
)

__all__ = [
    "api_token_can_manage",
    "api_token_create",
    "api_token_revoke",
    "api_token_touch",
    "api_tokens_revoke_by_operator",
    "idempotency_keys_purge",
    "invitation_accept",
    "invitation_create",
    "invitation_find",
    "invitation_revoke",
    "membership_change_role",
    "membership_remove",
    "tenant_create",
    "tenant_event",
    "tenant_hold",
    "tenant_quota_set",
    "tenant_rename",
    "tenant_resume",
    "tenant_suspend",
    "user_sign_up",
    "user_sign_up_invited",
]
