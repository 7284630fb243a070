"""Stack endpoints: the document's JSON Schema, plans, applying them, runs, stacks (list, show, destroy, export).

Every write calls compute.stacks.services, as the dashboard does.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from compute.stacks import document, selectors, services
from compute.stacks.api import serializers as s
from compute.stacks.models import STACK_LABEL, Stack, StackPlan, StackRun
from portal.api.schema import ErrorSerializer
from portal.api.views import HangarApiMixin, TenantApiView, TenantViewSet
from tenants.labels import parse_selector

EXAMPLE_DOCUMENT = """stack: shop
networks:
  backend: {cidr: 10.40.0.0/24}
firewalls:
  web:
    rules:
      - {direction: in, protocol: tcp, ports: 443}
      - {direction: out, protocol: any}
machines:
  web:
    flavor: s1.small
    image: Debian 12
    count: 2
    networks: [backend]
    firewalls: [web]
    public_ip: true
"""
INVALID = OpenApiResponse(
    ErrorSerializer,
    description="`invalid_document`: `details` lists each problem as `{field, line, message}` "
    "(e.g. `machines.web.flavor`, line 7).",
)
ACCEPTED_RUN = OpenApiResponse(
    s.RunSerializer, description="Accepted: the run goes on in the background; poll it (Location header)."
)


class StackSchemaView(HangarApiMixin, APIView):
    """The JSON Schema of stack documents."""

    @extend_schema(
        operation_id="stacks_schema_retrieve",
        summary="The JSON Schema of stack documents",
        description="Editors and the `hangar` CLI validate documents with it; plans check the same rules and more "
        "(references to missing names, dependency cycles, the catalog, quotas).",
        tags=["stacks"],
        responses={200: OpenApiResponse(description="A JSON Schema (draft 2020-12).")},
    )
    def get(self, request):
        return Response(document.SCHEMA)


@extend_schema_view(
    retrieve=extend_schema(summary="One plan", tags=["stacks"]),
)
class StackPlanViewSet(mixins.RetrieveModelMixin, TenantViewSet):
    queryset = StackPlan.objects.order_by("-created_at", "id")
    serializer_class = s.PlanSerializer

    @extend_schema(
        summary="Plan a stack document",
        description="Compares the document with your resources labelled `hangar.stack=<stack>` and answers, without "
        "changing anything, each change (create, update in place, replace with the reason, delete), the quota check "
        "and the monthly cost before and after. Apply it by its id.",
        tags=["stacks"],
        request=s.PlanCreateSerializer,
        responses={201: s.PlanSerializer, 400: INVALID},
        examples=[OpenApiExample("yaml", request_only=True, value={"document": EXAMPLE_DOCUMENT})],
    )
    def create(self, request):
        data = self.validated(s.PlanCreateSerializer, request.data)
        plan = services.stack_plan_create(tenant=request.tenant, user=request.user, source=data["document"])
        return self.created(plan, s.PlanSerializer)

    @extend_schema(
        summary="Apply a plan",
        description="Runs the plan's changes in the background, in dependency order, through the same services as "
        "the rest of the API. 409 `plan_stale` when the stack's resources changed since the plan was made (make a "
        "new one), 409 `run_in_progress` while another run of the stack goes on, 422 `quota_exceeded`.",
        tags=["stacks"],
        request=None,
        responses={
            202: ACCEPTED_RUN,
            409: OpenApiResponse(ErrorSerializer, description="`plan_stale` or `run_in_progress`."),
            422: OpenApiResponse(ErrorSerializer, description="`quota_exceeded`, or the organisation is on hold."),
        },
    )
    @action(detail=True, methods=["post"], url_path="apply")
    def apply(self, request, pk=None):
        run = services.stack_plan_apply(plan=self.get_object(), user=request.user)
        return self.accepted(run, s.RunSerializer, route="api:stack-run-detail")


@extend_schema_view(retrieve=extend_schema(summary="One run: its steps and how far it got", tags=["stacks"]))
class StackRunViewSet(mixins.RetrieveModelMixin, TenantViewSet):
    queryset = StackRun.objects.order_by("-created_at", "id")
    serializer_class = s.RunSerializer


@extend_schema_view(
    list=extend_schema(summary="List your stacks with their resources and monthly cost", tags=["stacks"]),
)
class StackViewSet(mixins.ListModelMixin, TenantViewSet):
    queryset = Stack.objects.order_by("name", "id")

    def get_queryset(self):
        return super().get_queryset().annotate(last_run_id=selectors.last_run_id(tenant=self.request.tenant))

    serializer_class = s.StackSerializer
    filterset_class = None
    lookup_field = "name"
    lookup_value_converter = "slug"

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        rows = selectors.stack_summaries(tenant=request.tenant, stacks=list(page))
        return self.get_paginated_response(s.StackSerializer(rows, many=True).data)

    @extend_schema(summary="One stack with its resources", tags=["stacks"], responses={200: s.StackDetailSerializer})
    def retrieve(self, request, name=None):
        (summary,) = selectors.stack_summaries(tenant=request.tenant, stacks=[self.get_object()], with_rows=True)
        return Response(s.StackDetailSerializer(summary).data)

    @extend_schema(
        summary="Destroy a stack",
        description="Deletes every resource labelled with the stack, machines first; the answer is the run.",
        tags=["stacks"],
        responses={202: ACCEPTED_RUN},
    )
    def destroy(self, request, name=None):
        stack = self.get_object()
        run = services.stack_destroy(tenant=request.tenant, user=request.user, name=stack.name)
        return self.accepted(run, s.RunSerializer, route="api:stack-run-detail")

    @extend_schema(
        summary="Export a stack as a document",
        tags=["stacks"],
        responses={200: s.ExportSerializer},
        filters=False,
    )
    @action(detail=True, methods=["get"], url_path="export", filterset_class=None)
    def export(self, request, name=None):
        stack = self.get_object()
        text = selectors.stack_export(tenant=request.tenant, selectors=[(STACK_LABEL, stack.name)], stack=stack.name)
        return Response({"document": text})


class StackExportView(TenantApiView):
    """Resources selected by label, as a stack document: adopt what you already run."""

    serializer_class = s.ExportSerializer

    @extend_schema(
        operation_id="stacks_export_by_label",
        summary="Export resources selected by label as a stack document",
        description="Every instance, volume, network, firewall, SSH key and public address with all the given labels, "
        "and what their machines refer to. Planning the result adopts them into the stack.",
        tags=["stacks"],
        parameters=[
            OpenApiParameter(
                "label",
                {"type": "array", "items": {"type": "string"}},
                description="`key=value` or `key`; repeat for more (all must match). Without any: every resource "
                "that belongs to no stack.",
                explode=True,
            ),
            OpenApiParameter("stack", str, description="The document's stack name (default: exported)."),
        ],
        responses={200: s.ExportSerializer},
    )
    def get(self, request):
        values = request.query_params.getlist("label")
        try:
            chosen = [parse_selector(value) for value in values]
        except DjangoValidationError as error:
            raise ValidationError({"label": error.messages}) from None
        name = request.query_params.get("stack", "exported")
        if not document.valid_stack_name(name):
            raise ValidationError({"stack": ["Lower-case letters, digits and hyphens, at most 40."]})
        return Response({"document": selectors.stack_export(tenant=request.tenant, selectors=chosen, stack=name)})
