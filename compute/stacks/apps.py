from django.apps import AppConfig


class StacksConfig(AppConfig):
    name = "compute.stacks"
    label = "stacks"
    verbose_name = "Stacks"
