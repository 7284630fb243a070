"""Operators' pages for backups, backup schedules and private images (compute.storage.admin imports this module):
read-only rows, state changes only as actions that call compute.storage.services (with a confirmation where
something is destroyed)."""

from django.contrib import admin

from compute.storage.backup_models import Backup, BackupPolicy, BackupState, PrivateImage
from compute.storage.services import backups as backup_services
from compute.storage.services.images import image_delete
from portal.admin_actions import ReadOnlyAdminMixin, confirmed_service_action

delete_backups = confirmed_service_action(
    lambda backup, user, confirmation: backup_services.backup_delete(backup=backup, user=user),
    name="delete_backups",
    description="Delete the selected backups…",
    title="Delete backups",
    explanation="Each backup's copy of the disk is destroyed; it can no longer be restored.",
    done_label="Deletion requested",
)


@admin.action(description="Run the backups that are due now", permissions=["change"])
def run_due_now(modeladmin, request, queryset):
    started = backup_services.backups_run_due()
    modeladmin.message_user(request, f"{len(started)} backups started.")


@admin.register(Backup)
class BackupAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "state", "kind", "source_name", "size_gib", "host", "created_at"]
    list_filter = ["state", "kind", "crash_consistent", "host"]
    search_fields = ["name", "id", "source_name", "tenant__name"]
    list_select_related = ["tenant", "host"]
    date_hierarchy = "created_at"
    actions = [delete_backups]

    def has_change_permission(self, request, obj=None) -> bool:
        # A read-only detail page; actions need "change" to be offered on the list.
        return obj is None and request.user.has_perm("storage.change_backup")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


@admin.register(BackupPolicy)
class BackupPolicyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["instance", "tenant", "enabled", "hour", "minute", "next_run_at", "last_run_at", "kept"]
    list_filter = ["enabled", "hour"]
    search_fields = ["instance__name", "tenant__name"]
    list_select_related = ["instance", "tenant"]
    actions = [run_due_now]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and request.user.has_perm("storage.change_backuppolicy")

    @admin.display(description="backups kept")
    def kept(self, policy) -> int:
        return policy.instance.backups.filter(state=BackupState.AVAILABLE).count()


delete_private_images = confirmed_service_action(
    lambda image, user, confirmation: image_delete(image=image, user=user),
    name="delete_private_images",
    description="Delete the selected private images…",
    title="Delete private images",
    explanation="Only images no machine uses are deleted (the others are named); billing for them stops now.",
    done_label="Deletion requested",
)


@admin.register(PrivateImage)
class PrivateImageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "state", "size_gib", "host", "source_name", "created_at"]
    list_filter = ["state", "host"]
    search_fields = ["name", "id", "tenant__name", "source_name"]
    list_select_related = ["tenant", "host"]
    actions = [delete_private_images]

    def get_queryset(self, request):
        return super().get_queryset(request).private()

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and request.user.has_perm("compute.change_image")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]
