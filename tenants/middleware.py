"""Sets request.tenant and request.membership for browser requests, from the tenant chosen in the session."""

SESSION_KEY = "tenant_id"


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.memberships = []
        request.membership = None
        request.tenant = None
        user = request.user
        if user.is_authenticated:
            memberships = list(user.memberships.select_related("tenant").order_by("tenant__name", "tenant_id"))
            if memberships:
                wanted = request.session.get(SESSION_KEY)
                chosen = next((m for m in memberships if str(m.tenant_id) == wanted), memberships[0])
                if wanted != str(chosen.tenant_id):
                    request.session[SESSION_KEY] = str(chosen.tenant_id)
                request.memberships = memberships
                request.membership = chosen
                request.tenant = chosen.tenant
        return self.get_response(request)
