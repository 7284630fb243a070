"""Operators' view of compute: hosts and their capacity, the catalog, instances, events and unknown domains.

Instances are read-only here: every change goes through compute.services (force stop, mark error) so that the
event log, billing and the workers stay consistent with what operators do.
"""

from django.contrib import admin, messages
from django.db.models import Count, Q, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils.html import format_html

from compute import services
from compute.models import (
    Flavor,
    Host,
    Image,
    Instance,
    InstanceEvent,
    InstanceState,
    OrphanDomain,
    SimulatedDomain,
    SSHKey,
)
from compute.reconciler import reconcile
from compute.scheduler import host_usage
from portal.admin_actions import ReadOnlyAdminMixin, run_service_action
from portal.errors import ServiceError

LIVE = ~Q(instances__state=InstanceState.DELETED)


def _held(resource: str):
    return Coalesce(
        Sum(
            Greatest(
                f"instances__flavor__{resource}",
                Coalesce(f"instances__resize_flavor__{resource}", f"instances__flavor__{resource}"),
            ),
            filter=LIVE,
        ),
        Value(0),
    )


class HostInstanceInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Instance
    fk_name = "host"
    fields = ["link", "tenant", "state", "flavor", "private_ip", "created_at"]
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "live instances on this host"
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).live().select_related("tenant", "flavor")

    @admin.display(description="instance")
    def link(self, obj) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:compute_instance_change", args=[obj.pk]), obj.name)


@admin.action(description="Reconcile now (all hosts)")
def reconcile_now(modeladmin, request, queryset) -> None:
    report = reconcile()
    modeladmin.message_user(request, f"Reconciled: {report.summary()}", messages.SUCCESS)


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "driver",
        "enabled",
        "draining",
        "vcpus_column",
        "ram_column",
        "disk_column",
        "live_instances",
    ]
    list_filter = ["driver", "enabled", "draining"]
    search_fields = ["name", "uri"]
    readonly_fields = ["id", "created_at", "capacity"]
    actions = [reconcile_now]
    inlines = [HostInstanceInline]
    fieldsets = [
        (None, {"fields": ["name", "driver", "uri", "enabled", "draining", "id", "created_at"]}),
        ("Capacity", {"fields": ["vcpus", "ram_mib", "disk_gib", "capacity"]}),
        ("Overcommit", {"fields": ["cpu_allocation_ratio", "ram_allocation_ratio", "disk_allocation_ratio"]}),
        (
            "Simulated driver",
            {
                "fields": ["boot_seconds", "stop_seconds", "fail_next_creates", "failure_kind"],
                "description": "Only used by hosts whose driver is simulated.",
            },
        ),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _vcpus=_held("vcpus"),
                _ram=_held("ram_mib"),
                _disk=_held("disk_gib"),
                _instances=Count("instances", filter=LIVE),
            )
        )

    @staticmethod
    def _used_free(used: int, allocatable: int, unit: str = "") -> str:
        return f"{used} used / {allocatable - used} free{unit} (of {allocatable})"

    @admin.display(description="vCPUs (after overcommit)", ordering="_vcpus")
    def vcpus_column(self, obj) -> str:
        return self._used_free(obj._vcpus, obj.vcpus_allocatable)

    @admin.display(description="RAM MiB (after overcommit)", ordering="_ram")
    def ram_column(self, obj) -> str:
        return self._used_free(obj._ram, obj.ram_mib_allocatable)

    @admin.display(description="disk GiB (after overcommit)", ordering="_disk")
    def disk_column(self, obj) -> str:
        return self._used_free(obj._disk, obj.disk_gib_allocatable)

    @admin.display(description="instances", ordering="_instances")
    def live_instances(self, obj) -> str:
        url = reverse("admin:compute_instance_changelist") + f"?host__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj._instances)

    @admin.display(description="used / free after overcommit")
    def capacity(self, obj) -> str:
        if obj is None or obj._state.adding:
            return "-"
        usage = host_usage(obj)
        return (
            f"vCPUs {usage.vcpus_used} used, {usage.vcpus_free} free of {obj.vcpus_allocatable}; "
            f"RAM {usage.ram_mib_used} MiB used, {usage.ram_mib_free} MiB free of {obj.ram_mib_allocatable}; "
            f"disk {usage.disk_gib_used} GiB used, {usage.disk_gib_free} GiB free of {obj.disk_gib_allocatable}; "
            f"{usage.instances} instances"
        )


@admin.register(Flavor)
class FlavorAdmin(admin.ModelAdmin):
    list_display = ["name", "vcpus", "ram_mib", "disk_gib", "monthly_price", "hourly_price", "active"]
    list_filter = ["active"]
    search_fields = ["name"]
    readonly_fields = ["id"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["name", "os", "version", "min_disk_gib", "min_ram_mib", "disk_format", "active"]
    list_filter = ["active", "os"]
    search_fields = ["name", "os", "version"]
    readonly_fields = ["id"]
    fieldsets = [
        (None, {"fields": ["id", "name", "os", "version", "min_disk_gib", "min_ram_mib", "active"]}),
        ("Source (a base disk, or a kernel and initrd)", {"fields": ["disk_path", "disk_format", "kernel_path"]}),
        (None, {"fields": ["initrd_path", "kernel_cmdline"]}),
    ]


@admin.register(SSHKey)
class SSHKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "key_type", "bits", "fingerprint", "created_at"]
    list_filter = ["key_type"]
    search_fields = ["name", "fingerprint", "tenant__name"]
    list_select_related = ["tenant"]


class InstanceEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = InstanceEvent
    fields = ["created_at", "action", "result", "actor", "message"]
    readonly_fields = fields
    extra = 0
    ordering = ["-created_at", "-id"]


@admin.action(description="Force stop (cut the power)")
def force_stop(modeladmin, request, queryset) -> None:
    run_service_action(
        modeladmin,
        request,
        queryset,
        call=lambda instance: services.instance_stop(instance=instance, user=request.user, force=True),
        done_label="Force stop requested",
    )


@admin.action(description="Mark as error")
def mark_error(modeladmin, request, queryset) -> None:
    reason = f"Marked as failed by operator {request.user}."
    run_service_action(
        modeladmin,
        request,
        queryset,
        call=lambda instance: services.instance_mark_error(instance=instance, user=request.user, reason=reason),
        done_label="Marked as error",
    )


@admin.register(Instance)
class InstanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "state", "power_state", "host", "flavor", "image", "private_ip", "created_at"]
    list_filter = ["state", "host", "tenant", "flavor"]
    search_fields = ["name", "id", "private_ip", "tenant__name"]
    list_select_related = ["tenant", "host", "flavor", "image"]
    date_hierarchy = "created_at"
    actions = [force_stop, mark_error, reconcile_now]
    inlines = [InstanceEventInline]
    fieldsets = [
        (None, {"fields": ["id", "name", "tenant", "state", "power_state", "error_reason"]}),
        ("Placement", {"fields": ["host", "flavor", "resize_flavor", "image", "private_ip", "ssh_keys"]}),
        (
            "Work in progress",
            {
                "fields": [
                    "task",
                    "task_params",
                    "task_enqueued_at",
                    "task_progress_at",
                    "task_deadline",
                    "task_requeues",
                ]
            },
        ),
        ("History", {"fields": ["created_by", "created_at", "updated_at", "deleted_at"]}),
    ]

    def has_change_permission(self, request, obj=None) -> bool:
        # The change page is a read-only detail view, but actions need "change" to be offered on the list.
        return obj is None and request.user.has_perm("compute.change_instance")

    def get_readonly_fields(self, request, obj=None):
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]


@admin.register(InstanceEvent)
class InstanceEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "instance", "tenant", "action", "result", "actor", "message"]
    list_filter = ["action", "result"]
    search_fields = ["instance__name", "instance__id", "message"]
    list_select_related = ["instance", "tenant", "actor"]
    date_hierarchy = "created_at"


@admin.action(description="Destroy on the host (after checking no live instance owns it)")
def destroy_orphans(modeladmin, request, queryset) -> None:
    for orphan in queryset.select_related("host"):
        try:
            services.orphan_domain_destroy(orphan=orphan, user=request.user)
        except ServiceError as error:
            modeladmin.message_user(request, error.message, messages.WARNING)
        else:
            modeladmin.message_user(request, f"Destroyed {orphan.uuid} on {orphan.host}.", messages.SUCCESS)


@admin.register(OrphanDomain)
class OrphanDomainAdmin(admin.ModelAdmin):
    list_display = ["uuid", "host", "power_state", "first_seen_at", "last_seen_at", "resolved_at"]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter), "host"]
    search_fields = ["uuid", "note"]
    readonly_fields = ["host", "uuid", "power_state", "first_seen_at", "last_seen_at", "resolved_at"]
    fields = [*readonly_fields, "note"]
    actions = [destroy_orphans, reconcile_now]
    list_select_related = ["host"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(SimulatedDomain)
class SimulatedDomainAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The simulated hypervisor's own view, for demos and debugging."""

    list_display = ["uuid", "name", "host", "power", "vcpus", "ram_mib", "disk_gib", "private_ip", "settles_at"]
    list_filter = ["host", "power"]
    search_fields = ["uuid", "name", "private_ip"]
    list_select_related = ["host"]
