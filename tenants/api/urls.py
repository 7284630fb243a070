from django.urls import path

from tenants.api import views

routes: list = []

urlpatterns = [
    path("tenant/", views.TenantView.as_view(), name="tenant"),
]
