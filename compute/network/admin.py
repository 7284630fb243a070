"""Operators' view of networking: public IPv4 pools (defined here) and their usage, the addresses tenants hold,
tenants' networks and firewalls, traffic, and the simulated hosts' networking.

Pools are configuration, edited here like flavors and hosts. Everything else is read-only: addresses change only
through compute.network.services (the release action), so billing and the hosts' NAT follow.
"""

from django.contrib import admin
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from compute.network import services
from compute.network.models import (
    Firewall,
    FirewallRule,
    Network,
    NetworkEvent,
    Port,
    PublicIP,
    PublicIPPool,
    PublicIPState,
    SimulatedNat,
    SimulatedNetwork,
    TrafficUsage,
)
from portal.admin_actions import ReadOnlyAdminMixin, service_action


@admin.register(PublicIPPool)
class PublicIPPoolAdmin(admin.ModelAdmin):
    list_display = ["name", "region", "cidr", "active", "size", "held", "free"]
    list_filter = ["active", "region"]
    search_fields = ["name", "cidr"]
    readonly_fields = ["created_at", "usage"]
    fields = ["name", "region", "cidr", "excluded", "active", "created_at", "usage"]
    list_select_related = ["region"]

    def get_queryset(self, request):
        held = Count("addresses_held", filter=~Q(addresses_held__state=PublicIPState.RELEASED))
        return super().get_queryset(request).annotate(_held=held)

    def get_readonly_fields(self, request, obj=None):
        # Addresses already handed out keep their pool: its range cannot change under them.
        return (
            [*self.readonly_fields, "cidr", "region"]
            if obj is not None and obj.addresses_held.exists()
            else self.readonly_fields
        )

    @admin.display(description="addresses")
    def size(self, obj) -> int:
        return len(obj.addresses())

    @admin.display(description="held by tenants", ordering="_held")
    def held(self, obj) -> str:
        url = reverse("admin:network_publicip_changelist") + f"?pool__id__exact={obj.pk}&state__exact=assigned"
        return format_html('<a href="{}">{}</a>', url, obj._held)

    @admin.display(description="free")
    def free(self, obj) -> int:
        return max(len(obj.addresses()) - obj._held, 0)

    @admin.display(description="usage")
    def usage(self, obj) -> str:
        if obj is None or obj._state.adding:
            return "-"
        size = len(obj.addresses())
        held = obj.addresses_held.exclude(state=PublicIPState.RELEASED).count()
        return f"{held} of {size} addresses held, {max(size - held, 0)} free"


release = service_action(
    lambda public_ip, user: services.public_ip_release(public_ip=public_ip, user=user),
    name="release",
    description="Release (back to the pool; billing stops)",
    done_label="Released",
    permission=None,
    select=lambda queryset: queryset.held(),
)


@admin.register(PublicIP)
class PublicIPAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["address", "tenant", "state", "instance", "pool", "allocated_at", "released_at"]
    list_filter = ["state", "pool"]
    search_fields = ["address", "tenant__name", "instance__name"]
    list_select_related = ["tenant", "instance", "pool"]
    date_hierarchy = "allocated_at"
    actions = [release]

    def has_change_permission(self, request, obj=None) -> bool:
        # Read-only detail pages; "change" is needed for the release action on the list.
        return obj is None and request.user.has_perm("network.change_publicip")


class PortInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Port
    fields = ["instance", "address", "mac", "index"]
    readonly_fields = fields
    extra = 0


@admin.register(Network)
class NetworkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "region", "cidr", "is_default", "machines", "created_at"]
    list_filter = ["is_default", "region"]
    search_fields = ["name", "cidr", "tenant__name"]
    list_select_related = ["tenant", "region"]
    inlines = [PortInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_machines=Count("ports"))

    @admin.display(description="machines", ordering="_machines")
    def machines(self, obj) -> int:
        return obj._machines


class FirewallRuleInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = FirewallRule
    fields = ["position", "direction", "protocol", "port_min", "port_max", "cidr", "description"]
    readonly_fields = fields
    extra = 0


@admin.register(Firewall)
class FirewallAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "is_default", "updated_at"]
    list_filter = ["is_default"]
    search_fields = ["name", "tenant__name"]
    list_select_related = ["tenant"]
    inlines = [FirewallRuleInline]
    exclude = ["instances"]


@admin.register(TrafficUsage)
class TrafficUsageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Bytes per machine per hour: what billing's traffic line sums."""

    list_display = ["hour", "tenant", "instance", "tx_bytes", "rx_bytes"]
    search_fields = ["tenant__name", "instance__name"]
    list_select_related = ["tenant", "instance"]
    date_hierarchy = "hour"


@admin.register(NetworkEvent)
class NetworkEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "tenant", "action", "subject", "result", "actor", "message"]
    list_filter = ["action", "result"]
    search_fields = ["subject", "message", "tenant__name"]
    list_select_related = ["tenant", "actor"]
    date_hierarchy = "created_at"


@admin.register(SimulatedNetwork)
class SimulatedNetworkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The simulated hosts' networks and their DHCP leases, for demos and debugging."""

    list_display = ["name", "host", "cidr", "gateway_ip", "leases", "updated_at"]
    list_filter = ["host"]
    list_select_related = ["host"]

    @admin.display(description="DHCP leases")
    def leases(self, obj) -> int:
        return len(obj.dhcp_hosts)


@admin.register(SimulatedNat)
class SimulatedNatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["public_ip", "private_ip", "host"]
    list_filter = ["host"]
    list_select_related = ["host"]
