from django.urls import path

from compute.stacks.api import views

routes = [
    ("stacks/plans", views.StackPlanViewSet, "stack-plan"),
    ("stacks/runs", views.StackRunViewSet, "stack-run"),
    ("stacks", views.StackViewSet, "stack"),
]

urlpatterns = [
    path("stacks/schema/", views.StackSchemaView.as_view(), name="stack-schema"),
    path("stacks/export/", views.StackExportView.as_view(), name="stack-export-by-label"),
]
