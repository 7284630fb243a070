from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "compute.storage"
    label = "storage"
    verbose_name = "Storage"
