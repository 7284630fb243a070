from django.contrib.auth import views as auth_views
from django.urls import path

from tenants import views, views_tokens

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.SignUpView.as_view(), name="signup"),
    path("accounts/profile/", views.ProfileView.as_view(), name="profile"),
    path("accounts/password/", views.PasswordChangeView.as_view(), name="password-change"),
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
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("organisations/new/", views.TenantCreateView.as_view(), name="tenant-create"),
    path("organisations/switch/", views.TenantSwitchView.as_view(), name="tenant-switch"),
    path("settings/", views.TenantSettingsView.as_view(), name="tenant-settings"),
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
