from django.contrib.auth import views as auth_views
from django.urls import path

from tenants import views, views_activity, views_security, views_tokens

urlpatterns = [
    path("accounts/login/", views_security.LoginView.as_view(), name="login"),
    path("accounts/two-factor/", views_security.TwoFactorVerifyView.as_view(), name="two-factor-verify"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.SignUpView.as_view(), name="signup"),
    path("accounts/profile/", views.ProfileView.as_view(), name="profile"),
    path("accounts/password/", views_security.PasswordChangeView.as_view(), name="password-change"),
    path("accounts/security/", views_security.SecurityView.as_view(), name="security"),
    path("accounts/security/two-factor/setup/", views_security.TwoFactorSetupView.as_view(), name="two-factor-setup"),
    path(
        "accounts/security/two-factor/disable/",
        views_security.TwoFactorDisableView.as_view(),
        name="two-factor-disable",
    ),
    path(
        "accounts/security/recovery-codes/",
        views_security.RecoveryCodesRenewView.as_view(),
        name="recovery-codes-renew",
    ),
    path("accounts/security/sessions/<uuid:pk>/end/", views_security.SessionEndView.as_view(), name="session-end"),
    path(
        "accounts/security/sessions/end-others/",
        views_security.SessionsEndOthersView.as_view(),
        name="sessions-end-others",
    ),
    path("accounts/verify-email/", views_security.EmailVerifyResendView.as_view(), name="email-verify-resend"),
    path("accounts/verify-email/<str:token>/", views_security.EmailVerifyView.as_view(), name="email-verify"),
    path(
        "accounts/password-reset/",
        auth_views.PasswordResetView.as_view(
            email_template_name="tenants/email/password_reset.txt",
            subject_template_name="tenants/email/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path("accounts/password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        views_security.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("organisations/new/", views.TenantCreateView.as_view(), name="tenant-create"),
    path("organisations/switch/", views.TenantSwitchView.as_view(), name="tenant-switch"),
    path("settings/", views.TenantSettingsView.as_view(), name="tenant-settings"),
    path("settings/two-factor/", views_security.TenantTwoFactorView.as_view(), name="tenant-two-factor"),
    path("settings/activity/", views_activity.ActivityView.as_view(), name="activity"),
    path("settings/activity/export.csv", views_activity.ActivityExportView.as_view(), name="activity-export"),
    path("team/", views.TeamView.as_view(), name="team"),
    path("team/leave/", views.LeaveTenantView.as_view(), name="team-leave"),
    path("team/members/<int:pk>/role/", views.MembershipRoleView.as_view(), name="membership-role"),
    path("team/members/<int:pk>/remove/", views.MembershipRemoveView.as_view(), name="membership-remove"),
    path("team/invitations/<uuid:pk>/revoke/", views.InvitationRevokeView.as_view(), name="invitation-revoke"),
    path("invitations/<str:token>/", views.InvitationAcceptView.as_view(), name="invitation-accept"),
    path("invitations/<str:token>/signup/", views.InvitationSignUpView.as_view(), name="invitation-signup"),
    path("api-tokens/", views_tokens.ApiTokenListView.as_view(), name="api-tokens"),
    path("api-tokens/<uuid:pk>/revoke/", views_tokens.ApiTokenRevokeView.as_view(), name="api-token-revoke"),
]
