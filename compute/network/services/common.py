"""Helpers the networking services share: names, and handing host work to the workers once a change commits."""

from __future__ import annotations

import logging
import re

from django.db import transaction
from kombu.exceptions import OperationalError

from portal.errors import InvalidRequest

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$")


def clean_name(name: str, *, what: str) -> str:
    """A network's or firewall's name: 1 to 63 letters, digits, spaces, dots, hyphens and underscores."""
    name = " ".join((name or "").split())
    if not name:
        raise InvalidRequest(f"Give the {what} a name.", code="invalid_name", details={"field": "name"})
    if not NAME_RE.match(name):
        raise InvalidRequest(
            "Use 1 to 63 letters, digits, spaces, dots, hyphens and underscores, starting with a letter or digit.",
            code="invalid_name",
            details={"field": "name"},
        )
    return name


def owned_choice(items, *, model, tenant_id, most: int, field: str, noun: str) -> list:
    """The tenant's `items` as chosen (each once, in order), or an InvalidRequest naming `field`: at most `most` of
    them, each a `model` of the tenant (another tenant's reads as not the caller's, never as "exists")."""
    chosen = list({item.pk: item for item in items}.values())
    if len(chosen) > most:
        raise InvalidRequest(
            f"A machine has at most {most} {noun}s.", code=f"too_many_{noun}s", details={"field": field}
        )
    if any(not isinstance(item, model) or item.tenant_id != tenant_id for item in chosen):
        raise InvalidRequest(
            f"One of the {noun}s is not one of yours.", code=f"invalid_{noun}", details={"field": field}
        )
    return chosen


def after_commit(task_name: str, **kwargs) -> None:
    """Sends a host-sync task once the transaction commits. A broker that is down only delays the host: the
    periodic sync (network.tasks.sync_hosts) states every host's whole networking again."""

    def send() -> None:
        from compute.network import tasks

        try:
            getattr(tasks, task_name).delay(**kwargs)
        except (OperationalError, OSError):
            logger.exception("Could not enqueue %s(%s); the periodic host sync will catch up.", task_name, kwargs)

    transaction.on_commit(send)
