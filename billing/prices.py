"""Dated prices: the one way a price changes, and the price that applies at an instant."""

from datetime import datetime
from decimal import Decimal


def flavor_price_current(*, flavor, at: datetime) -> Decimal:
    """The monthly price a machine of `flavor` opened at `at` is billed at."""
    return Decimal(flavor.monthly_price)
