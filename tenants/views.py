from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.views.generic import FormView, ListView, TemplateView, UpdateView, View

from portal.errors import ServiceError
from portal.viewmixins import TenantObjectActionView, safe_next
from tenants import services
from tenants.forms import (
    InvitationForm,
    InvitationSignUpForm,
    ProfileForm,
    RoleForm,
    SignUpForm,
    TenantForm,
    TenantSwitchForm,
    TwoFactorRequirementForm,
)
from tenants.middleware import SESSION_KEY
from tenants.models import Invitation, Membership
from tenants.roles import Permission
from tenants.scoping import TenantScopedMixin
from tenants.selectors import (
    tenant_events,
    tenant_members_without_two_factor,
    tenant_pending_invitations,
    user_has_two_factor,
)

# --- Accounts ---------------------------------------------------------------------------------------------------


@method_decorator(login_not_required, name="dispatch")
class SignUpView(FormView):
    form_class = SignUpForm
    template_name = "tenants/accounts/signup.html"

    def get_initial(self):
        return {"email": self.request.GET.get("email", "")}

    def form_valid(self, form):
        user = services.user_sign_up(**form.cleaned_data)
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        # The banner above every page asks to confirm the address (tenants/partials/verify_banner.html).
        messages.success(self.request, f"Welcome to Hangar, {user.display_name}.")
        return HttpResponseRedirect(safe_next(self.request, reverse("home")))


class ProfileView(UpdateView):
    form_class = ProfileForm
    template_name = "tenants/accounts/profile.html"
    success_url = reverse_lazy("profile")

    def get_object(self, queryset=None):
        return self.request.user

    def form_valid(self, form):
        user = services.user_profile_update(user=self.request.user, **form.cleaned_data)
        if user.email_verified:
            messages.success(self.request, "Your profile was saved.")
        else:
            messages.success(self.request, f"Your profile was saved. We e-mailed a link to {user.email} to confirm it.")
        return redirect("profile")


# --- Organisations ----------------------------------------------------------------------------------------------


class TenantSwitchView(View):
    http_method_names = ["post"]

    def post(self, request):
        form = TenantSwitchForm(request.POST)
        if form.is_valid():
            wanted = form.cleaned_data["tenant"]
            membership = next((m for m in request.memberships if m.tenant_id == wanted), None)
            if membership is not None:
                request.session[SESSION_KEY] = str(membership.tenant_id)
                messages.success(request, f"Switched to {membership.tenant.name}.")
                return redirect("home")
        messages.error(request, "You are not a member of that organisation.")
        return redirect("home")


class TenantCreateView(FormView):
    form_class = TenantForm
    template_name = "tenants/tenant_create.html"

    def form_valid(self, form):
        tenant = services.tenant_create(name=form.cleaned_data["name"], owner=self.request.user)
        self.request.session[SESSION_KEY] = str(tenant.pk)
        messages.success(self.request, f"{tenant.name} was created; you are its owner.")
        return redirect("home")


class TenantSettingsView(TenantScopedMixin, FormView):
    view_permission = Permission.VIEW_MEMBERS
    change_permission = Permission.MANAGE_TENANT
    form_class = TenantForm
    template_name = "tenants/tenant_settings.html"

    def get_initial(self):
        return {"name": self.request.tenant.name}

    def get_context_data(self, **kwargs):
        tenant = self.request.tenant
        manages = self.request.membership.has(Permission.MANAGE_TENANT)
        return super().get_context_data(
            quota=getattr(tenant, "quota", None),
            two_factor_form=TwoFactorRequirementForm(initial={"required": tenant.two_factor_required}),
            members_without_two_factor=tenant_members_without_two_factor(tenant=tenant) if manages else None,
            owner_has_two_factor=manages and user_has_two_factor(user=self.request.user),
            **kwargs,
        )

    def form_valid(self, form):
        services.tenant_rename(
            tenant=self.request.tenant, name=form.cleaned_data["name"], actor_membership=self.request.membership
        )
        messages.success(self.request, "The organisation was renamed.")
        return redirect("tenant-settings")


# --- Team -------------------------------------------------------------------------------------------------------


class TeamView(TenantScopedMixin, ListView):
    model = Membership
    view_permission = Permission.VIEW_MEMBERS
    change_permission = Permission.MANAGE_MEMBERS
    template_name = "tenants/team.html"
    context_object_name = "memberships"

    def get_queryset(self):
        return super().get_queryset().select_related("user").order_by("user__email")

    def get_invitation_form(self):
        return InvitationForm(self.request.POST or None, actor=self.request.membership)

    def get_context_data(self, **kwargs):
        membership = self.request.membership
        context = super().get_context_data(**kwargs)
        context["invitations"] = tenant_pending_invitations(tenant=self.request.tenant)
        context["invitation_form"] = kwargs.get("invitation_form") or self.get_invitation_form()
        manages = membership.has(Permission.MANAGE_MEMBERS)
        context["role_form"] = RoleForm(actor=membership) if manages else None
        context["events"] = tenant_events(tenant=self.request.tenant) if manages else None
        return context

    def post(self, request, *args, **kwargs):
        """Invites someone; errors stay on the form."""
        form = self.get_invitation_form()
        if form.is_valid():
            try:
                invitation = services.invitation_create(
                    tenant=request.tenant, invited_by_membership=request.membership, **form.cleaned_data
                )
            except ServiceError as error:
                form.add_error("email" if error.code.startswith("already") else None, error.message)
            else:
                messages.success(request, f"An invitation was sent to {invitation.email}.")
                return redirect("team")
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(invitation_form=form), status=400)


class MembershipRoleView(TenantObjectActionView):
    model = Membership
    change_permission = Permission.MANAGE_MEMBERS

    def perform(self, obj):
        form = RoleForm(self.request.POST, actor=self.request.membership)
        if not form.is_valid():
            raise ServiceError("Choose one of the roles you may grant.")
        services.membership_change_role(
            membership=obj, role=form.cleaned_data["role"], actor_membership=self.request.membership
        )
        messages.success(self.request, f"{obj.user} is now {form.cleaned_data['role']}.")

    def get_success_url(self, obj):
        return reverse("team")


class MembershipRemoveView(TenantObjectActionView):
    model = Membership
    change_permission = Permission.MANAGE_MEMBERS
    success_message = "{obj.user} was removed from the organisation."

    def perform(self, obj):
        services.membership_remove(membership=obj, actor_membership=self.request.membership)

    def get_success_url(self, obj):
        return reverse("team")


class LeaveTenantView(TenantScopedMixin, View):
    """Any member may leave an organisation, except its last owner."""

    http_method_names = ["post"]
    change_permission = Permission.VIEW_MEMBERS

    def post(self, request):
        tenant = request.tenant
        try:
            services.membership_remove(membership=request.membership, actor_membership=request.membership)
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("team")
        request.session.pop(SESSION_KEY, None)
        messages.success(request, f"You left {tenant.name}.")
        return redirect("home")


class InvitationRevokeView(TenantObjectActionView):
    model = Invitation
    change_permission = Permission.MANAGE_MEMBERS
    success_message = "The invitation to {obj.email} was withdrawn."

    def perform(self, obj):
        services.invitation_revoke(invitation=obj, actor_membership=self.request.membership)

    def get_success_url(self, obj):
        return reverse("team")


def _invitation_or_404(token: str) -> Invitation:
    invitation = services.invitation_find(token=token)
    if invitation is None:
        raise Http404("This invitation link is not valid.")
    return invitation


@method_decorator(login_not_required, name="dispatch")
class InvitationAcceptView(TemplateView):
    """The link in the invitation e-mail: shows the offer; the invited account accepts it with one click.

    Anyone else signed in is told whom the invitation is for and offered to sign out.
    """

    template_name = "tenants/invitation_accept.html"

    def get_context_data(self, **kwargs):
        invitation = _invitation_or_404(self.kwargs["token"])
        user = self.request.user
        wrong_account = user.is_authenticated and not invitation.is_addressed_to(user)
        return super().get_context_data(invitation=invitation, wrong_account=wrong_account, **kwargs)

    def post(self, request, token):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={request.path}")
        try:
            membership = services.invitation_accept(token=token, user=request.user)
        except ServiceError as error:
            return self.render_to_response(self.get_context_data(token=token, error=error.message), status=error.status)
        request.session[SESSION_KEY] = str(membership.tenant_id)
        messages.success(request, f"You joined {membership.tenant.name} as {membership.get_role_display().lower()}.")
        return redirect("home")


@method_decorator(login_not_required, name="dispatch")
class InvitationSignUpView(FormView):
    """Sign-up from an invitation link: creates the account and its membership in the inviting organisation only."""

    form_class = InvitationSignUpForm
    template_name = "tenants/accounts/signup.html"

    def dispatch(self, request, *args, **kwargs):
        self.invitation = _invitation_or_404(kwargs["token"])
        if request.user.is_authenticated or not self.invitation.is_open:
            # The invitation page explains what to do: accept, switch account, or ask for a new link.
            return redirect("invitation-accept", token=kwargs["token"])
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "invitation": self.invitation}

    def get_context_data(self, **kwargs):
        return super().get_context_data(invitation=self.invitation, **kwargs)

    def form_valid(self, form):
        try:
            membership = services.user_sign_up_invited(
                token=self.kwargs["token"],
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password"],
            )
        except ServiceError as error:
            form.add_error(None, error.message)
            return self.form_invalid(form)
        user = membership.user
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        self.request.session[SESSION_KEY] = str(membership.tenant_id)
        messages.success(
            self.request,
            f"Welcome to Hangar, {user.display_name}. You joined {membership.tenant.name} "
            f"as {membership.get_role_display().lower()}.",
        )
        return redirect("home")
