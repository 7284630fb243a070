from django.urls import path

from compute.api import views

routes = [
    ("regions", views.RegionViewSet, "region"),
    ("flavors", views.FlavorViewSet, "flavor"),
    ("images", views.ImageViewSet, "image"),
    ("ssh-keys", views.SSHKeyViewSet, "sshkey"),
    ("instances", views.InstanceViewSet, "instance"),
]

urlpatterns = [
    path("quotas/", views.QuotasView.as_view(), name="quotas"),
]
