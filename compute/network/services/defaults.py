"""Every organisation has a default private network and a default firewall.

They are made when the organisation is created (tenants announces it: tenants.lifecycle.tenant_created), by a data
migration for organisations that existed before networking, and, for any made another way (operators in the admin),
at their first launch. Making them twice is harmless: the services find the existing ones.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from compute.models import Region
from compute.network import addressing
from compute.network.models import Firewall, Network, NetworkEventAction
from compute.network.rulesets import DEFAULT_RULES
from compute.network.services.events import network_event
from compute.network.services.firewalls import rules_store
from tenants import lifecycle as tenant_lifecycle
from tenants.models import Tenant
from tenants.services.quotas import quota_lock

DEFAULT_NAME = "default"
# Two new organisations may pick the same free range at the same instant; the unique constraint makes one retry.
RANGE_ATTEMPTS = 5


def _free_name(model, tenant: Tenant, wanted: str = DEFAULT_NAME) -> str:
    taken = {name.lower() for name in model.objects.for_tenant(tenant).values_list(Lower("name"), flat=True)}
    candidate, number = wanted, 1
    while candidate in taken:
        number += 1
        candidate = f"{wanted}-{number}"
    return candidate


def _default_network(tenant: Tenant, actor, region: Region) -> Network:
    # "default" in the default region, "default-<region>" in the others.
    wanted = DEFAULT_NAME if region.is_default else f"{DEFAULT_NAME}-{region.name}"
    name = _free_name(Network, tenant, wanted)
    for _attempt in range(RANGE_ATTEMPTS):
        taken = set(Network.objects.values_list("cidr", flat=True))  # every organisation's: ranges must not repeat
        cidr = next(addressing.default_cidr_candidates(taken))
        try:
            with transaction.atomic():
                network = Network.objects.create(
                    tenant=tenant, region=region, name=name, cidr=cidr, is_default=True, created_by=actor
                )
        except IntegrityError:
            continue
        network_event(
            tenant_id=tenant.pk,
            action=NetworkEventAction.NETWORK_CREATE,
            subject=f"{name} ({cidr})",
            resource_id=network.pk,
            message="The default network: machines join it unless you pick others.",
            actor=None,  # Hangar made it, not the person: it stays out of their activity log
        )
        return network
    raise RuntimeError("No free range for a default network after several attempts.")


def _default_firewall(tenant: Tenant, actor) -> Firewall:
    firewall = Firewall.objects.create(
        tenant=tenant,
        name=_free_name(Firewall, tenant),
        description="SSH and ping in, everything out.",
        is_default=True,
        created_by=actor,
    )
    rules_store(firewall, list(DEFAULT_RULES))
    network_event(
        tenant_id=tenant.pk,
        action=NetworkEventAction.FIREWALL_CREATE,
        subject=firewall.name,
        resource_id=firewall.pk,
        message="The default firewall: SSH and ping in, everything out.",
        actor=None,
    )
    return firewall


def network_defaults_ensure(*, tenant: Tenant, actor=None, region: Region | None = None) -> tuple[Network, Firewall]:
    """The tenant's default network in `region` (the default region if None) and its default firewall, made now if
    it has none."""
    region = region or Region.objects.default_or_create()
    with transaction.atomic():
        quota_lock(tenant)  # one tenant's requests queue here, so two cannot both make the defaults
        network = Network.objects.for_tenant(tenant).filter(is_default=True, region=region).first()
        network = network or _default_network(tenant, actor, region)
        firewall = Firewall.objects.for_tenant(tenant).filter(is_default=True).first() or _default_firewall(
            tenant, actor
        )
    return network, firewall


# The default network and firewall of each (tenant, region) a launch in this process has used: a launch needs
# their ids and the network's range, which never change (neither can be deleted, nor lose its default mark).
_KNOWN_DEFAULTS: dict = {}
KNOWN_DEFAULTS_MAX = 10_000


def network_defaults_known(*, tenant: Tenant, actor=None, region: Region) -> tuple[Network, Firewall]:
    """network_defaults_ensure(), answered from memory for a tenant and region seen before (no query)."""
    key = (tenant.pk, region.pk)
    known = _KNOWN_DEFAULTS.get(key)
    if known is not None:
        return known
    if len(_KNOWN_DEFAULTS) >= KNOWN_DEFAULTS_MAX:
        _KNOWN_DEFAULTS.clear()
    network = Network.objects.for_tenant(tenant).filter(is_default=True, region=region).first()
    firewall = Firewall.objects.for_tenant(tenant).filter(is_default=True).first()
    if network is not None and firewall is not None:
        _KNOWN_DEFAULTS[key] = (network, firewall)
        return network, firewall
    # Made now: not remembered (a launch that fails later takes them back); the next launch finds them.
    return network_defaults_ensure(tenant=tenant, actor=actor, region=region)


def _on_tenant_created(*, tenant, actor, **_) -> None:
    network_defaults_ensure(tenant=tenant, actor=actor)


def subscribe() -> None:
    """Called once from NetworkConfig.ready()."""
    tenant_lifecycle.tenant_created.connect(_on_tenant_created, dispatch_uid="network.tenant_created")
