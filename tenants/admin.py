import json

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count

from portal.admin_actions import ReadOnlyAdminMixin, confirmed_service_action
from tenants.models import ActivityEntry, ApiToken, Invitation, Membership, Quota, Tenant, TenantEvent, User
from tenants.services import (
    activity_record,
    api_tokens_revoke_by_operator,
    tenant_hold,
    tenant_quota_set,
    tenant_resume,
    tenant_suspend,
)
from tenants.services.quotas import QUOTA_FIELDS


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["full_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]})]


class MembershipInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Members and their roles; owners and admins change them on the organisation's team page."""

    model = Membership
    fields = ["user", "role", "created_at"]
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "members and roles"
    classes = ["ops-inline"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


class QuotaInline(admin.StackedInline):
    """Editable limits, saved through tenants.services (TenantAdmin.save_formset): the organisation's log shows it.

    Stacked, not tabular: each field keeps its own label (a tabular row has only column headings)."""

    model = Quota
    fields = list(QUOTA_FIELDS)
    can_delete = False
    max_num = 1
    classes = ["ops-inline"]


def _standing_action(*, status: str, title: str, explanation: str, service):
    return confirmed_service_action(
        lambda tenant, user, confirmation: service(tenant=tenant, actor=user, note=confirmation["note"]),
        name=f"standing_{status}",
        description=f"{title}…",
        title=title,
        explanation=explanation,
        done_label=Tenant.Status(status).label,
    )


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """Operators change an organisation's standing only through the actions, which stop and start its machines."""

    list_display = ["name", "status", "status_reason", "created_at", "member_count"]
    list_filter = ["status", "status_reason"]
    search_fields = ["name", "id", "memberships__user__email"]
    # The organisation names itself; its standing changes only through the actions below.
    readonly_fields = ["name", "id", "status", "status_reason", "hold_since", "suspended_at", "created_at"]
    fieldsets = [
        (None, {"fields": ["name", "id", "created_at"]}),
        ("Standing", {"fields": ["status", "status_reason", "hold_since", "suspended_at"]}),
    ]
    inlines = [QuotaInline, MembershipInline]
    actions = [
        _standing_action(
            status=Tenant.Status.HOLD,
            title="Put on hold",
            explanation="No new machines or resizes until the hold is lifted; running machines keep running.",
            service=tenant_hold,
        ),
        _standing_action(
            status=Tenant.Status.SUSPENDED,
            title="Suspend",
            explanation="Every running machine of these organisations is stopped (and stays billed) until resumed.",
            service=tenant_suspend,
        ),
        _standing_action(
            status=Tenant.Status.ACTIVE,
            title="Resume",
            explanation="The organisations become active again; their stopped machines can be started.",
            service=tenant_resume,
        ),
    ]

    def has_add_permission(self, request) -> bool:
        return False  # organisations are made by the people who sign up

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # their history (machines, invoices) is kept; suspend instead

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("memberships"))

    def save_model(self, request, obj, form, change) -> None:
        """Every field of the organisation itself is read-only here: nothing to save."""

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not Quota:
            return super().save_formset(request, form, formset, change)
        # The service logs the change in the organisation's log; Django's log gets it here, so the change message
        # (which log_change above would copy into the activity log a second time) leaves it out.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for quota_form in formset.forms:
            if quota_form.has_changed():
                limits = {name: quota_form.cleaned_data[name] for name in QUOTA_FIELDS}
                tenant_quota_set(tenant=form.instance, actor=request.user, limits=limits)
                changed = ", ".join(quota_form.changed_data)
                admin.ModelAdmin.log_change(self, request, form.instance, f"Quota changed: {changed}.")
        return None

    def log_change(self, request, obj, message):
        """Edits here (name, quota, memberships) go into the organisation's activity log, as the operator."""
        logged = super().log_change(request, obj, message)
        if message:
            activity_record(
                tenant_id=obj.pk,
                resource_type=ActivityEntry.ResourceType.ORGANISATION,
                resource_id=obj.pk,
                resource_name=obj.name,
                action="operator_edit",
                action_label="Changed by an operator",
                actor=request.user,
                message=LogEntry(
                    change_message=json.dumps(message) if isinstance(message, list) else message
                ).get_change_message(),
            )
        return logged

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj) -> int:
        return obj._members


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "tenant", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role"]
    search_fields = ["email", "tenant__name"]
    readonly_fields = ["token_hash", "created_at", "accepted_at", "accepted_by", "invited_by"]
    list_select_related = ["tenant"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Operators see every API token (never a secret: only its hash is stored) and can revoke them."""

    list_display = ["prefix", "name", "user", "tenant", "scope", "created_at", "last_used_at", "expires_at", "status"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "user__email", "tenant__name"]
    list_select_related = ["user", "tenant"]
    readonly_fields = [f.name for f in ApiToken._meta.fields]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # tokens are created by their users, who alone ever see the secret

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        count = api_tokens_revoke_by_operator(tokens=queryset, actor=request.user)
        self.message_user(request, f"{count} token{'s' if count != 1 else ''} revoked.")


@admin.register(TenantEvent)
class TenantEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The organisations' own logs, read-only: they are written only by tenants.services."""

    list_display = ["created_at", "tenant", "action", "actor", "result", "message"]
    list_filter = ["action", "result"]
    search_fields = ["tenant__name", "actor__email", "message"]
    list_select_related = ["tenant", "actor"]
    readonly_fields = [f.name for f in TenantEvent._meta.fields]
