"""The v1 router: every app's api/urls.py contributes `routes` (viewsets) and `urlpatterns` (single resources).

Tests walk `router.registry` and the resulting URL patterns, so a new endpoint is covered by the generic
authentication, isolation and permission tests as soon as it is listed here.
"""

from importlib import import_module

from rest_framework.routers import SimpleRouter

API_MODULES = [
    "tenants.api.urls",
    "compute.api.urls",
    "compute.network.api.urls",
    "compute.monitoring.api.urls",
    "compute.stacks.api.urls",
    "billing.api.urls",
]

router = SimpleRouter(use_regex_path=False)


def v1_patterns() -> list:
    extra = []
    for module_name in API_MODULES:
        module = import_module(module_name)
        for prefix, viewset, basename in getattr(module, "routes", []):
            if basename not in {entry[2] for entry in router.registry}:
                router.register(prefix, viewset, basename=basename)
        extra += getattr(module, "urlpatterns", [])
    return [*extra, *router.urls]
