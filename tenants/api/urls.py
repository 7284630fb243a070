from django.urls import path

from tenants.api import views

routes = [
    ("activity", views.ActivityViewSet, "activity"),
]

urlpatterns = [
    path("tenant/", views.TenantView.as_view(), name="tenant"),
]
