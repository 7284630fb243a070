from django.urls import path

from compute.network import views

app_name = "network"

urlpatterns = [
    path("networks/", views.NetworkListView.as_view(), name="network-list"),
    path("networks/<uuid:pk>/", views.NetworkDetailView.as_view(), name="network-detail"),
    path("networks/<uuid:pk>/rename/", views.NetworkRenameView.as_view(), name="network-rename"),
    path("networks/<uuid:pk>/delete/", views.NetworkDeleteView.as_view(), name="network-delete"),
    path("ips/", views.PublicIPListView.as_view(), name="ip-list"),
    path("ips/<uuid:pk>/assign/", views.PublicIPAssignView.as_view(), name="ip-assign"),
    path("ips/<uuid:pk>/unassign/", views.PublicIPUnassignView.as_view(), name="ip-unassign"),
    path("ips/<uuid:pk>/release/", views.PublicIPReleaseView.as_view(), name="ip-release"),
    path("firewalls/", views.FirewallListView.as_view(), name="firewall-list"),
    path("firewalls/<uuid:pk>/", views.FirewallDetailView.as_view(), name="firewall-detail"),
    path("firewalls/<uuid:pk>/edit/", views.FirewallRenameView.as_view(), name="firewall-rename"),
    path("firewalls/<uuid:pk>/rules/", views.FirewallRuleAddView.as_view(), name="firewall-rule-add"),
    path(
        "firewalls/<uuid:pk>/rules/<int:position>/delete/",
        views.FirewallRuleRemoveView.as_view(),
        name="firewall-rule-remove",
    ),
    path("firewalls/<uuid:pk>/delete/", views.FirewallDeleteView.as_view(), name="firewall-delete"),
    path("instances/<uuid:pk>/firewalls/", views.InstanceFirewallsView.as_view(), name="instance-firewalls"),
]
