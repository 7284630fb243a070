"""The API tokens page: create (secret shown once), list and revoke.

Every member may create and revoke their own tokens; owners and admins see and may revoke all of the tenant's
tokens (see tenants.services.tokens).
"""

from datetime import timedelta

from django import forms
from django.urls import reverse
from django.utils import timezone
from django.views.generic import ListView

from portal.errors import ServiceError
from portal.viewmixins import TenantObjectActionView
from tenants.models import ApiToken
from tenants.networks import parse_networks
from tenants.roles import Permission
from tenants.scoping import TenantScopedMixin
from tenants.selectors import api_tokens_visible
from tenants.services import api_token_create, api_token_revoke

EXPIRY_CHOICES = [
    ("", "Never"),
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “terraform on the CI runner”.")
    scope = forms.ChoiceField(
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ_WRITE,
        help_text="Either way the token can never do more than your role allows.",
    )
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")
    allowed_networks = forms.CharField(
        label="Allowed networks",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "class": "short", "placeholder": "203.0.113.0/24, 2001:db8::/48"}),
        help_text="Optional: addresses or CIDR networks the token may be used from, separated by commas or new "
        "lines. Leave empty to allow any address.",
    )

    def clean_allowed_networks(self):
        try:
            return parse_networks(self.cleaned_data.get("allowed_networks", ""))
        except ServiceError as error:
            raise forms.ValidationError(error.details.get("allowed_networks") or error.message) from None

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the token a name.")
        return name

    def expires_at(self):
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + timedelta(days=int(days)) if days else None


class ApiTokenListView(TenantScopedMixin, ListView):
    model = ApiToken
    # Any member may manage their own tokens, so writing needs no more than reading.
    view_permission = Permission.VIEW_RESOURCES
    change_permission = Permission.VIEW_RESOURCES
    template_name = "tenants/tokens.html"
    context_object_name = "tokens"

    def get_queryset(self):
        return api_tokens_visible(membership=self.request.membership, tokens=super().get_queryset())

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["form"] = kwargs.get("form") or ApiTokenForm()
        context["sees_all"] = self.request.membership.has(Permission.MANAGE_MEMBERS)
        context["api_base"] = self.request.build_absolute_uri("/api/v1/")
        return context

    def post(self, request, *args, **kwargs):
        form = ApiTokenForm(request.POST)
        status = 400
        new_token = None
        if form.is_valid():
            try:
                _api_token, new_token = api_token_create(
                    membership=request.membership,
                    name=form.cleaned_data["name"],
                    scope=form.cleaned_data["scope"],
                    expires_at=form.expires_at(),
                    allowed_networks=form.cleaned_data["allowed_networks"],
                )
            except ServiceError as error:
                form.add_error(None, error.message)
            else:
                status = 201
                form = ApiTokenForm()
        self.object_list = self.get_queryset()
        context = self.get_context_data(form=form, new_token=new_token)
        response = self.render_to_response(context, status=status)
        # The secret is in this page only: never cache it anywhere.
        response["Cache-Control"] = "no-store"
        return response


class ApiTokenRevokeView(TenantObjectActionView):
    model = ApiToken
    view_permission = Permission.VIEW_RESOURCES
    change_permission = Permission.VIEW_RESOURCES
    success_message = "The token {obj.name} was revoked; requests with it now fail."

    def get_queryset(self):
        # Someone else's token is not in a member's queryset at all: a 404, like another tenant's object.
        return api_tokens_visible(membership=self.request.membership, tokens=super().get_queryset())

    def perform(self, obj):
        api_token_revoke(api_token=obj, actor_membership=self.request.membership)

    def get_success_url(self, obj):
        return reverse("api-tokens")
