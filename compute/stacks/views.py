"""The dashboard's Stacks pages: paste or upload a document, see its plan with the cost difference, apply it and
watch the run; each stack with its resources and monthly cost, export and destroy."""

from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.generic import DetailView, TemplateView

from compute.stacks import selectors, services
from compute.stacks.document import valid_stack_name
from compute.stacks.forms import StackDestroyForm, StackDocumentForm
from compute.stacks.models import STACK_LABEL, Stack, StackPlan, StackRun
from portal.errors import ServiceError
from portal.viewmixins import HtmxPartialMixin, TenantObjectActionView
from tenants.labels import parse_selector
from tenants.scoping import TenantScopedMixin

EXAMPLE = """stack: shop
networks:
  backend: {cidr: 10.40.0.0/24}
firewalls:
  web:
    rules:
      - {direction: in, protocol: tcp, ports: 443}
      - {direction: in, protocol: tcp, ports: 22}
      - {direction: out, protocol: any}
machines:
  web:
    flavor: FLAVOR
    image: IMAGE
    count: 2
    networks: [backend]
    firewalls: [web]
    public_ip: true
"""


class StackListView(TenantScopedMixin, TemplateView):
    """Every stack with its resources, monthly cost and last run, and the form that plans a document."""

    template_name = "stacks/stack_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant = self.request.tenant
        stacks = list(
            Stack.objects.for_tenant(tenant)
            .annotate(last_run_id=selectors.last_run_id(tenant=tenant))
            .order_by("name", "id")[:200]
        )
        context["stacks"] = selectors.stack_summaries(tenant=tenant, stacks=stacks)
        context.setdefault("form", StackDocumentForm(initial={"document": self._exported(context) or self._example()}))
        context["recent_runs"] = StackRun.objects.for_tenant(tenant).order_by("-created_at", "-id")[:10]
        return context

    def _exported(self, context) -> str:
        """`?adopt=team=web&name=web`: the resources with that label as a document, ready to plan (adoption)."""
        selector = self.request.GET.get("adopt", "").strip()
        name = self.request.GET.get("name", "").strip() or "adopted"
        context["adopt_selector"], context["adopt_name"] = selector, name
        if not selector:
            return ""
        try:
            chosen = [parse_selector(selector)]
        except ValidationError as error:
            context["adopt_error"] = error.messages[0]
            return ""
        if not valid_stack_name(name):
            context["adopt_error"] = "A stack's name is lower-case letters, digits and hyphens."
            return ""
        return selectors.stack_export(tenant=self.request.tenant, selectors=chosen, stack=name)

    def _example(self) -> str:
        from compute.models import Flavor, Image

        flavor = Flavor.objects.active().order_by("vcpus", "ram_mib", "name").first()
        image = Image.objects.active().order_by("name").first()
        return EXAMPLE.replace("FLAVOR", flavor.name if flavor else "s1.small").replace(
            "IMAGE", image.name if image else "Debian 12"
        )

    def post(self, request, *args, **kwargs):
        form = StackDocumentForm(request.POST, request.FILES)
        problems = []
        if form.is_valid():
            try:
                plan = services.stack_plan_create(
                    tenant=request.tenant, user=request.user, source=form.cleaned_data["document"]
                )
            except services.DocumentRefused as error:
                problems = error.details
            except ServiceError as error:
                form.add_error(None, error.message)
            else:
                return HttpResponseRedirect(reverse("stacks:plan-detail", kwargs={"pk": plan.pk}))
        context = self.get_context_data(form=form, problems=problems)
        return self.render_to_response(context, status=400)


class PlanDetailView(TenantScopedMixin, DetailView):
    """A plan: each change, the quota check and the monthly cost before, after and the difference; Apply."""

    model = StackPlan
    template_name = "stacks/plan_detail.html"
    context_object_name = "plan"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        plan = self.object
        counts = {}
        for change in plan.changes:
            counts[change["action"]] = counts.get(change["action"], 0) + 1
        context["counts"] = counts
        difference = Decimal(plan.cost.get("difference") or 0)
        context["difference_sign"] = "up" if difference > 0 else "down" if difference < 0 else "same"
        context["applied"] = plan.runs.order_by("-created_at").first()
        return context


class PlanApplyView(TenantObjectActionView):
    model = StackPlan

    def post(self, request, *args, **kwargs):
        plan = self.get_object()
        try:
            run = services.stack_plan_apply(plan=plan, user=request.user)
        except ServiceError as error:
            messages.error(request, error.message)
            return HttpResponseRedirect(reverse("stacks:plan-detail", kwargs={"pk": plan.pk}))
        return HttpResponseRedirect(reverse("stacks:run-detail", kwargs={"pk": run.pk}))


class RunDetailView(HtmxPartialMixin, TenantScopedMixin, DetailView):
    """A run's steps and progress; while it runs the panel polls itself (htmx) every 2 s."""

    model = StackRun
    template_name = "stacks/run_detail.html"
    partial_template_name = "stacks/partials/run_progress.html"
    context_object_name = "run"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        run = self.object
        context["percent"] = run.done * 100 // run.total if run.total else 100
        return context


class StackDetailView(TenantScopedMixin, DetailView):
    """A stack's resources with their monthly cost, its runs, export and destroy."""

    model = Stack
    template_name = "stacks/stack_detail.html"
    context_object_name = "stack"
    slug_field = "name"
    slug_url_kwarg = "name"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant = self.request.tenant
        (summary,) = selectors.stack_summaries(tenant=tenant, stacks=[self.object], with_rows=True)
        context["summary"] = summary
        context["runs"] = (
            StackRun.objects.for_tenant(tenant).filter(stack=self.object.name).order_by("-created_at")[:20]
        )
        context["export"] = selectors.stack_export(
            tenant=tenant, selectors=[(STACK_LABEL, self.object.name)], stack=self.object.name
        )
        return context


class StackExportView(TenantScopedMixin, DetailView):
    """The stack as a document, downloaded."""

    model = Stack
    slug_field = "name"
    slug_url_kwarg = "name"

    def render_to_response(self, context, **response_kwargs):
        stack = self.object
        text = selectors.stack_export(
            tenant=self.request.tenant, selectors=[(STACK_LABEL, stack.name)], stack=stack.name
        )
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{stack.name}.yaml"'
        return response


class StackDestroyView(TenantScopedMixin, DetailView):
    """Confirmation (type the name), then the destroy run."""

    model = Stack
    template_name = "stacks/stack_destroy.html"
    context_object_name = "stack"
    slug_field = "name"
    slug_url_kwarg = "name"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        (context["summary"],) = selectors.stack_summaries(
            tenant=self.request.tenant, stacks=[self.object], with_rows=True
        )
        context.setdefault("form", StackDestroyForm(stack_name=self.object.name))
        return context

    def post(self, request, *args, **kwargs):
        self.object = stack = self.get_object()
        form = StackDestroyForm(request.POST, stack_name=stack.name)
        if form.is_valid():
            try:
                run = services.stack_destroy(tenant=request.tenant, user=request.user, name=stack.name)
            except ServiceError as error:
                form.add_error(None, error.message)
            else:
                return HttpResponseRedirect(reverse("stacks:run-detail", kwargs={"pk": run.pk}))
        return self.render_to_response(self.get_context_data(form=form), status=400)
