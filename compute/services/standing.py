"""Compute's side of an organisation's standing (tenants.lifecycle): a suspended tenant's machines are stopped."""

from compute.models import Instance, InstanceState
from compute.services.instances import instance_stop
from portal.errors import ServiceError
from tenants.models import Tenant


def tenant_machines_stop(*, tenant: Tenant, actor=None) -> int:
    """Requests a graceful stop of every running machine, as `actor` (None: the system); returns how many."""
    stopped = 0
    running = Instance.objects.for_tenant(tenant).filter(state=InstanceState.RUNNING).order_by("pk")
    for instance in running:
        try:
            instance_stop(instance=instance, user=actor)
        except ServiceError:
            continue  # it became busy meanwhile; a suspended tenant cannot start it again anyway
        stopped += 1
    return stopped


def _on_standing_changed(*, tenant: Tenant, previous: str, actor, **_) -> None:
    if tenant.status == Tenant.Status.SUSPENDED:
        tenant_machines_stop(tenant=tenant, actor=actor)


def subscribe() -> None:
    """Called once from ComputeConfig.ready()."""
    from tenants.lifecycle import tenant_standing_changed

    tenant_standing_changed.connect(_on_standing_changed, dispatch_uid="compute.standing")
