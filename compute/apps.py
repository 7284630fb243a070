from django.apps import AppConfig


class ComputeConfig(AppConfig):
    name = "compute"
    verbose_name = "Compute"

    def ready(self) -> None:
        from compute import catalog
        from compute.metrics import ComputeCollector
        from compute.services import standing, usage
        from portal.metrics import register_collector

        standing.subscribe()
        catalog.subscribe()
        usage.subscribe()
        register_collector(ComputeCollector())
