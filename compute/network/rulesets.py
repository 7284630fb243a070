"""Firewall rules, written once: what a valid rule is, how people write ports, and what a rule set allows.

The services check rules with `rule_errors()` (and raise), the form and the API serializer show the same messages
on the same fields, and the simulated hypervisor enforces a rule set with `allows()`, with the semantics every
driver implements: only what a rule allows passes, in either direction; replies to allowed traffic pass (stateful).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from compute.drivers.base import FirewallRuleSpec

DIRECTIONS = {"in": "Inbound", "out": "Outbound"}
PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP", "any": "Any protocol"}
PORTED = frozenset({"tcp", "udp"})
PORT_MIN, PORT_MAX = 1, 65535
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class RuleInput:
    """A rule as a person or a client wrote it, before it is checked."""

    direction: str
    protocol: str
    port_min: int | None = None
    port_max: int | None = None
    cidr: str = ANYWHERE
    description: str = ""


def _port_error(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return "A port is a whole number."
    if not PORT_MIN <= value <= PORT_MAX:
        return f"A port is from {PORT_MIN} to {PORT_MAX}; {value} is not."
    return None


def cidr_error(text: str) -> str | None:
    """Why `text` is not an IPv4 range (or single address) a rule can name, or None."""
    text = (text or "").strip()
    if not text:
        return "Give a source or destination range; 0.0.0.0/0 means anywhere."
    try:
        network = ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        return f"{text} is not an IPv4 address or range such as 203.0.113.0/24 (0.0.0.0/0 means anywhere)."
    if "/" in text and str(network) != text:
        return f"{text} is not the start of its range: did you mean {network}?"
    return None


def normal_cidr(text: str) -> str:
    """A valid rule range as stored: a single address becomes a /32."""
    return str(ipaddress.IPv4Network(text.strip(), strict=False))


def is_text(value: str) -> bool:
    """Whether the database can store it: no NUL, no lone surrogate (JSON can carry both)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def rule_errors(rule: RuleInput) -> dict[str, str]:
    """Per field, why the rule is invalid; empty when it is valid."""
    errors: dict[str, str] = {}
    if rule.direction not in DIRECTIONS:
        errors["direction"] = "The direction is in or out."
    if rule.protocol not in PROTOCOLS:
        errors["protocol"] = "The protocol is tcp, udp, icmp or any."
    for field in ("port_min", "port_max"):
        if (message := _port_error(getattr(rule, field))) is not None:
            errors[field] = message
    has_ports = rule.port_min is not None or rule.port_max is not None
    if rule.protocol in PORTED:
        if rule.port_min is None and rule.port_max is not None:
            errors.setdefault("port_min", "Give the first port of the range.")
        if not errors.keys() & {"port_min", "port_max"} and has_ports:
            low, high = rule.port_min, rule.port_max if rule.port_max is not None else rule.port_min
            if high < low:
                errors["port_max"] = f"The range runs backwards: {low} to {high}. Put the lower port first."
    elif has_ports and "protocol" not in errors:
        errors["port_min"] = f"Only TCP and UDP rules have ports; a {PROTOCOLS[rule.protocol]} rule covers all traffic."
    if (message := cidr_error(rule.cidr)) is not None:
        errors["cidr"] = message
    if len(rule.description or "") > 100:
        errors["description"] = "At most 100 characters."
    elif not is_text(rule.description or ""):
        errors["description"] = "Use plain text."
    return errors


def parse_ports(text: str) -> tuple[int | None, int | None]:
    """ "22" → (22, 22), "8000-8100" → (8000, 8100), "" or "all" → (None, None); ValueError names the problem."""
    text = (text or "").strip().lower()
    if text in ("", "all", "any", "*"):
        return None, None
    low, separator, high = text.partition("-")
    try:
        first = int(low.strip())
        last = int(high.strip()) if separator else first
    except ValueError:
        raise ValueError(f"{text} is not a port or a range such as 8000-8100.") from None
    return first, last


def ports_label(port_min: int | None, port_max: int | None) -> str:
    if port_min is None:
        return "all"
    return str(port_min) if port_max in (None, port_min) else f"{port_min}-{port_max}"


def to_spec(rule: RuleInput) -> FirewallRuleSpec:
    ported = rule.protocol in PORTED and rule.port_min is not None
    return FirewallRuleSpec(
        direction=rule.direction,
        protocol=rule.protocol,
        port_min=rule.port_min if ported else None,
        port_max=(rule.port_max if rule.port_max is not None else rule.port_min) if ported else None,
        cidr=normal_cidr(rule.cidr),
    )


def allows(rules: tuple[FirewallRuleSpec, ...], *, direction: str, protocol: str, port: int | None, peer: str) -> bool:
    """Whether a new connection passes `rules`: `peer` is the source (inbound) or destination (outbound)."""
    address = ipaddress.IPv4Address(peer)
    for rule in rules:
        if rule.direction != direction or rule.protocol not in ("any", protocol):
            continue
        if address not in ipaddress.IPv4Network(rule.cidr):
            continue
        ported = rule.protocol in PORTED and rule.port_min is not None
        if ported and (port is None or not rule.port_min <= port <= (rule.port_max or rule.port_min)):
            continue
        return True
    return False


DEFAULT_RULES = (
    RuleInput("in", "tcp", 22, 22, ANYWHERE, "SSH"),
    RuleInput("in", "icmp", None, None, ANYWHERE, "Ping"),
    RuleInput("out", "any", None, None, ANYWHERE, "Everything out"),
)
