"""Billing's side of compute's lifecycle facts: the meter that opens, closes and renames billable segments.

Compute announces (compute.lifecycle) inside the transaction of each state change; these receivers run in that
same transaction, so a segment opens exactly when a machine becomes `running`, closes when its deletion is
requested, and is split at a resize — or, if anything fails, neither the state change nor the segment happens.
"""

from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from billing.models import InvoiceLine, ResourceType, Segment
from billing.services.prices import flavor_plan_at, resource_price_current
from billing.services.segments import segment_close, segment_open
from compute import lifecycle
from compute.lifecycle import BillableResource

# Compute's resource types, as billing prices them.
RESOURCE_TYPES = {
    lifecycle.INSTANCE: ResourceType.INSTANCE,
    lifecycle.VOLUME: ResourceType.VOLUME,
    lifecycle.SNAPSHOT: ResourceType.SNAPSHOT,
    lifecycle.IPV4: ResourceType.IPV4,
    lifecycle.TRAFFIC: ResourceType.TRAFFIC,
    lifecycle.IMAGE: ResourceType.IMAGE,
    lifecycle.BACKUP: ResourceType.BACKUP,
}
PERCENT = Decimal("0.01")


def backup_price_at(*, flavor_id, at: datetime) -> tuple[str, Decimal]:
    """The plan and monthly price of a machine's backups at `at`: the backup share (a dated percentage) of the
    monthly price its flavor is billed at then, kept to four places like every unit price."""
    name, flavor_price, _ = flavor_plan_at(flavor_id=flavor_id, at=at)
    share = resource_price_current(resource_type=ResourceType.BACKUP, at=at)
    monthly = (flavor_price * share * PERCENT).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return f"{share.normalize():f} % of {name}", monthly


def backups_name(machine_name: str) -> str:
    """How invoices name a machine's backups."""
    return f"Backups of {machine_name}"


# What a line of each per-unit resource was for, on estimates and invoices.
PLAN_NAMES = {
    ResourceType.VOLUME: "Volume data ({quantity} GiB)",
    ResourceType.SNAPSHOT: "Snapshot data ({quantity} GiB)",
    ResourceType.IMAGE: "Private image ({quantity} GiB)",
    ResourceType.IPV4: "IPv4",
}


def _price(resource: BillableResource, at: datetime) -> tuple[str, Decimal, int]:
    """The plan name, unit monthly price and included outbound GB the resource is billed with from `at`."""
    resource_type = RESOURCE_TYPES[resource.resource_type]
    if resource_type == ResourceType.INSTANCE:
        return flavor_plan_at(flavor_id=resource.flavor_id, at=at)
    if resource_type == ResourceType.BACKUP:
        return (*backup_price_at(flavor_id=resource.flavor_id, at=at), 0)
    plan = PLAN_NAMES[resource_type].format(quantity=resource.quantity)
    return plan, resource_price_current(resource_type=resource_type, at=at), 0


def resource_billing_start(*, resource: BillableResource, at: datetime) -> Segment:
    """Opens the resource's billable segment at its current price (with its flavor's traffic allowance)."""
    plan_name, unit_monthly_price, allowance_gb = _price(resource, at)
    return segment_open(
        tenant_id=resource.tenant_id,
        resource_type=RESOURCE_TYPES[resource.resource_type],
        resource_id=resource.resource_id,
        resource_name=backups_name(resource.name) if resource.resource_type == lifecycle.BACKUP else resource.name,
        plan_name=plan_name,
        unit_monthly_price=unit_monthly_price,
        quantity=resource.quantity,
        traffic_allowance_gb=allowance_gb,
        at=at,
    )


def resource_billing_stop(*, resource_type: str, resource_id: UUID, at: datetime) -> Segment | None:
    return segment_close(resource_type=RESOURCE_TYPES[resource_type], resource_id=resource_id, at=at)


def resource_billing_reprice(*, resource: BillableResource, at: datetime) -> Segment:
    """Ends the old price and starts the new one at the same instant (a resize). A resized machine's backups follow
    its new price too."""
    resource_billing_stop(resource_type=resource.resource_type, resource_id=resource.resource_id, at=at)
    if resource.resource_type == lifecycle.INSTANCE:
        backups = Segment.objects.open().filter(resource_type=ResourceType.BACKUP, resource_id=resource.resource_id)
        if backups.exists():
            resource_billing_reprice(resource=replace(resource, resource_type=lifecycle.BACKUP, quantity=1), at=at)
    return resource_billing_start(resource=resource, at=at)


def resource_billing_rename(*, resource_type: str, resource_id: UUID, name: str) -> int:
    """Live estimates (segments and draft invoice lines) show the new name; finalized invoices keep theirs."""
    if resource_type == lifecycle.INSTANCE:
        # The machine's backups are billed under its name.
        resource_billing_rename(resource_type=lifecycle.BACKUP, resource_id=resource_id, name=backups_name(name))
    resource_type = RESOURCE_TYPES[resource_type]
    Segment.objects.filter(resource_type=resource_type, resource_id=resource_id).update(resource_name=name)
    return InvoiceLine.objects.filter(
        resource_type=resource_type, resource_id=resource_id, invoice__status="draft"
    ).update(resource_name=name)


def _on_billable(*, fact: BillableResource, at: datetime, **_) -> None:
    resource_billing_start(resource=fact, at=at)


def _on_repriced(*, fact: BillableResource, at: datetime, **_) -> None:
    resource_billing_reprice(resource=fact, at=at)


def _on_ended(*, resource_type: str, resource_id: UUID, at: datetime, **_) -> None:
    resource_billing_stop(resource_type=resource_type, resource_id=resource_id, at=at)


def _on_renamed(*, resource_type: str, resource_id: UUID, name: str, **_) -> None:
    resource_billing_rename(resource_type=resource_type, resource_id=resource_id, name=name)


def subscribe() -> None:
    """Called once from BillingConfig.ready()."""
    lifecycle.resource_billable.connect(_on_billable, dispatch_uid="billing.billable")
    lifecycle.resource_repriced.connect(_on_repriced, dispatch_uid="billing.repriced")
    lifecycle.resource_ended.connect(_on_ended, dispatch_uid="billing.ended")
    lifecycle.resource_renamed.connect(_on_renamed, dispatch_uid="billing.renamed")
