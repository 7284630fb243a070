"""Volumes and snapshots on the invoice, to the cent: per GiB per started hour, capped per month, at dated prices,
with lines that say what they were for."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Invoice, ResourceType, Segment
from billing.services import resource_price_set
from billing.services.metering import invoices_refresh
from compute.storage import services

MARCH = date(2026, 3, 1)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    state = {"now": at(2026, 3, 3)}
    monkeypatch.setattr(timezone, "now", lambda: state["now"])
    return state


def _lines(tenant, kind):
    invoice = Invoice.objects.get(tenant=tenant, period_start=MARCH)
    return list(invoice.lines.filter(resource_type=kind).order_by("period_from"))


def test_a_volume_extended_mid_month_is_two_lines_to_the_cent(tenant, member, host, committed, clock):
    clock["now"] = at(2026, 2, 20)
    resource_price_set(resource_type=ResourceType.VOLUME, monthly_price=Decimal("0.05"))
    clock["now"] = at(2026, 3, 3)
    with committed():
        volume = services.volume_create(tenant=tenant, user=member, name="db-data", size_gib=100)
    clock["now"] = at(2026, 3, 10, 12)
    with committed():
        services.volume_extend(volume=volume, user=member, size_gib=300)
    volume.refresh_from_db()
    assert volume.size_gib == 300

    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 1, 2))
    first, second = _lines(tenant, ResourceType.VOLUME)
    # 100 GiB x 0.05 = 5.00 a month: 180 h x 5.00 / 672 = 1.3392… → 1.34
    assert (first.plan_name, first.hours, first.monthly_price, first.amount) == (
        "Volume data (100 GiB)",
        180,
        Decimal("5.0000"),
        Decimal("1.34"),
    )
    # 300 GiB: 15.00 a month; 516 h x 15.00 / 672 = 11.5178… → 11.52 (under the cap)
    assert (second.plan_name, second.hours, second.monthly_price, second.amount) == (
        "Volume data (300 GiB)",
        516,
        Decimal("15.0000"),
        Decimal("11.52"),
    )
    assert first.resource_name == second.resource_name == "db-data"
    assert Invoice.objects.get(tenant=tenant, period_start=MARCH).subtotal == Decimal("12.86")


def test_a_snapshot_kept_ten_days_to_the_cent(tenant, member, host, committed, clock):
    clock["now"] = at(2026, 2, 20)
    resource_price_set(resource_type=ResourceType.SNAPSHOT, monthly_price=Decimal("0.03"))
    resource_price_set(resource_type=ResourceType.VOLUME, monthly_price=Decimal("0"))
    clock["now"] = at(2026, 3, 1)
    with committed():
        volume = services.volume_create(tenant=tenant, user=member, name="data", size_gib=200)
    clock["now"] = at(2026, 3, 5, 8)
    with committed():
        snapshot = services.snapshot_create(volume=volume, user=member, name="before-upgrade")
    snapshot.refresh_from_db()
    assert snapshot.state == "available"
    clock["now"] = at(2026, 3, 15, 8)
    with committed():
        services.snapshot_delete(snapshot=snapshot, user=member)

    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 1, 2))
    (line,) = _lines(tenant, ResourceType.SNAPSHOT)
    # 200 GiB x 0.03 = 6.00 a month: 240 h x 6.00 / 672 = 2.1428… → 2.14
    assert (line.plan_name, line.hours, line.amount) == ("Snapshot data (200 GiB)", 240, Decimal("2.14"))
    assert line.resource_name == "before-upgrade"
    assert line.get_resource_type_display() == "Snapshot storage (per GiB)"


def test_a_volume_kept_all_month_is_capped(tenant, member, host, committed, clock):
    clock["now"] = at(2026, 2, 1)
    with committed():
        services.volume_create(tenant=tenant, user=member, name="big", size_gib=1000)
    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 1, 2))
    (line,) = _lines(tenant, ResourceType.VOLUME)
    assert (line.hours, line.amount) == (744, Decimal("50.00"))  # 1000 GiB x 0.05 default, capped


def test_billing_starts_when_available_and_stops_at_the_delete_request(tenant, member, host, committed, clock):
    with committed():
        volume = services.volume_create(tenant=tenant, user=member, name="v", size_gib=10)
    segment = Segment.objects.get(resource_id=volume.pk)
    assert (segment.resource_type, segment.quantity, segment.started_at) == ("volume", 10, at(2026, 3, 3))
    clock["now"] = at(2026, 3, 4)
    services.volume_delete(volume=volume, user=member)  # the worker has not run yet
    segment.refresh_from_db()
    assert segment.ended_at == at(2026, 3, 4)
