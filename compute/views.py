"""The tenant-facing compute pages: launch, instance list and detail, and SSH keys.

Every view reaches data through TenantScopedMixin (another tenant's object is a 404) and changes state only
through compute.services; a service's refusal is shown as a form error or flash message, never a 500.
"""

from decimal import ROUND_HALF_UP, Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.views.generic import DetailView, FormView, ListView, View
from django.views.generic.detail import SingleObjectMixin

from compute import services
from compute.filters import InstanceFilter, SSHKeyFilter
from compute.forms import (
    DeleteForm,
    LaunchForm,
    RenameForm,
    ResizeForm,
    SSHKeyForm,
    add_service_error,
)
from compute.lifecycle import IPV4
from compute.models import Flavor, Image, Instance, InstanceState, Region, SSHKey
from compute.network.forms import InstanceFirewallsForm
from compute.network.selectors import firewall_list, instance_networking, network_list
from compute.prices import HOURLY_DISPLAY, hourly_display, hourly_rate, monthly_display, resource_price
from compute.rules import image_fit_refusal, launch_quota_request, quota_refusal, resize_quota_request, resize_refusal
from compute.selectors import flavor_list, image_list, instance_events, quota_usage, region_choices, sshkey_list
from portal.api.pagination import MAX_PER_PAGE, CappedPaginator
from portal.errors import Conflict, ServiceError
from portal.viewmixins import HtmxPartialMixin, LabelFilterMixin, TenantObjectActionView, safe_next
from tenants.scoping import TenantScopedMixin

EVENTS_SHOWN = 100
NEW_KEY_PREFIX = "newkey"


def _signed(amount: Decimal) -> str:
    return f"+{amount}" if amount > 0 else (f"\N{MINUS SIGN}{-amount}" if amount < 0 else "\N{PLUS-MINUS SIGN}0")


# --- Launch -----------------------------------------------------------------------------------------------------


class LaunchView(TenantScopedMixin, FormView):
    """The launch form: sizes as cards with prices, images grouped by OS, keys, quota headroom and a live estimate."""

    form_class = LaunchForm
    template_name = "compute/launch.html"

    def required_permission(self, method: str) -> str:
        # The form is only for those who may launch; read-only roles see each instance's price on its own page.
        return self.change_permission

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "tenant": self.request.tenant}

    @cached_property
    def tenant_keys(self) -> list[SSHKey]:
        return list(sshkey_list(tenant=self.request.tenant))

    @cached_property
    def networking_choices(self) -> dict[str, list]:
        tenant = self.request.tenant
        return {"networks": list(network_list(tenant=tenant)), "firewalls": list(firewall_list(tenant=tenant))}

    def get_initial(self):
        # A tenant with exactly one key almost always wants it: a machine without a key cannot be logged in to.
        initial = {"keys": [self.tenant_keys[0].pk]} if len(self.tenant_keys) == 1 else {}
        # The defaults are ticked: a machine joins the default network (of the region preselected) behind the
        # default firewall unless changed.
        region = Region.objects.default()
        initial["networks"] = [
            n.pk for n in self.networking_choices["networks"] if n.is_default and region and n.region_id == region.pk
        ]
        initial["firewalls"] = [f.pk for f in self.networking_choices["firewalls"] if f.is_default]
        return initial

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = context["form"]
        tenant = self.request.tenant
        usage = quota_usage(tenant=tenant)
        selected_flavor = str(form["flavor"].value() or "")
        catalog = list(flavor_list())
        regions = region_choices(flavors=catalog)
        selected_region = str(form["region"].value() or "")
        for choice in regions:
            choice["checked"] = choice["region"].name == selected_region
        chosen_region = next((choice for choice in regions if choice["checked"]), None)
        flavors = []
        for flavor in catalog:
            refusal = quota_refusal(usage=usage, requested=launch_quota_request(flavor=flavor))
            message = refusal.message if refusal else ""
            if not message and chosen_region is not None and flavor.pk not in chosen_region["fits"]:
                message = f"No room for this size in {chosen_region['region'].label} right now."
            flavors.append(
                {
                    "flavor": flavor,
                    "monthly": monthly_display(flavor.monthly_price),
                    "hourly": hourly_display(flavor.monthly_price),
                    "refusal": message,
                    "checked": not message and str(flavor.pk) == selected_flavor,
                }
            )
        selected_image = str(form["image"].value() or "")
        # Which sizes each image cannot run on, by the service's own rule: the form greys them out as you pick.
        images = [
            {
                "image": image,
                "checked": str(image.pk) == selected_image,
                "too_small": " ".join(
                    str(option["flavor"].pk)
                    for option in flavors
                    if image_fit_refusal(image=image, flavor=option["flavor"]) is not None
                ),
            }
            for image in image_list()
        ]
        chosen = next((option for option in flavors if option["checked"]), None)
        context.update(
            regions=regions,
            flavors=flavors,
            images=images,
            chosen_flavor=chosen,
            usage=usage,
            currency=settings.BILLING_CURRENCY,
            key_picker=_key_picker_context(
                keys=self.tenant_keys, checked=[str(pk) for pk in (form["keys"].value() or [])]
            ),
            quota_full=usage["instances"]["free"] < 1,
            networking=self._networking_context(form, usage),
        )
        return context

    def _networking_context(self, form, usage) -> dict:
        def ticked(field: str) -> set[str]:
            return {str(pk) for pk in (form[field].value() or [])}

        networks, firewalls = ticked("networks"), ticked("firewalls")
        region = str(form["region"].value() or "")
        ipv4 = resource_price(IPV4)
        return {
            # Networks of other regions than the one chosen are hidden (launch.js follows the region choice).
            "networks": [
                {"network": n, "checked": str(n.pk) in networks, "hidden": bool(region) and n.region.name != region}
                for n in self.networking_choices["networks"]
            ],
            "firewalls": [
                {"firewall": f, "checked": str(f.pk) in firewalls} for f in self.networking_choices["firewalls"]
            ],
            "ipv4": {"monthly": monthly_display(ipv4), "hourly": hourly_display(ipv4)},
            "public_ip_refusal": ""
            if usage["public_ips"]["free"] > 0
            else (f"Your quota of {usage['public_ips']['limit']} public IPv4 addresses is used up."),
        }

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            instance = services.instance_launch(
                tenant=self.request.tenant,
                user=self.request.user,
                name=data["name"],
                flavor=data["flavor"],
                image=data["image"],
                keys=data["keys"],
                region=data["region"],
                networks=data["networks"],
                firewalls=data["firewalls"],
                user_data=data["user_data"],
                public_ip=data["public_ip"],
            )
        except ServiceError as error:
            add_service_error(form, error)
            return self.render_to_response(self.get_context_data(form=form), status=error.status)
        messages.success(self.request, f"{instance.name} is being launched; it will be running in a minute.")
        return redirect("compute:instance-detail", pk=instance.pk)


def _new_key_form(data=None) -> SSHKeyForm:
    # Its fields sit inside the launch form, so they must not make the browser refuse to submit a launch.
    return SSHKeyForm(data, prefix=NEW_KEY_PREFIX, use_required_attribute=False)


def _key_picker_context(*, keys, checked: list[str], key_form: SSHKeyForm | None = None) -> dict:
    return {
        "keys": [{"key": key, "checked": str(key.pk) in checked} for key in keys],
        "key_form": key_form or _new_key_form(),
    }


class LaunchKeyAddView(HtmxPartialMixin, TenantScopedMixin, View):
    """'Add a key' inside the launch form: with htmx it swaps in the refreshed key picker, new key ticked.

    A plain POST (no htmx) adds the key and sends the user back to the launch form with a flash message.
    """

    http_method_names = ["post"]

    def post(self, request):
        key_form = _new_key_form(request.POST)
        checked = request.POST.getlist("keys")
        added = None
        if key_form.is_valid():
            try:
                added = services.sshkey_create(tenant=request.tenant, user=request.user, **key_form.cleaned_data)
            except ServiceError as error:
                add_service_error(key_form, error)
        if not request.htmx:
            if added is not None:
                messages.success(request, f"The key {added.name} was added.")
            else:
                messages.error(request, _first_error(key_form))
            return redirect("compute:instance-launch")
        if added is not None:
            checked.append(str(added.pk))
            key_form = _new_key_form()
        context = _key_picker_context(keys=sshkey_list(tenant=request.tenant), checked=checked, key_form=key_form)
        context["added"] = added
        context["key_form_open"] = added is None
        return TemplateResponse(request, "compute/partials/key_picker.html", context)


def _first_error(form) -> str:
    for errors in form.errors.values():
        if errors:
            return str(errors[0])
    return "The key could not be added."


# --- Instances --------------------------------------------------------------------------------------------------


LIST_STATES = [(value, label) for value, label in InstanceState.choices if value != InstanceState.DELETED]


class _OneOfMany(forms.SelectMultiple):
    """A plain drop-down whose value is still a list: the filter bar picks one state, the API may ask for several."""

    allow_multiple_selected = False


def _filled_in(query: QueryDict) -> QueryDict:
    """The query string without the fields left empty: a GET form sends every field, and empty means "any" there.

    The API refuses an empty value instead (StrictFilterSet): a client that sends one has made a mistake.
    """
    filled = QueryDict(mutable=True)
    for key, values in query.lists():
        if kept := [value for value in values if value.strip()]:
            filled.setlist(key, kept)
    return filled


class InstanceListView(HtmxPartialMixin, TenantScopedMixin, ListView):
    """The tenant's machines, filtered and sorted by the API's InstanceFilter; while any on the page is transitional
    the table polls itself (htmx) for changes, with the same query string."""

    model = Instance
    template_name = "compute/instance_list.html"
    partial_template_name = "compute/partials/instance_table.html"
    context_object_name = "instances"
    paginate_by = 20
    paginator_class = CappedPaginator  # counts stop at 1,000: a large tenant's page costs what a small one's does

    def get_paginate_by(self, queryset) -> int:
        """`?per_page=` as in the API, 1 to 200; anything else gives the default page."""
        raw = self.request.GET.get("per_page", "")
        if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PER_PAGE:
            return int(raw)
        return self.paginate_by

    def live_instances(self):
        # Scoped to the tenant by the mixin; deleted instances stay out of the list (their detail page stays).
        return super().get_queryset().live()

    @cached_property
    def filterset(self) -> InstanceFilter:
        queryset = self.live_instances().select_related("flavor", "image", "host").order_by("-created_at", "id")
        filterset = InstanceFilter(_filled_in(self.request.GET), queryset=queryset, request=self.request)
        self._dress_as_filter_bar(filterset.form)  # before validation: its bound fields keep labels from then
        return filterset

    @cached_property
    def filters_valid(self) -> bool:
        return self.filterset.is_valid()  # once: StrictFilterSet adds its errors on every call

    def get_queryset(self):
        # A filter value that cannot be used shows nothing, not everything: the filter bar says what was wrong.
        return self.filterset.qs if self.filters_valid else self.filterset.queryset.none()

    @cached_property
    def sizes_and_images_in_use(self) -> dict[str, list[tuple]]:
        """The choices of the size and image drop-downs: those of the tenant's machines (full page only).

        One probe per catalog entry (EXISTS on the tenant's live-machine indexes), not a scan of every machine.
        """
        live = self.live_instances()
        flavors = Flavor.objects.filter(Exists(live.filter(flavor=OuterRef("pk")))).order_by("name", "pk")
        images = Image.objects.filter(Exists(live.filter(image=OuterRef("pk")))).order_by("name", "pk")
        return {
            "flavors": [(str(pk), name) for pk, name in flavors.values_list("pk", "name")],
            "images": [(str(pk), name) for pk, name in images.values_list("pk", "name")],
        }

    def _dress_as_filter_bar(self, form: forms.Form) -> None:
        """The FilterSet's own form as the filter bar shows it: drop-downs whose blank first choice means "any"."""
        fields = form.fields
        fields["state"].widget = _OneOfMany(choices=[("", "Any state"), *LIST_STATES])
        fields["name"].widget = forms.TextInput(attrs={"type": "search"})
        fields["label"].widget = forms.TextInput(attrs={"type": "search", "placeholder": "team=web"})
        # Callables: the choices are read only when the full page renders, never for an htmx poll of the table.
        fields["flavor"].widget = forms.Select(
            choices=lambda: [("", "Any size"), *self.sizes_and_images_in_use["flavors"]]
        )
        fields["image"].widget = forms.Select(
            choices=lambda: [("", "Any image"), *self.sizes_and_images_in_use["images"]]
        )
        # Not in the bar, but kept when the bar is submitted from a URL that has them.
        fields["created_after"].widget = forms.HiddenInput()
        fields["created_before"].widget = forms.HiddenInput()
        sorts = [choice for choice in fields["ordering"].choices if choice[0] not in ("", "-created")]
        fields["ordering"].widget.choices = [("", "Newest first"), *sorts]
        labels = {
            "name": "Name contains",
            "label": "Label",
            "flavor": "Size",
            "ordering": "Sort by",
            "created_after": "Created after",
            "created_before": "Created before",
        }
        for name, field in fields.items():
            field.label = labels.get(name, field.label)
            field.help_text = ""  # written for API clients (`?state=running&state=stopped`)

    def paginate_queryset(self, queryset, page_size):
        try:
            return super().paginate_queryset(queryset, page_size)
        except Http404:
            if not self.request.htmx:
                raise
            # A poll of a page that no longer exists (its instances were deleted) shows the last page instead of
            # failing every 2 s.
            paginator = self.get_paginator(queryset, page_size)
            page = paginator.page(paginator.num_pages)
            return paginator, page, page.object_list, page.has_other_pages()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["filter_form"] = self.filterset.form
        context["filtered"] = any(name in self.filterset.data for name in self.filterset.filters)
        context["polling"] = any(instance.is_transitional for instance in context["instances"])
        return context

    def render_to_response(self, context, **response_kwargs):
        if not self.filters_valid:
            response_kwargs.setdefault("status", 400)
        return super().render_to_response(context, **response_kwargs)


class InstanceDetailView(HtmxPartialMixin, TenantScopedMixin, DetailView):
    """Specs, actions, resize and the event log; polls itself (htmx) while the instance is transitional."""

    model = Instance
    template_name = "compute/instance_detail.html"
    partial_template_name = "compute/partials/instance_live.html"
    context_object_name = "instance"

    def get_queryset(self):
        # Deleted instances stay readable here: their event log is the record of what happened.
        return (
            super().get_queryset().select_related("flavor", "image", "host", "resize_flavor", "created_by", "traffic")
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        instance = self.object
        instance.tenant = self.request.tenant  # the same row (the queryset is scoped to it): saves a query
        events = list(instance_events(instance=instance)[: EVENTS_SHOWN + 1])
        context["networking"] = instance_networking(instance=instance)
        if not self.request.htmx and not instance.is_deleted and self.request.membership.has(self.change_permission):
            # The firewall picker's dialog sits outside the polled block: only the whole page needs it.
            context["firewalls_form"] = InstanceFirewallsForm(
                tenant=instance.tenant, initial={"firewalls": [f.pk for f in context["networking"].firewalls]}
            )
        context.update(
            events=events[:EVENTS_SHOWN],
            more_events=len(events) > EVENTS_SHOWN,
            currency=settings.BILLING_CURRENCY,
            price={
                "monthly": monthly_display(instance.flavor.monthly_price),
                "hourly": hourly_display(instance.flavor.monthly_price),
            },
            rename_form=kwargs.get("rename_form") or RenameForm(initial={"name": instance.name}),
        )
        if instance.can_resize() and self.request.membership.has(self.change_permission):
            context["resize_options"] = _resize_options(instance=instance, usage=quota_usage(tenant=instance.tenant))
            context["resize_form"] = kwargs.get("resize_form") or ResizeForm()
        return context


def _resize_options(*, instance: Instance, usage: dict) -> list[dict]:
    """Every size the instance may move to, with the price difference and the verdict of the service's own rules."""
    current = instance.flavor
    options = []
    for flavor in flavor_list():
        refusal = resize_refusal(instance=instance, flavor=flavor)
        if refusal is not None and refusal.code in ("same_flavor", "disk_shrink"):
            continue  # never offered: not a size the instance could ever move to
        refusal = refusal or quota_refusal(usage=usage, requested=resize_quota_request(current=current, flavor=flavor))
        monthly_difference = monthly_display(flavor.monthly_price) - monthly_display(current.monthly_price)
        # The difference of the exact rates, rounded once: rounding each rate first can be off by one in the last place.
        hourly_difference = (hourly_rate(flavor.monthly_price) - hourly_rate(current.monthly_price)).quantize(
            HOURLY_DISPLAY, rounding=ROUND_HALF_UP
        )
        options.append(
            {
                "flavor": flavor,
                "monthly": monthly_display(flavor.monthly_price),
                "hourly": hourly_display(flavor.monthly_price),
                "monthly_difference": _signed(monthly_difference),
                "hourly_difference": _signed(hourly_difference),
                "cheaper": monthly_difference < 0,
                "refusal": refusal.message if refusal else "",
            }
        )
    return options


class InstanceActionView(TenantObjectActionView):
    """A POST-only lifecycle action; the service's refusal (e.g. the instance is busy) becomes a flash message."""

    model = Instance

    def get_success_url(self, obj) -> str:
        return reverse("compute:instance-detail", kwargs={"pk": obj.pk})


class InstanceStartView(InstanceActionView):
    success_message = "{obj.name} is starting."

    def perform(self, obj) -> None:
        services.instance_start(instance=obj, user=self.request.user)


class InstanceStopView(InstanceActionView):
    def perform(self, obj) -> None:
        force = self.request.POST.get("force") == "1"
        services.instance_stop(instance=obj, user=self.request.user, force=force)
        self.success_message = "{obj.name} is being powered off." if force else "{obj.name} is shutting down."


class InstanceRebootView(InstanceActionView):
    success_message = "{obj.name} is rebooting."

    def perform(self, obj) -> None:
        services.instance_reboot(instance=obj, user=self.request.user)


class _InstanceFormActionView(TenantScopedMixin, SingleObjectMixin, View):
    """A POST-only form on one instance; an invalid form re-renders the detail page with the errors."""

    model = Instance
    http_method_names = ["post"]
    form_context_name = ""

    def get_queryset(self):
        return super().get_queryset().select_related("flavor", "image", "host", "resize_flavor", "created_by")

    def render_errors(self, form, status: int = 400):
        detail = InstanceDetailView()
        detail.setup(self.request, pk=self.object.pk)
        detail.object = self.object
        context = detail.get_context_data(object=self.object, **{self.form_context_name: form})
        context[f"{self.form_context_name}_open"] = True
        return TemplateResponse(self.request, detail.template_name, context, status=status)

    def detail_url(self) -> str:
        return reverse("compute:instance-detail", kwargs={"pk": self.object.pk})


class InstanceRenameView(_InstanceFormActionView):
    form_context_name = "rename_form"

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        form = RenameForm(request.POST)
        if not form.is_valid():
            return self.render_errors(form)
        old_name = self.object.name
        try:
            services.instance_rename(instance=self.object, user=request.user, name=form.cleaned_data["name"])
        except Conflict as error:
            # The instance's state refuses (e.g. it is being deleted): nothing the form could fix.
            messages.error(request, error.message)
            return HttpResponseRedirect(self.detail_url())
        except ServiceError as error:
            add_service_error(form, error)
            return self.render_errors(form, status=error.status)
        messages.success(request, f"{old_name} is now called {form.cleaned_data['name']}.")
        return HttpResponseRedirect(self.detail_url())


class InstanceResizeView(_InstanceFormActionView):
    form_context_name = "resize_form"

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        form = ResizeForm(request.POST)
        if not form.is_valid():
            return self.render_errors(form)
        flavor: Flavor = form.cleaned_data["flavor"]
        try:
            services.instance_resize(instance=self.object, user=request.user, flavor=flavor)
        except Conflict as error:
            messages.error(request, error.message)
            return HttpResponseRedirect(self.detail_url())
        except ServiceError as error:
            add_service_error(form, error)
            return self.render_errors(form, status=error.status)
        messages.success(request, f"{self.object.name} is being resized to {flavor.name}.")
        return HttpResponseRedirect(self.detail_url())


class InstanceDeleteView(TenantScopedMixin, SingleObjectMixin, FormView):
    """Deletion asks for the instance's name, typed: in a dialog on the detail page, or on this page without JS."""

    model = Instance
    template_name = "compute/instance_delete.html"
    context_object_name = "instance"

    def required_permission(self, method: str) -> str:
        # Even the confirmation page is only for those who may delete.
        return self.change_permission

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        return super().post(request, *args, **kwargs)

    def get_form(self, form_class=None):
        return DeleteForm(**self.get_form_kwargs(), instance=self.object)

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def form_valid(self, form):
        instance = self.object
        try:
            services.instance_delete(instance=instance, user=self.request.user)
        except ServiceError as error:
            messages.error(self.request, error.message)
            return redirect("compute:instance-detail", pk=instance.pk)
        messages.success(self.request, f"{instance.name} is being deleted; billing for it has stopped.")
        return HttpResponseRedirect(safe_next(self.request, reverse("compute:instance-list")))


# --- SSH keys ---------------------------------------------------------------------------------------------------


class SSHKeyListView(LabelFilterMixin, TenantScopedMixin, ListView):
    """The tenant's SSH keys with fingerprints; members add keys here (POST)."""

    model = SSHKey
    template_name = "compute/sshkey_list.html"
    context_object_name = "keys"

    label_filterset = SSHKeyFilter

    def get_queryset(self):
        return self.filter_by_labels(super().get_queryset().select_related("created_by").order_by("name", "id"))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", SSHKeyForm())
        return context

    def post(self, request, *args, **kwargs):
        form = SSHKeyForm(request.POST)
        if form.is_valid():
            try:
                key = services.sshkey_create(tenant=request.tenant, user=request.user, **form.cleaned_data)
            except ServiceError as error:
                add_service_error(form, error)
            else:
                messages.success(request, f"The key {key.name} was added. Pick it when you launch a machine.")
                return redirect("compute:sshkey-list")
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form), status=400)


class SSHKeyDeleteView(TenantObjectActionView):
    model = SSHKey
    success_message = "The key {obj.name} was deleted. Machines launched with it keep their copy."

    def perform(self, obj) -> None:
        services.sshkey_delete(key=obj, user=self.request.user)

    def get_success_url(self, obj) -> str:
        return reverse("compute:sshkey-list")
