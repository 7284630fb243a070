from compute.network.api import views

routes = [
    ("networks", views.NetworkViewSet, "network"),
    ("ips", views.PublicIPViewSet, "publicip"),
    ("firewalls", views.FirewallViewSet, "firewall"),
]
