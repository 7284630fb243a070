"""The Networking section of the dashboard: networks, public IPv4 addresses and firewalls, and a machine's firewalls.

Every view reaches data through TenantScopedMixin (another tenant's object is a 404) and changes state only through
compute.network.services; a refusal is a form error or a flash message, never a 500.
"""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.generic import DetailView, ListView, View
from django.views.generic.detail import SingleObjectMixin

from compute.forms import add_service_error
from compute.lifecycle import IPV4
from compute.models import Instance
from compute.network import services
from compute.network.filters import FirewallFilter, NetworkFilter, PublicIPFilter
from compute.network.forms import (
    AllocateForm,
    AssignForm,
    FirewallForm,
    InstanceFirewallsForm,
    NetworkForm,
    RenameForm,
    RuleForm,
)
from compute.network.models import Firewall, Network, NetworkEventAction, PublicIP
from compute.network.selectors import (
    assignable_instances,
    firewall_list,
    firewall_machines,
    network_events,
    network_list,
    network_ports,
    public_ip_list,
)
from compute.prices import hourly_display, monthly_display, resource_price
from compute.selectors import quota_usage, several_regions
from portal.errors import ServiceError
from portal.viewmixins import HtmxPartialMixin, LabelFilterMixin, TenantObjectActionView
from tenants.scoping import TenantScopedMixin

EVENTS_SHOWN = 10
IP_ACTIONS = (
    NetworkEventAction.IP_ALLOCATE,
    NetworkEventAction.IP_ASSIGN,
    NetworkEventAction.IP_UNASSIGN,
    NetworkEventAction.IP_RELEASE,
)
NETWORK_ACTIONS = (
    NetworkEventAction.NETWORK_CREATE,
    NetworkEventAction.NETWORK_RENAME,
    NetworkEventAction.NETWORK_DELETE,
)
FIREWALL_ACTIONS = (
    NetworkEventAction.FIREWALL_CREATE,
    NetworkEventAction.FIREWALL_CHANGE,
    NetworkEventAction.FIREWALL_DELETE,
    NetworkEventAction.FIREWALLS_SET,
)


class _CreateInListMixin:
    """A list page whose POST creates one more (members only); an invalid form re-renders the list with errors."""

    form_class = None
    success_message = ""

    def get_form(self, data=None):
        return self.form_class(data)

    def perform_create(self, form):
        raise NotImplementedError

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", self.get_form())
        return context

    def post(self, request, *args, **kwargs):
        form = self.get_form(request.POST)
        status = 400
        if form.is_valid():
            try:
                created = self.perform_create(form)
            except ServiceError as error:
                add_service_error(form, error)
                status = error.status
            else:
                messages.success(request, self.success_message.format(obj=created))
                return HttpResponseRedirect(self.success_url(created))
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form), status=status)


# --- networks -----------------------------------------------------------------------------------------------------


class NetworkListView(LabelFilterMixin, _CreateInListMixin, TenantScopedMixin, ListView):
    """The tenant's private networks, with how many machines each has; members create more here."""

    model = Network
    template_name = "network/network_list.html"
    context_object_name = "networks"
    form_class = NetworkForm
    success_message = "The network {obj.name} ({obj.cidr}) was created. Pick it when you launch a machine."

    label_filterset = NetworkFilter

    def get_queryset(self):
        return self.filter_by_labels(network_list(tenant=self.request.tenant))

    def perform_create(self, form):
        return services.network_create(tenant=self.request.tenant, user=self.request.user, **form.cleaned_data)

    def success_url(self, network) -> str:
        return reverse("network:network-detail", kwargs={"pk": network.pk})

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["events"] = network_events(tenant=self.request.tenant, actions=NETWORK_ACTIONS)[:EVENTS_SHOWN]
        context["show_regions"] = "region" in context["form"].fields  # offered only where there are several
        return context


class NetworkDetailView(TenantScopedMixin, DetailView):
    """A network's machines and their addresses, how many are free, rename and delete."""

    model = Network
    template_name = "network/network_detail.html"
    context_object_name = "network"
    url_name = "network:network-detail"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        ports = list(network_ports(network=self.object))
        context.update(
            ports=ports,
            free=self.object.capacity - len(ports),
            rename_form=kwargs.get("rename_form") or RenameForm(initial={"name": self.object.name}),
        )
        return context


class _FormOnObjectView(TenantScopedMixin, SingleObjectMixin, View):
    """A POST-only form on one object; an invalid form (or a refusal it could fix) re-renders the detail page."""

    http_method_names = ["post"]
    form_class = None
    detail_view = None
    form_context_name = ""

    def get_form(self, data):
        return self.form_class(data)

    def perform(self, obj, data) -> str:
        """Calls the service; returns the success message."""
        raise NotImplementedError

    def detail_url(self) -> str:
        return reverse(self.detail_view.url_name, kwargs={"pk": self.object.pk})

    def render_errors(self, form, status: int = 400):
        detail = self.detail_view()
        detail.setup(self.request, pk=self.object.pk)
        detail.object = self.object
        context = detail.get_context_data(object=self.object, **{self.form_context_name: form})
        context[f"{self.form_context_name}_open"] = True
        return TemplateResponse(self.request, detail.template_name, context, status=status)

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        form = self.get_form(request.POST)
        if not form.is_valid():
            return self.render_errors(form)
        try:
            message = self.perform(self.object, form.cleaned_data)
        except ServiceError as error:
            add_service_error(form, error)
            return self.render_errors(form, status=error.status)
        messages.success(request, message)
        return HttpResponseRedirect(self.detail_url())


class NetworkRenameView(_FormOnObjectView):
    model = Network
    form_class = RenameForm
    detail_view = NetworkDetailView
    form_context_name = "rename_form"

    def perform(self, obj, data) -> str:
        old = obj.name
        services.network_rename(network=obj, user=self.request.user, name=data["name"])
        return f"{old} is now called {data['name']}."


class NetworkDeleteView(TenantObjectActionView):
    model = Network
    success_message = "The network {obj.name} was deleted."

    def perform(self, obj) -> None:
        services.network_delete(network=obj, user=self.request.user)

    def get_success_url(self, obj) -> str:
        if Network.objects.filter(pk=obj.pk).exists():  # refused: back to where the user was
            return reverse("network:network-detail", kwargs={"pk": obj.pk})
        return reverse("network:network-list")


# --- public addresses ---------------------------------------------------------------------------------------------


def _ipv4_price() -> dict:
    monthly = resource_price(IPV4)
    return {"monthly": monthly_display(monthly), "hourly": hourly_display(monthly)}


class PublicIPListView(LabelFilterMixin, HtmxPartialMixin, TenantScopedMixin, ListView):
    """The public addresses the tenant holds, with their machines' live state (polls while one is transitional)."""

    model = PublicIP
    template_name = "network/ip_list.html"
    partial_template_name = "network/partials/ip_table.html"
    context_object_name = "addresses"

    label_filterset = PublicIPFilter

    def get_queryset(self):
        return self.filter_by_labels(public_ip_list(tenant=self.request.tenant))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant = self.request.tenant
        addresses = context["addresses"]
        context.update(
            polling=any(ip.instance is not None and ip.instance.is_transitional for ip in addresses),
            currency=settings.BILLING_CURRENCY,
        )
        if self.request.membership.has(self.change_permission):
            context["machines"] = list(assignable_instances(tenant=tenant))  # every row's "assign to" choices
        if self.request.htmx:
            context["show_regions"] = several_regions()
            return context
        form = kwargs.get("form") or AllocateForm(tenant=tenant)
        context.update(
            show_regions="region" in form.fields,  # offered only where there are several
            price=_ipv4_price(),
            usage=quota_usage(tenant=tenant)["public_ips"],
            form=form,
            events=network_events(tenant=tenant, actions=IP_ACTIONS)[:EVENTS_SHOWN],
        )
        return context

    def post(self, request, *args, **kwargs):
        form = AllocateForm(request.POST, tenant=request.tenant)
        status = 400
        if form.is_valid():
            instance = form.cleaned_data["instance"]
            region = form.cleaned_data.get("region")
            try:
                public_ip = services.public_ip_allocate(
                    tenant=request.tenant, user=request.user, instance=instance, region=region
                )
            except ServiceError as error:
                add_service_error(form, error)
                status = error.status
            else:
                where = f" and assigned to {instance.name}" if instance is not None else ""
                messages.success(request, f"{public_ip.address} is yours{where}; it is billed until you release it.")
                return redirect("network:ip-list")
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form), status=status)


class PublicIPAssignView(TenantScopedMixin, SingleObjectMixin, View):
    """Assign (or move) an address to the machine picked in the row's form; a refusal is a flash message."""

    model = PublicIP
    http_method_names = ["post"]

    def get_queryset(self):
        return super().get_queryset().held()

    def post(self, request, *args, **kwargs):
        public_ip = self.get_object()
        form = AssignForm(request.POST, tenant=request.tenant)
        if not form.is_valid():
            messages.error(request, form.errors["instance"][0])
            return redirect("network:ip-list")
        instance = form.cleaned_data["instance"]
        try:
            services.public_ip_assign(public_ip=public_ip, instance=instance, user=request.user)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{public_ip.address} now leads to {instance.name}.")
        return redirect("network:ip-list")


class _PublicIPActionView(TenantObjectActionView):
    model = PublicIP

    def get_queryset(self):
        return super().get_queryset().held()

    def get_success_url(self, obj) -> str:
        return reverse("network:ip-list")


class PublicIPUnassignView(_PublicIPActionView):
    success_message = "{obj.address} is unassigned; it stays yours (and billed) until you release it."

    def perform(self, obj) -> None:
        services.public_ip_unassign(public_ip=obj, user=self.request.user)


class PublicIPReleaseView(_PublicIPActionView):
    success_message = "{obj.address} was released; billing for it has stopped."

    def perform(self, obj) -> None:
        services.public_ip_release(public_ip=obj, user=self.request.user)


# --- firewalls ----------------------------------------------------------------------------------------------------


class FirewallListView(LabelFilterMixin, _CreateInListMixin, TenantScopedMixin, ListView):
    model = Firewall
    template_name = "network/firewall_list.html"
    context_object_name = "firewalls"
    form_class = FirewallForm
    success_message = "The firewall {obj.name} was created; add its rules, then give it to machines."

    label_filterset = FirewallFilter

    def get_queryset(self):
        return self.filter_by_labels(firewall_list(tenant=self.request.tenant))

    def perform_create(self, form):
        return services.firewall_create(tenant=self.request.tenant, user=self.request.user, **form.cleaned_data)

    def success_url(self, firewall) -> str:
        return reverse("network:firewall-detail", kwargs={"pk": firewall.pk})

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["events"] = network_events(tenant=self.request.tenant, actions=FIREWALL_ACTIONS)[:EVENTS_SHOWN]
        return context


class FirewallDetailView(TenantScopedMixin, DetailView):
    """A firewall's rules (add and remove them, applied live), the machines it protects, rename and delete."""

    model = Firewall
    template_name = "network/firewall_detail.html"
    context_object_name = "firewall"
    url_name = "network:firewall-detail"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            rules=list(self.object.rules.order_by("position", "id")),
            machines=list(firewall_machines(firewall=self.object)),
            rule_form=kwargs.get("rule_form") or RuleForm(),
            rename_form=kwargs.get("rename_form")
            or FirewallForm(initial={"name": self.object.name, "description": self.object.description}),
        )
        return context


class FirewallRuleAddView(_FormOnObjectView):
    model = Firewall
    form_class = RuleForm
    detail_view = FirewallDetailView
    form_context_name = "rule_form"

    def perform(self, obj, data) -> str:
        services.firewall_rule_add(firewall=obj, user=self.request.user, rule=data["rule"])
        return f"The rule was added to {obj.name}; its machines have it now."


class FirewallRenameView(_FormOnObjectView):
    model = Firewall
    form_class = FirewallForm
    detail_view = FirewallDetailView
    form_context_name = "rename_form"

    def perform(self, obj, data) -> str:
        services.firewall_update(firewall=obj, user=self.request.user, **data)
        return f"{data['name']} was saved."


class FirewallRuleRemoveView(TenantObjectActionView):
    model = Firewall
    success_message = "The rule was removed from {obj.name}; its machines no longer have it."

    def perform(self, obj) -> None:
        services.firewall_rule_remove(firewall=obj, user=self.request.user, position=self.kwargs["position"])

    def get_success_url(self, obj) -> str:
        return reverse("network:firewall-detail", kwargs={"pk": obj.pk})


class FirewallDeleteView(TenantObjectActionView):
    model = Firewall
    success_message = "The firewall {obj.name} was deleted."

    def perform(self, obj) -> None:
        services.firewall_delete(firewall=obj, user=self.request.user)

    def get_success_url(self, obj) -> str:
        if Firewall.objects.filter(pk=obj.pk).exists():
            return reverse("network:firewall-detail", kwargs={"pk": obj.pk})
        return reverse("network:firewall-list")


class InstanceFirewallsView(TenantScopedMixin, SingleObjectMixin, View):
    """The instance page's firewall picker: replaces the machine's firewalls (applied live)."""

    model = Instance
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        instance = self.get_object()
        form = InstanceFirewallsForm(request.POST, tenant=request.tenant)
        if not form.is_valid():
            messages.error(request, form.errors["firewalls"][0])
        else:
            try:
                services.instance_firewalls_set(
                    instance=instance, firewalls=form.cleaned_data["firewalls"], user=request.user
                )
            except ServiceError as error:
                messages.error(request, error.message)
            else:
                names = ", ".join(firewall.name for firewall in form.cleaned_data["firewalls"])
                messages.success(request, f"{instance.name} is now protected by {names}.")
        return HttpResponseRedirect(reverse("compute:instance-detail", kwargs={"pk": instance.pk}) + "#networking")
