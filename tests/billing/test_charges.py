"""Exact amounts, to the cent, for the cases the billing rules single out."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from billing.models import BillingAccount, Invoice, InvoiceLine, Segment
from billing.pricing import charge, hourly_rate, line_cents, started_hours, to_cents
from billing.selectors import tenant_month_usage
from billing.services.metering import invoices_refresh
from tests.factories.billing import SegmentFactory

MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _invoice(tenant, period=MARCH) -> Invoice:
    return Invoice.objects.get(tenant=tenant, period_start=period)


def _amounts(invoice) -> list[Decimal]:
    return [line.amount for line in invoice.lines.order_by("period_from", "id")]


def test_ninety_minutes_are_two_hours(tenant):
    # 67.20 a month is exactly 0.10 an hour.
    SegmentFactory(tenant=tenant, price="67.20", started_at=at(2026, 3, 10, 10), ended_at=at(2026, 3, 10, 11, 30))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 15))
    line = _invoice(tenant).lines.get()
    assert line.hours == 2
    assert line.amount == Decimal("0.20")
    assert _invoice(tenant).total == Decimal("0.20")


def test_a_whole_31_day_month_is_capped_at_the_monthly_price(tenant):
    SegmentFactory(tenant=tenant, price="20.00", started_at=at(2026, 2, 20), ended_at=None)
    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 2))
    line = _invoice(tenant).lines.get()
    assert line.hours == 744  # 31 x 24, which would be 22.14 uncapped
    assert line.amount == Decimal("20.00")


def test_resize_mid_month_gives_two_lines_each_capped_on_its_own(tenant):
    resource = SegmentFactory(tenant=tenant, price="20.00", started_at=at(2026, 3, 1), ended_at=at(2026, 3, 31))
    SegmentFactory(
        tenant=tenant,
        resource_id=resource.resource_id,
        plan_name="large",
        price="40.00",
        started_at=at(2026, 3, 31),
        ended_at=None,
    )
    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 1, 5))
    invoice = _invoice(tenant)
    # small: 720 h x 0.0297619048 = 21.43 → capped at 20.00; large: 24 h x 0.0595238095 = 1.43
    assert [(line.plan_name, line.hours, line.amount) for line in invoice.lines.order_by("period_from")] == [
        ("small", 720, Decimal("20.00")),
        ("large", 24, Decimal("1.43")),
    ]
    assert invoice.subtotal == Decimal("21.43")


def test_a_segment_crossing_a_month_boundary_splits_its_hours_exactly(tenant):
    # Hours begin at 22:30, 23:30 (March), 00:30, 01:30 (April); 02:30 is after the end: 4 hours, none twice.
    SegmentFactory(tenant=tenant, price="67.20", started_at=at(2026, 3, 31, 22, 30), ended_at=at(2026, 4, 1, 2, 15))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 2))
    invoices_refresh(period_start=APRIL, as_of=at(2026, 4, 2))
    march, april = _invoice(tenant, MARCH).lines.get(), _invoice(tenant, APRIL).lines.get()
    assert (march.hours, march.amount) == (2, Decimal("0.20"))
    assert (april.hours, april.amount) == (2, Decimal("0.20"))


def test_round_half_up_at_half_a_cent(tenant):
    # 3.36 a month is 0.005 an hour: 1 h = 0.005 → 0.01 and 5 h = 0.025 → 0.03 (half-even would give 0.00, 0.02).
    assert hourly_rate(Decimal("3.36")) == Decimal("0.0050000000")
    assert charge(hours=1, monthly_price=Decimal("3.36")) == Decimal("0.01")
    assert charge(hours=5, monthly_price=Decimal("3.36")) == Decimal("0.03")
    SegmentFactory(tenant=tenant, price="3.36", started_at=at(2026, 3, 2, 8), ended_at=at(2026, 3, 2, 9))
    SegmentFactory(tenant=tenant, price="3.36", started_at=at(2026, 3, 3, 8), ended_at=at(2026, 3, 3, 13))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 20))
    assert _amounts(_invoice(tenant)) == [Decimal("0.01"), Decimal("0.03")]


def test_tax_is_computed_once_on_the_subtotal(tenant):
    BillingAccount.objects.create(tenant=tenant, tax_rate=Decimal("19.00"))
    for day in (2, 3, 4):
        SegmentFactory(tenant=tenant, price="3.36", started_at=at(2026, 3, day, 8), ended_at=at(2026, 3, day, 9))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 20))
    invoice = _invoice(tenant)
    # Per line 0.01 x 19 % rounds to 0.00 three times; once on the 0.03 subtotal it is 0.0057 → 0.01.
    assert invoice.subtotal == Decimal("0.03")
    assert invoice.tax == Decimal("0.01")
    assert invoice.total == Decimal("0.04")


def test_open_segment_counts_hours_started_by_now(tenant):
    SegmentFactory(tenant=tenant, price="67.20", started_at=at(2026, 3, 10, 10), ended_at=None)
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 10, 12, 0, 1))
    assert _invoice(tenant).lines.get().hours == 3


def test_zero_hour_segments_make_no_line_but_the_draft_exists(tenant):
    SegmentFactory(tenant=tenant, started_at=at(2026, 3, 10, 10), ended_at=at(2026, 3, 10, 10))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 20))
    invoice = _invoice(tenant)
    assert invoice.lines.count() == 0 and invoice.total == Decimal("0.00")


def test_half_a_second_is_one_started_hour(tenant):
    start = at(2026, 3, 10, 10)
    end = start + timedelta(milliseconds=500)
    SegmentFactory(tenant=tenant, price="67.20", started_at=start, ended_at=end)
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 20))
    assert (_invoice(tenant).lines.get().hours, _invoice(tenant).total) == (1, Decimal("0.10"))
    assert started_hours(start=start, end=end, period_start=at(2026, 3, 1), period_end=at(2026, 4, 1), as_of=end) == 1


@pytest.mark.parametrize(
    ("end", "hours"),
    [
        (at(2026, 3, 10, 10, 0, 0, 900000), 0),
        (at(2026, 3, 10, 10, 0, 0, 900001), 1),
        (at(2026, 3, 10, 11, 0, 0, 900000), 1),
        (at(2026, 3, 10, 11, 0, 0, 900001), 2),
        (at(2026, 3, 10, 11, 0, 0, 950000), 2),
    ],
)
def test_hours_start_at_the_exact_instant_of_the_segment(tenant, end, hours):
    # Hour 2 of a segment started at 10:00:00.900 begins at 11:00:00.900, not at 11:00:00 or 11:00:01.
    start = at(2026, 3, 10, 10, 0, 0, 900000)
    SegmentFactory(tenant=tenant, price="67.20", started_at=start, ended_at=end)
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 20))
    assert sum(_invoice(tenant).lines.values_list("hours", flat=True)) == hours
    assert tenant_month_usage(tenant=tenant, as_of=at(2026, 3, 20)).resources[0].hours == hours


def test_an_hour_begun_a_fraction_before_midnight_belongs_to_the_old_month(tenant):
    # Hours begin at 22:59:59.999999 and 23:59:59.999999 (March), then 00:59:59.999999 (April).
    start = at(2026, 3, 31, 22, 59, 59, 999999)
    SegmentFactory(tenant=tenant, price="67.20", started_at=start, ended_at=at(2026, 4, 1, 1))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 2))
    invoices_refresh(period_start=APRIL, as_of=at(2026, 4, 2))
    assert (_invoice(tenant, MARCH).lines.get().hours, _invoice(tenant, APRIL).lines.get().hours) == (2, 1)


def test_metering_twice_gives_identical_invoices(tenant):
    SegmentFactory(tenant=tenant, price="20.00", started_at=at(2026, 3, 1, 3, 17, 9), ended_at=at(2026, 3, 9, 1))
    SegmentFactory(tenant=tenant, price="9.99", started_at=at(2026, 3, 5, 12, 0, 1), ended_at=None)

    def snapshot():
        invoice = _invoice(tenant)
        lines = list(InvoiceLine.objects.filter(invoice=invoice).values_list("segment_id", "hours", "amount_cents"))
        return invoice.pk, invoice.total_cents, sorted(lines)

    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 20))
    first = snapshot()
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 20))
    assert snapshot() == first
    assert Invoice.objects.filter(tenant=tenant).count() == 1


@pytest.mark.parametrize("price", ["20.00", "3.36", "9.99", "0.01", "123456.78", "4.7"])
@pytest.mark.parametrize("hours", [0, 1, 2, 13, 671, 672, 744])
def test_sql_and_python_arithmetic_agree(price, hours):
    segment = Segment()
    segment.set_price(unit_monthly_price=Decimal(price))
    assert line_cents(
        hours=hours, hourly_rate_units=segment.hourly_rate_units, monthly_price_units=segment.monthly_price_units
    ) == to_cents(charge(hours=hours, monthly_price=Decimal(price)))


def test_started_hours_edges():
    start = at(2026, 3, 31, 23, 59, 59)
    month_end = at(2026, 4, 1)
    assert started_hours(start=start, end=None, period_start=at(2026, 3, 1), period_end=month_end, as_of=start) == 0
    one_second_later = start + timedelta(seconds=1)
    assert (
        started_hours(start=start, end=None, period_start=at(2026, 3, 1), period_end=month_end, as_of=one_second_later)
        == 1
    )
    assert (
        started_hours(start=start, end=None, period_start=month_end, period_end=at(2026, 5, 1), as_of=at(2026, 4, 2))
        == 24
    )


def test_live_usage_matches_the_draft_invoice(tenant):
    SegmentFactory(tenant=tenant, price="20.00", started_at=at(2026, 2, 27, 3, 17, 9), ended_at=at(2026, 3, 9, 1))
    SegmentFactory(tenant=tenant, price="9.99", started_at=at(2026, 3, 5, 12, 0, 1), ended_at=None)
    SegmentFactory(tenant=tenant, price="3.36", started_at=at(2026, 3, 6, 8), ended_at=at(2026, 3, 6, 13))
    now = at(2026, 3, 20, 7, 30)
    invoices_refresh(period_start=MARCH, as_of=now)
    usage = tenant_month_usage(tenant=tenant, as_of=now)
    assert usage.cost_cents == _invoice(tenant).subtotal_cents
    assert sum(cents for _, cents in usage.daily_cents) == usage.cost_cents
    assert len(usage.daily_cents) == 20
    # The forecast runs the open 9.99 machine to the month's end; the closed ones stay as they are.
    open_hours = started_hours(
        start=at(2026, 3, 5, 12, 0, 1),
        end=None,
        period_start=at(2026, 3, 1),
        period_end=at(2026, 4, 1),
        as_of=at(2026, 4, 1),
    )
    closed = [line.amount_cents for line in _invoice(tenant).lines.exclude(monthly_price=Decimal("9.99"))]
    assert usage.forecast_cents == sum(closed) + to_cents(charge(hours=open_hours, monthly_price=Decimal("9.99")))


def test_sql_metering_matches_the_python_rules_on_random_segments(tenant):
    """The metering SQL and billing.pricing agree, line by line, on awkward starts, ends and prices."""
    import random

    rng = random.Random(5)
    start, end, as_of = at(2026, 3, 1), at(2026, 4, 1), at(2026, 3, 31, 23, 59, 59, 999998)
    hour = 3600 * 10**6
    segments = []
    for _ in range(120):
        # Instants to the microsecond, half of them on whole seconds.
        began = start + timedelta(
            seconds=rng.randint(-5 * 86400, 31 * 86400), microseconds=rng.choice([0, rng.randrange(10**6)])
        )
        length = rng.choice(
            [0, 1, 500_000, 999_999, 10**6, hour - 1, hour, hour + 1, 2 * hour - 1, rng.randint(1, 40 * 24 * hour)]
        )
        ended = None if rng.random() < 0.3 else began + timedelta(microseconds=length)
        price = Decimal(rng.choice(["3.36", "4.99", "20.00", "67.20", "0.01", "999.99"]))
        segments.append(SegmentFactory(tenant=tenant, price=price, started_at=began, ended_at=ended))
    invoices_refresh(period_start=MARCH, as_of=as_of)
    metered = {line.segment_id: (line.hours, line.amount_cents) for line in _invoice(tenant).lines.all()}
    for segment in segments:
        hours = started_hours(
            start=segment.started_at, end=segment.ended_at, period_start=start, period_end=end, as_of=as_of
        )
        expected = line_cents(
            hours=hours, hourly_rate_units=segment.hourly_rate_units, monthly_price_units=segment.monthly_price_units
        )
        assert metered.get(segment.pk, (0, 0)) == (hours, expected), segment
