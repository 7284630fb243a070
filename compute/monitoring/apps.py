from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "compute.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"
