"""Billable segments: opened and closed in the same transaction as the resource transitions that cause them."""

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db import connection

from billing.models import (
    Segment,
)
from portal import sql
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
    # The unique index of open segments is the check: an INSERT that would be a second open segment of the resource
    # inserts nothing (and needs no savepoint to leave the caller's transaction usable).
    pk = sql.insert(
        Segment,
        {name: getattr(segment, name) for name in _OPEN_FIELDS},
        returning="id",
        ignore_conflicts=True,
    )
    if pk is None:
        existing = Segment.objects.filter(resource_type=resource_type, resource_id=resource_id).open().first()
        if existing is not None and (existing.plan_name, existing.monthly_price) == (plan_name, segment.monthly_price):
            return existing  # a repeated call (a retried task): the resource is already billed at this price
        raise Conflict(f"{resource_name} already has an open billable segment.", code="segment_open")
    segment.pk = pk
    segment._state.adding = False
    segment._state.db = connection.alias
    return segment


# Every column but the id (which the database gives), so a field added to Segment is written too.
_OPEN_FIELDS = tuple(field.attname for field in Segment._meta.concrete_fields if not field.primary_key)


def segment_close(*, resource_type: str, resource_id: UUID, at: datetime) -> Segment | None:
    """Closes the open segment of a resource, if any (closing twice is harmless: the second finds none)."""
    segment = Segment.objects.select_for_update().filter(resource_type=resource_type, resource_id=resource_id).open()
    segment = segment.first()
    if segment is None:
        return None
    segment.ended_at = max(at, segment.started_at)
    segment.save(update_fields=["ended_at"])
    return segment
