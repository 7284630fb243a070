"""Address arithmetic, written once: private ranges, the gateway, usable addresses, MACs and public pools.

Pure functions (no database): the services, the forms, the serializers and the admin all call these, so a range
the form accepts is one the service accepts, and a refusal reads the same everywhere.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Iterator

from portal.errors import InvalidRequest

PRIVATE_RANGES = tuple(ipaddress.IPv4Network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# /16 holds 65 534 machines; /28 is the smallest that leaves room for more than a handful (13 after the gateway).
PRIVATE_PREFIX_MIN, PRIVATE_PREFIX_MAX = 16, 28
# Default networks are carved out of 10.0.0.0/8 as /24s: 256 addresses each, 65 536 of them.
DEFAULT_SUPERNET = ipaddress.IPv4Network("10.0.0.0/8")
DEFAULT_PREFIX = 24
# Pools larger than a /16 would make every allocation enumerate too many candidates.
POOL_PREFIX_MIN = 16
MAC_PREFIX = "52:54:00"  # the locally administered prefix QEMU/KVM guests use


def _cidr_error(message: str, field: str = "cidr") -> InvalidRequest:
    return InvalidRequest(message, code="invalid_cidr", details={"field": field})


def parse_private_cidr(text: str) -> ipaddress.IPv4Network:
    """A private network's range: an RFC 1918 IPv4 CIDR from /16 to /28, given as its network address."""
    text = (text or "").strip()
    if not text:
        raise _cidr_error("Give the network's range, e.g. 10.20.0.0/24.")
    if "/" not in text:
        raise _cidr_error(f"{text} has no prefix length: write it as a range such as {text}/24.")
    try:
        network = ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise _cidr_error(f"{text} is not an IPv4 range such as 10.20.0.0/24.") from None
    if str(network) != text:
        raise _cidr_error(f"{text} is not the start of its range: did you mean {network}?")
    if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
        raise _cidr_error(
            f"{text} is not a private range: use one inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (RFC 1918)."
        )
    if not PRIVATE_PREFIX_MIN <= network.prefixlen <= PRIVATE_PREFIX_MAX:
        raise _cidr_error(
            f"A network is between /{PRIVATE_PREFIX_MIN} (65 534 addresses) and /{PRIVATE_PREFIX_MAX} (14 addresses); "
            f"{text} is /{network.prefixlen}."
        )
    return network


def gateway_of(network: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """The first usable address: the host's own address on the network (DHCP server), never given to a machine."""
    return network.network_address + 1


def usable_addresses(network: ipaddress.IPv4Network) -> Iterator[ipaddress.IPv4Address]:
    """Addresses a machine may get, lowest first: every host address but the gateway."""
    gateway = gateway_of(network)
    return (address for address in network.hosts() if address != gateway)


def address_value(text: str) -> int:
    """A dotted IPv4 address as its integer: what ipaddress.IPv4Address gives, at a tenth of the cost (a launch reads
    every address of its networks)."""
    return int.from_bytes(socket.inet_aton(text), "big")


def usable_bounds(network: ipaddress.IPv4Network) -> tuple[str, str, str]:
    """The first and last host addresses and the gateway, between which usable_addresses() lie."""
    first, last = network.network_address + 1, network.broadcast_address - 1
    if network.prefixlen >= 31:  # no network or broadcast address to leave out
        first, last = network.network_address, network.broadcast_address
    return str(first), str(last), str(gateway_of(network))


def first_free_address(network: ipaddress.IPv4Network, used: set[int]) -> str | None:
    """The lowest usable address (usable_addresses()) whose integer value is not in `used`, or None: counted in
    integers, so a network with thousands of machines costs a set lookup per taken address, not an object each."""
    first, last, gateway = (address_value(address) for address in usable_bounds(network))
    for candidate in range(first, last + 1):
        if candidate != gateway and candidate not in used:
            return str(ipaddress.IPv4Address(candidate))
    return None


def capacity_of(network: ipaddress.IPv4Network) -> int:
    """How many machines fit: host addresses minus the gateway."""
    return max(network.num_addresses - 3, 0)


def overlapping(network: ipaddress.IPv4Network, others: list[tuple[str, str]]) -> str | None:
    """The name of the first of `others` ((name, cidr) pairs) whose range overlaps `network`, or None."""
    for name, cidr in others:
        if network.overlaps(ipaddress.IPv4Network(cidr)):
            return f"{name} ({cidr})"
    return None


def default_cidr_candidates(taken: set[str]) -> Iterator[str]:
    """/24s of 10.0.0.0/8 that no network in `taken` (CIDR strings) overlaps, lowest first.

    Default networks of different organisations never share a range, so a host that carries several of them (and
    the public addresses mapped onto them) can always tell their machines apart.
    """
    blocked: set[int] = set()
    for cidr in taken:
        network = ipaddress.IPv4Network(cidr)
        if not network.overlaps(DEFAULT_SUPERNET):
            continue
        if network.prefixlen <= DEFAULT_PREFIX:
            for subnet in network.subnets(new_prefix=DEFAULT_PREFIX):
                blocked.add(int(subnet.network_address) >> 8)
        else:
            blocked.add(int(network.network_address) >> 8)
    for index in range(1, 2**16):  # 10.0.0.0/24 is left out: it is the range people most often pick themselves
        block = (int(DEFAULT_SUPERNET.network_address) >> 8) + index
        if block not in blocked:
            yield str(ipaddress.IPv4Network((block << 8, DEFAULT_PREFIX)))


def new_mac() -> str:
    """A random MAC in QEMU's locally administered range; callers retry on the (rare) unique-constraint clash."""
    tail = secrets.token_bytes(3)
    return MAC_PREFIX + "".join(f":{byte:02x}" for byte in tail)


# --- public pools -------------------------------------------------------------------------------------------------


def parse_pool_cidr(text: str) -> ipaddress.IPv4Network:
    text = (text or "").strip()
    try:
        network = ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise _cidr_error(f"{text or 'An empty value'} is not an IPv4 range such as 203.0.113.0/24.") from None
    if str(network) != text:
        raise _cidr_error(f"{text} is not the start of its range: did you mean {network}?")
    if network.prefixlen < POOL_PREFIX_MIN:
        raise _cidr_error(f"A pool is at most a /{POOL_PREFIX_MIN}; split {text} into several pools.")
    return network


def parse_excluded(text: str, network: ipaddress.IPv4Network) -> set[ipaddress.IPv4Address]:
    """Addresses a pool never hands out: one per line or comma-separated, `a-b` for an inclusive range."""
    excluded: set[ipaddress.IPv4Address] = set()
    for raw in (text or "").replace(",", "\n").splitlines():
        item = raw.strip()
        if not item:
            continue
        first, _, last = item.partition("-")
        try:
            start = ipaddress.IPv4Address(first.strip())
            end = ipaddress.IPv4Address(last.strip()) if last else start
        except ValueError:
            raise _cidr_error(f"{item} is not an IPv4 address or range (a-b).", field="excluded") from None
        if end < start:
            raise _cidr_error(f"The range {item} runs backwards.", field="excluded")
        if start not in network or end not in network:
            raise _cidr_error(f"{item} is outside the pool's range {network}.", field="excluded")
        excluded.update(ipaddress.IPv4Address(value) for value in range(int(start), int(end) + 1))
    return excluded


def pool_addresses(network: ipaddress.IPv4Network, excluded: set[ipaddress.IPv4Address]) -> list[str]:
    """Every address a pool may hand out: its host addresses (for a /31 or /32, every address) minus the excluded."""
    return [str(address) for address in network.hosts() if address not in excluded]
