"""Quotas: the most an organisation may hold at once. Operators change them; the organisation's log says so."""

from django.db import transaction

from tenants.models import Quota, Tenant, TenantEvent
from tenants.services.events import tenant_event

QUOTA_FIELDS = ("instances", "vcpus", "ram_mib", "volume_gb", "public_ips")


def tenant_quota_set(*, tenant: Tenant, actor, limits: dict[str, int]) -> Quota:
    """Sets the limits given (the others stay); lowering a limit below what is held stops new resources only."""
    unknown = set(limits) - set(QUOTA_FIELDS)
    if unknown:
        raise ValueError(f"Not quota fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        # The quota row is also the launch lock (compute.services): a change waits for a launch in progress.
        quota, _ = Quota.objects.select_for_update().get_or_create(tenant=tenant, defaults=Quota.defaults())
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
