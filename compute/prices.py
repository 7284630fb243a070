"""The prices compute shows (launch and resize forms, the instance page, the API), answered by billing's rules.

Compute owns the catalog but not the pricing rules: billing registers its price book here when Django starts
(`billing.apps`), so the one copy of "hourly rate = monthly price / 672" stays in billing and compute still never
imports it.
"""

from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

HOURLY_DISPLAY = Decimal("0.0001")  # hourly prices are shown to 4 places; billing keeps 10


class PriceBook(Protocol):
    def hourly_rate(self, monthly_price: Decimal) -> Decimal: ...

    def round_money(self, amount: Decimal) -> Decimal: ...

    def resource_price(self, resource_type: str) -> Decimal:
        """The price that applies now to one unit of a compute.lifecycle resource type: an IPv4 address per month,
        a GB of outbound traffic above the allowance."""
        ...


_book: PriceBook | None = None


def price_book_register(book: PriceBook) -> None:
    global _book
    _book = book


def price_book() -> PriceBook:
    if _book is None:
        raise RuntimeError("No price book is registered: is the billing app installed?")
    return _book


def hourly_rate(monthly_price: Decimal) -> Decimal:
    """What one started hour costs, to billing's precision."""
    return price_book().hourly_rate(Decimal(monthly_price))


def hourly_display(monthly_price: Decimal) -> Decimal:
    """The hourly rate as the dashboard shows it."""
    return hourly_rate(monthly_price).quantize(HOURLY_DISPLAY, rounding=ROUND_HALF_UP)


def monthly_display(monthly_price: Decimal) -> Decimal:
    return price_book().round_money(Decimal(monthly_price))


def resource_price(resource_type: str) -> Decimal:
    """What one public IPv4 address costs per month now (IPV4), or one GB of outbound traffic this month (TRAFFIC)."""
    return price_book().resource_price(resource_type)
