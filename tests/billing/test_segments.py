from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Invoice, ResourceType, Segment
from billing.services import resource_billing_start, resource_billing_stop, segment_open
from billing.services.metering import invoices_refresh
from compute.services import instance_delete, instance_launch
from portal.errors import Conflict
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, InstanceFactory

T0 = datetime(2026, 3, 10, 12, 0, 0, 500000, tzinfo=UTC)


def instance_segment_open(*, instance, at):
    resource_billing_start(resource=instance.billable(), at=at)


def instance_segment_close(*, instance, at):
    resource_billing_stop(resource_type="instance", resource_id=instance.pk, at=at)


def _instance(tenant, name="web-1", price="20.00"):
    return InstanceFactory(tenant=tenant, name=name, flavor=FlavorFactory(name="small", monthly_price=Decimal(price)))


def test_open_snapshots_the_price_and_the_exact_instant(tenant):
    instance = _instance(tenant)
    instance_segment_open(instance=instance, at=T0)
    segment = Segment.objects.get(resource_id=instance.pk)
    assert segment.resource_type == ResourceType.INSTANCE
    assert (segment.resource_name, segment.plan_name) == ("web-1", "small")
    assert segment.monthly_price == Decimal("20.00")
    assert segment.hourly_rate == Decimal("0.0297619048")
    assert segment.hourly_rate_units == 297619048
    assert segment.started_at == T0
    assert segment.ended_at is None


def test_close_keeps_the_exact_instant(tenant):
    instance = _instance(tenant)
    instance_segment_open(instance=instance, at=T0)
    instance_segment_close(instance=instance, at=T0 + timedelta(microseconds=1))
    assert Segment.objects.get(resource_id=instance.pk).ended_at == T0 + timedelta(microseconds=1)


def test_a_machine_deleted_the_moment_it_runs_is_billed_one_hour(
    tenant, member, monkeypatch, django_capture_on_commit_callbacks
):
    """Launched, built and deleted within one second (so were the old whole-second segments): one started hour."""
    clock = {"now": datetime(2026, 3, 10, 12, 0, 0, 300000, tzinfo=UTC)}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    HostFactory(boot_seconds=0, stop_seconds=0)
    flavor = FlavorFactory(name="small", monthly_price=Decimal("67.20"))
    with django_capture_on_commit_callbacks(execute=True):
        instance = instance_launch(tenant=tenant, user=member, name="web-1", flavor=flavor, image=ImageFactory())
    instance.refresh_from_db()
    assert instance.state == "running"

    clock["now"] += timedelta(milliseconds=100)
    with django_capture_on_commit_callbacks(execute=True):
        instance_delete(instance=instance, user=member)
    clock["now"] += timedelta(milliseconds=100)
    invoices_refresh(period_start=date(2026, 3, 1))

    invoice = Invoice.objects.get(tenant=tenant, period_start=date(2026, 3, 1))
    assert [(line.resource_name, line.hours, line.amount) for line in invoice.lines.all()] == [
        ("web-1", 1, Decimal("0.10"))
    ]


def test_one_open_segment_per_resource(tenant):
    instance = _instance(tenant)
    instance_segment_open(instance=instance, at=T0)
    instance_segment_open(instance=instance, at=T0)  # a retried call is harmless
    with pytest.raises(Conflict):
        segment_open(
            tenant_id=tenant.pk,
            resource_type=ResourceType.INSTANCE,
            resource_id=instance.pk,
            resource_name="web-1",
            plan_name="small",
            unit_monthly_price=Decimal("5"),
            at=T0,
        )
    assert Segment.objects.filter(resource_id=instance.pk).count() == 1


def test_close_then_reopen_after_resize(tenant):
    instance = _instance(tenant)
    instance_segment_open(instance=instance, at=T0)
    later = datetime(2026, 3, 11, tzinfo=UTC)
    instance_segment_close(instance=instance, at=later)
    instance.flavor = FlavorFactory(name="large", monthly_price=Decimal("40.00"))
    instance_segment_open(instance=instance, at=later)
    first, second = Segment.objects.filter(resource_id=instance.pk).order_by("started_at", "id")
    assert first.ended_at == later and first.plan_name == "small"
    assert second.ended_at is None and second.monthly_price == Decimal("40.00")
    instance_segment_close(instance=instance, at=later)
    instance_segment_close(instance=instance, at=later)  # twice is harmless
    assert not Segment.objects.filter(resource_id=instance.pk).open().exists()


def test_a_new_price_applies_to_segments_opened_after_it(tenant, admin_user):
    from billing.models import Price
    from billing.services import flavor_price_set

    instance = _instance(tenant)
    instance_segment_open(instance=instance, at=T0)
    price = flavor_price_set(flavor=instance.flavor, monthly_price=Decimal("30.00"), actor=admin_user)
    instance.flavor.refresh_from_db()
    assert instance.flavor.monthly_price == Decimal("30.00")  # what the launch form shows
    later = price.effective_from
    instance_segment_close(instance=instance, at=later)
    instance_segment_open(instance=instance, at=later)
    old, new = Segment.objects.filter(resource_id=instance.pk).order_by("started_at", "id")
    assert (old.monthly_price, new.monthly_price) == (Decimal("20.00"), Decimal("30.00"))
    assert Price.objects.filter(flavor=instance.flavor).count() == 1


def test_a_renamed_machine_shows_its_new_name_on_the_draft_but_finalized_invoices_keep_theirs(
    tenant, member, monkeypatch, django_capture_on_commit_callbacks
):
    from billing.services import invoice_finalize
    from compute.services import instance_rename

    clock = {"now": datetime(2026, 3, 10, 12, 0, tzinfo=UTC)}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    HostFactory(boot_seconds=0, stop_seconds=0)
    with django_capture_on_commit_callbacks(execute=True):
        instance = instance_launch(
            tenant=tenant, user=member, name="web-1", flavor=FlavorFactory(name="small"), image=ImageFactory()
        )
    clock["now"] = datetime(2026, 4, 2, tzinfo=UTC)
    invoices_refresh(period_start=date(2026, 3, 1))
    march = invoice_finalize(invoice=Invoice.objects.get(tenant=tenant, period_start=date(2026, 3, 1)))
    invoices_refresh(period_start=date(2026, 4, 1))

    instance_rename(instance=instance, user=member, name="api-1")

    april = Invoice.objects.get(tenant=tenant, period_start=date(2026, 4, 1))
    assert [line.resource_name for line in april.lines.all()] == ["api-1"]  # at once, before the next metering run
    invoices_refresh(period_start=date(2026, 4, 1))
    assert [line.resource_name for line in april.lines.all()] == ["api-1"]  # and after it
    march.refresh_from_db()
    assert [line.resource_name for line in march.lines.all()] == ["web-1"]  # an issued invoice never changes
