import uuid
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from billing.models import ResourceType, Segment
from billing.services import instance_segment_close, instance_segment_open, segment_open
from portal.errors import Conflict

T0 = datetime(2026, 3, 10, 12, 0, 0, 500000, tzinfo=UTC)


def _instance(tenant, name="web-1", price="20.00"):
    flavor = SimpleNamespace(name="small", monthly_price=Decimal(price))
    return SimpleNamespace(pk=uuid.uuid4(), tenant=tenant, name=name, flavor=flavor)


def test_open_snapshots_the_price_and_times_to_the_second(tenant):
    instance = _instance(tenant)
    instance_segment_open(instance=instance, at=T0)
    segment = Segment.objects.get(resource_id=instance.pk)
    assert segment.resource_type == ResourceType.INSTANCE
    assert (segment.resource_name, segment.plan_name) == ("web-1", "small")
    assert segment.monthly_price == Decimal("20.00")
    assert segment.hourly_rate == Decimal("0.0297619048")
    assert segment.hourly_rate_units == 297619048
    assert segment.started_at == T0.replace(microsecond=0)
    assert segment.ended_at is None


def test_one_open_segment_per_resource(tenant):
    instance = _instance(tenant)
    instance_segment_open(instance=instance, at=T0)
    with pytest.raises(Conflict):
        segment_open(
            tenant=tenant,
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
    instance.flavor = SimpleNamespace(name="large", monthly_price=Decimal("40.00"))
    instance_segment_open(instance=instance, at=later)
    first, second = Segment.objects.filter(resource_id=instance.pk).order_by("started_at", "id")
    assert first.ended_at == later and first.plan_name == "small"
    assert second.ended_at is None and second.monthly_price == Decimal("40.00")
    instance_segment_close(instance=instance, at=later)
    instance_segment_close(instance=instance, at=later)  # twice is harmless
    assert not Segment.objects.filter(resource_id=instance.pk).open().exists()
