from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response

from portal.api.views import TenantApiView
from tenants.api.serializers import TenantSerializer
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
