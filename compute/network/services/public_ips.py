"""Public IPv4 addresses: allocate from the operators' pools, assign to a machine, move, unassign, release.

Allocation is unique by constraint (`publicip_unique_held_address`): an allocation picks a free address at random
(so concurrent requests rarely pick the same one) and inserts it under a savepoint; when a concurrent request won
that address, the insert fails, the free addresses are read again and another is tried. The tenant's quota row is
locked meanwhile, so the `public_ips` quota holds under concurrency too. An address is billed per started hour from
allocation to release, assigned or not (compute.lifecycle's IPV4 facts).

Assignments change the host's 1:1 NAT: every change sends the affected hosts' whole mapping set to their drivers
once the transaction commits (network.tasks.sync_host_nat).
"""

from __future__ import annotations

import random

from django.db import IntegrityError, transaction
from django.utils import timezone

from compute import lifecycle
from compute.models import Instance, InstanceState, Region
from compute.network.models import NetworkEventAction, Port, PublicIP, PublicIPPool, PublicIPState
from compute.network.services.common import after_commit
from compute.network.services.events import network_event
from compute.rules import quota_refusal, standing_refusal
from portal.errors import Conflict, InvalidRequest, Unprocessable
from tenants.labels import labels_checked
from tenants.models import Tenant
from tenants.services.quotas import quota_lock

ALLOCATION_ATTEMPTS = 25
# States in which a machine may get (or keep) a public address: it exists, or is about to.
ASSIGNABLE_STATES = frozenset(InstanceState.values) - {InstanceState.DELETING, InstanceState.DELETED}


def _sync_nat(*hosts) -> None:
    for host_id in sorted({str(host_id) for host_id in hosts if host_id is not None}):
        after_commit("sync_host_nat", host_id=host_id)


def _free_addresses(region: Region) -> list[tuple[PublicIPPool, str]]:
    held = set(PublicIP.objects.held().values_list("address", flat=True))  # every tenant's: addresses are global
    return [
        (pool, address)
        for pool in PublicIPPool.objects.filter(active=True, region=region).order_by("name", "pk")
        for address in pool.addresses()
        if address not in held
    ]


def _take_address(*, tenant: Tenant, user, now, region: Region, labels: dict) -> PublicIP:
    for _attempt in range(ALLOCATION_ATTEMPTS):
        free = _free_addresses(region)
        if not free:
            raise Unprocessable(
                "No public IPv4 address is free right now; try again later or contact support.",
                code="pool_exhausted",
                details={"region": region.name},
            )
        pool, address = random.choice(free)
        try:
            with transaction.atomic():
                return PublicIP.objects.create(
                    tenant=tenant, pool=pool, address=address, created_by=user, allocated_at=now, labels=labels
                )
        except IntegrityError:
            continue  # a concurrent request took it first
    raise Conflict(
        "Many addresses are being allocated at this moment; try again in a few seconds.", code="allocation_contended"
    )


def _check_quota(tenant: Tenant) -> None:
    quota = quota_lock(tenant)
    held = PublicIP.objects.for_tenant(tenant).held().count()
    refusal = quota_refusal(
        usage={"public_ips": {"used": held, "limit": quota.public_ips}}, requested={"public_ips": 1}
    )
    if refusal is not None:
        raise refusal


def public_ip_allocate(
    *,
    tenant: Tenant,
    user,
    instance: Instance | None = None,
    region: Region | None = None,
    labels: dict | None = None,
) -> PublicIP:
    """Takes a free address from the pools of a region for the tenant (billed from now); assigns it to `instance`
    if given. The region is the machine's, else `region`, else the default one."""
    labels = labels_checked(labels)
    standing = Tenant.objects.get(pk=tenant.pk)  # as it is now, not as the caller loaded it
    if (refusal := standing_refusal(tenant=standing, what="no public addresses can be allocated")) is not None:
        raise refusal
    if instance is not None:
        _check_instance(instance, tenant_id=tenant.pk)
        region = instance.region
    elif region is not None and not isinstance(region, Region):
        raise InvalidRequest(
            "That region does not exist; pick another.", code="invalid_region", details={"field": "region"}
        )
    region = region or Region.objects.default_or_create()
    with transaction.atomic():
        locked_instance = _lock_instance(instance) if instance is not None else None
        _check_quota(tenant)
        now = timezone.now()
        public_ip = _take_address(tenant=tenant, user=user, now=now, region=region, labels=labels)
        lifecycle.announce_billable(resource=public_ip.billable(), at=now)
        network_event(
            tenant_id=tenant.pk,
            action=NetworkEventAction.IP_ALLOCATE,
            subject=public_ip.address,
            resource_id=public_ip.pk,
            actor=user,
        )
        if locked_instance is not None:
            public_ip = _assign(public_ip, locked_instance, user=user, now=now)
    return public_ip


def _check_instance(instance: Instance, *, tenant_id) -> None:
    if not isinstance(instance, Instance) or instance.tenant_id != tenant_id:
        raise InvalidRequest(
            "That machine is not one of yours.", code="invalid_instance", details={"field": "instance"}
        )
    if instance.state not in ASSIGNABLE_STATES:
        raise Conflict(
            f"{instance.name} is {instance.get_state_display().lower()}; it cannot get a public address.",
            code="instance_busy",
            details={"state": instance.state},
        )


def _lock_instance(instance: Instance) -> Instance:
    # Machines are locked before addresses, everywhere (the delete of a machine detaches its address too).
    return Instance.objects.select_for_update().get(pk=instance.pk)


def _assign(locked: PublicIP, instance: Instance, *, user, now) -> PublicIP:
    """`instance` is locked by the caller."""
    _check_instance(instance, tenant_id=locked.tenant_id)
    if locked.instance_id == instance.pk:
        return locked
    if instance.region_id is not None and locked.pool.region_id != instance.region_id:
        raise Conflict(
            f"{locked.address} reaches machines in {locked.pool.region.label}; {instance.name} runs in "
            f"{instance.region.label}.",
            code="ip_in_other_region",
            details={"field": "instance"},
        )
    current = PublicIP.objects.filter(instance=instance, state=PublicIPState.ASSIGNED).first()
    if current is not None:
        raise Conflict(
            f"{instance.name} already has the public address {current.address}; unassign it first.",
            code="instance_has_public_ip",
            details={"field": "instance"},
        )
    if not Port.objects.filter(instance=instance).exists():
        raise Conflict(f"{instance.name} has no private address to map to.", code="instance_without_network")
    previous = locked.instance
    locked.state, locked.instance, locked.assigned_at = PublicIPState.ASSIGNED, instance, now
    try:
        with transaction.atomic():
            locked.save(update_fields=["state", "instance", "assigned_at"])
    except IntegrityError:
        raise Conflict(
            f"{instance.name} got another public address at the same moment; unassign it first.",
            code="instance_has_public_ip",
        ) from None
    message = f"to {instance.name}" + (f" (moved from {previous.name})" if previous is not None else "")
    network_event(
        tenant_id=locked.tenant_id,
        action=NetworkEventAction.IP_ASSIGN,
        subject=locked.address,
        resource_id=locked.pk,
        actor=user,
        message=message,
    )
    _sync_nat(instance.host_id, previous.host_id if previous is not None else None)
    return locked


def _lock(public_ip: PublicIP) -> PublicIP:
    return (
        PublicIP.objects.select_for_update(of=("self",)).select_related("instance", "pool__region").get(pk=public_ip.pk)
    )


def _refuse_released(locked: PublicIP) -> None:
    if not locked.is_held:
        raise Conflict(f"{locked.address} has been released.", code="ip_released")


def public_ip_assign(*, public_ip: PublicIP, instance: Instance, user) -> PublicIP:
    """Maps the address onto the machine's primary private address; from another machine, this moves it."""
    with transaction.atomic():
        locked_instance = _lock_instance(instance)
        locked = _lock(public_ip)
        _refuse_released(locked)
        return _assign(locked, locked_instance, user=user, now=timezone.now())


def _unassign(locked: PublicIP, *, user, message: str = "") -> None:
    previous = locked.instance
    locked.state, locked.instance, locked.assigned_at = PublicIPState.ALLOCATED, None, None
    locked.save(update_fields=["state", "instance", "assigned_at"])
    network_event(
        tenant_id=locked.tenant_id,
        action=NetworkEventAction.IP_UNASSIGN,
        subject=locked.address,
        resource_id=locked.pk,
        actor=user,
        message=message or f"from {previous.name}",
    )
    _sync_nat(previous.host_id)


def public_ip_unassign(*, public_ip: PublicIP, user) -> PublicIP:
    """The address stays the tenant's (and billed) without a machine."""
    with transaction.atomic():
        locked = _lock(public_ip)
        _refuse_released(locked)
        if locked.state != PublicIPState.ASSIGNED:
            raise Conflict(f"{locked.address} is not assigned to a machine.", code="ip_not_assigned")
        _unassign(locked, user=user)
    return locked


def public_ip_release(*, public_ip: PublicIP, user) -> PublicIP:
    """Gives the address back to the pool; billing stops now. An assigned address is unmapped first."""
    with transaction.atomic():
        locked = _lock(public_ip)
        _refuse_released(locked)
        now = timezone.now()
        previous = locked.instance
        locked.state, locked.instance, locked.assigned_at, locked.released_at = (
            PublicIPState.RELEASED,
            None,
            None,
            now,
        )
        locked.save(update_fields=["state", "instance", "assigned_at", "released_at"])
        lifecycle.announce_ended(resource_type=lifecycle.IPV4, resource_id=locked.pk, at=now)
        network_event(
            tenant_id=locked.tenant_id,
            action=NetworkEventAction.IP_RELEASE,
            subject=locked.address,
            resource_id=locked.pk,
            actor=user,
            message=f"was assigned to {previous.name}" if previous is not None else "",
        )
        if previous is not None:
            _sync_nat(previous.host_id)
    return locked


def instance_public_ip_detach(*, instance: Instance, user) -> PublicIP | None:
    """The machine is being deleted: its address stays the tenant's, unassigned (and still billed until released)."""
    locked = PublicIP.objects.select_for_update().filter(instance=instance, state=PublicIPState.ASSIGNED).first()
    if locked is None:
        return None
    locked.instance = instance  # the same row: its name is in the event
    _unassign(locked, user=user, message=f"{instance.name} is being deleted; the address stays yours")
    return locked
