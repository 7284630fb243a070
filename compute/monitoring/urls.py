from django.urls import path

from compute.monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("alerts/", views.AlertPolicyListView.as_view(), name="alert-list"),
    path("alerts/<uuid:pk>/", views.AlertPolicyDetailView.as_view(), name="alert-detail"),
    path("alerts/<uuid:pk>/delete/", views.AlertPolicyDeleteView.as_view(), name="alert-delete"),
    path("alerts/<uuid:pk>/rotate-secret/", views.AlertPolicyRotateSecretView.as_view(), name="alert-rotate-secret"),
]
