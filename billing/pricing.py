"""Price arithmetic shared by billing, the launch and resize forms, and the API: one copy of every rule.

A month is billed as at most 672 hours (28 days): the hourly rate is the monthly price / 672, and a resource
never costs more than its monthly price in one calendar month.
"""

from decimal import ROUND_HALF_UP, Decimal

HOURS_PER_BILLING_MONTH = 672
RATE_PLACES = Decimal("0.0000000001")  # hourly rates keep 10 decimal places
CENT = Decimal("0.01")


def hourly_rate(monthly_price: Decimal) -> Decimal:
    return (Decimal(monthly_price) / HOURS_PER_BILLING_MONTH).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def charge(*, hours: int, monthly_price: Decimal) -> Decimal:
    """What `hours` started hours of a resource cost within one month: capped at the monthly price, to the cent."""
    uncapped = hours * hourly_rate(monthly_price)
    return min(uncapped, Decimal(monthly_price)).quantize(CENT, rounding=ROUND_HALF_UP)


def round_money(amount: Decimal) -> Decimal:
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)
