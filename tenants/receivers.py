"""What happens when someone logs in or out, whichever page did it (log-in, second step, sign-up, invitation):
the session joins the user's sessions list and a browser new to the account is e-mailed about."""

import time

from django.contrib.auth.signals import user_logged_in, user_logged_out

from tenants import requestcontext
from tenants.middleware import DEVICE_COOKIE, SESSION_SEEN_KEY
from tenants.services import user_device_logged_in, user_session_forget, user_session_seen


def _on_logged_in(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return
    context = requestcontext.context_for(request)
    if request.session.session_key:
        user_session_seen(
            user=user,
            session_key=request.session.session_key,
            user_agent=context.user_agent,
            ip_address=context.ip_address,
        )
        request.session[SESSION_SEEN_KEY] = time.time()
    device_key, is_new = user_device_logged_in(
        user=user,
        device_key=request.COOKIES.get(DEVICE_COOKIE),
        user_agent=context.user_agent,
        ip_address=context.ip_address,
    )
    if is_new:
        request.new_device_key = device_key


def _on_logged_out(sender, request, user, **kwargs) -> None:
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        user_session_forget(session_key=session.session_key)


def connect() -> None:
    """Called once from TenantsConfig.ready()."""
    user_logged_in.connect(_on_logged_in, dispatch_uid="tenants.logged_in")
    user_logged_out.connect(_on_logged_out, dispatch_uid="tenants.logged_out")
