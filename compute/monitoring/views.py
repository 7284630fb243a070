"""The dashboard's alert pages: policies with their recent firings, and one policy's settings and history."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.views.generic import DetailView, TemplateView

from compute.monitoring import selectors, services
from compute.monitoring.forms import AlertPolicyForm, add_policy_errors
from compute.monitoring.models import AlertPolicy
from portal.errors import ServiceError
from portal.viewmixins import TenantObjectActionView
from tenants.scoping import TenantScopedMixin

INCIDENTS_SHOWN = 100


def _form(request, *, data=None, initial=None) -> AlertPolicyForm:
    return AlertPolicyForm(data, initial=initial, instances=selectors.alertable_instances(tenant=request.tenant))


class AlertPolicyListView(TenantScopedMixin, TemplateView):
    """Every policy with its open firings, the last week's incidents, and (for members who may) a new policy."""

    template_name = "monitoring/alert_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant = self.request.tenant
        context.update(
            policies=selectors.alert_policy_list(tenant=tenant),
            incidents=selectors.recent_incidents(tenant=tenant)[:50],
        )
        context.setdefault("form", _form(self.request, initial={"instance": self.request.GET.get("instance")}))
        return context

    def post(self, request, *args, **kwargs):
        form = _form(request, data=request.POST)
        if form.is_valid():
            try:
                policy = services.alert_policy_create(tenant=request.tenant, user=request.user, **form.cleaned_data)
            except ServiceError as error:
                add_policy_errors(form, error)
            else:
                messages.success(request, f"The alert policy {policy.name} watches from the next minute on.")
                return redirect("monitoring:alert-detail", pk=policy.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class AlertPolicyDetailView(TenantScopedMixin, DetailView):
    """A policy's condition and channels (editable), its webhook secret, and its history of firings."""

    model = AlertPolicy
    template_name = "monitoring/alert_detail.html"
    context_object_name = "policy"

    def get_queryset(self):
        return super().get_queryset().select_related("instance")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        policy = self.object
        initial = {name: getattr(policy, name) for name in services.alerts.POLICY_FIELDS}
        initial["threshold"] = f"{policy.threshold:g}"  # 80, not 80.0
        context.setdefault("form", _form(self.request, initial=initial))
        context["incidents"] = selectors.alert_incidents(policy=policy)[:INCIDENTS_SHOWN]
        return context

    def post(self, request, *args, **kwargs):
        self.object = policy = self.get_object()
        form = _form(request, data=request.POST)
        if form.is_valid():
            try:
                services.alert_policy_update(policy=policy, user=request.user, **form.cleaned_data)
            except ServiceError as error:
                add_policy_errors(form, error)
            else:
                messages.success(request, "The alert policy was saved.")
                return redirect("monitoring:alert-detail", pk=policy.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class AlertPolicyDeleteView(TenantObjectActionView):
    model = AlertPolicy
    success_message = "The alert policy {obj.name} and its history were deleted."

    def perform(self, obj) -> None:
        services.alert_policy_delete(policy=obj, user=self.request.user)

    def get_success_url(self, obj) -> str:
        return reverse("monitoring:alert-list")


class AlertPolicyRotateSecretView(TenantObjectActionView):
    model = AlertPolicy
    success_message = "The webhook secret was replaced: update your receiver with the new one."

    def perform(self, obj) -> None:
        services.alert_policy_rotate_secret(policy=obj, user=self.request.user)

    def get_success_url(self, obj) -> str:
        return reverse("monitoring:alert-detail", kwargs={"pk": obj.pk})
