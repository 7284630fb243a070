"""Small helpers shared by the dashboard's views."""

from django.contrib import messages
from django.http import HttpResponseRedirect, QueryDict
from django.utils.cache import patch_vary_headers
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


class HtmxPartialMixin:
    """A view that answers an htmx request with a fragment (`partial_template_name`) and any other with the page.

    Both answers come from one URL, so every response says it varies on HX-Request: otherwise a cache (the browser's
    back button, a proxy) could hand the fragment to a full page load, or the whole page to an htmx swap.
    """

    partial_template_name = ""

    def get_template_names(self):
        if self.partial_template_name and self.request.htmx:
            return [self.partial_template_name]
        return super().get_template_names()

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        patch_vary_headers(response, ("HX-Request",))
        return response


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


class LabelFilterMixin:
    """A dashboard list whose rows carry labels: `?label=key=value` (or `key`) narrows it with the API's FilterSet
    (`label_filterset`); a selector that cannot exist shows nothing and says why."""

    label_filterset = None
    label_error = ""

    def label_selectors(self) -> list[str]:
        return [value.strip() for value in self.request.GET.getlist("label") if value.strip()]

    def filter_by_labels(self, queryset):
        values = self.label_selectors()
        if not values:
            return queryset
        data = QueryDict(mutable=True)
        data.setlist("label", values)
        filterset = self.label_filterset(data, queryset=queryset)
        if filterset.is_valid():
            return filterset.qs
        self.label_error = " ".join(filterset.errors.get("label", ["That label selector is not valid."]))
        return queryset.none()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["label_selector"] = ", ".join(self.label_selectors())
        context["label_error"] = self.label_error
        return context
