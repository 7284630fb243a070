"""Backups (a share of the machine's price) and private images (per GiB) on the invoice, to the cent.

The segments are opened by the real services at the dated prices, then placed at fixed instants of March 2026 to
meter a known month.
"""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.models import Invoice, ResourceType, Segment
from billing.services import resource_price_set
from billing.services.metering import invoices_refresh
from compute.storage.services import backups
from compute.storage.services.boot_snapshots import instance_snapshot
from compute.storage.services.images import image_create
from portal.errors import InvalidRequest

pytestmark = pytest.mark.django_db

MARCH = date(2026, 3, 1)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _place(segment: Segment, start: datetime, end: datetime | None) -> None:
    Segment.objects.filter(pk=segment.pk).update(started_at=start, ended_at=end)


def _line(tenant, kind):
    invoice = Invoice.objects.get(tenant=tenant, period_start=MARCH)
    (line,) = invoice.lines.filter(resource_type=kind)
    return line


def test_backups_kept_all_month_cost_a_fifth_of_the_machine(running, member, tenant):
    # s2.medium costs 12.00 a month: its backups 2.40 (20 %), capped at that over a whole month.
    backups.backups_enable(instance=running, user=member, hour=2)
    segment = Segment.objects.get(resource_type=ResourceType.BACKUP, resource_id=running.pk)
    assert (segment.monthly_price, segment.plan_name) == (Decimal("2.4000"), "20 % of s2.medium")
    _place(segment, at(2026, 2, 20), None)
    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 1, 2))
    line = _line(tenant, ResourceType.BACKUP)
    assert (line.hours, line.amount, line.resource_name) == (744, Decimal("2.40"), f"Backups of {running.name}")


def test_backups_for_ten_days_are_240_started_hours(running, member, tenant):
    # 240 h x 2.40 / 672 = 0.857… → 0.86
    backups.backups_enable(instance=running, user=member, hour=2)
    segment = Segment.objects.get(resource_type=ResourceType.BACKUP, resource_id=running.pk)
    _place(segment, at(2026, 3, 10, 12), at(2026, 3, 20, 12))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 1, 2))
    assert (_line(tenant, ResourceType.BACKUP).hours, _line(tenant, ResourceType.BACKUP).amount) == (
        240,
        Decimal("0.86"),
    )


def test_the_backup_share_is_a_dated_operator_setting(running, member, tenant):
    resource_price_set(resource_type=ResourceType.BACKUP, monthly_price=Decimal("25"))
    backups.backups_enable(instance=running, user=member, hour=2)
    segment = Segment.objects.get(resource_type=ResourceType.BACKUP, resource_id=running.pk)
    assert (segment.monthly_price, segment.plan_name) == (Decimal("3.0000"), "25 % of s2.medium")
    with pytest.raises(InvalidRequest):
        resource_price_set(resource_type=ResourceType.BACKUP, monthly_price=Decimal("120"))


def test_a_private_image_kept_ten_days(running, member, tenant, committed):
    # 40 GiB x 0.05 = 2.00 a month; 240 h x 2.00 / 672 = 0.714… → 0.71
    with committed():
        snapshot = instance_snapshot(instance=running, user=member, name="golden-snap")
    snapshot.refresh_from_db()
    with committed():
        image = image_create(snapshot=snapshot, user=member, name="golden")
    segment = Segment.objects.get(resource_type=ResourceType.IMAGE, resource_id=image.pk)
    assert (segment.quantity, segment.monthly_price) == (40, Decimal("2.0000"))
    _place(segment, at(2026, 3, 5, 12), at(2026, 3, 15, 12))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 1, 2))
    line = _line(tenant, ResourceType.IMAGE)
    assert (line.hours, line.amount, line.plan_name) == (240, Decimal("0.71"), "Private image (40 GiB)")
