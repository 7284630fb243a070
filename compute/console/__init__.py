"""Reading an instance's serial console (read-only) through its host's driver: the detail page and the API show it."""

from __future__ import annotations

from compute.drivers import driver_for
from compute.drivers.base import DomainNotFound
from compute.models import Instance

MAX_CONSOLE_LINES = 1000


def instance_console_output(*, instance: Instance, lines: int = 100) -> str:
    """The last `lines` lines (1 to 1000) of the instance's serial console; "" while it has no machine to read.

    Driver errors other than a missing domain propagate (TransientDriverError when the host is unreachable), so
    callers can say why the console is unavailable instead of showing an empty one.
    """
    if instance.host_id is None or instance.is_deleted:
        return ""
    lines = min(max(int(lines), 1), MAX_CONSOLE_LINES)
    try:
        return driver_for(instance.host).console_output(str(instance.pk), lines=lines)
    except DomainNotFound:
        return ""  # not built yet, or already destroyed
