from django.contrib import admin
from django.urls import include, path

from portal import metrics, views, views_ops

admin.site.site_header = "Hangar operations"
admin.site.site_title = "Hangar operations"
admin.site.index_title = "Hosts, catalog, tenants and billing"

handler500 = "portal.views_ops.server_error"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    # Operators log in through the same two steps as everyone (password, then two-factor), not the admin's own form.
    path("admin/login/", views.admin_login),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/overview/", admin.site.admin_view(views_ops.overview), name="ops-overview"),
    path("admin/", admin.site.urls),
    # Before the pages' includes, whose prefix "" matches every path: resolving an API path through them first took
    # 2.5 times as long (47 µs against 19; each include that fails lists every pattern it tried). No page lives under
    # api/, and everything under it answers in the API's JSON (its last pattern is a JSON 404).
    path("api/", include("portal.api.urls")),
    path("", include("tenants.urls")),
    path("", include("compute.urls")),
    path("", include("compute.network.urls")),
    path("", include("compute.monitoring.urls")),
    path("storage/", include("compute.storage.urls")),
    path("storage/", include("compute.storage.backup_urls")),
    path("", include("compute.stacks.urls")),
    path("billing/", include("billing.urls")),
]

# Django's own error answers: JSON in the API's error shape under /api/, the usual pages elsewhere (handler500 too).
handler400 = "portal.api.exceptions.bad_request"
handler403 = "portal.api.exceptions.permission_denied"
handler404 = "portal.api.exceptions.page_not_found"
