from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.response import Response

from portal.api.views import TenantApiView, TenantViewSet
from tenants.api.filters import ActivityEntryFilter
from tenants.api.serializers import ActivityEntrySerializer, TenantSerializer
from tenants.models import ActivityEntry
from tenants.roles import Permission


class TenantView(TenantApiView):
    """The organisation the credential belongs to (a token's tenant, or the tenant chosen in the browser)."""

    serializer_class = TenantSerializer
    view_permission = Permission.VIEW_RESOURCES
    change_permission = Permission.MANAGE_TENANT

    @extend_schema(
        operation_id="tenant_retrieve",
        summary="Your organisation and your role in it",
        tags=["tenant"],
        examples=[
            OpenApiExample(
                "tenant",
                value={
                    "id": "0b5c3f7e-2f0d-4a8e-9d0e-3f1a2b3c4d5e",
                    "name": "Acme Robotics",
                    "status": "active",
                    "created_at": "2026-01-05T09:30:00Z",
                    "role": "admin",
                    "accepts_new_resources": True,
                },
            )
        ],
    )
    def get(self, request):
        membership = request.membership
        tenant = membership.tenant
        tenant.role = membership.role
        return Response(self.get_serializer(tenant).data)


@extend_schema_view(
    list=extend_schema(
        summary="The organisation's activity log",
        description="Every change by members, their tokens, operators and Hangar itself, newest first. Owners and "
        "admins only. Entries are kept for a configured period (400 days by default).",
        tags=["tenant"],
    )
)
class ActivityViewSet(mixins.ListModelMixin, TenantViewSet):
    queryset = ActivityEntry.objects.order_by("-created_at", "-id")
    serializer_class = ActivityEntrySerializer
    filterset_class = ActivityEntryFilter
    view_permission = Permission.VIEW_ACTIVITY
    change_permission = Permission.VIEW_ACTIVITY
