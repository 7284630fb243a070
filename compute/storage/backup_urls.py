from django.urls import path

from compute.storage import backup_views as views

app_name = "backups"

urlpatterns = [
    path("backups/", views.BackupListView.as_view(), name="backup-list"),
    path("backups/<uuid:pk>/restore/", views.BackupRestoreView.as_view(), name="backup-restore"),
    path("backups/<uuid:pk>/delete/", views.BackupDeleteView.as_view(), name="backup-delete"),
    path("images/", views.ImageListView.as_view(), name="image-list"),
    path("images/<uuid:pk>/delete/", views.ImageDeleteView.as_view(), name="image-delete"),
    path("instances/<uuid:pk>/backups/", views.InstanceBackupPolicyView.as_view(), name="instance-backups"),
    path("instances/<uuid:pk>/backups/rows/", views.InstanceBackupRowsView.as_view(), name="instance-backup-rows"),
    path("instances/<uuid:pk>/backups/now/", views.InstanceBackupNowView.as_view(), name="instance-backup-now"),
    path("instances/<uuid:pk>/snapshot/", views.InstanceSnapshotView.as_view(), name="instance-snapshot"),
]
