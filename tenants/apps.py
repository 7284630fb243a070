from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and accounts"

    def ready(self) -> None:
        from tenants import receivers

        receivers.connect()
