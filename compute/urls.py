from django.urls import path

from compute import views, views_console, views_labels

app_name = "compute"

urlpatterns = [
    path("instances/", views.InstanceListView.as_view(), name="instance-list"),
    path("instances/launch/", views.LaunchView.as_view(), name="instance-launch"),
    path("instances/launch/keys/", views.LaunchKeyAddView.as_view(), name="launch-key-add"),
    path("instances/<uuid:pk>/", views.InstanceDetailView.as_view(), name="instance-detail"),
    path("instances/<uuid:pk>/start/", views.InstanceStartView.as_view(), name="instance-start"),
    path("instances/<uuid:pk>/stop/", views.InstanceStopView.as_view(), name="instance-stop"),
    path("instances/<uuid:pk>/reboot/", views.InstanceRebootView.as_view(), name="instance-reboot"),
    path("instances/<uuid:pk>/rename/", views.InstanceRenameView.as_view(), name="instance-rename"),
    path("instances/<uuid:pk>/resize/", views.InstanceResizeView.as_view(), name="instance-resize"),
    path("instances/<uuid:pk>/delete/", views.InstanceDeleteView.as_view(), name="instance-delete"),
    path("instances/<uuid:pk>/console/", views_console.InstanceConsoleView.as_view(), name="instance-console"),
    path(
        "instances/<uuid:pk>/console/ticket/",
        views_console.InstanceConsoleTicketView.as_view(),
        name="instance-console-ticket",
    ),
    path("ssh-keys/", views.SSHKeyListView.as_view(), name="sshkey-list"),
    path("ssh-keys/<uuid:pk>/delete/", views.SSHKeyDeleteView.as_view(), name="sshkey-delete"),
    *(
        path(f"{prefix}/<uuid:pk>/labels/", views_labels.LabelsEditView.of(kind).as_view(), name=f"{kind}-labels")
        for kind, prefix in (
            ("instance", "instances"),
            ("ssh-key", "ssh-keys"),
            ("network", "networks"),
            ("firewall", "firewalls"),
            ("ip", "ips"),
        )
    ),
]
