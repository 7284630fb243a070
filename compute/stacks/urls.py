from django.urls import path

from compute.stacks import views

app_name = "stacks"

urlpatterns = [
    path("stacks/", views.StackListView.as_view(), name="stack-list"),
    path("stacks/plans/<uuid:pk>/", views.PlanDetailView.as_view(), name="plan-detail"),
    path("stacks/plans/<uuid:pk>/apply/", views.PlanApplyView.as_view(), name="plan-apply"),
    path("stacks/runs/<uuid:pk>/", views.RunDetailView.as_view(), name="run-detail"),
    path("stacks/<slug:name>/", views.StackDetailView.as_view(), name="stack-detail"),
    path("stacks/<slug:name>/export/", views.StackExportView.as_view(), name="stack-export"),
    path("stacks/<slug:name>/destroy/", views.StackDestroyView.as_view(), name="stack-destroy"),
]
