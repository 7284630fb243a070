"""Every change to tenants, memberships, invitations, API tokens, accounts and their security goes through these
functions."""

from tenants.services.accounts import (
    email_verification_send,
    email_verify,
    user_check_verified,
    user_mark_email_verified,
    user_profile_update,
)
from tenants.services.activity import (
    activity_entry_for_event,
    activity_from_event,
    activity_purge,
    activity_record,
)
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
from tenants.services.quotas import quota_lock, tenant_quota_set
from tenants.services.sessions import (
    user_device_logged_in,
    user_password_changed,
    user_session_end,
    user_session_forget,
    user_session_seen,
    user_sessions_end_others,
    user_sessions_purge,
)
from tenants.services.standing import tenant_hold, tenant_resume, tenant_suspend
from tenants.services.tokens import (
    api_token_can_manage,
    api_token_check_use,
    api_token_create,
    api_token_revoke,
    api_token_touch,
    api_tokens_revoke_by_operator,
    idempotency_keys_purge,
)
from tenants.services.two_factor import (
    tenant_require_two_factor,
    two_factor_disable,
    two_factor_enrol,
    two_factor_new_secret,
    two_factor_recovery_codes_renew,
    two_factor_verify,
)

__all__ = [
    "activity_entry_for_event",
    "activity_from_event",
    "activity_purge",
    "activity_record",
    "api_token_can_manage",
    "api_token_check_use",
    "api_token_create",
    "api_token_revoke",
    "api_token_touch",
    "api_tokens_revoke_by_operator",
    "email_verification_send",
    "email_verify",
    "idempotency_keys_purge",
    "invitation_accept",
    "invitation_create",
    "invitation_find",
    "invitation_revoke",
    "membership_change_role",
    "membership_remove",
    "quota_lock",
    "tenant_create",
    "tenant_event",
    "tenant_hold",
    "tenant_quota_set",
    "tenant_rename",
    "tenant_require_two_factor",
    "tenant_resume",
    "tenant_suspend",
    "two_factor_disable",
    "two_factor_enrol",
    "two_factor_new_secret",
    "two_factor_recovery_codes_renew",
    "two_factor_verify",
    "user_check_verified",
    "user_device_logged_in",
    "user_mark_email_verified",
    "user_password_changed",
    "user_profile_update",
    "user_session_end",
    "user_session_forget",
    "user_session_seen",
    "user_sessions_end_others",
    "user_sessions_purge",
    "user_sign_up",
    "user_sign_up_invited",
]
