"""Generic isolation: every dashboard URL, found by walking the URL conf, so later URLs are covered automatically.

- anonymous → redirected to the log-in page (unless the view is explicitly public);
- a URL that names a tenant-owned object (`<pk>`), requested by the owner of *another* tenant → 404.
"""

from urllib.parse import urlsplit

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tenants.roles import Role
from tests.conftest import login_client
from tests.factories import FACTORIES, MembershipFactory, TenantFactory

SKIPPED_NAMESPACES = {"admin"}  # operators' site: Django's own staff checks
SKIPPED_PREFIXES = ("api/",)  # the API answers 401/404 itself; its own generic tests walk the router
PLACEHOLDER = {"str": "placeholder", "slug": "placeholder", "int": 1, "uuid": "00000000-0000-0000-0000-000000000000"}


def _walk(resolver, prefix="", namespace=""):
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if entry.namespace in SKIPPED_NAMESPACES or route.startswith(SKIPPED_PREFIXES):
                continue
            child_ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry, route, child_ns)
        elif isinstance(entry, URLPattern) and entry.name and not route.startswith(SKIPPED_PREFIXES):
            yield namespace + entry.name, route, entry


def _converters(entry) -> dict:
    return {
        name: type(conv).__name__.removesuffix("Converter").lower() for name, conv in entry.pattern.converters.items()
    }


def _view_class(entry):
    return getattr(entry.callback, "view_class", None)


def _handled_methods(entry) -> list[str]:
    view_class = _view_class(entry)
    if view_class is None:
        return ["get"]
    return [m for m in ("get", "post") if m in view_class.http_method_names and hasattr(view_class, m)]


ALL_PATTERNS = sorted(_walk(get_resolver()), key=lambda item: item[0])
PRIVATE_PATTERNS = [p for p in ALL_PATTERNS if getattr(p[2].callback, "login_required", True)]
OBJECT_PATTERNS = [p for p in PRIVATE_PATTERNS if "pk" in _converters(p[2])]


def _placeholder_url(name, entry) -> str:
    kwargs = {key: PLACEHOLDER[kind] for key, kind in _converters(entry).items()}
    return reverse(name, kwargs=kwargs)


@pytest.mark.parametrize(("name", "route", "entry"), PRIVATE_PATTERNS, ids=[p[0] for p in PRIVATE_PATTERNS])
def test_anonymous_is_sent_to_log_in(client, db, name, route, entry):
    url = _placeholder_url(name, entry)
    for method in _handled_methods(entry):
        response = getattr(client, method)(url)
        assert response.status_code == 302, f"{method.upper()} {url} answered {response.status_code}"
        assert urlsplit(response.url).path == reverse("login"), f"{method.upper()} {url} → {response.url}"


def _model_of(entry):
    view_class = _view_class(entry)
    model = getattr(view_class, "model", None)
    if model is None and getattr(view_class, "queryset", None) is not None:
        model = view_class.queryset.model
    return model


@pytest.mark.parametrize(("name", "route", "entry"), OBJECT_PATTERNS, ids=[p[0] for p in OBJECT_PATTERNS])
def test_outsider_gets_404_for_another_tenants_object(db, name, route, entry):
    model = _model_of(entry)
    assert model is not None, f"{name}: cannot tell which model <pk> names (set `model` on {_view_class(entry)})"
    assert model in FACTORIES, f"{name}: add a factory for {model.__name__} to tests/factories FACTORIES"
    victim = TenantFactory()
    obj = FACTORIES[model](tenant=victim)
    outsider = MembershipFactory(role=Role.OWNER).user
    client = login_client(outsider)
    kwargs = {key: PLACEHOLDER[kind] for key, kind in _converters(entry).items()}
    kwargs["pk"] = obj.pk
    url = reverse(name, kwargs=kwargs)
    for method in _handled_methods(entry):
        response = getattr(client, method)(url)
        assert response.status_code == 404, f"{method.upper()} {url} as an outsider answered {response.status_code}"


def test_the_walk_finds_the_object_urls():
    """Guards the walker itself: if it found nothing, the tests above would pass vacuously."""
    names = {p[0] for p in OBJECT_PATTERNS}
    assert {"membership-remove", "membership-role", "invitation-revoke"} <= names
    assert "home" in {p[0] for p in PRIVATE_PATTERNS}
