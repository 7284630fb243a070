from django.apps import AppConfig


class ComputeConfig(AppConfig):
    name = "compute"
    verbose_name = "Compute"

    def ready(self) -> None:
        from compute.metrics import ComputeCollector
        from compute.services import standing
        from portal.metrics import register_collector

        standing.subscribe()
        register_collector(ComputeCollector())
