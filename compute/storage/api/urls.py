from compute.storage.api import views

routes = [
    ("volumes", views.VolumeViewSet, "volume"),
    ("snapshots", views.SnapshotViewSet, "snapshot"),
]
