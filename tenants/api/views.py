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
        examples=[
            OpenApiExample(
                "entry",
                value={
                    "data": [
                        {
                            "id": "7c1e2b9a-1f3d-4c5e-8a7b-2d3e4f5a6b7c",
                            "created_at": "2026-11-25T12:00:00Z",
                            "actor": "ada@example.com",
                            "actor_id": 42,
                            "token_id": "3f2e1d0c-9b8a-4765-a4b3-c2d1e0f9a8b7",
                            "token_name": "terraform",
                            "channel": "api",
                            "ip_address": "203.0.113.7",
                            "resource_type": "instance",
                            "resource_id": "5d0f3f1e-8a4b-4c47-9a53-1f3d2c7b9e10",
                            "resource_name": "web-1",
                            "action": "launch",
                            "action_label": "Launch",
                            "outcome": "requested",
                            "message": "s-2 (2 vCPU, 4 GiB RAM, 40 GiB disk) with Debian 12",
                        }
                    ],
                    "meta": {"total": 1, "page": 1, "per_page": 20},
                    "links": {"first": "…", "prev": None, "next": None, "last": "…"},
                },
                response_only=True,
            )
        ],
    )
)
class ActivityViewSet(mixins.ListModelMixin, TenantViewSet):
    queryset = ActivityEntry.objects.order_by("-created_at", "-id")
    serializer_class = ActivityEntrySerializer
    filterset_class = ActivityEntryFilter
    view_permission = Permission.VIEW_ACTIVITY
    change_permission = Permission.VIEW_ACTIVITY
