"""Price arithmetic shared by billing, the launch and resize forms, and the API: one copy of every rule.

A month is billed as at most 672 hours (28 days): the hourly rate is the monthly price / 672, and a resource
never costs more than its monthly price in one calendar month. Every started hour counts in full: hour k of a
segment begins at `start + k h` and belongs to the calendar month (UTC) in which it begins.

Hours are counted from the exact instants (to the microsecond): a segment that lasts any time at all is at least
one hour. The metering job evaluates the same rules in SQL (`started_hours_sql`, `line_cents_sql`) on integers:
instants as microseconds since 1970, prices as units of 1e-10 (`RATE_SCALE`) and amounts in cents, so SQLite
(which has no decimal type) is exact too. Tests compare the two on the edge cases.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

HOURS_PER_BILLING_MONTH = 672
RATE_PLACES = Decimal("0.0000000001")  # hourly rates keep 10 decimal places
RATE_SCALE = 10**10  # hourly rates and monthly prices as integers of 1e-10 in SQL
CENT = Decimal("0.01")
HOUR_MICROSECONDS = 3600 * 10**6
MICROSECOND = timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hourly_rate(monthly_price: Decimal) -> Decimal:
    return (Decimal(monthly_price) / HOURS_PER_BILLING_MONTH).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def charge(*, hours: int, monthly_price: Decimal) -> Decimal:
    """What `hours` started hours of a resource cost within one month: capped at the monthly price, to the cent."""
    uncapped = hours * hourly_rate(monthly_price)
    return min(uncapped, Decimal(monthly_price)).quantize(CENT, rounding=ROUND_HALF_UP)


def round_money(amount: Decimal) -> Decimal:
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(amount: Decimal) -> int:
    return int(round_money(amount) * 100)


def cents_to_decimal(cents: int) -> Decimal:
    return (Decimal(int(cents)) / 100).quantize(CENT)


def tax_cents(*, subtotal_cents: int, tax_rate: Decimal) -> int:
    """Tax on a whole subtotal (never per line), `tax_rate` in percent, rounded half up to the cent."""
    return to_cents(Decimal(subtotal_cents) * Decimal(tax_rate) / 10000)


# --- months and started hours ------------------------------------------------------------------------------------


def month_start(day: date | datetime) -> date:
    return date(day.year, day.month, 1)


def next_month(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def month_bounds(first: date) -> tuple[datetime, datetime]:
    """The UTC instants where the month starting on `first` begins and ends (exclusive)."""
    following = next_month(first)
    return (
        datetime(first.year, first.month, 1, tzinfo=UTC),
        datetime(following.year, following.month, 1, tzinfo=UTC),
    )


def _hours_before(start: datetime, instant: datetime) -> int:
    """How many hours of a segment starting at `start` have begun strictly before `instant`."""
    elapsed = (instant - start) // MICROSECOND  # exact: timedelta floor division stays in integers
    return 0 if elapsed <= 0 else (elapsed + HOUR_MICROSECONDS - 1) // HOUR_MICROSECONDS


def started_hours(
    *, start: datetime, end: datetime | None, period_start: datetime, period_end: datetime, as_of: datetime
) -> int:
    """Started hours of the segment [start, end) that begin in [period_start, period_end), counted up to as_of.

    An open segment (end None) has run until as_of; hours that begin after as_of have not started yet.
    """
    stop = min(end, as_of) if end is not None else as_of
    upto = min(_hours_before(start, stop), _hours_before(start, period_end))
    return max(0, upto - _hours_before(start, period_start))


def line_cents(*, hours: int, hourly_rate_units: int, monthly_price_units: int) -> int:
    """The integer twin of charge(): equal to to_cents(charge(...)) for the same prices."""
    units = min(hours * hourly_rate_units, monthly_price_units)
    return (units + RATE_SCALE // 200) // (RATE_SCALE // 100)


# --- the same rules in SQL ---------------------------------------------------------------------------------------


def epoch_microseconds(instant: datetime) -> int:
    """Microseconds since 1970 of an aware instant: the value epoch_sql() gives for the same timestamp."""
    return (instant - EPOCH) // MICROSECOND


def epoch_sql(vendor: str, column: str) -> str:
    """Microseconds since 1970 of a timestamp column, as an exact BIGINT."""
    if vendor == "postgresql":
        # EXTRACT returns an exact numeric (PostgreSQL 14+), so the product is a whole number.
        return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"
    # Django stores SQLite datetimes as UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'. SQLite's own date functions keep
    # only milliseconds (and round '.9999' up to the next second), so the whole seconds come from the first 19
    # characters and the microseconds straight from the text after the dot, padded when it is absent or short.
    seconds = f"CAST(strftime('%%s', substr({column}, 1, 19)) AS INTEGER)"  # %% survives parameter formatting
    fraction = f"CAST(substr({column} || '000000', 21, 6) AS INTEGER)"
    return f"({seconds} * 1000000 + {fraction})"


def hours_before_sql(start_epoch: str, instant_epoch: str) -> str:
    return (
        f"(CASE WHEN {instant_epoch} <= {start_epoch} THEN 0 "
        f"ELSE ({instant_epoch} - {start_epoch} + {HOUR_MICROSECONDS - 1}) / {HOUR_MICROSECONDS} END)"
    )


def started_hours_sql(*, start: str, end: str, period_start: str, period_end: str, as_of: str) -> str:
    """SQL for started_hours(): every argument is an SQL expression giving epoch microseconds (`end` may be NULL).

    Arguments should be plain columns or parameters: each appears several times in the expression.
    """
    stop = as_of if end == "NULL" else f"(CASE WHEN {end} IS NOT NULL AND {end} < {as_of} THEN {end} ELSE {as_of} END)"
    upto_stop = hours_before_sql(start, stop)
    upto_end = hours_before_sql(start, period_end)
    upto = f"(CASE WHEN {upto_stop} < {upto_end} THEN {upto_stop} ELSE {upto_end} END)"
    since = hours_before_sql(start, period_start)
    return f"(CASE WHEN {upto} > {since} THEN {upto} - {since} ELSE 0 END)"


def line_cents_sql(*, hours: str, hourly_rate_units: str, monthly_price_units: str) -> str:
    uncapped = f"({hours} * {hourly_rate_units})"
    units = f"(CASE WHEN {uncapped} < {monthly_price_units} THEN {uncapped} ELSE {monthly_price_units} END)"
    return f"(({units} + {RATE_SCALE // 200}) / {RATE_SCALE // 100})"


def tax_cents_sql(*, subtotal_cents: str, tax_rate_percent: str) -> str:
    """SQL for tax_cents(): the rate is turned into integer basis points first, so rounding is exact."""
    basis_points = f"CAST(ROUND({tax_rate_percent} * 100) AS BIGINT)"
    return f"(({subtotal_cents} * {basis_points} + 5000) / 10000)"


# --- outbound traffic --------------------------------------------------------------------------------------------
# Each machine's flavor includes some outbound GB per month, pro rata by its started hours in the month (capped at
# the 672 hours of a billing month), pooled per tenant. What the tenant's machines sent above the pool is billed per
# started GB (1 GB = 10^9 bytes) at the price per GB in effect when the month began.

GB = 10**9


def allowance_bytes(*, allowance_gb: int, hours: int) -> int:
    """What one segment's started hours in a month add to the tenant's pooled allowance, in bytes (rounded down)."""
    return allowance_gb * GB * min(hours, HOURS_PER_BILLING_MONTH) // HOURS_PER_BILLING_MONTH


def billable_gb(*, sent_bytes: int, allowance: int) -> int:
    """Started GB above the allowance."""
    over = sent_bytes - allowance
    return 0 if over <= 0 else (over + GB - 1) // GB


def traffic_cents(*, gb: int, price_per_gb: Decimal) -> int:
    return to_cents(gb * Decimal(price_per_gb))


def allowance_bytes_sql(*, allowance_gb: str, hours: str) -> str:
    capped = f"(CASE WHEN {hours} < {HOURS_PER_BILLING_MONTH} THEN {hours} ELSE {HOURS_PER_BILLING_MONTH} END)"
    return f"(CAST({allowance_gb} AS BIGINT) * {GB} * {capped} / {HOURS_PER_BILLING_MONTH})"


def billable_gb_sql(*, sent: str, allowance: str) -> str:
    return f"(CASE WHEN {sent} > {allowance} THEN ({sent} - {allowance} + {GB - 1}) / {GB} ELSE 0 END)"


def traffic_cents_sql(*, gb: str, price_units: str) -> str:
    return f"(({gb} * {price_units} + {RATE_SCALE // 200}) / {RATE_SCALE // 100})"
