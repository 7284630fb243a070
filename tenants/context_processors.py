from portal.navigation import nav_items
from tenants.roles import Permission


def tenancy(request):
    membership = getattr(request, "membership", None)
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": membership,
        "user_memberships": getattr(request, "memberships", []),
        "nav_items": nav_items(request) if getattr(request, "user", None) and request.user.is_authenticated else [],
        # {% if can.change_resources %} in templates; names mirror tenants.roles.Permission
        "can": {permission.name.lower(): bool(membership and membership.has(permission)) for permission in Permission},
    }
