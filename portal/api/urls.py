"""/api/: the versioned API (v1), its OpenAPI schema and the interactive docs.

Each app's api/urls.py registers its viewsets on the shared router and lists its other paths.
"""

import threading

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal.api import schema  # noqa: F401  (registers the Bearer token security scheme)
from portal.api.exceptions import not_found_view
from portal.api.routers import v1_patterns

app_name = "api"


class SchemaView(SpectacularAPIView):
    """The OpenAPI document. drf-spectacular's generator is not thread-safe the first time it loads its extensions
    (two threads of one worker can race into a 500), so generation runs one at a time per process."""

    _lock = threading.Lock()

    def _get_schema_response(self, request):
        with self._lock:
            return super()._get_schema_response(request)


urlpatterns = [
    path("v1/", include(v1_patterns())),
    path("schema/", SchemaView.as_view(), name="schema"),
    # The split view serves its start-up script from a URL of its own: the site's CSP forbids inline scripts.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="api/swagger_ui.html"),
        name="docs",
    ),
    # [\s\S], not ".": a path with an encoded newline must get the JSON 404 too, not Django's HTML page.
    re_path(r"^[\s\S]*$", not_found_view, name="not-found"),
]
