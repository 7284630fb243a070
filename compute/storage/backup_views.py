"""The Storage section's Backups and My images pages, and what a machine's page does with its backups and disk.

Every view reaches data through TenantScopedMixin (another tenant's object is a 404) and changes state only through
compute.storage.services; a refusal is a flash message or a form error, never a 500.
"""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.views.generic import DetailView, ListView

from compute import lifecycle
from compute.forms import uuid_list
from compute.models import Image, Instance
from compute.prices import hourly_display, monthly_display, resource_price
from compute.storage import backup_selectors as selectors
from compute.storage.backup_forms import BackupPolicyForm, NameForm, RestoreNewForm, RestoreOverwriteForm
from compute.storage.backup_models import Backup
from compute.storage.models import Snapshot, SnapshotState, StorageEvent, StorageEventAction
from compute.storage.services import backups as services
from compute.storage.services.boot_snapshots import instance_snapshot
from compute.storage.services.images import image_create, image_delete
from portal.errors import ServiceError
from portal.viewmixins import HtmxPartialMixin, TenantObjectActionView
from tenants.scoping import TenantScopedMixin

EVENTS_SHOWN = 10
BACKUP_ACTIONS = (
    StorageEventAction.BACKUPS_ENABLE,
    StorageEventAction.BACKUPS_DISABLE,
    StorageEventAction.BACKUP_CREATE,
    StorageEventAction.BACKUP_DELETE,
    StorageEventAction.BACKUP_RESTORE,
    StorageEventAction.BACKUP_ERROR,
)
IMAGE_ACTIONS = (StorageEventAction.IMAGE_CREATE, StorageEventAction.IMAGE_DELETE, StorageEventAction.IMAGE_ERROR)


def _events(tenant, actions):
    return StorageEvent.objects.for_tenant(tenant).filter(action__in=actions).select_related("actor")[:EVENTS_SHOWN]


def _form_error(request, form) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


class BackupListView(HtmxPartialMixin, TenantScopedMixin, ListView):
    """Every backup of the organisation (live status: polls while one is being made or deleted), the machines with
    backups and their schedules."""

    model = Backup
    template_name = "storage/backup_list.html"
    partial_template_name = "storage/partials/backup_table.html"
    context_object_name = "backups"

    def get_queryset(self):
        return selectors.backup_list(tenant=self.request.tenant)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        backups = context["backups"]
        context["polling"] = any(backup.is_transitional for backup in backups)
        if not self.request.htmx:
            context.update(
                schedules=selectors.backup_summary(tenant=self.request.tenant),
                share=selectors.backup_share_percent(),
                events=_events(self.request.tenant, BACKUP_ACTIONS),
                restore_form=RestoreNewForm(),
            )
        return context


class ImageListView(HtmxPartialMixin, TenantScopedMixin, ListView):
    """The organisation's private images (launch, delete), and the form that makes one from a snapshot."""

    model = Image
    template_name = "storage/image_list.html"
    partial_template_name = "storage/partials/image_table.html"
    context_object_name = "images"

    def get_queryset(self):
        return selectors.private_image_list(tenant=self.request.tenant)

    def snapshots(self):
        return Snapshot.objects.for_tenant(self.request.tenant).filter(state=SnapshotState.AVAILABLE).order_by("name")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["polling"] = any(image.is_transitional for image in context["images"])
        per_gib = resource_price(lifecycle.IMAGE)
        context.update(
            snapshots=[
                {"snapshot": snapshot, "monthly": monthly_display(per_gib * snapshot.size_gib)}
                for snapshot in self.snapshots()
            ],
            form=kwargs.get("form") or NameForm(),
            price={"monthly": monthly_display(per_gib), "hourly": hourly_display(per_gib)},
            currency=settings.BILLING_CURRENCY,
            events=_events(self.request.tenant, IMAGE_ACTIONS),
        )
        return context

    def post(self, request, *args, **kwargs):
        form = NameForm(request.POST)
        snapshot = self.snapshots().filter(pk__in=uuid_list(request.POST.get("snapshot"))).first()
        status = 400
        if form.is_valid() and snapshot is None:
            form.add_error(None, "Pick one of your available snapshots.")
        elif form.is_valid():
            try:
                image = image_create(snapshot=snapshot, user=request.user, name=form.cleaned_data["name"])
            except ServiceError as error:
                form.add_error("name" if error.details.get("field") == "name" else None, error.message)
                status = error.status
            else:
                messages.success(request, f"The image {image.name} is being made from {snapshot.name}.")
                return HttpResponseRedirect(reverse("backups:image-list"))
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form), status=status)


class ImageDeleteView(TenantObjectActionView):
    model = Image

    def perform(self, image):
        image_delete(image=image, user=self.request.user)
        messages.success(self.request, f"The image {image.name} is being deleted; billing for it has stopped.")

    def get_success_url(self, image) -> str:
        return reverse("backups:image-list")


class _InstanceAction(TenantObjectActionView):
    model = Instance

    def get_success_url(self, instance) -> str:
        return reverse("compute:instance-detail", kwargs={"pk": instance.pk}) + "#backups"


class InstanceBackupRowsView(TenantScopedMixin, DetailView):
    """The machine's backups as its page shows them (the fragment its page polls while one is in progress)."""

    model = Instance
    template_name = "storage/partials/instance_backup_rows.html"
    context_object_name = "instance"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        backups = selectors.instance_backups(instance=self.object)
        context.update(backups=backups, polling=any(backup.is_transitional for backup in backups))
        return context


class InstanceBackupPolicyView(_InstanceAction):
    """Turns the machine's daily backups on (at an hour), moves the hour, or turns them off."""

    def perform(self, instance):
        form = BackupPolicyForm(self.request.POST)
        if not form.is_valid():
            _form_error(self.request, form)
            return
        data = form.cleaned_data
        if data["enabled"]:
            policy = services.backups_enable(instance=instance, user=self.request.user, hour=data["hour"])
            messages.success(self.request, f"Backups of {instance.name}: {policy.schedule_label.lower()}.")
        else:
            services.backups_disable(instance=instance, user=self.request.user, delete_backups=data["delete_backups"])
            kept = "deleted" if data["delete_backups"] else "kept until you delete them"
            messages.success(self.request, f"Backups of {instance.name} are off; those made so far are {kept}.")


class InstanceBackupNowView(_InstanceAction):
    def perform(self, instance):
        backup = services.backup_create(instance=instance, user=self.request.user)
        messages.success(self.request, f"The backup {backup.name} is being made.")


class InstanceSnapshotView(_InstanceAction):
    """A snapshot of the machine's boot disk (crash-consistent if it runs; the dialog said so)."""

    def perform(self, instance):
        form = NameForm(self.request.POST)
        if not form.is_valid():
            _form_error(self.request, form)
            return
        snapshot = instance_snapshot(instance=instance, user=self.request.user, name=form.cleaned_data["name"])
        note = " It is crash-consistent: the machine was running." if snapshot.crash_consistent else ""
        messages.success(self.request, f"The snapshot {snapshot.name} of the disk is being taken.{note}")


class BackupDeleteView(TenantObjectActionView):
    model = Backup

    def perform(self, backup):
        services.backup_delete(backup=backup, user=self.request.user)
        messages.success(self.request, f"The backup {backup.name} is being deleted.")

    def get_success_url(self, backup) -> str:
        return reverse("backups:backup-list")


class BackupRestoreView(TenantObjectActionView):
    """Restores a backup as a new machine (mode "new"), or over its machine's disk (mode "overwrite", the machine's
    name typed)."""

    model = Backup

    def perform(self, backup):
        if self.request.POST.get("mode") == "overwrite":
            form = RestoreOverwriteForm(self.request.POST)
            if not form.is_valid():
                _form_error(self.request, form)
                return
            instance = services.backup_restore(
                backup=backup, user=self.request.user, confirm_name=form.cleaned_data["confirm_name"]
            )
            self.target = instance
            messages.success(self.request, f"{instance.name} is being restored from {backup.name}.")
            return
        form = RestoreNewForm(self.request.POST)
        if not form.is_valid():
            _form_error(self.request, form)
            return
        data = form.cleaned_data
        instance = services.backup_restore_as_new(
            backup=backup, user=self.request.user, name=data["name"], flavor=data["flavor"]
        )
        self.target = instance
        messages.success(self.request, f"{instance.name} is being made from {backup.name}.")

    def get_success_url(self, backup) -> str:
        target = getattr(self, "target", None)
        if target is not None:
            return reverse("compute:instance-detail", kwargs={"pk": target.pk})
        return reverse("backups:backup-list")
