"""Source networks an API token may be used from: parsed once, when the token is created, into canonical CIDRs."""

import ipaddress
import re
from collections.abc import Iterable

from portal.errors import InvalidRequest

MAX_NETWORKS = 50


def parse_networks(value: str | Iterable[str]) -> list[str]:
    """ "203.0.113.0/24, 2001:db8::/32" (commas, spaces or new lines between) or a list of such strings, as a list of
    canonical CIDRs; a bare address is a network of one. Raises InvalidRequest naming every bad entry."""
    items = re.split(r"[\s,]+", value) if isinstance(value, str) else [str(item) for item in value]
    networks, errors = [], []
    for item in (item.strip() for item in items):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError:
            try:
                loose = ipaddress.ip_network(item, strict=False)
            except ValueError:
                errors.append(f"“{item[:60]}” is not an address or a network such as 203.0.113.0/24.")
            else:
                errors.append(f"“{item}” has host bits set; did you mean {loose}?")
            continue
        if str(network) not in networks:
            networks.append(str(network))
    if len(networks) > MAX_NETWORKS:
        errors.append(f"At most {MAX_NETWORKS} networks.")
    if errors:
        raise InvalidRequest(" ".join(errors), code="invalid_networks", details={"allowed_networks": errors})
    return networks
