"""Monitoring endpoints: a machine's usage, and alert policies with their history. Writes go through
compute.monitoring.services, as the dashboard's do."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, mixins
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from compute.models import Instance
from compute.monitoring import selectors, services
from compute.monitoring.api import serializers as s
from compute.monitoring.models import AlertPolicy
from portal.api.views import HangarApiMixin, TenantViewSet
from tenants.scoping import TenantScopedMixin


class InstanceUsageView(HangarApiMixin, TenantScopedMixin, generics.GenericAPIView):
    """CPU, disk and network of one machine over the last hour, day, week or month."""

    queryset = Instance.objects.all()
    serializer_class = s.InstanceMetricsSerializer
    lookup_value_converter = "uuid"

    @extend_schema(
        operation_id="instances_metrics_retrieve",
        summary="An instance's usage: CPU, disk read/write and network in/out",
        description="One point per period: a minute over 1h, five minutes over 24h, an hour over 7d and 30d. "
        "Sampled every minute; raw minutes are kept 48 hours, five-minute averages 30 days, hourly 13 months.",
        tags=["instances"],
        parameters=[
            OpenApiParameter(
                "range", {"type": "string", "enum": list(selectors.USAGE_RANGES)}, description="Default 24h."
            )
        ],
    )
    def get(self, request, pk=None):
        instance = self.get_object()
        range_key = request.query_params.get("range", "24h")
        if range_key not in selectors.USAGE_RANGES:
            raise ValidationError({"range": [f"One of: {', '.join(selectors.USAGE_RANGES)}."]})
        return Response(
            s.InstanceMetricsSerializer(selectors.instance_usage(instance=instance, range_key=range_key)).data
        )


@extend_schema_view(
    list=extend_schema(summary="List your alert policies", tags=["alerts"]),
    retrieve=extend_schema(summary="One alert policy", tags=["alerts"]),
    destroy=extend_schema(summary="Delete an alert policy and its history", tags=["alerts"]),
)
class AlertPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    queryset = AlertPolicy.objects.select_related("instance").order_by("name", "id")
    serializer_class = s.AlertPolicySerializer
    filterset_class = None

    @extend_schema(
        summary="Create an alert policy",
        description="The response (only this one) includes the webhook signing secret.",
        tags=["alerts"],
        request=s.AlertPolicyInputSerializer,
        responses={201: s.AlertPolicyWithSecretSerializer},
    )
    def create(self, request):
        data = self.validated(s.AlertPolicyInputSerializer, request.data)
        policy = services.alert_policy_create(tenant=request.tenant, user=request.user, **data)
        return self.created(policy, s.AlertPolicyWithSecretSerializer)

    @extend_schema(
        summary="Change an alert policy",
        description="Fields not sent keep their value. Changing the condition closes open incidents without a notice.",
        tags=["alerts"],
        request=s.AlertPolicyInputSerializer(partial=True),
        responses={200: s.AlertPolicySerializer},
    )
    def partial_update(self, request, pk=None):
        policy = self.get_object()
        context = {**self.get_serializer_context(), "tenant": request.tenant}
        serializer = s.AlertPolicyInputSerializer(data=request.data, partial=True, context=context)
        serializer.is_valid(raise_exception=True)
        policy = services.alert_policy_update(policy=policy, user=request.user, **serializer.validated_data)
        return Response(s.AlertPolicySerializer(policy).data)

    def perform_destroy(self, instance):
        services.alert_policy_delete(policy=instance, user=self.request.user)

    @extend_schema(
        summary="An alert policy's history: each firing and recovery, with its notices",
        tags=["alerts"],
        responses={200: s.AlertIncidentSerializer(many=True)},
        filters=False,
    )
    @action(detail=True, methods=["get"], url_path="incidents", filterset_class=None)
    def incidents(self, request, pk=None):
        policy = self.get_object()
        page = self.paginate_queryset(selectors.alert_incidents(policy=policy))
        return self.get_paginated_response(s.AlertIncidentSerializer(page, many=True).data)
