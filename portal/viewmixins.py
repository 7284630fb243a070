"""Small helpers shared by the dashboard's views."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import View
from django.views.generic.detail import SingleObjectMixin

from portal.errors import ServiceError
from tenants.scoping import TenantScopedMixin


def safe_next(request, fallback: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next")
    if candidate and url_has_allowed_host_and_scheme(candidate, {request.get_host()}, request.is_secure()):
        return candidate
    return fallback


class TenantObjectActionView(TenantScopedMixin, SingleObjectMixin, View):
    """A POST-only action on one tenant-owned object: runs `perform()`, flashes the outcome, redirects.

    A ServiceError becomes an error message instead of a 500, so bad input never loses the user's place.
    """

    http_method_names = ["post"]
    success_message = ""

    def perform(self, obj) -> None:
        raise NotImplementedError

    def get_success_url(self, obj) -> str:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        obj = self.get_object()
        try:
            self.perform(obj)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            if self.success_message:
                messages.success(request, self.success_message.format(obj=obj))
        return HttpResponseRedirect(safe_next(request, self.get_success_url(obj)))
