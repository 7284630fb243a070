"""Every v1 API route, found by walking the URL conf that the router (and each app's api/urls.py) produced.

A new endpoint is covered by the generic tests as soon as it is registered.
"""

from dataclasses import dataclass
from datetime import date

from django.urls import URLPattern, URLResolver, get_resolver

from billing.models import Invoice
from compute.models import Flavor, Image, Region
from tenants.models import TenantOwned
from tests.factories import FACTORIES
from tests.factories.compute import FlavorFactory, ImageFactory, RegionFactory

# The provider's catalog is not tenant-owned: any authenticated user reads it.
CATALOG_FACTORIES = {Flavor: FlavorFactory, Image: ImageFactory, Region: RegionFactory}
WRITE_METHODS = ("post", "put", "patch", "delete")
# Fields that must differ between several objects of one tenant (unique together with the tenant).
DISTINCT = {Invoice: lambda n: {"period_start": date(2025, n % 12 + 1, 1)}}


@dataclass(frozen=True)
class Route:
    name: str
    path: str  # with {pk} in place of the converter
    methods: tuple[str, ...]
    view_class: type
    lookup: str = "pk"  # "name": the URL names the object by its name (stacks)

    @property
    def has_pk(self) -> bool:
        return "{pk}" in self.path

    @property
    def model(self):
        queryset = getattr(self.view_class, "queryset", None)
        if queryset is not None:
            return queryset.model
        serializer = getattr(self.view_class, "serializer_class", None)
        meta = getattr(serializer, "Meta", None)
        return getattr(meta, "model", None)

    @property
    def tenant_owned(self) -> bool:
        return self.model is not None and issubclass(self.model, TenantOwned)

    @property
    def schema_path(self) -> str:
        return self.path.replace("{pk}", "{id}" if self.lookup == "pk" else "{" + self.lookup + "}")

    def url(self, pk=None) -> str:
        if pk is not None and self.lookup != "pk":
            pk = self.model.objects.filter(pk=pk).values_list(self.lookup, flat=True).first() or "no-such-name"
        return self.path.replace("{pk}", str(pk)) if pk is not None else self.path

    def make_object(self, tenant, n: int = 0):
        extra = DISTINCT[self.model](n) if self.model in DISTINCT else {}
        if self.tenant_owned:
            return FACTORIES[self.model](tenant=tenant, **extra)
        return CATALOG_FACTORIES[self.model](**extra)

    def __str__(self) -> str:
        return self.name


def _walk(resolver, prefix=""):
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def _methods(callback) -> tuple[str, ...]:
    actions = getattr(callback, "actions", None)
    if actions:
        return tuple(sorted(actions))
    view_class = callback.cls
    return tuple(m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m))


def api_routes() -> list[Route]:
    routes = []
    for route, entry in _walk(get_resolver()):
        if not route.startswith("api/v1/") or not hasattr(entry.callback, "cls"):
            continue
        lookup = "name" if "<slug:name>" in route else "pk"
        path = "/" + route.replace("<uuid:pk>", "{pk}").replace("<slug:name>", "{pk}")
        routes.append(Route(entry.name, path, _methods(entry.callback), entry.callback.cls, lookup))
    return sorted(routes, key=lambda r: r.name)


ROUTES = api_routes()
ROUTE_METHODS = [(route, method) for route in ROUTES for method in route.methods]
WRITES = [(route, method) for route, method in ROUTE_METHODS if method in WRITE_METHODS]
