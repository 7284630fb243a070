"""Quotas: the most an organisation may hold at once. Operators change them; the organisation's log says so.

The quota row doubles as the organisation's resource lock: every reservation of one tenant queues on it.
"""

from django.db import transaction

from tenants.models import Quota, Tenant, TenantEvent
from tenants.services.events import tenant_event

QUOTA_FIELDS = ("instances", "vcpus", "ram_mib", "volume_gb", "volumes", "public_ips")


def quota_lock(tenant: Tenant) -> Quota:
    """Locks (creating it with the defaults if missing) the tenant's quota row until the transaction ends.

    Launches, resizes, public address allocations and network changes of one tenant hold it while they check and
    reserve, so two concurrent requests can never both take the last unit of a quota.
    """
    quota = Quota.objects.select_for_update().filter(tenant=tenant).first()
    if quota is None:
        Quota.objects.get_or_create(tenant=tenant, defaults=Quota.defaults())
        quota = Quota.objects.select_for_update().get(tenant=tenant)
    return quota


def tenant_quota_set(*, tenant: Tenant, actor, limits: dict[str, int]) -> Quota:
    """Sets the limits given (the others stay); lowering a limit below what is held stops new resources only."""
    unknown = set(limits) - set(QUOTA_FIELDS)
    if unknown:
        raise ValueError(f"Not quota fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        # The quota row is also the launch lock (quota_lock): a change waits for a launch in progress.
        quota = quota_lock(tenant)
        changes = []
        for name, value in limits.items():
            if getattr(quota, name) != value:
                label = Quota._meta.get_field(name).verbose_name
                changes.append(f"{label} {getattr(quota, name)} → {value}")
                setattr(quota, name, value)
        if changes:
            quota.save(update_fields=[name for name in QUOTA_FIELDS if name in limits])
            tenant_event(
                tenant=tenant, action=TenantEvent.Action.QUOTA_CHANGE, actor=actor, message="; ".join(changes) + "."
            )
    return quota
