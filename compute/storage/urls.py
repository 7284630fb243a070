from django.urls import path

from compute.storage import views

app_name = "storage"

urlpatterns = [
    path("volumes/", views.VolumeListView.as_view(), name="volume-list"),
    path("volumes/<uuid:pk>/", views.VolumeDetailView.as_view(), name="volume-detail"),
    path("volumes/<uuid:pk>/attach/", views.VolumeAttachView.as_view(), name="volume-attach"),
    path("volumes/<uuid:pk>/detach/", views.VolumeDetachView.as_view(), name="volume-detach"),
    path("volumes/<uuid:pk>/extend/", views.VolumeExtendView.as_view(), name="volume-extend"),
    path("volumes/<uuid:pk>/snapshot/", views.VolumeSnapshotView.as_view(), name="volume-snapshot"),
    path("volumes/<uuid:pk>/rename/", views.VolumeRenameView.as_view(), name="volume-rename"),
    path("volumes/<uuid:pk>/delete/", views.VolumeDeleteView.as_view(), name="volume-delete"),
    path("snapshots/", views.SnapshotListView.as_view(), name="snapshot-list"),
    path("snapshots/<uuid:pk>/volume/", views.SnapshotVolumeView.as_view(), name="snapshot-volume"),
    path("snapshots/<uuid:pk>/rename/", views.SnapshotRenameView.as_view(), name="snapshot-rename"),
    path("snapshots/<uuid:pk>/delete/", views.SnapshotDeleteView.as_view(), name="snapshot-delete"),
    path("instances/<uuid:pk>/volumes/", views.InstanceAttachView.as_view(), name="instance-attach"),
]
