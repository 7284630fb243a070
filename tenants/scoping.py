"""The one place where requests are scoped to a tenant: HTML views and API viewsets both use TenantScopedMixin."""

from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404
from rest_framework.views import APIView

from tenants.models import TenantQuerySet
from tenants.roles import Permission

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def request_membership(request):
    """The caller's membership: from the session's tenant (browser) or fixed by the API token."""
    return getattr(request, "membership", None)


def request_tenant(request):
    membership = request_membership(request)
    return membership.tenant if membership is not None else None


class TenantScopedMixin:
    """Restricts get_queryset() to the request's tenant and checks the member's role.

    `view_permission` guards reads, `change_permission` guards every other method. Objects of another tenant
    are simply not in the queryset, so they are a 404, never a 403.
    """

    view_permission = Permission.VIEW_RESOURCES
    change_permission = Permission.CHANGE_RESOURCES

    def required_permission(self, method: str) -> str:
        return self.view_permission if method in SAFE_METHODS else self.change_permission

    def check_tenant_permission(self, request) -> None:
        membership = request_membership(request)
        if membership is None:
            raise Http404("You do not belong to an organisation.")
        if not membership.has(self.required_permission(request.method)):
            raise PermissionDenied(f"Your role ({membership.get_role_display().lower()}) does not allow this.")

    def dispatch(self, request, *args, **kwargs):
        # API views authenticate inside dispatch, so they check through get_permissions() instead.
        if not isinstance(self, APIView):
            self.check_tenant_permission(request)
        return super().dispatch(request, *args, **kwargs)

    def get_permissions(self):
        return [*super().get_permissions(), _TenantRolePermission()]

    def get_queryset(self):
        queryset = super().get_queryset()
        if not isinstance(queryset, TenantQuerySet):
            model = queryset.model.__name__
            raise ImproperlyConfigured(f"{type(self).__name__} lists {model}, which is not tenant-owned.")
        return queryset.for_tenant(request_tenant(self.request))


class _TenantRolePermission:
    """DRF permission adapter: runs the mixin's role check after DRF has authenticated the request."""

    def has_permission(self, request, view) -> bool:
        view.check_tenant_permission(request)
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        return True
