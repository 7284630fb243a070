"""The tenant's quota row doubles as its resource lock: every reservation of one tenant queues on it."""

from tenants.models import Quota, Tenant


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
