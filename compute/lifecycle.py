"""What compute announces about the resources it runs, for higher apps (billing) to act on.

Compute never imports billing: dependencies run one way, tenants ← compute ← billing. Instead, every service that
makes a resource billable, changes what it costs, renames it or ends it announces that fact here, *inside the
transaction of the state change*. Subscribers (billing's meter) run synchronously in that same transaction, so a
segment opens or closes exactly when the state changes, or neither happens.

Facts carry plain values (ids, names, sizes), never a higher app's objects. The resource types are compute's
vocabulary; billing maps each to its price.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.dispatch import Signal

INSTANCE = "instance"
VOLUME = "volume"
SNAPSHOT = "snapshot"
IPV4 = "ipv4"
IMAGE = "image"  # a private image: per GiB-month
BACKUP = "backup"  # a machine's backups (resource id: the machine's): a share of its flavor's price
TRAFFIC = "traffic"  # outbound traffic: never a segment, but it has a price (compute.prices.resource_price)


@dataclass(frozen=True)
class BillableResource:
    """A resource as billing sees it: whose, what, called what, and what its price depends on."""

    tenant_id: UUID
    resource_type: str
    resource_id: UUID
    name: str
    flavor_id: UUID | None = None  # instances: the size decides the price
    quantity: int = 1  # volumes and snapshots: GiB


# Receivers get `fact=`, a BillableResource (or for `resource_ended`/`resource_renamed` the type, id and name),
# and `at=`, the instant of the change. They must not swallow errors: a failure rolls the state change back.
resource_billable = Signal()  # provisioning succeeded: billing starts now
resource_repriced = (
    Signal()
)  # a resize (or a volume extended) changed what it costs: the old price ends and the new one starts at `at`
resource_ended = Signal()  # delete requested: billing stops now
resource_renamed = Signal()  # the display name changed: live estimates show the new one


def _announce(signal: Signal, **facts) -> None:
    if not transaction.get_connection().in_atomic_block:
        # Outside a transaction the fact and the state change could part ways; that is a bug in the caller.
        raise RuntimeError("Lifecycle facts are announced inside the transaction of the state change.")
    signal.send(sender=BillableResource, **facts)


def announce_billable(*, resource: BillableResource, at: datetime) -> None:
    _announce(resource_billable, fact=resource, at=at)


def announce_repriced(*, resource: BillableResource, at: datetime) -> None:
    _announce(resource_repriced, fact=resource, at=at)


def announce_ended(*, resource_type: str, resource_id: UUID, at: datetime) -> None:
    _announce(resource_ended, resource_type=resource_type, resource_id=resource_id, at=at)


def announce_renamed(*, resource_type: str, resource_id: UUID, name: str) -> None:
    _announce(resource_renamed, resource_type=resource_type, resource_id=resource_id, name=name)
