"""Generic checks for every API route and method (walked from the URL conf; see routes.py).

- anonymous → 401 with the error shape and `WWW-Authenticate: Bearer`;
- another tenant's object → 404, for every method;
- a viewer, or a read-only token, writing → 403;
- a member reading → 200 in the documented shape, within a fixed number of queries.
"""

import functools

import pytest
from drf_spectacular.generators import SchemaGenerator

from tenants.models import ApiToken
from tenants.roles import Role
from tests.api.conftest import api_client_for
from tests.api.routes import ROUTE_METHODS, ROUTES, WRITES
from tests.conftest import login_client
from tests.factories import MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db


def _ids(pairs):
    return [f"{route.name}-{method}" for route, method in pairs]


def _call(client, method, url):
    return getattr(client, method)(url, {}, format="json") if method != "get" else client.get(url)


def assert_error(response, status: int, code: str | None = None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    if code is not None:
        assert body["error"]["code"] == code, body


def test_the_walk_finds_every_resource():
    """Guards the walker: if it found nothing, the tests below would pass vacuously."""
    names = {route.name for route in ROUTES}
    expected = {
        "tenant", "quotas", "flavor-list", "flavor-detail", "image-list", "image-detail", "sshkey-list",
        "sshkey-detail", "instance-list", "instance-detail", "instance-actions", "instance-events",
        "usage", "invoice-list", "invoice-detail", "invoice-pdf", "invoice-csv", "activity-list",
        "instance-metrics", "alertpolicy-list", "alertpolicy-detail", "alertpolicy-incidents",
    }  # fmt: skip
    assert expected <= names
    assert "post" in next(r for r in ROUTES if r.name == "instance-actions").methods


@pytest.mark.parametrize(("route", "method"), ROUTE_METHODS, ids=_ids(ROUTE_METHODS))
def test_anonymous_gets_401(anon_api, tenant, route, method):
    obj = route.make_object(tenant) if route.has_pk else None
    response = _call(anon_api, method, route.url(obj.pk if obj else None))
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("route", "method"), ROUTE_METHODS, ids=_ids(ROUTE_METHODS))
def test_unknown_token_gets_401(anon_api, route, method):
    anon_api.credentials(HTTP_AUTHORIZATION="Bearer hgr_00000000_not-a-real-token")
    response = _call(anon_api, method, route.url("00000000-0000-0000-0000-000000000000"))
    assert_error(response, 401, "authentication_failed")


OWNED = [(r, m) for r, m in ROUTE_METHODS if r.has_pk and r.tenant_owned]


@pytest.mark.parametrize(("route", "method"), OWNED, ids=_ids(OWNED))
def test_another_tenants_object_is_404(outsider_api, route, method):
    victim = TenantFactory()
    obj = route.make_object(victim)
    response = _call(outsider_api, method, route.url(obj.pk))
    assert_error(response, 404, "not_found")
    obj.refresh_from_db()  # still there, untouched


@pytest.mark.parametrize(("route", "method"), OWNED, ids=_ids(OWNED))
def test_another_tenants_object_is_404_in_the_browser_session_too(route, method):
    victim = TenantFactory()
    obj = route.make_object(victim)
    client = login_client(MembershipFactory(role=Role.OWNER).user)
    response = _call(client, method, route.url(obj.pk))
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(("route", "method"), WRITES, ids=_ids(WRITES))
def test_viewer_writing_gets_403(viewer, tenant, route, method):
    client = api_client_for(viewer, tenant)
    obj = route.make_object(tenant) if route.has_pk else None
    response = _call(client, method, route.url(obj.pk if obj else None))
    assert_error(response, 403, "permission_denied")


@pytest.mark.parametrize(("route", "method"), WRITES, ids=_ids(WRITES))
def test_read_token_writing_gets_403(owner, tenant, route, method):
    client = api_client_for(owner, tenant, scope=ApiToken.Scope.READ)
    obj = route.make_object(tenant) if route.has_pk else None
    response = _call(client, method, route.url(obj.pk if obj else None))
    assert_error(response, 403, "token_read_only")


READS = [(r, m) for r, m in ROUTE_METHODS if m == "get"]
# A stack export reads each kind of resource once (their relations prefetched), whatever their number.
QUERY_BUDGETS = {"stack-export": 12, "stack-export-by-label": 12}


@functools.cache
def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _documented_statuses(path: str, method: str) -> set[str]:
    return set(_schema()["paths"][path][method]["responses"])


@pytest.mark.parametrize(("route", "method"), READS, ids=_ids(READS))
def test_owner_reads_in_the_documented_shape(owner, tenant, route, method, django_assert_max_num_queries):
    client = api_client_for(owner, tenant)
    needs_objects = route.has_pk or route.name.endswith("-list")
    objects = [route.make_object(tenant, n) for n in range(3)] if needs_objects else []
    url = route.url(objects[0].pk if route.has_pk else None)
    # Token, membership, last-used stamp, count, page (+ a related lookup): never one query per row.
    with django_assert_max_num_queries(QUERY_BUDGETS.get(route.name, 8)):
        response = client.get(url)
    assert response.status_code == 200, response.content
    assert "200" in _documented_statuses(route.schema_path, method)
    content_type = response["Content-Type"]
    if not content_type.startswith("application/json"):
        assert route.name in ("invoice-pdf", "invoice-csv")
        assert content_type.split(";")[0] in ("application/pdf", "text/csv")
        return
    body = response.json()
    is_list = route.name.endswith("-list") or route.name.endswith("-events")
    if is_list:
        assert set(body) == {"data", "meta", "links"}
        assert body["meta"]["page"] == 1
        assert body["meta"]["total"] == len(body["data"])
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert response.has_header(name)


def test_every_operation_documents_its_errors():
    schema = _schema()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "403", "429", "503"} <= set(responses), f"{method.upper()} {path}"
            if "{id}" in path:
                assert "404" in responses, f"{method.upper()} {path}"
            if method == "post":
                params = {p["name"] for p in operation.get("parameters", [])}
                assert "Idempotency-Key" in params, f"POST {path}"
                assert "413" in responses, f"POST {path}"
