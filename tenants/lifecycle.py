"""What tenants announces about an organisation (created, its standing changed), for higher apps to act on.

Tenants is the lowest app: it cannot stop machines (compute) or e-mail billing contacts (billing) itself. Its
services announce each change here, inside their transaction; compute gives a new organisation its default network
and firewall, stops a suspended tenant's machines, and billing records and e-mails standing changes, in that same
transaction.
"""

from django.db import transaction
from django.dispatch import Signal

# Receivers get tenant= (the locked Tenant, already changed), previous= (its old status), actor= (a user, or None
# for the system) and note= (why, as people read it). They must not swallow errors.
tenant_standing_changed = Signal()
# Receivers get tenant= (the new Tenant) and actor= (its first owner).
tenant_created = Signal()


def announce_created(*, tenant, actor) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("A new organisation is announced inside the transaction that creates it.")
    tenant_created.send(sender=type(tenant), tenant=tenant, actor=actor)


def announce_standing_changed(*, tenant, previous: str, actor, note: str) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Standing changes are announced inside the transaction that makes them.")
    tenant_standing_changed.send(sender=type(tenant), tenant=tenant, previous=previous, actor=actor, note=note)
