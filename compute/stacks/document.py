"""Stack documents: the JSON Schema the API publishes, parsing YAML or JSON with line numbers, and the checks that
need no database (unknown keys, references to missing names, dependency cycles).

A document is read into plain dicts, checked against SCHEMA, then normalised (defaults filled in, ports parsed) so the
planner compares like with like. Every problem names the field path (`machines.web.flavor`) and, where the text
came as YAML or JSON, its line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml
from jsonschema import Draft202012Validator

from compute.network.rulesets import ANYWHERE, RuleInput, rule_errors
from compute.storage.models import MAX_VOLUME_GIB, MIN_VOLUME_GIB

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"
MAX_COUNT = 50
MAX_DOCUMENT_BYTES = 256 * 1024

_NAME = {"type": "string", "pattern": NAME_PATTERN}
_NAMES = {"type": "array", "items": _NAME, "uniqueItems": True}
_LABELS = {
    "type": "object",
    "maxProperties": 32,
    "propertyNames": {"pattern": r"^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$", "not": {"pattern": r"^hangar\."}},
    "additionalProperties": {"type": "string", "maxLength": 63},
}


def _named(item_schema: dict, description: str) -> dict:
    return {
        "type": "object",
        "description": description,
        "propertyNames": _NAME,
        "additionalProperties": item_schema,
    }


_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["direction", "protocol"],
    "properties": {
        "direction": {"enum": ["in", "out"]},
        "protocol": {"enum": ["tcp", "udp", "icmp", "any"]},
        "ports": {
            "description": 'TCP/UDP only: one port (22) or a range ("8000-8100"); every port when left out.',
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"type": "string", "pattern": r"^[0-9]{1,5}(-[0-9]{1,5})?$"},
            ],
        },
        "cidr": {"type": "string", "description": "The peer's range; 0.0.0.0/0 (the default) is anywhere."},
        "description": {"type": "string", "maxLength": 100},
    },
}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "/api/v1/stacks/schema/",
    "title": "Hangar stack document",
    "description": "Machines, networks, firewalls, SSH keys, public addresses and volumes declared by name. "
    "Resources are matched to what exists by the labels hangar.stack (the stack's name) and hangar.stack.key "
    "(the name here).",
    "type": "object",
    "additionalProperties": False,
    "required": ["stack"],
    "properties": {
        "stack": {
            **_NAME,
            "not": {"enum": ["schema", "export", "plans", "runs"]},
            "description": "The stack's name: lower-case letters, digits and hyphens.",
        },
        "region": {"type": "string", "description": "The region's name (see /api/v1/regions/); the default one."},
        "networks": _named(
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["cidr"],
                "properties": {
                    "cidr": {"type": "string", "description": "A private range from /16 to /28, e.g. 10.20.0.0/24."},
                    "name": {"type": "string", "maxLength": 63, "description": "Display name; the key by default."},
                },
            },
            "Private networks.",
        ),
        "firewalls": _named(
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "maxLength": 63},
                    "description": {"type": "string", "maxLength": 200},
                    "rules": {"type": "array", "items": _RULE, "maxItems": 100},
                },
            },
            "Firewalls: allow rules, everything else is dropped.",
        ),
        "keys": _named(
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["public_key"],
                "properties": {
                    "public_key": {"type": "string", "description": "One OpenSSH public key line."},
                    "name": {"type": "string", "maxLength": 100},
                },
            },
            "SSH keys copied into machines at build.",
        ),
        "machines": _named(
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["flavor", "image"],
                "properties": {
                    "flavor": {"type": "string", "description": "A size's name (see /api/v1/flavors/)."},
                    "image": {"type": "string", "description": "An image's name (see /api/v1/images/)."},
                    "count": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT, "default": 1},
                    "name_pattern": {
                        "type": "string",
                        "maxLength": 63,
                        "description": "The machines' names, with {name} and {index} (from 1): "
                        '"{name}" for one machine, "{name}-{index}" for more by default.',
                    },
                    "keys": {**_NAMES, "description": "Names under `keys`."},
                    "user_data": {"type": "string", "description": "cloud-init user-data (#cloud-config or a script)."},
                    "networks": {
                        **_NAMES,
                        "description": "Names under `networks`, the first is eth0; default network.",
                    },
                    "firewalls": {**_NAMES, "description": "Names under `firewalls`; the default firewall if none."},
                    "public_ip": {"type": "boolean", "default": False},
                    "labels": _LABELS,
                    "depends_on": {**_NAMES, "description": "Other machines built before these."},
                },
            },
            "Machines: one, or `count` of them named by `name_pattern`.",
        ),
        "addresses": _named(
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "assign_to": {
                        "type": "string",
                        "description": "A machine's name under `machines` (of count 1), or one of its machines' "
                        "names (web-2).",
                    },
                },
            },
            "Public IPv4 addresses held by the stack (kept across machine replacements).",
        ),
        "volumes": _named(
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["size_gib"],
                "properties": {
                    "size_gib": {"type": "integer", "minimum": MIN_VOLUME_GIB, "maximum": MAX_VOLUME_GIB},
                    "attach_to": {
                        "type": "string",
                        "description": "The machine it is attached to: a name under `machines` (of count 1), one "
                        "of its machines by index (web.2) or by name (web-2).",
                    },
                    "labels": _LABELS,
                },
            },
            "Volumes (block storage, named by their key here); they only grow.",
        ),
    },
}

VALIDATOR = Draft202012Validator(SCHEMA)
SECTIONS = ("networks", "firewalls", "keys", "machines", "addresses", "volumes")


@dataclass
class Problem:
    field: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict:
        return {"field": self.field, "line": self.line, "message": self.message}


@dataclass
class Parsed:
    data: dict
    lines: dict[tuple, int] = field(default_factory=dict)

    def line(self, path: tuple) -> int | None:
        """The line of the deepest part of `path` that the text has."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


class DocumentInvalid(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def _line_map(node, path: tuple, lines: dict) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), lines)


def parse(source) -> Parsed:
    """A document from YAML or JSON text (or an already decoded object); DocumentInvalid when it cannot be read."""
    if isinstance(source, dict):
        return Parsed(data=source)
    if not isinstance(source, str):
        raise DocumentInvalid([Problem("document", "Send the document as YAML or JSON text, or as an object.")])
    if len(source.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise DocumentInvalid([Problem("document", f"The document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB.")])
    try:
        # JSON is read as YAML too (a subset of it), so both get line numbers.
        node = yaml.compose(source, Loader=yaml.SafeLoader)
        data = yaml.safe_load(source)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        line = mark.line + 1 if mark is not None else None
        raise DocumentInvalid([Problem("document", f"Not valid YAML or JSON: {problem}.", line)]) from None
    except (ValueError, RecursionError):
        raise DocumentInvalid([Problem("document", "Not valid YAML or JSON.")]) from None
    if not isinstance(data, dict):
        raise DocumentInvalid([Problem("document", "A stack document is an object with at least `stack: NAME`.", 1)])
    lines: dict[tuple, int] = {}
    if node is not None:
        _line_map(node, (), lines)
    return Parsed(data=data, lines=lines)


def _path_text(path) -> str:
    return ".".join(str(part) for part in path) or "document"


def _schema_problems(parsed: Parsed) -> list[Problem]:
    problems = []
    for error in sorted(VALIDATOR.iter_errors(parsed.data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for extra in sorted(k for k in error.instance if k not in allowed):
                where = (*path, extra)
                hint = f" Known keys: {', '.join(sorted(allowed))}." if allowed else ""
                problems.append(Problem(_path_text(where), f"Unknown key {extra}.{hint}", parsed.line(where)))
            continue
        if error.validator == "propertyNames":
            where = (*path, error.instance) if isinstance(error.instance, str) else path
            message = f"{error.instance!r} is not a valid name here: use lower-case letters, digits and hyphens."
            if path and path[-1] == "labels":
                message = f"Label key {error.instance!r} is not valid (hangar.* keys are reserved)."
            problems.append(Problem(_path_text(where), message, parsed.line(where)))
            continue
        message = error.message
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            message = f"{missing} is required." if missing else message
        elif error.validator == "pattern" and path and isinstance(path[-1], int | str):
            message = f"{error.instance!r} is not valid: use lower-case letters, digits and hyphens."
        problems.append(Problem(_path_text(path), message, parsed.line(path)))
    return problems


def _ports(value) -> tuple[int | None, int | None]:
    if value is None:
        return None, None
    if isinstance(value, int):
        return value, value
    low, _, high = value.partition("-")
    return int(low), int(high or low)


def _rules(items: list[dict]) -> list[RuleInput]:
    rules = []
    for item in items:
        port_min, port_max = _ports(item.get("ports"))
        rules.append(
            RuleInput(
                direction=item["direction"],
                protocol=item["protocol"],
                port_min=port_min,
                port_max=port_max,
                cidr=item.get("cidr", ANYWHERE),
                description=item.get("description", ""),
            )
        )
    return rules


def machine_names(name: str, spec: dict) -> list[tuple[int, str]]:
    """(index, machine name) of each machine of a `machines` entry, index from 1."""
    count = spec["count"]
    pattern = spec.get("name_pattern") or ("{name}" if count == 1 else "{name}-{index}")
    return [(index, pattern.replace("{name}", name).replace("{index}", str(index))) for index in range(1, count + 1)]


def normalised(data: dict) -> dict:
    """The document with every default filled in (a valid one: checked first)."""
    doc = {"stack": data["stack"], "region": data.get("region") or None}
    for section in SECTIONS:
        doc[section] = {}
    for name, spec in (data.get("networks") or {}).items():
        doc["networks"][name] = {"name": spec.get("name") or name, "cidr": spec["cidr"].strip()}
    for name, spec in (data.get("firewalls") or {}).items():
        doc["firewalls"][name] = {
            "name": spec.get("name") or name,
            "description": spec.get("description", ""),
            "rules": _rules(spec.get("rules") or []),
        }
    for name, spec in (data.get("keys") or {}).items():
        doc["keys"][name] = {"name": spec.get("name") or name, "public_key": spec["public_key"].strip()}
    for name, spec in (data.get("machines") or {}).items():
        doc["machines"][name] = {
            "flavor": spec["flavor"],
            "image": spec["image"],
            "count": spec.get("count", 1),
            "name_pattern": spec.get("name_pattern") or "",
            "keys": list(spec.get("keys") or []),
            "user_data": spec.get("user_data", ""),
            "networks": list(spec.get("networks") or []),
            "firewalls": list(spec.get("firewalls") or []),
            "public_ip": bool(spec.get("public_ip", False)),
            "labels": dict(spec.get("labels") or {}),
            "depends_on": list(spec.get("depends_on") or []),
        }
    for name, spec in (data.get("addresses") or {}).items():
        doc["addresses"][name] = {"assign_to": spec.get("assign_to") or None}
    for name, spec in (data.get("volumes") or {}).items():
        doc["volumes"][name] = {
            "size_gib": spec["size_gib"],
            "attach_to": spec.get("attach_to") or None,
            "labels": dict(spec.get("labels") or {}),
        }
    return doc


def machine_key(doc: dict, ref: str | None) -> str | None:
    """The key (web.2) of the one machine `ref` names: an entry of count 1, a key, or a machine's name; else None."""
    if ref is None:
        return None
    if ref in doc["machines"]:
        return f"{ref}.1" if doc["machines"][ref]["count"] == 1 else None
    for name, spec in doc["machines"].items():
        for index, machine in machine_names(name, spec):
            if ref in (machine, f"{name}.{index}"):
                return f"{name}.{index}"
    return None


def _reference_problems(parsed: Parsed, doc: dict) -> list[Problem]:
    problems = []

    def missing(path: tuple, section: str, ref: str) -> None:
        known = ", ".join(sorted(doc[section])) or "none"
        problems.append(
            Problem(_path_text(path), f"{ref} is not under `{section}` (declared: {known}).", parsed.line(path))
        )

    for name, spec in doc["machines"].items():
        for section in ("keys", "networks", "firewalls"):
            for index, ref in enumerate(spec[section]):
                if ref not in doc[section]:
                    missing(("machines", name, section, index), section, ref)
        for index, ref in enumerate(spec["depends_on"]):
            if ref not in doc["machines"]:
                missing(("machines", name, "depends_on", index), "machines", ref)
        if "{index}" not in (spec["name_pattern"] or "{index}") and spec["count"] > 1:
            path = ("machines", name, "name_pattern")
            problems.append(
                Problem(_path_text(path), "With count above 1 the pattern needs {index}.", parsed.line(path))
            )
    instance_names: dict[str, str] = {}
    for name, spec in doc["machines"].items():
        for _index, machine in machine_names(name, spec):
            if machine in instance_names:
                path = ("machines", name)
                problems.append(
                    Problem(
                        _path_text(path),
                        f"Machine name {machine} is also made by machines.{instance_names[machine]}.",
                        parsed.line(path),
                    )
                )
            instance_names[machine] = name
    for name, spec in doc["addresses"].items():
        target = spec["assign_to"]
        if target is None:
            continue
        path = ("addresses", name, "assign_to")
        if target in doc["machines"] and doc["machines"][target]["count"] != 1:
            problems.append(
                Problem(_path_text(path), f"{target} has several machines: name one of them.", parsed.line(path))
            )
        elif target not in doc["machines"] and target not in instance_names:
            missing(path, "machines", target)
    for name, spec in doc["volumes"].items():
        target = spec["attach_to"]
        if target is not None and machine_key(doc, target) is None:
            path = ("volumes", name, "attach_to")
            if target in doc["machines"]:
                problems.append(
                    Problem(_path_text(path), f"{target} has several machines: name one of them.", parsed.line(path))
                )
            else:
                missing(path, "machines", target)
    for name, spec in doc["firewalls"].items():
        for index, rule in enumerate(spec["rules"]):
            for field_name, message in rule_errors(rule).items():
                path = ("firewalls", name, "rules", index, "ports" if field_name.startswith("port") else field_name)
                problems.append(Problem(_path_text(path), message, parsed.line(path)))
    problems.extend(_cycle_problems(parsed, doc))
    return problems


def _cycle_problems(parsed: Parsed, doc: dict) -> list[Problem]:
    graph = {name: [d for d in spec["depends_on"] if d in doc["machines"]] for name, spec in doc["machines"].items()}
    state: dict[str, int] = {}
    problems = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
                path = ("machines", node, "depends_on")
                problems.append(Problem(_path_text(path), f"Dependency cycle: {' → '.join(cycle)}.", parsed.line(path)))
            elif state.get(nxt) is None:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in graph:
        if state.get(name) is None:
            visit(name, [name])
    return problems


def machine_order(doc: dict) -> list[str]:
    """The machines' keys so that each comes after what it depends on (the document's order otherwise)."""
    order: list[str] = []

    def place(name: str) -> None:
        if name in order:
            return
        for dependency in doc["machines"][name]["depends_on"]:
            place(dependency)
        order.append(name)

    for name in doc["machines"]:
        place(name)
    return order


def read(source) -> tuple[Parsed, dict]:
    """Parses and checks a document; returns it with its line map and normalised, or raises DocumentInvalid."""
    parsed = parse(source)
    problems = _schema_problems(parsed)
    if problems:
        raise DocumentInvalid(problems)
    doc = normalised(parsed.data)
    problems = _reference_problems(parsed, doc)
    if problems:
        raise DocumentInvalid(problems)
    return parsed, doc


def rule_dict(rule: RuleInput) -> dict:
    """A rule as a document writes it (export) and as plans compare it."""
    out: dict = {"direction": rule.direction, "protocol": rule.protocol}
    if rule.port_min is not None:
        out["ports"] = rule.port_min if rule.port_max in (None, rule.port_min) else f"{rule.port_min}-{rule.port_max}"
    if rule.cidr != ANYWHERE:
        out["cidr"] = rule.cidr
    if rule.description:
        out["description"] = rule.description
    return out


def dump_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


RESERVED_NAMES = frozenset({"schema", "export", "plans", "runs"})


def valid_stack_name(name: str) -> bool:
    return bool(re.match(NAME_PATTERN, name or "")) and name not in RESERVED_NAMES


def schema_json() -> str:
    return json.dumps(SCHEMA, indent=2)
