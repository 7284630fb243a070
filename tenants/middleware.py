"""Request plumbing of tenants: who acts from where (activity log), the tenant chosen in the session, the
signed-in sessions list, and an organisation's two-factor requirement."""

import time
from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect

from tenants import requestcontext
from tenants.services import user_session_seen
from tenants.services.sessions import SEEN_RESOLUTION

SESSION_KEY = "tenant_id"
SESSION_SEEN_KEY = "session_seen_at"
DEVICE_COOKIE = "hangar_device"
DEVICE_COOKIE_AGE = 400 * 24 * 3600


class RequestContextMiddleware:
    """Binds the request's channel (dashboard, API, admin) and client address for activity_record."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with requestcontext.bound(requestcontext.context_for(request)):
            return self.get_response(request)


class TenantMiddleware:
    """Sets request.tenant and request.membership for browser requests, from the tenant chosen in the session."""

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


class SessionActivityMiddleware:
    """Keeps the signed-in session's row (browser, address, last seen) current, at most once a minute: the time of
    the last refresh rides in the session itself, so most requests cost no query. Also hands a browser that just
    logged in its device cookie (see tenants.receivers)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if user is not None and user.is_authenticated and session is not None and session.session_key:
            now = time.time()
            seen = session.get(SESSION_SEEN_KEY)
            if not isinstance(seen, int | float) or now - seen >= SEEN_RESOLUTION.total_seconds():
                context = requestcontext.context_for(request)
                user_session_seen(
                    user=user,
                    session_key=session.session_key,
                    user_agent=context.user_agent,
                    ip_address=context.ip_address,
                )
                session[SESSION_SEEN_KEY] = now
        device_key = getattr(request, "new_device_key", None)
        if device_key:
            response.set_cookie(
                DEVICE_COOKIE,
                device_key,
                max_age=DEVICE_COOKIE_AGE,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response


# Pages a member may still use while their organisation waits for them to turn on two-factor log-in.
TWO_FACTOR_EXEMPT = {
    "logout",
    "profile",
    "password-change",
    "security",
    "two-factor-setup",
    "two-factor-verify",
    "two-factor-disable",
    "recovery-codes-renew",
    "session-end",
    "sessions-end-others",
    "email-verify",
    "email-verify-resend",
    "tenant-switch",
    "tenant-create",
    "team-leave",
}


class TwoFactorRequiredMiddleware:
    """When the current organisation requires two-factor log-in, a session that has not passed it is sent to turn it
    on (or, if the account has it, to enter a code) before any other page. The API refuses such credentials itself
    (portal.api.authentication); the operator admin is not an organisation's page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        tenant = getattr(request, "tenant", None)
        if tenant is None or not tenant.two_factor_required:
            return None
        path = request.path_info
        if path.startswith(("/api/", "/admin/", "/static/")) or not request.user.is_authenticated:
            return None
        if request.user.is_verified():
            return None
        match = request.resolver_match
        if match is not None and match.url_name in TWO_FACTOR_EXEMPT:
            return None
        from tenants.selectors import user_has_two_factor

        target = "two-factor-verify" if user_has_two_factor(user=request.user) else "two-factor-setup"
        response = redirect(target)
        if request.method == "GET":
            response["Location"] += "?" + urlencode({"next": request.get_full_path()})
        return response
