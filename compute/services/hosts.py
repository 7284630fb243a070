"""Operators' changes to hosts: take them in and out of scheduling, and evacuate them before maintenance.

Enabled hosts get new machines; a disabled host gets none and the reconciler leaves it alone; a draining host
keeps what it has but gets nothing new. Evacuating drains the host and moves every machine on it to other hosts
of its region (compute/services/migration.py), each with events its organisation reads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction

from compute.models import Host, Instance, Region
from compute.services.migration import instance_migrate
from portal.errors import Conflict, ServiceError

logger = logging.getLogger(__name__)


def region_make_default(*, region: Region, actor) -> Region:
    """The region launches go to when none is named (the launch form preselects it)."""
    with transaction.atomic():
        # Lock every region (in name order) so two operators choosing different defaults cannot both win.
        regions = list(Region.objects.select_for_update().order_by("name"))
        locked = next(r for r in regions if r.pk == region.pk)
        if locked.is_default:
            raise Conflict(f"{locked} already is the default region.", code="region_unchanged")
        Region.objects.filter(is_default=True).update(is_default=False)
        locked.is_default = True
        locked.save(update_fields=["is_default"])
    logger.info("Region %s made the default by %s.", locked.name, actor)
    return locked


def _set_flags(*, host: Host, actor, refusal: str | None, **flags) -> Host:
    with transaction.atomic():
        locked = Host.objects.select_for_update().get(pk=host.pk)
        if all(getattr(locked, name) == value for name, value in flags.items()):
            raise Conflict(refusal.format(host=locked), code="host_unchanged")
        for name, value in flags.items():
            setattr(locked, name, value)
        locked.save(update_fields=list(flags))
    logger.info("Host %s: %s by %s.", locked.name, ", ".join(f"{k}={v}" for k, v in flags.items()), actor)
    return locked


def host_enable(*, host: Host, actor) -> Host:
    """Back into scheduling: enabled and no longer draining."""
    return _set_flags(
        host=host, actor=actor, refusal="{host} already takes new machines.", enabled=True, draining=False
    )


def host_disable(*, host: Host, actor) -> Host:
    """Out of scheduling and of the reconciler's host checks (its machines are left as they are)."""
    return _set_flags(host=host, actor=actor, refusal="{host} is already disabled.", enabled=False)


def host_drain(*, host: Host, actor) -> Host:
    """No new machines; those on it stay (evacuate to move them)."""
    return _set_flags(host=host, actor=actor, refusal="{host} is already draining.", draining=True)


@dataclass
class Evacuation:
    """What an evacuation asked for: the machines that are moving, and those left behind with the reason."""

    host: Host
    moving: list[Instance] = field(default_factory=list)
    left: list[tuple[Instance, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.host}: {len(self.moving)} machine{'s' if len(self.moving) != 1 else ''} moving"
        if self.left:
            text += "; left behind: " + "; ".join(f"{instance.name} ({reason})" for instance, reason in self.left)
        return text + "."


def host_evacuate(*, host: Host, actor) -> Evacuation:
    """Drains the host and moves every machine on it to other hosts of its region (cold migration). Machines busy
    with other work, failed ones, and those no other host has room for stay, each with the reason."""
    if not host.draining:
        host = host_drain(host=host, actor=actor)
    evacuation = Evacuation(host=host)
    for instance in Instance.objects.filter(host=host).live().order_by("name", "pk"):
        try:
            moving = instance_migrate(instance=instance, user=actor, reason="Host maintenance.")
        except ServiceError as error:
            evacuation.left.append((instance, error.message))
        else:
            evacuation.moving.append(moving)
    logger.info("Evacuation by %s: %s", actor, evacuation.summary())
    return evacuation
