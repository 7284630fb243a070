"""API authentication: `Authorization: Bearer <token>`, or the browser session (with CSRF)."""

from rest_framework import authentication, exceptions

from portal.errors import ServiceError
from tenants import requestcontext
from tenants.selectors import api_token_find
from tenants.services import api_token_check_use, api_token_touch


def _bind_membership(request, membership) -> None:
    # TenantScopedMixin reads request.membership; set it on the HttpRequest so the DRF Request (which proxies
    # unknown attributes to it) and any plain-Django code handed the same request see one value.
    django_request = getattr(request, "_request", request)
    django_request.membership = membership
    django_request.tenant = membership.tenant if membership is not None else None


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """An API token fixes the user and the tenant; the membership is looked up on every request, so a removed
    member's token stops working at once (401) and a demoted member's token loses the rights at once (403)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be `Bearer <token>`.")
        try:
            token = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token contains invalid characters.") from None
        api_token = api_token_find(token=token)
        if api_token is None:
            raise exceptions.AuthenticationFailed("The token is not valid, has expired or was revoked.")
        membership = api_token.membership  # read with the token, afresh on every request
        if membership is None:
            raise exceptions.AuthenticationFailed("The token's user is no longer a member of its organisation.")
        ip_address = requestcontext.client_ip(getattr(request, "_request", request))
        requestcontext.set_api_token(api_token)
        try:
            api_token_check_use(api_token=api_token, membership=membership, ip_address=ip_address)
        except ServiceError as error:
            raise _refused(error) from None
        api_token_touch(api_token=api_token, ip_address=ip_address)
        _bind_membership(request, membership)
        django_request = getattr(request, "_request", request)
        django_request.api_token = api_token
        return membership.user, api_token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The browser's session; TenantMiddleware has already chosen request.membership from the session. While the
    organisation requires two-factor log-in, only a session that passed it may use the API."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            django_request = request._request
            django_request.api_token = None
            tenant = getattr(django_request, "tenant", None)
            verified = getattr(django_request.user, "is_verified", lambda: False)()
            if tenant is not None and tenant.two_factor_required and not verified:
                raise exceptions.PermissionDenied(
                    f"{tenant.name} requires two-factor log-in: complete it on the dashboard first.",
                    code="two_factor_required",
                )
        return result


def _refused(error: ServiceError) -> exceptions.PermissionDenied:
    """A token that is valid but may not be used here: 403 with the service's code (the API's error shape)."""
    return exceptions.PermissionDenied(error.message, code=error.code)
