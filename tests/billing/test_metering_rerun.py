"""Re-running the metering refresh rewrites only what changed: unchanged lines keep their rows."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.models import Invoice, InvoiceLine, Segment
from billing.services.metering import invoices_refresh
from tests.factories.billing import SegmentFactory

MARCH = date(2026, 3, 1)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _lines(tenant) -> dict:
    return {line.segment_id: line for line in InvoiceLine.objects.filter(invoice__tenant=tenant)}


@pytest.mark.postgres
def test_a_rerun_keeps_unchanged_lines_and_updates_changed_ones_in_place(tenant):
    steady = SegmentFactory(tenant=tenant, price="67.20", started_at=at(2026, 3, 2), ended_at=at(2026, 3, 3))
    growing = SegmentFactory(tenant=tenant, price="67.20", started_at=at(2026, 3, 5), ended_at=None)
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 10))
    before = _lines(tenant)

    assert invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 10)) == 0  # nothing changed, nothing written
    assert {pk: line.pk for pk, line in _lines(tenant).items()} == {pk: line.pk for pk, line in before.items()}

    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 11))  # a day later: only the open segment grows
    after = _lines(tenant)
    assert after[steady.pk].pk == before[steady.pk].pk and after[steady.pk].hours == 24
    assert after[growing.pk].pk == before[growing.pk].pk and after[growing.pk].hours == 6 * 24
    invoice = Invoice.objects.get(tenant=tenant, period_start=MARCH)
    assert invoice.subtotal == Decimal("2.40") + Decimal("14.40")


def test_a_line_no_segment_accounts_for_any_more_goes(tenant):
    kept = SegmentFactory(tenant=tenant, price="67.20", started_at=at(2026, 3, 2), ended_at=at(2026, 3, 3))
    moved = SegmentFactory(tenant=tenant, price="67.20", started_at=at(2026, 3, 4), ended_at=at(2026, 3, 5))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 10))
    # An operator's correction moves a segment out of the month (a fixture shortcut: segments are never edited).
    Segment.objects.filter(pk=moved.pk).update(started_at=at(2026, 4, 4), ended_at=at(2026, 4, 5))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 10))
    assert set(_lines(tenant)) == {kept.pk}
    assert Invoice.objects.get(tenant=tenant, period_start=MARCH).subtotal == Decimal("2.40")
