"""Permissions every API view applies before its own role check (TenantScopedMixin)."""

from rest_framework import permissions

from tenants.models import ApiToken


class TokenScopePermission(permissions.BasePermission):
    """A `read` token may only use safe methods, whatever its user's role."""

    message = "This token is read-only; create a read_write token to make changes."
    code = "token_read_only"

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        token = request.auth
        return not (isinstance(token, ApiToken) and not token.allows_writes)
