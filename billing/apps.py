from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Billing listens to compute (which never imports billing) and prices what compute shows.
        from billing import checks  # noqa: F401  (registers the font and test-payment checks)
        from billing.services import lifecycle, prices, standing
        from billing.services.prices import PriceBook
        from compute.prices import price_book_register

        lifecycle.subscribe()
        standing.subscribe()
        prices.subscribe()
        price_book_register(PriceBook())
