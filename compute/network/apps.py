from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "compute.network"
    label = "network"
    verbose_name = "Networking"

    def ready(self) -> None:
        from compute.network.services import defaults

        defaults.subscribe()
