"""/api/: the versioned API (v1), its OpenAPI schema and the interactive docs.

Each app's api/urls.py registers its viewsets on the shared router and lists its other paths.
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal.api import schema  # noqa: F401  (registers the Bearer token security scheme)
from portal.api.exceptions import not_found_view
from portal.api.routers import v1_patterns

app_name = "api"

urlpatterns = [
    path("v1/", include(v1_patterns())),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script from a URL of its own: the site's CSP forbids inline scripts.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="api/swagger_ui.html"),
        name="docs",
    ),
    re_path(r"^.*$", not_found_view, name="not-found"),
]
