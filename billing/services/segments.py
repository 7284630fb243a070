"""Billable segments: opened and closed in the same transaction as the resource transitions that cause them."""

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db import IntegrityError, transaction

from billing.models import (
    ResourceType,
    Segment,
)
from portal.errors import Conflict

# --- segments ----------------------------------------------------------------------------------------------------


def segment_open(
    *,
    tenant,
    resource_type: str,
    resource_id: UUID,
    resource_name: str,
    plan_name: str,
    unit_monthly_price: Decimal,
    quantity: int = 1,
    at: datetime,
) -> Segment:
    """Opens the billable segment of a resource.

    Opening the same segment again is harmless; a second open segment at another price is refused (close first).
    """
    segment = Segment(
        tenant=tenant,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_name=resource_name,
        plan_name=plan_name,
        started_at=at,
    )
    segment.set_price(unit_monthly_price=unit_monthly_price, quantity=quantity)
    try:
        # A savepoint keeps the caller's transaction usable if the unique constraint refuses the row.
        with transaction.atomic():
            segment.save()
    except IntegrityError:
        existing = Segment.objects.filter(resource_type=resource_type, resource_id=resource_id).open().first()
        if existing is not None and (existing.plan_name, existing.monthly_price) == (plan_name, segment.monthly_price):
            return existing  # a repeated call (a retried task): the resource is already billed at this price
        raise Conflict(f"{resource_name} already has an open billable segment.", code="segment_open") from None
    return segment


def segment_close(*, resource_type: str, resource_id: UUID, at: datetime) -> Segment | None:
    """Closes the open segment of a resource, if any (closing twice is harmless: the second finds none)."""
    segment = Segment.objects.select_for_update().filter(resource_type=resource_type, resource_id=resource_id).open()
    segment = segment.first()
    if segment is None:
        return None
    segment.ended_at = max(at, segment.started_at)
    segment.save(update_fields=["ended_at"])
    return segment


def instance_segment_open(*, instance, at) -> None:
    """Opens the billable segment of an instance that became billable (provisioned) or changed price (resized)."""
    from billing.prices import flavor_price_current

    flavor = instance.flavor
    segment_open(
        tenant=instance.tenant,
        resource_type=ResourceType.INSTANCE,
        resource_id=instance.pk,
        resource_name=instance.name,
        plan_name=flavor.name,
        unit_monthly_price=flavor_price_current(flavor=flavor, at=at),
        at=at,
    )


def instance_segment_close(*, instance, at) -> None:
    """Closes the open billable segment of an instance (delete requested, or before a resize re-opens it)."""
    segment_close(resource_type=ResourceType.INSTANCE, resource_id=instance.pk, at=at)


def volume_segment_open(*, volume, at: datetime) -> Segment:
    """Opens the segment of a volume (billed per GiB-month); a resize is close + open like a machine's."""
    from billing.prices import resource_price_current

    return segment_open(
        tenant=volume.tenant,
        resource_type=ResourceType.VOLUME,
        resource_id=volume.pk,
        resource_name=volume.name,
        plan_name=f"{volume.size_gib} GiB",
        unit_monthly_price=resource_price_current(resource_type=ResourceType.VOLUME, at=at),
        quantity=volume.size_gib,
        at=at,
    )


def volume_segment_close(*, volume, at: datetime) -> None:
    segment_close(resource_type=ResourceType.VOLUME, resource_id=volume.pk, at=at)


def ipv4_segment_open(*, address, at: datetime) -> Segment:
    """Opens the segment of a public IPv4 address allocated to the tenant."""
    from billing.prices import resource_price_current

    return segment_open(
        tenant=address.tenant,
        resource_type=ResourceType.IPV4,
        resource_id=address.pk,
        resource_name=str(address),
        plan_name="IPv4",
        unit_monthly_price=resource_price_current(resource_type=ResourceType.IPV4, at=at),
        at=at,
    )


def ipv4_segment_close(*, address, at: datetime) -> None:
    segment_close(resource_type=ResourceType.IPV4, resource_id=address.pk, at=at)
