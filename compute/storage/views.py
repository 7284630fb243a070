"""The Storage section of the dashboard: volumes and snapshots, and a machine's disks on its page.

Every view reaches data through TenantScopedMixin (another tenant's object is a 404) and changes state only through
compute.storage.services; a refusal is a form error or a flash message, never a 500. Lists poll themselves (htmx)
while something in them is transitional; the dialogs live outside the polled block.
"""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.generic import DetailView, ListView

from compute.forms import add_service_error
from compute.lifecycle import SNAPSHOT, VOLUME
from compute.models import Instance
from compute.network.forms import RenameForm
from compute.prices import hourly_rate, monthly_display, resource_price
from compute.selectors import quota_usage, several_regions
from compute.storage import services
from compute.storage.filters import SnapshotFilter, VolumeFilter
from compute.storage.forms import AttachForm, ExtendForm, SnapshotForm, SnapshotVolumeForm, VolumeForm
from compute.storage.models import Snapshot, StorageEventAction, Volume
from compute.storage.selectors import (
    attachable_instances,
    snapshot_list,
    storage_events,
    tenant_machines,
    volume_list,
)
from portal.errors import ServiceError
from portal.viewmixins import HtmxPartialMixin, LabelFilterMixin, TenantObjectActionView
from tenants.scoping import TenantScopedMixin

EVENTS_SHOWN = 10
EXAMPLE_GIB = 100
PER_GIB_HOURLY = Decimal("0.000001")
VOLUME_ACTIONS = [action for action in StorageEventAction.values if action.startswith("volume_")]
SNAPSHOT_ACTIONS = [action for action in StorageEventAction.values if action.startswith("snapshot_")]


def storage_prices() -> dict:
    """Per GiB a month and an hour, for volumes and snapshots, and what a 100 GiB volume costs a month."""
    prices = {}
    for key, kind in (("volume", VOLUME), ("snapshot", SNAPSHOT)):
        monthly = resource_price(kind)
        # Per GiB an hour is a fraction of a cent: shown to 6 places (billing keeps 10).
        prices[key] = {"monthly": monthly_display(monthly), "hourly": hourly_rate(monthly).quantize(PER_GIB_HOURLY)}
    example = (resource_price(VOLUME) * EXAMPLE_GIB).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {**prices, "example_gib": EXAMPLE_GIB, "example": example, "currency": settings.BILLING_CURRENCY}


def _form_errors_to_messages(request, form) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


class _ActionView(TenantObjectActionView):
    """A POST from a dialog: validates its form (errors become flash messages) and calls one service; by default on
    a volume, back to its page."""

    model = Volume
    form_class = None

    def get_form(self, obj):
        return self.form_class(self.request.POST) if self.form_class is not None else None

    def post(self, request, *args, **kwargs):
        obj = self.get_object()
        form = self.get_form(obj)
        if form is not None and not form.is_valid():
            _form_errors_to_messages(request, form)
            return HttpResponseRedirect(self.get_success_url(obj))
        try:
            message = self.perform(obj, form)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, message)
        return HttpResponseRedirect(self.get_success_url(obj))

    def get_success_url(self, obj) -> str:
        next_url = self.request.POST.get("next", "")
        if next_url.startswith("/") and not next_url.startswith("//"):
            return next_url
        return reverse("storage:volume-detail", kwargs={"pk": obj.pk})


# --- volumes ----------------------------------------------------------------------------------------------------


class _StorageListView(LabelFilterMixin, HtmxPartialMixin, TenantScopedMixin, ListView):
    """The tenant's volumes or snapshots (`selector`), filtered by label, with prices and the log of `event_actions`;
    the list polls itself while any row is transitional, and its last poll brings the rows' dialogs out of band (the
    buttons of a row still being made when the page loaded had none to open)."""

    selector = None
    event_actions: list[str] = []

    def get_queryset(self):
        return self.filter_by_labels(type(self).selector(tenant=self.request.tenant))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            polling=any(item.is_transitional for item in context["object_list"]), show_regions=several_regions()
        )
        if not self.request.htmx:
            events = storage_events(tenant=self.request.tenant, actions=self.event_actions)[:EVENTS_SHOWN]
            context.update(prices=storage_prices(), events=events)
        elif not context["polling"]:
            context.update(dialogs_out_of_band=True, prices=storage_prices())
        return context


class VolumeListView(_StorageListView):
    """The tenant's volumes with their machines; members create more here (POST), with the price shown first."""

    model = Volume
    template_name = "storage/volume_list.html"
    partial_template_name = "storage/partials/volume_table.html"
    context_object_name = "volumes"
    label_filterset = VolumeFilter
    selector = volume_list
    event_actions = VOLUME_ACTIONS

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if self.request.htmx and context["polling"]:
            return context
        tenant = self.request.tenant
        if not self.request.htmx:
            usage = quota_usage(tenant=tenant, resources=("volume_gb", "volumes"))
            context.update(
                form=kwargs.get("form") or VolumeForm(tenant=tenant, initial={"size_gib": EXAMPLE_GIB}),
                usage={"volume_gb": usage["volume_gb"], "volumes": usage["volumes"]},
            )
        machines = list(tenant_machines(tenant=tenant))  # every row's "attach to" choices, read once for the page
        for volume in context["volumes"]:
            volume.attach_machines = [
                m for m in machines if m.host is not None and m.host.region_id == volume.region_id
            ]
        return context

    def post(self, request, *args, **kwargs):
        form = VolumeForm(request.POST, tenant=request.tenant)
        status = 400
        if form.is_valid():
            try:
                volume = services.volume_create(tenant=request.tenant, user=request.user, **form.cleaned_data)
            except ServiceError as error:
                add_service_error(form, error)
                status = error.status
            else:
                messages.success(
                    request, f"{volume.name} ({volume.size_gib} GiB) is being created; attach it to a machine next."
                )
                return HttpResponseRedirect(reverse("storage:volume-list"))
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form), status=status)


class VolumeDetailView(HtmxPartialMixin, TenantScopedMixin, DetailView):
    """A volume: size, state, machine, snapshots and log, with its actions; polls itself while transitional."""

    model = Volume
    template_name = "storage/volume_detail.html"
    partial_template_name = "storage/partials/volume_live.html"
    context_object_name = "volume"

    def get_queryset(self):
        return super().get_queryset().select_related("instance", "region", "source_snapshot", "created_by")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        volume = self.object
        context.update(
            snapshots=list(volume.snapshots.exclude(state="deleted").order_by("-created_at")),
            events=storage_events(tenant=self.request.tenant, volume=volume)[:EVENTS_SHOWN],
            prices=storage_prices(),
            show_regions=several_regions(),
        )
        if not self.request.htmx:
            context.update(
                machines=list(attachable_instances(volume=volume)) if volume.can_attach() else [],
                rename_form=RenameForm(initial={"name": volume.name}),
            )
        return context


class VolumeAttachView(_ActionView):
    def get_form(self, volume):
        return AttachForm(self.request.POST, instances=attachable_instances(volume=volume))

    def perform(self, volume, form) -> str:
        machine = form.cleaned_data["instance"]
        volume = services.volume_attach(volume=volume, instance=machine, user=self.request.user)
        return f"{volume.name} is being attached to {machine.name} as {volume.device}."


class VolumeDetachView(_ActionView):
    def perform(self, volume, form) -> str:
        services.volume_detach(volume=volume, user=self.request.user)
        return f"{volume.name} is being detached; its data stays on the volume."


class VolumeExtendView(_ActionView):
    form_class = ExtendForm

    def perform(self, volume, form) -> str:
        volume = services.volume_extend(volume=volume, user=self.request.user, size_gib=form.cleaned_data["size_gib"])
        inside = " Grow the file system inside the machine to use it." if volume.instance_id else ""
        return f"{volume.name} is growing to {volume.size_gib} GiB.{inside}"


class VolumeSnapshotView(_ActionView):
    form_class = SnapshotForm

    def perform(self, volume, form) -> str:
        snapshot = services.snapshot_create(volume=volume, user=self.request.user, name=form.cleaned_data["name"])
        note = " It is crash-consistent: the machine was running." if snapshot.crash_consistent else ""
        return f"The snapshot {snapshot.name} of {volume.name} is being taken.{note}"


class VolumeRenameView(_ActionView):
    form_class = RenameForm

    def perform(self, volume, form) -> str:
        volume = services.volume_update(volume=volume, user=self.request.user, name=form.cleaned_data["name"])
        return f"Renamed to {volume.name}."


class VolumeDeleteView(_ActionView):
    def perform(self, volume, form) -> str:
        services.volume_delete(volume=volume, user=self.request.user)
        return f"{volume.name} is being deleted; billing for it has stopped."

    def get_success_url(self, obj) -> str:
        return reverse("storage:volume-list")


class InstanceAttachView(_ActionView):
    """From a machine's page: attach one of the tenant's available volumes to it."""

    model = Instance

    def get_form(self, instance):
        return None

    def perform(self, instance, form) -> str:
        volume = get_object_or_404(Volume.objects.for_tenant(self.request.tenant), pk=self.request.POST.get("volume"))
        volume = services.volume_attach(volume=volume, instance=instance, user=self.request.user)
        return f"{volume.name} is being attached to {instance.name} as {volume.device}."

    def get_success_url(self, instance) -> str:
        return reverse("compute:instance-detail", kwargs={"pk": instance.pk})


# --- snapshots --------------------------------------------------------------------------------------------------


class SnapshotListView(_StorageListView):
    model = Snapshot
    template_name = "storage/snapshot_list.html"
    partial_template_name = "storage/partials/snapshot_table.html"
    context_object_name = "snapshots"
    label_filterset = SnapshotFilter
    selector = snapshot_list
    event_actions = SNAPSHOT_ACTIONS


class _SnapshotActionView(_ActionView):
    model = Snapshot

    def get_success_url(self, obj) -> str:
        return reverse("storage:snapshot-list")


class SnapshotVolumeView(_SnapshotActionView):
    form_class = SnapshotVolumeForm

    def perform(self, snapshot, form) -> str:
        volume = services.volume_create(
            tenant=self.request.tenant,
            user=self.request.user,
            name=form.cleaned_data["name"],
            size_gib=form.cleaned_data["size_gib"],
            snapshot=snapshot,
        )
        return f"{volume.name} ({volume.size_gib} GiB) is being made from {snapshot.name}."

    def get_success_url(self, obj) -> str:
        return reverse("storage:volume-list")


class SnapshotRenameView(_SnapshotActionView):
    form_class = RenameForm

    def perform(self, snapshot, form) -> str:
        snapshot = services.snapshot_update(snapshot=snapshot, user=self.request.user, name=form.cleaned_data["name"])
        return f"Renamed to {snapshot.name}."


class SnapshotDeleteView(_SnapshotActionView):
    def perform(self, snapshot, form) -> str:
        services.snapshot_delete(snapshot=snapshot, user=self.request.user)
        return f"The snapshot {snapshot.name} is being deleted; billing for it has stopped."
