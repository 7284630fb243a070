"""Billable segments: opened and closed in the same transaction as the resource transitions that cause them."""

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db import IntegrityError, transaction

from billing.models import (
    Segment,
)
from portal.errors import Conflict

# --- segments ----------------------------------------------------------------------------------------------------


def segment_open(
    *,
    tenant_id: UUID,
    resource_type: str,
    resource_id: UUID,
    resource_name: str,
    plan_name: str,
    unit_monthly_price: Decimal,
    quantity: int = 1,
    traffic_allowance_gb: int = 0,
    at: datetime,
) -> Segment:
    """Opens the billable segment of a resource.

    Opening the same segment again is harmless; a second open segment at another price is refused (close first).
    """
    segment = Segment(
        tenant_id=tenant_id,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_name=resource_name,
        plan_name=plan_name,
        traffic_allowance_gb=traffic_allowance_gb,
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
