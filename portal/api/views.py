"""Base classes of every API view: rate limits, idempotency and the RateLimit-* headers."""

from django.core.exceptions import SuspiciousOperation
from django.template.response import SimpleTemplateResponse
from django.urls import reverse
from rest_framework import exceptions, generics, status, viewsets
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from portal.api import idempotency, parsers, ratelimit
from portal.api.ratelimit import RateLimited
from tenants.scoping import TenantScopedMixin


class HangarApiMixin:
    """Counts each request against its credential's rate limits, makes POSTs safe to retry, and answers writes with
    the item and its URL (`accepted`, `created`)."""

    parser_classes = [parsers.JSONParser]
    rate_limit_state: ratelimit.WindowState | None = None
    idempotency_claim = None

    def perform_content_negotiation(self, request, force=False):
        # Negotiation reads the query string first; one Django refuses (too many fields) is the client's error, and
        # the error response itself must still be renderable, so it falls back to JSON.
        try:
            return super().perform_content_negotiation(request, force=force)
        except SuspiciousOperation:
            if force:
                return (JSONRenderer(), JSONRenderer.media_type)
            raise exceptions.ParseError("The query string has too many parameters.") from None

    def perform_authentication(self, request):
        try:
            request.user  # noqa: B018  (authenticates, so the limits below know whose they are)
        finally:
            try:
                self.rate_limit_state = ratelimit.hit(
                    identity=ratelimit.client_identity(request), write=request.method == "POST"
                )
            except RateLimited as exc:
                self.rate_limit_state = exc.state
                raise

    def detail_url(self, obj, route: str | None = None) -> str:
        """The absolute URL of `obj` at `route` (a URL name; by default this viewset's detail route)."""
        name = route or f"api:{self.basename}-detail"
        return self.request.build_absolute_uri(reverse(name, kwargs={"pk": obj.pk}))

    def accepted(self, obj, serializer_class, *, route: str | None = None) -> Response:
        """202: work on `obj` goes on in the background; its URL (at `route`) is in the Location header to poll."""
        return self._located(obj, serializer_class, status.HTTP_202_ACCEPTED, route=route)

    def created(self, obj, serializer_class, *, route: str | None = None, context: dict | None = None) -> Response:
        """201: `obj` exists now; its URL (at `route`) is in the Location header."""
        return self._located(obj, serializer_class, status.HTTP_201_CREATED, route=route, context=context)

    def _located(self, obj, serializer_class, status_code: int, *, route=None, context=None) -> Response:
        data = serializer_class(obj, context=context or {}).data
        return Response(data, status=status_code, headers={"Location": self.detail_url(obj, route)})

    def validated(self, serializer_class, data) -> dict:
        """Validates an input serializer (which may narrow choices to the caller's tenant) or raises a 400."""
        context = {**self.get_serializer_context(), "tenant": getattr(self.request, "tenant", None)}
        serializer = serializer_class(data=data, context=context)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method == "POST" and request.user.is_authenticated:
            self.idempotency_claim = idempotency.claim(request=request, owner=ratelimit.client_identity(request))

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.rate_limit_state is not None:
            for name, value in self.rate_limit_state.headers().items():
                response[name] = value
        if self.idempotency_claim is not None:
            claimed, self.idempotency_claim = self.idempotency_claim, None
            idempotency.record(claimed=claimed, response=response)
        return response

    def dispatch(self, request, *args, **kwargs):
        try:
            response = super().dispatch(request, *args, **kwargs)
        finally:
            # An unexpected exception skipped finalize_response: free the key so a retry can act.
            if self.idempotency_claim is not None:
                claimed, self.idempotency_claim = self.idempotency_claim, None
                idempotency.release(claimed=claimed)
        # Rendered now, then the view lets go of everything. The view, its request, its response and its paginator
        # point at each other, and those cycles held a page's rows and their output until the cyclic garbage
        # collector ran: its full collections, every few dozen requests, freed tens of thousands of objects at once
        # and paused that request for ~90 ms (the p95 of a 200-row page; bench/RESULTS.md). Freed now by reference
        # counting, a request's objects cost no collector time later.
        if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
            response.render()
        if isinstance(response, Response):
            response.renderer_context = None  # names the view, the request and the response itself
        vars(self).clear()
        return response


class TenantViewSet(HangarApiMixin, TenantScopedMixin, viewsets.GenericViewSet):
    """A viewset over one tenant-owned model: the queryset is scoped and the role checked by TenantScopedMixin."""

    lookup_value_converter = "uuid"


class CatalogViewSet(HangarApiMixin, viewsets.ReadOnlyModelViewSet):
    """The provider's catalog (flavors, images): the same for every tenant, readable by any authenticated user."""

    lookup_value_converter = "uuid"


class TenantApiView(HangarApiMixin, TenantScopedMixin, generics.GenericAPIView):
    """A single resource of the caller's tenant (the tenant itself, its quotas)."""

    def get_queryset(self):  # these views describe the tenant, not a list of tenant-owned rows
        raise exceptions.MethodNotAllowed(self.request.method)
