from django.urls import path

from compute.monitoring.api import views

routes = [
    ("alert-policies", views.AlertPolicyViewSet, "alertpolicy"),
]

urlpatterns = [
    path("instances/<uuid:pk>/metrics/", views.InstanceUsageView.as_view(), name="instance-metrics"),
]
