"""Operators' view of compute: regions, hosts and their capacity, the catalog, instances, events, unknown domains.

State changes only through compute.services, as admin actions: hosts are enabled, disabled, drained, evacuated and
reconciled; instances are force-stopped, retried, moved, deleted or marked as failed. Each action is recorded in
Django's admin log and, where an organisation's machine is touched, in that machine's event log. Support staff
(the `support` group) may only reconcile and retry.
"""

from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from compute import services
from compute.drivers import driver_for
from compute.drivers.base import DriverError
from compute.models import (
    Flavor,
    Host,
    Image,
    Instance,
    InstanceEvent,
    OrphanDomain,
    Region,
    SimulatedDomain,
    SSHKey,
)
from compute.reconciler import reconcile
from compute.scheduler import usage_annotations, usage_of
from compute.templatetags.capacity import capacity_bar as capacity_context
from portal.admin_actions import (
    ReadOnlyAdminMixin,
    RequiredNoteForm,
    confirmed_service_action,
    extend_registered,
    service_action,
)
from tenants.models import Tenant


def capacity_bar(*, used: int, physical: int, allocatable: int, unit: str) -> str:
    return render_to_string("admin/compute/capacity_bar.html", capacity_context(used, physical, allocatable, unit))


def host_status(host: Host) -> str:
    kind, label = (
        ("off", "disabled") if not host.enabled else ("warn", "draining") if host.draining else ("ok", "enabled")
    )
    return format_html('<span class="ops-badge {}">{}</span>', kind, label)


class CapacityColumns:
    """Host columns read from usage_annotations() (the scheduler's own arithmetic), so the list is one query."""

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("region").annotate(**usage_annotations())

    @admin.display(description="vCPUs", ordering="used_vcpus")
    def vcpus_column(self, obj) -> str:
        usage = usage_of(obj)
        return capacity_bar(used=usage.vcpus_used, physical=obj.vcpus, allocatable=obj.vcpus_allocatable, unit="")

    @admin.display(description="RAM (MiB)", ordering="used_ram_mib")
    def ram_column(self, obj) -> str:
        usage = usage_of(obj)
        return capacity_bar(
            used=usage.ram_mib_used, physical=obj.ram_mib, allocatable=obj.ram_mib_allocatable, unit=" MiB"
        )

    @admin.display(description="disk (GiB)", ordering="used_disk_gib")
    def disk_column(self, obj) -> str:
        usage = usage_of(obj)
        return capacity_bar(
            used=usage.disk_gib_used, physical=obj.disk_gib, allocatable=obj.disk_gib_allocatable, unit=" GiB"
        )

    @admin.display(description="status", ordering="enabled")
    def status(self, obj) -> str:
        return host_status(obj)

    @admin.display(description="machines", ordering="live_instances")
    def live_instances(self, obj) -> str:
        url = reverse("admin:compute_instance_changelist") + f"?host__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.live_instances)


class ReconcilePermission:
    def has_reconcile_permission(self, request) -> bool:
        return request.user.has_perm("compute.reconcile")


@admin.action(description="Reconcile now", permissions=["reconcile"])
def reconcile_now(modeladmin, request, queryset) -> None:
    hosts = list(queryset) if modeladmin.model is Host else None
    report = reconcile(hosts=hosts)
    modeladmin.message_user(request, f"Reconciled: {report.summary()}", messages.SUCCESS)
    for obj in queryset:
        modeladmin.log_change(request, obj, f"Reconciled: {report.summary()}")


# --- regions ---------------------------------------------------------------------------------------------------


make_default = service_action(
    lambda region, user: services.region_make_default(region=region, actor=user),
    name="make_default",
    description="Make the default region",
    done_label="Made the default region",
    select=lambda queryset: queryset[:1],
)


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["name", "label", "is_default", "host_count", "created_at"]
    search_fields = ["name", "label"]
    readonly_fields = ["is_default", "created_at"]
    actions = [make_default]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_hosts=Count("hosts"))

    @admin.display(description="hosts", ordering="_hosts")
    def host_count(self, obj) -> str:
        url = reverse("admin:compute_host_changelist") + f"?region__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj._hosts)


# --- hosts -----------------------------------------------------------------------------------------------------


class HostInstanceInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Instance
    fk_name = "host"
    fields = ["link", "tenant", "state", "flavor", "private_ip", "created_at"]
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "machines on this host"
    show_change_link = False
    classes = ["ops-inline"]

    def get_queryset(self, request):
        return super().get_queryset(request).live().select_related("tenant", "flavor")

    @admin.display(description="instance")
    def link(self, obj) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:compute_instance_change", args=[obj.pk]), obj.name)


@admin.action(description="Test the connection (ask the driver)", permissions=["view"])
def test_connection(modeladmin, request, queryset) -> None:
    for host in queryset:
        try:
            driver = driver_for(host)
            capacity = driver.host_capacity()
            domains = driver.list_domains()
        except DriverError as error:
            modeladmin.message_user(request, f"{host}: cannot reach it: {error}", messages.ERROR)
        else:
            modeladmin.message_user(
                request,
                f"{host}: answers ({driver.name}): {capacity.vcpus} CPUs, {capacity.ram_mib} MiB RAM, "
                f"{capacity.disk_gib} GiB disk; {len(domains)} domain{'s' if len(domains) != 1 else ''}.",
                messages.SUCCESS,
            )


evacuate = confirmed_service_action(
    lambda host, user, confirmation: services.host_evacuate(host=host, actor=user),
    name="evacuate",
    description="Evacuate (move every machine to other hosts of the region)…",
    title="Evacuate",
    explanation="Each host is drained, and every machine on it moves to another host of its region: running "
    "machines are shut down, moved and started again (a few minutes offline); stopped ones stay stopped. "
    "Their organisations see it in each machine's log.",
    done_label="Evacuation started",
    report=lambda evacuation: evacuation.summary(),
)


@admin.register(Host)
class HostAdmin(CapacityColumns, ReconcilePermission, admin.ModelAdmin):
    list_display = ["name", "region", "driver", "status", "vcpus_column", "ram_column", "disk_column", "live_instances"]
    list_filter = ["region", "driver", "enabled", "draining"]
    search_fields = ["name", "uri"]
    actions = [
        test_connection,
        service_action(
            lambda host, user: services.host_enable(host=host, actor=user),
            name="enable",
            description="Enable (take new machines)",
            done_label="Enabled",
        ),
        service_action(
            lambda host, user: services.host_disable(host=host, actor=user),
            name="disable",
            description="Disable (no new machines, not reconciled)",
            done_label="Disabled",
        ),
        service_action(
            lambda host, user: services.host_drain(host=host, actor=user),
            name="drain",
            description="Drain (no new machines; keep those on it)",
            done_label="Draining",
        ),
        evacuate,
        reconcile_now,
    ]
    inlines = [HostInstanceInline]
    fieldsets = [
        (None, {"fields": ["name", "region", "driver", "uri", "storage_pool", "enabled", "draining", "id"]}),
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

    def get_readonly_fields(self, request, obj=None):
        # Once a host exists, whether it takes machines changes only through the actions above.
        return ["id", "capacity"] + (["enabled", "draining"] if obj is not None else [])

    @admin.display(description="used / free after overcommit")
    def capacity(self, obj) -> str:
        if obj is None or obj._state.adding:
            return "-"
        usage = usage_of(obj)
        return format_html(
            '<div class="ops-capacity">{}{}{}<span class="ops-muted">{} live machines</span></div>',
            capacity_bar(used=usage.vcpus_used, physical=obj.vcpus, allocatable=obj.vcpus_allocatable, unit=" vCPUs"),
            capacity_bar(
                used=usage.ram_mib_used, physical=obj.ram_mib, allocatable=obj.ram_mib_allocatable, unit=" MiB RAM"
            ),
            capacity_bar(
                used=usage.disk_gib_used, physical=obj.disk_gib, allocatable=obj.disk_gib_allocatable, unit=" GiB disk"
            ),
            usage.instances,
        )


# --- catalog ---------------------------------------------------------------------------------------------------


@admin.register(Flavor)
class FlavorAdmin(admin.ModelAdmin):
    list_display = ["name", "vcpus", "ram_mib", "disk_gib", "monthly_price", "hourly_price", "active"]
    list_filter = ["active"]
    search_fields = ["name"]
    readonly_fields = ["id"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["name", "os", "version", "min_disk_gib", "min_ram_mib", "disk_format", "region_list", "active"]
    list_filter = ["active", "os", "regions"]
    search_fields = ["name", "os", "version"]
    readonly_fields = ["id"]
    filter_horizontal = ["regions"]
    fieldsets = [
        (None, {"fields": ["id", "name", "os", "version", "min_disk_gib", "min_ram_mib", "active", "regions"]}),
        ("Source (a base disk, or a kernel and initrd)", {"fields": ["disk_path", "disk_format", "kernel_path"]}),
        (None, {"fields": ["initrd_path", "kernel_cmdline"]}),
    ]

    def get_queryset(self, request):
        # Organisations' private images have a page of their own (compute.storage.admin).
        return super().get_queryset(request).public().prefetch_related("regions")

    @admin.display(description="regions")
    def region_list(self, obj) -> str:
        return ", ".join(region.name for region in obj.regions.all()) or "all"


@admin.register(SSHKey)
class SSHKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "key_type", "bits", "fingerprint", "created_at"]
    list_filter = ["key_type"]
    search_fields = ["name", "fingerprint", "tenant__name"]
    list_select_related = ["tenant"]


# --- instances -------------------------------------------------------------------------------------------------


class InstanceEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = InstanceEvent
    fields = ["created_at", "action", "result", "actor", "message"]
    readonly_fields = fields
    extra = 0
    ordering = ["-created_at", "-id"]


force_stop = service_action(
    lambda instance, user: services.instance_stop(instance=instance, user=user, force=True),
    name="force_stop",
    description="Force stop (cut the power)",
    done_label="Force stop requested",
)
retry = service_action(
    lambda instance, user: services.instance_retry(instance=instance, user=user),
    name="retry",
    description="Retry the failed provisioning",
    done_label="Provisioning again",
    permission="retry_instance",
)
migrate = service_action(
    lambda instance, user: services.instance_migrate(instance=instance, user=user),
    name="migrate",
    description="Move to another host of its region",
    done_label="Move requested",
)


mark_error = confirmed_service_action(
    lambda instance, user, confirmation: services.instance_mark_error(
        instance=instance, user=user, reason=confirmation["note"]
    ),
    name="mark_error",
    description="Mark as error…",
    title="Mark as error",
    explanation="Whatever these machines are doing is abandoned and they are flagged as failed; their owners "
    "read the reason in each machine's log and can then only delete them.",
    form_class=RequiredNoteForm,
    done_label="Marked as error",
)
delete_instances = confirmed_service_action(
    lambda instance, user, confirmation: services.instance_delete(instance=instance, user=user),
    name="delete_instances",
    description="Delete (stop billing, destroy the machine)…",
    title="Delete",
    explanation="Billing of these machines stops now; each machine and its disk are destroyed. This cannot be undone.",
    done_label="Deletion requested",
)


@admin.register(Instance)
class InstanceAdmin(ReconcilePermission, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "state", "region", "host", "flavor", "private_ip", "created_at"]
    list_filter = ["state", "region", "host", "flavor"]
    search_fields = ["name", "id", "private_ip", "tenant__name"]
    list_select_related = ["tenant", "region", "host", "flavor"]
    date_hierarchy = "created_at"
    actions = [force_stop, retry, migrate, delete_instances, mark_error, reconcile_now]
    inlines = [InstanceEventInline]
    fieldsets = [
        (None, {"fields": ["id", "name", "tenant", "state", "power_state", "error_reason"]}),
        (
            "Placement",
            {
                "fields": [
                    "region",
                    "host",
                    "migration_host",
                    "flavor",
                    "resize_flavor",
                    "image",
                    "private_ip",
                    "ssh_keys",
                ]
            },
        ),
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

    def has_retry_instance_permission(self, request) -> bool:
        return request.user.has_perm("compute.retry_instance")

    def get_readonly_fields(self, request, obj=None):
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]


@admin.register(InstanceEvent)
class InstanceEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "instance", "tenant", "action", "result", "actor", "message"]
    list_filter = ["action", "result"]
    search_fields = ["instance__name", "instance__id", "message"]
    list_select_related = ["instance", "tenant", "actor"]
    date_hierarchy = "created_at"


destroy_orphans = service_action(
    lambda orphan, user: services.orphan_domain_destroy(orphan=orphan, user=user),
    name="destroy_orphans",
    description="Destroy on the host (after checking no live instance owns it)",
    done_label="Destroyed",
)


@admin.register(OrphanDomain)
class OrphanDomainAdmin(ReconcilePermission, admin.ModelAdmin):
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


# --- the organisation's page: its machines ---------------------------------------------------------------------


def _tenant_admin_with_machines(base):
    class TenantAdmin(base):
        def get_readonly_fields(self, request, obj=None):
            return [*super().get_readonly_fields(request, obj), "machines"]

        def get_fieldsets(self, request, obj=None):
            fieldsets = list(super().get_fieldsets(request, obj))
            return [*fieldsets, ("Machines", {"fields": ["machines"]})] if obj is not None else fieldsets

        @admin.display(description="machines")
        def machines(self, obj) -> str:
            from compute.selectors import instance_counts

            counts = instance_counts(tenant=obj)
            url = reverse("admin:compute_instance_changelist") + f"?tenant__id__exact={obj.pk}"
            return format_html(
                '<a href="{}">{} live</a>: {} running, {} busy', url, counts["total"], counts["running"],
                counts["transitional"],
            )  # fmt: skip

    return TenantAdmin


extend_registered(Tenant, _tenant_admin_with_machines)
