"""Account security pages: the second log-in step, two-factor set-up, recovery codes, signed-in sessions, e-mail
verification, and the owner's two-factor rule for the organisation."""

import time
from base64 import b32encode
from urllib.parse import urlencode

import segno
from axes.handlers.proxy import AxesProxyHandler
from django.contrib import messages
from django.contrib.auth import get_user_model, login, user_login_failed
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.generic import FormView, TemplateView, View
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.errors import ServiceError
from portal.viewmixins import safe_next
from tenants import services
from tenants.forms import LoginForm, TwoFactorCodeForm, TwoFactorEnrolForm, TwoFactorRequirementForm
from tenants.models import UserSession
from tenants.roles import Permission
from tenants.scoping import TenantScopedMixin
from tenants.selectors import (
    tenant_members_without_two_factor,
    user_has_two_factor,
    user_recovery_codes_left,
    user_sessions,
    user_tenants_requiring_two_factor,
)

User = get_user_model()

# Between a correct password and the second step: who, with which backend, since when. Never a logged-in session.
PENDING_KEY = "two_factor_pending"
PENDING_TTL = 5 * 60
SETUP_SECRET_KEY = "two_factor_setup_secret"


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def _no_store(response):
    # Secrets (recovery codes, the set-up key) are in this page only: never cache it anywhere.
    response["Cache-Control"] = "no-store"
    return response


class LoginView(auth_views.LoginView):
    """Step one: the password (throttled by django-axes). An account with two-factor log-in continues to step two
    without being logged in yet."""

    form_class = LoginForm
    template_name = "tenants/accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        if not user_has_two_factor(user=user):
            return super().form_valid(form)
        self.request.session.cycle_key()
        self.request.session[PENDING_KEY] = {"user": user.pk, "backend": user.backend, "at": time.time()}
        return HttpResponseRedirect(_with_next(reverse("two-factor-verify"), self.get_redirect_url()))


def _pending_user(request):
    """Whom the second step is for: the logged-in user asked to confirm (an organisation requires it), or the
    account whose password was just given."""
    if request.user.is_authenticated:
        return request.user, None
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_TTL:
        return None, None
    user = User.objects.filter(pk=pending.get("user"), is_active=True).first()
    return user, pending.get("backend")


@method_decorator(login_not_required, name="dispatch")
class TwoFactorVerifyView(FormView):
    """Step two: a code from the authenticator app or a recovery code. Wrong codes count towards the same
    lock-out as wrong passwords (django-axes), on top of django-otp's per-device throttle."""

    form_class = TwoFactorCodeForm
    template_name = "tenants/accounts/two_factor_verify.html"

    def dispatch(self, request, *args, **kwargs):
        self.user, self.backend = _pending_user(request)
        if self.user is None:
            messages.error(request, "Your log-in took too long; please start again.")
            return redirect("login")
        if request.user.is_authenticated and request.user.is_verified():
            return HttpResponseRedirect(safe_next(request, reverse("home")))
        if not user_has_two_factor(user=self.user):
            return redirect("two-factor-setup") if request.user.is_authenticated else redirect("login")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            next=safe_next(self.request, ""), step_up=self.request.user.is_authenticated, **kwargs
        )

    def form_valid(self, form):
        request = self.request
        credentials = {"username": self.user.email}
        if not AxesProxyHandler.is_allowed(request, credentials):
            request.axes_locked_out, request.axes_credentials = True, credentials
            return self.form_invalid(form)  # AxesMiddleware answers with the lock-out page instead
        device = services.two_factor_verify(user=self.user, code=form.cleaned_data["code"])
        if device is None:
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            form.add_error("code", "That code is not right. Codes change every 30 seconds; try the current one.")
            return self.form_invalid(form)
        if request.user.is_authenticated:
            otp_login(request, device)
        else:
            request.session.pop(PENDING_KEY, None)
            self.user.otp_device = device  # django-otp's log-in receiver records it in the new session
            login(request, self.user, backend=self.backend)
        if isinstance(device, StaticDevice):
            left = user_recovery_codes_left(user=self.user)
            messages.warning(
                request,
                f"You used a recovery code; {left} left. Make new ones on the Security page if you are running out.",
            )
        return HttpResponseRedirect(safe_next(request, reverse("home")))


class SecurityView(TemplateView):
    """The account's security: two-factor log-in, recovery codes, signed-in sessions."""

    template_name = "tenants/accounts/security.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        current_key = self.request.session.session_key
        sessions = list(user_sessions(user=user))
        for session in sessions:
            session.is_current = session.session_key == current_key
        sessions.sort(key=lambda session: not session.is_current)  # this browser first, then the latest seen
        return super().get_context_data(
            totp_device=device,
            recovery_codes_left=user_recovery_codes_left(user=user) if device else 0,
            required_by=user_tenants_requiring_two_factor(user=user),
            sessions=sessions,
            disable_form=TwoFactorCodeForm(auto_id="disable_%s"),
            **kwargs,
        )


class TwoFactorSetupView(FormView):
    """Scan a QR code (drawn here, as SVG), type the code the app shows: two-factor is on, recovery codes shown once.

    The secret waits in the session until then, so an abandoned set-up leaves nothing behind.
    """

    form_class = TwoFactorEnrolForm
    template_name = "tenants/accounts/two_factor_setup.html"

    def dispatch(self, request, *args, **kwargs):
        if user_has_two_factor(user=request.user):
            messages.info(request, "Two-factor log-in is already on.")
            return redirect("security")
        return super().dispatch(request, *args, **kwargs)

    def secret(self) -> str:
        secret = self.request.session.get(SETUP_SECRET_KEY)
        if not secret:
            secret = services.two_factor_new_secret()
            self.request.session[SETUP_SECRET_KEY] = secret
        return secret

    def get_context_data(self, **kwargs):
        device = TOTPDevice(user=self.request.user, key=self.secret())  # never saved: it only spells the URL
        uri = device.config_url
        return super().get_context_data(
            qr_code=segno.make(uri, error="m").svg_data_uri(scale=5, border=2),
            manual_key=" ".join(_chunks(_base32(device.bin_key), 4)),
            required_by=user_tenants_requiring_two_factor(user=self.request.user),
            next=safe_next(self.request, ""),
            **kwargs,
        )

    def get(self, request, *args, **kwargs):
        return _no_store(super().get(request, *args, **kwargs))

    def form_valid(self, form):
        request = self.request
        try:
            device, codes = services.two_factor_enrol(
                user=request.user, secret=self.secret(), code=form.cleaned_data["code"]
            )
        except ServiceError as error:
            form.add_error("code", error.message)
            return _no_store(self.form_invalid(form))
        request.session.pop(SETUP_SECRET_KEY, None)
        otp_login(request, device)
        messages.success(request, "Two-factor log-in is on. Keep your recovery codes somewhere safe.")
        return _recovery_codes_page(self, codes, next_url=safe_next(request, ""))


def _base32(key: bytes) -> str:
    return b32encode(key).decode()


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _recovery_codes_page(view, codes: list[str], *, next_url: str = ""):
    response = view.response_class(
        request=view.request,
        template="tenants/accounts/recovery_codes.html",
        context={"codes": codes, "next": next_url, "view": view},
    )
    return _no_store(response)


class RecoveryCodesRenewView(TemplateView):
    http_method_names = ["post"]

    def post(self, request):
        try:
            codes = services.two_factor_recovery_codes_renew(user=request.user)
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("security")
        messages.success(request, "New recovery codes were made; the old ones no longer work.")
        return _recovery_codes_page(self, codes)


class TwoFactorDisableView(View):
    http_method_names = ["post"]

    def post(self, request):
        form = TwoFactorCodeForm(request.POST)
        try:
            if not form.is_valid():
                raise ServiceError("Type a code from your app, or a recovery code, to turn two-factor log-in off.")
            services.two_factor_disable(user=request.user, code=form.cleaned_data["code"])
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Two-factor log-in is off. Your password alone now logs you in.")
        return redirect("security")


class SessionEndView(View):
    model = UserSession  # someone else's session is a 404, like another tenant's object
    http_method_names = ["post"]

    def post(self, request, pk):
        session = get_object_or_404(UserSession, pk=pk, user=request.user)
        try:
            services.user_session_end(
                user=request.user, session=session, current_session_key=request.session.session_key
            )
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"The session on {session.device} was ended.")
        return redirect("security")


class SessionsEndOthersView(View):
    http_method_names = ["post"]

    def post(self, request):
        ended = services.user_sessions_end_others(user=request.user, current_session_key=request.session.session_key)
        messages.success(
            request, f"{ended} other session{'s' if ended != 1 else ''} ended." if ended else "No other sessions."
        )
        return redirect("security")


class PasswordChangeView(auth_views.PasswordChangeView):
    """Changing the password keeps this session and ends every other one."""

    template_name = "tenants/accounts/password_change.html"

    def get_success_url(self):
        return reverse("security")

    def form_valid(self, form):
        old_key = self.request.session.session_key
        response = super().form_valid(form)  # update_session_auth_hash: this session stays, under a new key
        ended = services.user_password_changed(
            user=form.user, old_session_key=old_key, session_key=self.request.session.session_key
        )
        others = f" {ended} other session{'s' if ended != 1 else ''} ended." if ended else ""
        messages.success(self.request, f"Your password was changed.{others}")
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """A password set from a reset link logs every browser out: whoever had the old password is locked out too."""

    def form_valid(self, form):
        response = super().form_valid(form)
        services.user_sessions_end_others(user=form.user, current_session_key=None)
        return response


@method_decorator(login_not_required, name="dispatch")
class EmailVerifyView(View):
    """The link e-mailed at sign-up."""

    def get(self, request, token):
        try:
            user = services.email_verify(token=token)
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("home" if request.user.is_authenticated else "login")
        messages.success(request, f"Thank you: {user.email} is confirmed.")
        return redirect("home" if request.user.is_authenticated else "login")


class EmailVerifyResendView(View):
    http_method_names = ["post"]

    def post(self, request):
        if request.user.email_verified:
            messages.info(request, "Your e-mail address is already confirmed.")
        elif not cache.add(f"hangar:email-verify-resend:{request.user.pk}", 1, timeout=60):
            messages.info(request, "A link was sent less than a minute ago; give it a moment to arrive.")
        else:
            services.email_verification_send(user=request.user)
            messages.success(request, f"A new link is on its way to {request.user.email}.")
        return HttpResponseRedirect(safe_next(request, reverse("home")))


class TenantTwoFactorView(TenantScopedMixin, View):
    """Owners turn the organisation's two-factor requirement on or off (on the settings page)."""

    http_method_names = ["post"]
    view_permission = Permission.MANAGE_TENANT
    change_permission = Permission.MANAGE_TENANT

    def post(self, request):
        form = TwoFactorRequirementForm(request.POST)
        required = form.is_valid() and form.cleaned_data["required"]
        try:
            services.tenant_require_two_factor(
                tenant=request.tenant, required=required, actor_membership=request.membership
            )
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            if required:
                missing = tenant_members_without_two_factor(tenant=request.tenant).count()
                waiting = (
                    f" {missing} member{'s' if missing != 1 else ''} will be asked to turn it on." if missing else ""
                )
                messages.success(request, f"Two-factor log-in is now required.{waiting}")
            else:
                messages.success(request, "Two-factor log-in is no longer required.")
        return redirect("tenant-settings")
