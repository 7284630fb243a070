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
    # Operators log in through the same two steps as everyone (password, then two-factor), not the admin's own form.
    path("admin/login/", views.admin_login),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/overview/", admin.site.admin_view(views_ops.overview), name="ops-overview"),
    path("admin/", admin.site.urls),
    path("", include("tenants.urls")),
    path("", include("compute.urls")),
    path("", include("compute.network.urls")),
    path("", include("compute.monitoring.urls")),
    path("", include("compute.stacks.urls")),
    path("billing/", include("billing.urls")),
    path("api/", include("portal.api.urls")),
]

# Django's own error answers: JSON in the API's error shape under /api/, the usual pages elsewhere (handler500 too).
handler400 = "portal.api.exceptions.bad_request"
handler403 = "portal.api.exceptions.permission_denied"
handler404 = "portal.api.exceptions.page_not_found"
