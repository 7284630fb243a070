"""Operators' view of storage: volumes and snapshots with their work in progress, the stuck ones first to hand, the
room used in each host's pool, and actions that go through the services (so logs, billing and workers follow)."""

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone

from compute.storage import services
from compute.storage.models import (
    SNAPSHOT_TRANSITIONAL_STATES,
    VOLUME_TRANSITIONAL_STATES,
    SimulatedVolume,
    Snapshot,
    StorageEvent,
    Volume,
)
from compute.storage.selectors import pool_usage
from portal.admin_actions import ReadOnlyAdminMixin, service_action

OPERATOR_REQUEUE = "Sent to the workers again by an operator."


class StuckFilter(admin.SimpleListFilter):
    """Work past its deadline, or failed: what an operator looks at first."""

    title = "needs attention"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [("overdue", "work past its deadline"), ("error", "in error"), ("busy", "work in progress")]

    def queryset(self, request, queryset):
        transitional = VOLUME_TRANSITIONAL_STATES if queryset.model is Volume else SNAPSHOT_TRANSITIONAL_STATES
        if self.value() == "overdue":
            return queryset.filter(state__in=transitional, task_deadline__lt=timezone.now())
        if self.value() == "error":
            return queryset.filter(state="error")
        if self.value() == "busy":
            return queryset.filter(state__in=transitional)
        return queryset


def _kind(item) -> str:
    return "volume" if isinstance(item, Volume) else "snapshot"


def _with_work(queryset):
    return queryset.exclude(task="")


requeue = service_action(
    lambda item, user: services.storage_task_requeue(
        kind=_kind(item),
        pk=str(item.pk),
        seen_enqueued_at=item.task_enqueued_at,
        seen_progress_at=item.task_progress_at,
        reason=OPERATOR_REQUEUE,
    ),
    name="requeue",
    description="Send stuck work to the workers again",
    done_label="Sent again",
    select=_with_work,
)
fail_work = service_action(
    lambda item, user: services.storage_task_failed(
        kind=_kind(item), pk=str(item.pk), task=item.task, reason=f"Stopped by an operator ({user})."
    ),
    name="fail_work",
    description="Fail the work in progress (the item goes back, or to error)",
    done_label="Failed",
    select=_with_work,
)
detach = service_action(
    lambda volume, user: services.volume_detach(volume=volume, user=user),
    name="detach",
    description="Detach from its machine",
    done_label="Detaching",
)
delete_volumes = service_action(
    lambda volume, user: services.volume_delete(volume=volume, user=user),
    name="delete_volumes",
    description="Delete (billing stops; the data is destroyed)",
    done_label="Deleting",
    permission="delete",
)
delete_snapshots = service_action(
    lambda snapshot, user: services.snapshot_delete(snapshot=snapshot, user=user),
    name="delete_snapshots",
    description="Delete (billing stops)",
    done_label="Deleting",
    permission="delete",
)


class _StorageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_filter = [StuckFilter, "state", "host"]
    search_fields = ["name", "tenant__name", "id"]
    date_hierarchy = "created_at"
    readonly_fields = ["task_params"]

    def has_change_permission(self, request, obj=None) -> bool:
        # Read-only detail pages; "change" is needed for the actions on the list.
        return obj is None and admin.ModelAdmin.has_change_permission(self, request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting goes through the actions (the service), never the admin's own delete.
        opts = self.opts
        return obj is None and request.user.has_perm(f"{opts.app_label}.delete_{opts.model_name}")

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="deadline")
    def deadline(self, obj) -> str:
        if not obj.task:
            return "—"
        overdue = obj.task_deadline and obj.task_deadline < timezone.now()
        return f"{obj.task} by {obj.task_deadline:%d %b %H:%M}" + (" (overdue)" if overdue else "")


@admin.register(Volume)
class VolumeAdmin(_StorageAdmin):
    list_display = ["name", "tenant", "size_gib", "state", "instance", "device", "host", "deadline", "created_at"]
    list_select_related = ["tenant", "instance", "host"]
    actions = [requeue, fail_work, detach, delete_volumes]
    change_list_template = "admin/storage/volume/change_list.html"

    def changelist_view(self, request, extra_context=None):
        # The room each host's pool has, above the list: what placement and capacity planning look at.
        extra_context = {**(extra_context or {}), "pools": pool_usage()}
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(Snapshot)
class SnapshotAdmin(_StorageAdmin):
    list_display = ["name", "tenant", "size_gib", "state", "source_name", "crash_consistent", "host", "deadline"]
    list_select_related = ["tenant", "host"]
    actions = [requeue, fail_work, delete_snapshots]


@admin.register(StorageEvent)
class StorageEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "tenant", "action", "result", "subject", "message", "actor"]
    list_filter = ["action", "result"]
    search_fields = ["subject", "message", "tenant__name"]
    list_select_related = ["tenant", "actor"]
    date_hierarchy = "created_at"


@admin.register(SimulatedVolume)
class SimulatedVolumeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "host", "size_gib", "domain", "device", "source"]
    list_filter = ["host"]
    search_fields = ["name", "domain"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(~Q(name=""))


# Backups, backup schedules and private images have their operators' pages in a module of their own.
from compute.storage import backup_admin  # noqa: E402,F401
