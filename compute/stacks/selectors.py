"""Reads of stacks: what a stack holds now, the plan of a document against it (no side effects), cost, export.

A resource belongs to stack S when it carries the label hangar.stack=S; hangar.stack.key names the document entry it
realises (`web.1` is the first machine of `machines.web`, `web.1/ip` its public address). A document entry with no
such resource but a same-named one outside every stack adopts that one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import (
    Case,
    CharField,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Concat

from compute import prices
from compute.lifecycle import IPV4, VOLUME
from compute.models import EventAction, Flavor, Image, Instance, InstanceEvent, InstanceState, Region, SSHKey
from compute.network import addressing
from compute.network.models import Firewall, FirewallRule, Network, PublicIP
from compute.network.rulesets import RuleInput
from compute.selectors import quota_usage
from compute.sshkeys import parse_public_key
from compute.stacks.document import (
    DocumentInvalid,
    Parsed,
    Problem,
    dump_yaml,
    machine_key,
    machine_names,
    machine_order,
    rule_dict,
)
from compute.stacks.models import KEY_LABEL, STACK_LABEL, Stack, StackRun
from compute.storage.models import Volume, VolumeState
from portal.errors import ServiceError
from tenants.labels import labels_filter
from tenants.models import EventResult, Tenant

CENT = Decimal("0.01")
TYPES = ("key", "network", "firewall", "machine", "address", "volume")


# A machine whose build failed was never billed (billing starts when a build succeeds); one in error later still is.
_NEVER_BUILT = Q(state=InstanceState.ERROR) & ~Exists(
    InstanceEvent.objects.filter(instance=OuterRef("pk"), action=EventAction.BUILD, result=EventResult.SUCCEEDED)
)


def _billed_machines(machines) -> list:
    """The machines that cost money: all but those whose build failed."""
    errored = [m.pk for m in machines if m.state == InstanceState.ERROR]
    if not errored:
        return list(machines)
    never = set(Instance.objects.filter(pk__in=errored).filter(_NEVER_BUILT).values_list("pk", flat=True))
    return [m for m in machines if m.pk not in never]


def _money(amount: Decimal) -> str:
    return str(Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP))


def _user_labels(labels: dict) -> dict:
    return {k: v for k, v in sorted((labels or {}).items()) if not k.startswith("hangar.")}


# --- what a stack holds ------------------------------------------------------------------------------------------


@dataclass
class Holdings:
    """A stack's resources by type and key (None: labelled with the stack but without a key: deleted on apply)."""

    keys: dict = field(default_factory=dict)
    networks: dict = field(default_factory=dict)
    firewalls: dict = field(default_factory=dict)
    machines: dict = field(default_factory=dict)
    addresses: dict = field(default_factory=dict)
    volumes: dict = field(default_factory=dict)
    strays: list = field(default_factory=list)  # (type, object)

    def by_type(self) -> dict[str, dict]:
        return {
            "key": self.keys,
            "network": self.networks,
            "firewall": self.firewalls,
            "machine": self.machines,
            "address": self.addresses,
            "volume": self.volumes,
        }

    def count(self) -> int:
        return sum(len(group) for group in self.by_type().values()) + len(self.strays)


def _querysets(tenant: Tenant) -> dict[str, QuerySet]:
    return {
        "key": SSHKey.objects.for_tenant(tenant).order_by("name", "id"),
        "network": Network.objects.for_tenant(tenant).select_related("region").order_by("name", "id"),
        "firewall": Firewall.objects.for_tenant(tenant)
        .prefetch_related(Prefetch("rules", queryset=FirewallRule.objects.order_by("position", "id")))
        .order_by("name", "id"),
        "machine": Instance.objects.for_tenant(tenant)
        .live()
        .select_related("flavor", "image", "region")
        .prefetch_related("firewalls", "ports")
        .order_by("name", "id"),
        "address": PublicIP.objects.for_tenant(tenant).held().select_related("instance").order_by("address", "id"),
        "volume": Volume.objects.for_tenant(tenant)
        .exclude(state=VolumeState.DELETED)
        .select_related("instance")
        .order_by("name", "id"),
    }


def stack_holdings(*, tenant: Tenant, stack: str) -> Holdings:
    holdings = Holdings()
    groups = holdings.by_type()
    for kind, queryset in _querysets(tenant).items():
        for obj in labels_filter(queryset, [(STACK_LABEL, stack)]):
            key = obj.labels.get(KEY_LABEL)
            if key and key not in groups[kind]:
                groups[kind][key] = obj
            else:
                holdings.strays.append((kind, obj))
    return holdings


def _display_name(kind: str, obj) -> str:
    if kind == "address":
        return obj.address
    return obj.name


# --- a machine's, a firewall's … state as plans compare it -------------------------------------------------------


def _rules_of(firewall: Firewall) -> list[dict]:
    return [
        rule_dict(RuleInput(r.direction, r.protocol, r.port_min, r.port_max, r.cidr, r.description))
        for r in firewall.rules.all()
    ]


def _machine_state(instance: Instance) -> dict:
    return {
        "name": instance.name,
        "flavor": instance.flavor.name,
        "image": instance.image.name,
        "region": instance.region.name if instance.region_id else None,
        "keys": sorted(key.get("fingerprint", "") for key in instance.ssh_keys),
        "user_data": instance.user_data,
        "networks": [str(port.network_id) for port in sorted(instance.ports.all(), key=lambda p: p.index)],
        "firewalls": sorted(str(fw.pk) for fw in instance.firewalls.all()),
        "labels": _user_labels(instance.labels),
        "error": instance.state == InstanceState.ERROR,
    }


def _snapshot(kind: str, obj) -> dict:
    """Everything a plan depends on of one resource: the fingerprint hashes these."""
    base = {"type": kind, "id": str(obj.pk), "labels": obj.labels}
    if kind == "key":
        return {**base, "name": obj.name, "fingerprint": obj.fingerprint}
    if kind == "network":
        return {**base, "name": obj.name, "cidr": obj.cidr}
    if kind == "firewall":
        return {**base, "name": obj.name, "description": obj.description, "rules": _rules_of(obj)}
    if kind == "machine":
        return {**base, **_machine_state(obj), "state": obj.state}
    if kind == "volume":
        return {
            **base,
            "name": obj.name,
            "size_gib": obj.size_gib,
            "instance": str(obj.instance_id or ""),
            "state": obj.state,
        }
    return {**base, "address": obj.address, "instance": str(obj.instance_id or "")}


# --- planning ----------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    stack: str
    changes: list[dict]
    quota: dict
    cost: dict
    fingerprint: str


class _Planner:
    def __init__(self, *, tenant: Tenant, parsed: Parsed, doc: dict):
        self.tenant, self.parsed, self.doc = tenant, parsed, doc
        self.stack = doc["stack"]
        self.problems: list[Problem] = []
        self.changes: list[dict] = []
        self.snapshots: list[dict] = []
        self.held = stack_holdings(tenant=tenant, stack=self.stack)
        self.querysets = _querysets(tenant)
        # key → "create" | "replace" | "update" | "keep" per type, for what depends on it.
        self.fate: dict[tuple[str, str], str] = {}
        self.resolved: dict[tuple[str, str], object] = {}

    # errors

    def problem(self, path: tuple, message: str) -> None:
        self.problems.append(Problem(".".join(str(p) for p in path), message, self.parsed.line(path)))

    # the catalog

    def region(self) -> Region | None:
        name = self.doc["region"]
        if name is None:
            return Region.objects.default_or_create()
        region = Region.objects.filter(name=name).first()
        if region is None:
            known = ", ".join(Region.objects.order_by("name").values_list("name", flat=True))
            self.problem(("region",), f"There is no region {name} (regions: {known}).")
        return region

    def catalog(self, region: Region | None) -> tuple[dict, dict]:
        flavors = {f.name: f for f in Flavor.objects.active()}
        images = {i.name: i for i in Image.objects.active().prefetch_related("regions")}
        for name, spec in self.doc["machines"].items():
            if spec["flavor"] not in flavors:
                known = ", ".join(sorted(flavors)) or "none"
                self.problem(("machines", name, "flavor"), f"There is no size {spec['flavor']} (sizes: {known}).")
            image = images.get(spec["image"])
            if image is None:
                known = ", ".join(sorted(images)) or "none"
                self.problem(("machines", name, "image"), f"There is no image {spec['image']} (images: {known}).")
            elif region is not None and not image.available_in(region):
                self.problem(("machines", name, "image"), f"{image.name} is not available in {region.name}.")
        return flavors, images

    # matching document entries with resources

    def existing(self, kind: str, key: str, name: str):
        """The stack's resource for `key`, or a same-named one outside every stack (adopted), or None."""
        group = self.held.by_type()[kind]
        if key in group:
            return group[key], False
        if kind == "address":
            return None, False
        field_name = "name__iexact"
        candidate = self.querysets[kind].filter(**{field_name: name}).first()
        if candidate is None:
            return None, False
        if getattr(candidate, "is_default", False):
            return ("taken", None), False
        owner = candidate.labels.get(STACK_LABEL)
        if owner == self.stack:
            return None, False  # the stack's own, under another key: deleted before this one is made
        if owner:
            return ("taken", owner), False
        return candidate, True

    def change(self, action: str, kind: str, key: str, name: str, *, reason: str = "", fields=None, obj=None):
        entry = {
            "action": action,
            "type": kind,
            "name": name,
            "reason": reason,
            "fields": fields or {},
            "key": key,
            "id": str(obj.pk) if obj is not None else None,
        }
        self.changes.append(entry)
        self.fate[(kind, key)] = action
        return entry

    def _match(self, kind: str, key: str, name: str, path: tuple):
        obj, adopted = self.existing(kind, key, name)
        if isinstance(obj, tuple):
            owner = f"belongs to the stack {obj[1]}" if obj[1] else "is your default one"
            self.problem(path, f"Your {kind} {name} {owner}; give this one another name.")
            return None, False
        if obj is not None:
            self.snapshots.append(_snapshot(kind, obj))
        return obj, adopted

    def plan_keys(self) -> None:
        for name, spec in self.doc["keys"].items():
            try:
                fingerprint = parse_public_key(spec["public_key"]).fingerprint
            except ValidationError as error:
                self.problem(("keys", name, "public_key"), error.messages[0])
                continue
            spec["fingerprint"] = fingerprint
            obj, adopted = self._match("key", name, spec["name"], ("keys", name))
            if obj is None:
                clash = self.querysets["key"].filter(fingerprint=fingerprint).first()
                if clash is not None and clash.labels.get(STACK_LABEL) not in (None, self.stack):
                    self.problem(("keys", name, "public_key"), f"This key is saved as {clash.name} in another stack.")
                self.change("create", "key", name, spec["name"])
            elif obj.fingerprint != fingerprint or obj.name != spec["name"]:
                fields = {"public_key": [obj.fingerprint, fingerprint]} if obj.fingerprint != fingerprint else {}
                if obj.name != spec["name"]:
                    fields["name"] = [obj.name, spec["name"]]
                self.change(
                    "replace", "key", name, spec["name"], reason="an SSH key cannot be edited", fields=fields, obj=obj
                )
            elif adopted:
                self.change("update", "key", name, spec["name"], reason="adopt into the stack", obj=obj)
                self.fate[("key", name)] = "keep"
            else:
                self.fate[("key", name)] = "keep"
            self.resolved[("key", name)] = obj

    def plan_networks(self, region: Region | None) -> None:
        others = [
            (n.name, n.cidr)
            for n in self.querysets["network"]
            if n.labels.get(STACK_LABEL) != self.stack and n.name.lower() not in self._doc_network_names()
        ]
        for name, spec in self.doc["networks"].items():
            path = ("networks", name)
            try:
                network_range = addressing.parse_private_cidr(spec["cidr"])
            except ServiceError as error:
                self.problem((*path, "cidr"), error.message)
                continue
            spec["cidr"] = str(network_range)
            if (clash := addressing.overlapping(network_range, others)) is not None:
                self.problem((*path, "cidr"), f"{network_range} overlaps your network {clash}.")
            obj, adopted = self._match("network", name, spec["name"], path)
            self.resolved[("network", name)] = obj
            if obj is None:
                self.change("create", "network", name, spec["name"], fields={"cidr": [None, spec["cidr"]]})
                continue
            if obj.cidr != spec["cidr"] or (region is not None and obj.region_id != region.pk):
                why = "a network's range cannot change" if obj.cidr != spec["cidr"] else "the region changes"
                self.change(
                    "replace",
                    "network",
                    name,
                    spec["name"],
                    reason=why,
                    fields={"cidr": [obj.cidr, spec["cidr"]]},
                    obj=obj,
                )
                continue
            fields = {"name": [obj.name, spec["name"]]} if obj.name != spec["name"] else {}
            if fields or adopted:
                self.change(
                    "update",
                    "network",
                    name,
                    spec["name"],
                    reason="adopt into the stack" if adopted else "",
                    fields=fields,
                    obj=obj,
                )
            self.fate[("network", name)] = "keep" if not fields and not adopted else "update"

    def _doc_network_names(self) -> set[str]:
        return {spec["name"].lower() for spec in self.doc["networks"].values()}

    def plan_firewalls(self) -> None:
        for name, spec in self.doc["firewalls"].items():
            obj, adopted = self._match("firewall", name, spec["name"], ("firewalls", name))
            self.resolved[("firewall", name)] = obj
            wanted_rules = [rule_dict(rule) for rule in spec["rules"]]
            if obj is None:
                self.change(
                    "create", "firewall", name, spec["name"], fields={"rules": [None, _rules_text(wanted_rules)]}
                )
                continue
            fields = {}
            if obj.name != spec["name"]:
                fields["name"] = [obj.name, spec["name"]]
            if obj.description != spec["description"]:
                fields["description"] = [obj.description, spec["description"]]
            current = _rules_of(obj)
            if current != wanted_rules:
                fields["rules"] = [_rules_text(current), _rules_text(wanted_rules)]
            if fields or adopted:
                self.change(
                    "update",
                    "firewall",
                    name,
                    spec["name"],
                    reason="adopt into the stack" if adopted else "",
                    fields=fields,
                    obj=obj,
                )
            self.fate[("firewall", name)] = "update" if fields or adopted else "keep"

    def plan_machines(self, region: Region | None, flavors: dict, images: dict) -> None:
        for name in machine_order(self.doc):
            spec = self.doc["machines"][name]
            flavor = flavors.get(spec["flavor"])
            for index, machine in machine_names(name, spec):
                key = f"{name}.{index}"
                path = ("machines", name)
                obj, adopted = self._match("machine", key, machine, path)
                self.resolved[("machine", key)] = (machine, obj)
                if obj is None:
                    self.change(
                        "create",
                        "machine",
                        key,
                        machine,
                        fields={"flavor": [None, spec["flavor"]], "image": [None, spec["image"]]},
                    )
                    continue
                reason = self._replace_reason(obj, spec, region, flavor)
                current = _machine_state(obj)
                if reason:
                    fields = {}
                    if current["flavor"] != spec["flavor"]:
                        fields["flavor"] = [current["flavor"], spec["flavor"]]
                    if current["image"] != spec["image"]:
                        fields["image"] = [current["image"], spec["image"]]
                    self.change("replace", "machine", key, machine, reason=reason, fields=fields, obj=obj)
                    continue
                fields = {}
                if obj.name != machine:
                    fields["name"] = [obj.name, machine]
                if current["flavor"] != spec["flavor"]:
                    fields["flavor"] = [current["flavor"], spec["flavor"]]
                wanted_firewalls = self._firewall_ids(spec)
                if wanted_firewalls is None or sorted(wanted_firewalls) != current["firewalls"]:
                    names = sorted(fw.name for fw in obj.firewalls.all())
                    fields["firewalls"] = [names, spec["firewalls"] or ["(default)"]]
                if current["labels"] != dict(sorted(spec["labels"].items())):
                    fields["labels"] = [current["labels"], dict(sorted(spec["labels"].items()))]
                if fields or adopted:
                    reasons = ["adopt into the stack"] if adopted else []
                    if "flavor" in fields and obj.state == InstanceState.RUNNING:
                        reasons.append("a resize stops the machine and starts it again")
                    self.change(
                        "update",
                        "machine",
                        key,
                        machine,
                        reason="; ".join(reasons),
                        fields=fields,
                        obj=obj,
                    )
                    self.fate[("machine", key)] = "update"
                else:
                    self.fate[("machine", key)] = "keep"

    def _firewall_ids(self, spec: dict) -> list[str] | None:
        """The ids the machine's firewalls will have; None when one is still to be made."""
        if not spec["firewalls"]:
            default = Firewall.objects.for_tenant(self.tenant).filter(is_default=True).first()
            return [str(default.pk)] if default else []
        ids = []
        for ref in spec["firewalls"]:
            obj = self.resolved.get(("firewall", ref))
            if obj is None or self.fate.get(("firewall", ref)) in ("create", "replace"):
                return None
            ids.append(str(obj.pk))
        return ids

    def _replace_reason(self, obj: Instance, spec: dict, region, flavor) -> str:
        current = _machine_state(obj)
        if current["error"]:
            return f"the machine is in error ({obj.error_reason or 'no reason recorded'})"
        if region is not None and obj.region_id != region.pk:
            return "the region changes"
        if current["image"] != spec["image"]:
            return "the image changes (the disk is built from it)"
        if flavor is not None and flavor.disk_gib < obj.flavor.disk_gib:
            return f"{flavor.name} has a smaller disk, and disks never shrink"
        wanted_keys = sorted(self.doc["keys"][ref].get("fingerprint", "") for ref in spec["keys"])
        if wanted_keys != current["keys"]:
            return "SSH keys are copied in at build"
        if (spec["user_data"] or "").replace("\r\n", "\n") != obj.user_data:
            return "user-data runs at the first boot only"
        wanted_networks = []
        for ref in spec["networks"]:
            network = self.resolved.get(("network", ref))
            if network is None or self.fate.get(("network", ref)) == "replace":
                return f"its network {ref} is new or replaced"
            wanted_networks.append(str(network.pk))
        if wanted_networks and wanted_networks != current["networks"]:
            return "a machine's networks are fixed at launch"
        if not wanted_networks:
            default = [str(n.pk) for n in self.querysets["network"].filter(is_default=True, region_id=obj.region_id)]
            if current["networks"] != default[:1]:
                return "a machine's networks are fixed at launch"
        return ""

    def plan_addresses(self) -> None:
        wanted: dict[str, str | None] = {}  # address key → machine key
        names: dict[str, str] = {}
        instance_keys = {}
        for name, spec in self.doc["machines"].items():
            for index, machine in machine_names(name, spec):
                instance_keys[machine] = f"{name}.{index}"
                if spec["public_ip"]:
                    wanted[f"{name}.{index}/ip"] = f"{name}.{index}"
                    names[f"{name}.{index}/ip"] = f"public IPv4 of {machine}"
        for name, spec in self.doc["addresses"].items():
            target = spec["assign_to"]
            if target in self.doc["machines"]:
                target = f"{target}.1"
            elif target is not None:
                target = instance_keys[target]
            wanted[name] = target
            names[name] = name
        for key, target in wanted.items():
            obj = self.held.addresses.get(key)
            target_name = self.resolved[("machine", target)][0] if target else None
            if obj is None:
                fields = {"assigned_to": [None, target_name]} if target else {}
                self.change("create", "address", key, names[key], fields=fields)
                continue
            self.snapshots.append(_snapshot("address", obj))
            current_key = obj.instance.labels.get(KEY_LABEL) if obj.instance_id else None
            machine_fate = self.fate.get(("machine", target)) if target else None
            if current_key != target or machine_fate in ("create", "replace"):
                current_name = obj.instance.name if obj.instance_id else None
                reason = "its machine is replaced" if machine_fate == "replace" else ""
                self.change(
                    "update",
                    "address",
                    key,
                    f"{names[key]} ({obj.address})",
                    reason=reason,
                    fields={"assigned_to": [current_name, target_name]},
                    obj=obj,
                )

    def plan_volumes(self) -> None:
        for name, spec in self.doc["volumes"].items():
            obj, adopted = self._match("volume", name, name, ("volumes", name))
            target = machine_key(self.doc, spec["attach_to"])
            target_name = self.resolved[("machine", target)][0] if target else None
            if obj is None:
                fields = {"size_gib": [None, spec["size_gib"]]}
                if target:
                    fields["attached_to"] = [None, target_name]
                self.change("create", "volume", name, name, fields=fields)
                continue
            current_name = obj.instance.name if obj.instance_id else None
            size = {"size_gib": [obj.size_gib, spec["size_gib"]]} if obj.size_gib != spec["size_gib"] else {}
            reason = ""
            if obj.state == VolumeState.ERROR:
                reason = f"the volume is in error ({obj.error_reason or 'no reason recorded'})"
            elif obj.size_gib > spec["size_gib"]:
                reason = "volumes only grow"
            if reason:
                fields = {**size, "attached_to": [current_name, target_name]} if target_name else size
                self.change("replace", "volume", name, name, reason=reason, fields=fields, obj=obj)
                continue
            fields = dict(size)
            current_key = obj.instance.labels.get(KEY_LABEL) if obj.instance_id else None
            machine_fate = self.fate.get(("machine", target)) if target else None
            reasons = ["adopt into the stack"] if adopted else []
            if current_key != target or machine_fate in ("create", "replace"):
                fields["attached_to"] = [current_name, target_name]
                if machine_fate == "replace":
                    reasons.append("its machine is replaced")
            if _user_labels(obj.labels) != dict(sorted(spec["labels"].items())):
                fields["labels"] = [_user_labels(obj.labels), dict(sorted(spec["labels"].items()))]
            if fields or adopted:
                self.change("update", "volume", name, name, reason="; ".join(reasons), fields=fields, obj=obj)
            else:
                self.fate[("volume", name)] = "keep"

    def plan_deletes(self) -> None:
        wanted_addresses = {c["key"] for c in self.changes if c["type"] == "address"} | {
            key for key in self.held.addresses if self._address_wanted(key)
        }
        for kind, group in self.held.by_type().items():
            section = {"key": "keys", "network": "networks", "firewall": "firewalls", "volume": "volumes"}.get(kind)
            for key, obj in group.items():
                if kind == "address":
                    gone = key not in wanted_addresses
                elif kind == "machine":
                    gone = ("machine", key) not in self.resolved
                else:
                    gone = key not in self.doc[section]
                if gone:
                    self.snapshots.append(_snapshot(kind, obj))
                    self.change("delete", kind, key, _display_name(kind, obj), obj=obj)
        for kind, obj in self.held.strays:
            self.snapshots.append(_snapshot(kind, obj))
            self.change(
                "delete",
                kind,
                "",
                _display_name(kind, obj),
                reason="labelled with the stack but not made from its document",
                obj=obj,
            )

    def _address_wanted(self, key: str) -> bool:
        if key in self.doc["addresses"]:
            return True
        machine_key, _, suffix = key.rpartition("/")
        name, _, index = machine_key.rpartition(".")
        spec = self.doc["machines"].get(name)
        return (
            suffix == "ip"
            and spec is not None
            and spec["public_ip"]
            and index.isdigit()
            and int(index) <= spec["count"]
        )

    def quota(self, flavors: dict) -> dict:
        usage = quota_usage(tenant=self.tenant)
        delta = {"instances": 0, "vcpus": 0, "ram_mib": 0, "public_ips": 0, "volume_gb": 0, "volumes": 0}
        for change in self.changes:
            if change["type"] == "machine":
                old = self.held.machines.get(change["key"]) if change["action"] != "create" else None
                if change["action"] == "delete" and old is None:
                    old = next((o for k, o in self.held.strays if k == "machine" and str(o.pk) == change["id"]), None)
                new_flavor = None
                if change["action"] != "delete":
                    name = change["key"].rpartition(".")[0]
                    new_flavor = flavors.get(self.doc["machines"][name]["flavor"])
                if old is None and change["action"] != "create":
                    continue
                if old is not None and change["action"] in ("delete", "replace", "update"):
                    delta["instances"] -= 1
                    delta["vcpus"] -= old.flavor.vcpus
                    delta["ram_mib"] -= old.flavor.ram_mib
                if new_flavor is not None:
                    delta["instances"] += 1
                    delta["vcpus"] += new_flavor.vcpus
                    delta["ram_mib"] += new_flavor.ram_mib
            elif change["type"] == "address":
                delta["public_ips"] += {"create": 1, "delete": -1}.get(change["action"], 0)
            elif change["type"] == "volume":
                old_size, new_size = self._volume_sizes(change)
                delta["volume_gb"] += new_size - old_size
                delta["volumes"] += {"create": 1, "delete": -1}.get(change["action"], 0)
        problems = []
        for resource, change in delta.items():
            after = usage[resource]["used"] + change
            if change > 0 and after > usage[resource]["limit"]:
                label = {
                    "instances": "machines",
                    "vcpus": "vCPUs",
                    "ram_mib": "MiB of RAM",
                    "public_ips": "public IPv4 addresses",
                    "volume_gb": "GiB of volumes",
                    "volumes": "volumes",
                }[resource]
                problems.append(
                    f"This plan needs {change} more {label}: {after} of your quota of {usage[resource]['limit']}."
                )
        return {"ok": not problems, "problems": problems, "delta": delta}

    def _volume_sizes(self, change: dict) -> tuple[int, int]:
        """The GiB a volume change holds before and after (a stray's own size when it is deleted)."""
        old = None
        if change["action"] != "create":
            old = self.held.volumes.get(change["key"]) or next(
                (o for k, o in self.held.strays if k == "volume" and str(o.pk) == change["id"]), None
            )
        new = self.doc["volumes"][change["key"]]["size_gib"] if change["action"] != "delete" else 0
        return (old.size_gib if old is not None else 0), new

    def check_counts(self, flavors: dict) -> None:
        """A single machine entry that could never fit the quota is a mistake in the document."""
        usage = quota_usage(tenant=self.tenant)
        for name, spec in self.doc["machines"].items():
            flavor = flavors.get(spec["flavor"])
            if flavor is None:
                continue
            needs = {
                "instances": spec["count"],
                "vcpus": spec["count"] * flavor.vcpus,
                "ram_mib": spec["count"] * flavor.ram_mib,
            }
            for resource, amount in needs.items():
                if amount > usage[resource]["limit"]:
                    self.problem(
                        ("machines", name, "count"),
                        f"{spec['count']} machines of {flavor.name} needs {amount} {resource.replace('_mib', ' MiB')}, "
                        f"more than your whole quota of {usage[resource]['limit']}.",
                    )
                    break

    def price_changes(self, flavors: dict) -> None:
        """Each change's effect on the monthly bill (`monthly_difference`), from the same prices as the totals."""
        ipv4 = prices.resource_price(IPV4)
        strays = {str(obj.pk): obj for _kind, obj in self.held.strays}
        machines = [*self.held.machines.values(), *(obj for kind, obj in self.held.strays if kind == "machine")]
        billed = {obj.pk for obj in _billed_machines(machines)}
        for change in self.changes:
            before = after = Decimal(0)
            if change["type"] == "machine":
                old = strays.get(change["id"]) or self.held.machines.get(change["key"])
                if old is not None and old.pk in billed and change["action"] != "create":
                    before = prices.monthly_display(old.flavor.monthly_price)
                if change["action"] != "delete":
                    spec = self.doc["machines"][change["key"].rpartition(".")[0]]
                    after = prices.monthly_display(flavors[spec["flavor"]].monthly_price)
            elif change["type"] == "address":
                before = ipv4 if change["action"] == "delete" else Decimal(0)
                after = ipv4 if change["action"] == "create" else Decimal(0)
            elif change["type"] == "volume":
                before, after = (volume_monthly(size) for size in self._volume_sizes(change))
            change["monthly_difference"] = _money(after - before)

    def cost(self, flavors: dict) -> dict:
        ipv4 = prices.resource_price(IPV4)
        before = Decimal(0)
        machines = [*self.held.machines.values(), *(obj for kind, obj in self.held.strays if kind == "machine")]
        for obj in _billed_machines(machines):
            before += prices.monthly_display(obj.flavor.monthly_price)
        addresses_held = len(self.held.addresses) + sum(1 for kind, _ in self.held.strays if kind == "address")
        before += ipv4 * addresses_held
        volumes_held = [*self.held.volumes.values(), *(obj for kind, obj in self.held.strays if kind == "volume")]
        before += sum((volume_monthly(v.size_gib) for v in volumes_held), Decimal(0))
        after = Decimal(0)
        addresses = len(self.doc["addresses"])
        for spec in self.doc["machines"].values():
            flavor = flavors.get(spec["flavor"])
            if flavor is not None:
                after += prices.monthly_display(flavor.monthly_price) * spec["count"]
            if spec["public_ip"]:
                addresses += spec["count"]
        after += ipv4 * addresses
        after += sum((volume_monthly(spec["size_gib"]) for spec in self.doc["volumes"].values()), Decimal(0))
        before, after = prices.monthly_display(before), prices.monthly_display(after)
        return {
            "currency": settings.BILLING_CURRENCY,
            "monthly_before": _money(before),
            "monthly_after": _money(after),
            "difference": _money(after - before),
        }

    def run(self) -> Plan:
        region = self.region()
        flavors, images = self.catalog(region)
        self.plan_keys()
        self.plan_networks(region)
        self.plan_firewalls()
        if not self.problems:
            self.check_counts(flavors)
        if self.problems:
            raise DocumentInvalid(self.problems)
        self.plan_machines(region, flavors, images)
        self.plan_addresses()
        self.plan_volumes()
        self.plan_deletes()
        if self.problems:
            raise DocumentInvalid(self.problems)
        self.price_changes(flavors)
        order = {"key": 0, "network": 1, "firewall": 2, "machine": 3, "address": 4, "volume": 5}
        self.changes.sort(key=lambda c: (c["action"] == "delete", order[c["type"]]))
        return Plan(
            stack=self.stack,
            changes=self.changes,
            quota=self.quota(flavors),
            cost=self.cost(flavors),
            fingerprint=_fingerprint(self.snapshots),
        )


def volume_monthly(size_gib: int) -> Decimal:
    """What a volume of `size_gib` costs a month: billing's current price of a GiB times its size."""
    if not size_gib:
        return Decimal(0)
    return prices.monthly_display(prices.resource_price(VOLUME) * size_gib)


def _rules_text(rules: list[dict]) -> str:
    """Rules as a plan shows them: "in tcp 443; in tcp 22 from 203.0.113.0/24; out any"."""
    parts = []
    for rule in rules:
        text = f"{rule['direction']} {rule['protocol']}"
        if "ports" in rule:
            text += f" {rule['ports']}"
        if "cidr" in rule:
            text += f" {'from' if rule['direction'] == 'in' else 'to'} {rule['cidr']}"
        parts.append(text)
    return "; ".join(parts) or "no rules"


def _fingerprint(snapshots: list[dict]) -> str:
    ordered = sorted(snapshots, key=lambda s: (s["type"], s["id"]))
    return hashlib.sha256(json.dumps(ordered, sort_keys=True, default=str).encode()).hexdigest()


def stack_plan_compute(*, tenant: Tenant, parsed: Parsed, doc: dict) -> Plan:
    """The changes that would bring the stack to `doc`; nothing is written. DocumentInvalid for what the catalog,
    the quota or the tenant's other resources make impossible."""
    return _Planner(tenant=tenant, parsed=parsed, doc=doc).run()


def stack_fingerprint(*, tenant: Tenant, parsed: Parsed, doc: dict) -> str:
    """The fingerprint a plan of `doc` would have now (to tell whether a stored plan went stale)."""
    try:
        return stack_plan_compute(tenant=tenant, parsed=parsed, doc=doc).fingerprint
    except DocumentInvalid:
        return ""


# --- lists and export --------------------------------------------------------------------------------------------


def _resource_rows(*, tenant: Tenant, names: list[str]):
    """(stack, type, id, name, key, detail, monthly price) of every resource of these stacks, in one query (a union
    over the six kinds); addresses carry no price here (the IPv4 price applies to each), volumes their size."""
    text = CharField()
    money = DecimalField(max_digits=12, decimal_places=2)
    zero = Value(Decimal("0.00"), output_field=money)

    def part(queryset, kind: str, name, detail, price):
        return (
            queryset.annotate(
                stack_name=Cast(KeyTextTransform(STACK_LABEL, "labels"), output_field=text),
                row_kind=Value(kind, output_field=text),
                row_id=Cast("id", output_field=text),
                row_name=name,
                row_key=Coalesce(KeyTextTransform(KEY_LABEL, "labels"), Value(""), output_field=text),
                row_detail=detail,
                row_price=price,
            )
            .filter(stack_name__in=names)
            .values_list("stack_name", "row_kind", "row_id", "row_name", "row_key", "row_detail", "row_price")
            .order_by()
        )

    machines = part(
        Instance.objects.for_tenant(tenant).live(),
        "machine",
        F("name"),
        Concat("flavor__name", Value(" · "), "image__name", Value(" · "), "state", output_field=text),
        Case(When(_NEVER_BUILT, then=zero), default=F("flavor__monthly_price"), output_field=money),
    )
    parts = [
        part(SSHKey.objects.for_tenant(tenant), "key", F("name"), F("fingerprint"), zero),
        part(Network.objects.for_tenant(tenant), "network", F("name"), F("cidr"), zero),
        part(Firewall.objects.for_tenant(tenant), "firewall", F("name"), F("description"), zero),
        part(
            PublicIP.objects.for_tenant(tenant).held(),
            "address",
            Cast("address", output_field=text),
            Coalesce(
                Concat(Value("assigned to "), "instance__name", output_field=text),
                Value("not assigned"),
                output_field=text,
            ),
            zero,
        ),
        # A volume's row carries its size in GiB where the others carry a price: the summary prices it.
        part(
            Volume.objects.for_tenant(tenant).exclude(state=VolumeState.DELETED),
            "volume",
            F("name"),
            Concat(Cast("size_gib", output_field=text), Value(" GiB · "), "state", output_field=text),
            Cast("size_gib", output_field=money),
        ),
    ]
    order = {kind: n for n, kind in enumerate(("machine", "volume", "address", "network", "firewall", "key"))}
    rows = list(machines.union(*parts, all=True))
    return sorted(rows, key=lambda row: (row[0], order[row[1]], row[3]))


def last_run_id(*, tenant: Tenant) -> Subquery:
    """Annotates a stack queryset with the id of each stack's latest run."""
    return Subquery(
        StackRun.objects.filter(tenant=tenant, stack=OuterRef("name")).order_by("-created_at", "-id").values("id")[:1]
    )


def stack_list(*, tenant: Tenant) -> QuerySet[Stack]:
    return Stack.objects.for_tenant(tenant).annotate(last_run_id=last_run_id(tenant=tenant)).order_by("name", "id")


def stack_summaries(*, tenant: Tenant, stacks: list[Stack], with_rows: bool = False) -> list[dict]:
    """Per stack: its resources (a count, or the rows), monthly cost and last run, in a constant number of queries."""
    names = [stack.name for stack in stacks]
    rows = _resource_rows(tenant=tenant, names=names) if names else []
    ipv4 = prices.resource_price(IPV4) if rows else Decimal(0)
    run_ids = [getattr(stack, "last_run_id", None) for stack in stacks]
    runs = {run.pk: run for run in StackRun.objects.filter(pk__in=[pk for pk in run_ids if pk])} if any(run_ids) else {}
    summaries = []
    for stack in stacks:
        mine = [row for row in rows if row[0] == stack.name]
        resources = []
        total = Decimal(0)
        for _stack, kind, pk, name, key, detail, price in mine:
            if kind == "volume":
                monthly = volume_monthly(int(price))
            else:
                monthly = ipv4 if kind == "address" else prices.monthly_display(price or 0)
            total += monthly
            resources.append(
                {
                    "type": kind,
                    "key": key,
                    "id": str(uuid.UUID(str(pk))),  # SQLite casts a UUID to its 32 hex digits
                    "name": name,
                    "detail": detail,
                    "monthly_cost": _money(monthly),
                }
            )
        summary = {
            "stack": stack,
            "name": stack.name,
            "resources": len(mine),
            "monthly_cost": _money(prices.monthly_display(total)),
            "currency": settings.BILLING_CURRENCY,
            "last_run": runs.get(getattr(stack, "last_run_id", None)),
        }
        if with_rows:
            summary["rows"] = resources
        summaries.append(summary)
    return summaries


def stack_export(*, tenant: Tenant, selectors: list[tuple[str, str | None]], stack: str) -> str:
    """A document (YAML) that declares the selected resources as they are, with what their machines refer to."""
    qs = _querysets(tenant)
    if not selectors:  # everything that belongs to no stack yet
        qs = {kind: queryset.exclude(labels__has_key=STACK_LABEL) for kind, queryset in qs.items()}
    machines = list(labels_filter(qs["machine"], selectors))
    networks = {n.pk: n for n in labels_filter(qs["network"], selectors) if not n.is_default}
    firewalls = {f.pk: f for f in labels_filter(qs["firewall"], selectors) if not f.is_default}
    keys = {k.fingerprint: k for k in labels_filter(qs["key"], selectors)}
    addresses = list(labels_filter(qs["address"], selectors))
    all_keys = {k.fingerprint: k for k in qs["key"]}
    doc: dict = {"stack": stack}
    regions = {m.region.name for m in machines if m.region_id} | {n.region.name for n in networks.values()}
    if len(regions) == 1:
        doc["region"] = regions.pop()
    key_names: dict[str, str] = {}
    machine_entries: dict[str, dict] = {}
    machine_address = {m.pk: m for m in machines}
    doc_names: dict = {}
    for base, members in _machine_groups(machines, stack).items():
        first = members[0][1]
        for _index, member in members:
            doc_names[member.pk] = base
        entry_name = base
        if len(members) > 1:
            machine_entries[entry_name] = {"count": len(members)}
        elif first.name != base:
            machine_entries[entry_name] = {"name_pattern": first.name}
        else:
            machine_entries[entry_name] = {}
    for machine in machines:
        if machine.pk in doc_names and machine_entries[doc_names[machine.pk]].get("flavor"):
            continue  # the group's first machine speaks for all of them
        entry: dict = {"flavor": machine.flavor.name, "image": machine.image.name}
        fw = [f for f in machine.firewalls.all() if not f.is_default]
        ports = sorted(machine.ports.all(), key=lambda p: p.index)
        nets = [p.network for p in ports]
        if not (len(nets) == 1 and nets[0].is_default):
            for net in nets:
                networks.setdefault(net.pk, net)
            entry["networks"] = [_doc_name(n.labels, n.name) for n in nets]
        for f in fw:
            firewalls.setdefault(f.pk, f)
        if fw:
            entry["firewalls"] = [_doc_name(f.labels, f.name) for f in fw]
        if machine.ssh_keys:
            refs = []
            for snap in machine.ssh_keys:
                saved = all_keys.get(snap.get("fingerprint"))
                name = _doc_name(saved.labels, saved.name) if saved else _slug(snap.get("name", "key"))
                key_names[snap.get("fingerprint")] = name
                keys.setdefault(snap.get("fingerprint"), saved or snap)
                refs.append(name)
            entry["keys"] = refs
        if machine.user_data:
            entry["user_data"] = machine.user_data
        if _user_labels(machine.labels):
            entry["labels"] = _user_labels(machine.labels)
        group = machine_entries[doc_names[machine.pk]]
        machine_entries[doc_names[machine.pk]] = {**entry, **group}
    own_ip = {}
    for address in addresses:
        key = address.labels.get(KEY_LABEL, "")
        if address.instance_id in machine_address and key.endswith("/ip"):
            machine_entries[doc_names[address.instance_id]]["public_ip"] = True
            own_ip[address.pk] = True
    if networks:
        doc["networks"] = {
            _doc_name(n.labels, n.name): _named({"cidr": n.cidr}, n.name, _doc_name(n.labels, n.name))
            for n in networks.values()
            if not n.is_default
        }
    if firewalls:
        doc["firewalls"] = {
            _doc_name(f.labels, f.name): _named(
                {**({"description": f.description} if f.description else {}), "rules": _rules_of(f)},
                f.name,
                _doc_name(f.labels, f.name),
            )
            for f in firewalls.values()
            if not f.is_default
        }
    if keys:
        doc["keys"] = {}
        for fingerprint, key in keys.items():
            name = key_names.get(fingerprint) or _doc_name(key.labels, key.name)
            public_key = key.public_key if isinstance(key, SSHKey) else key.get("public_key", "")
            saved_name = key.name if isinstance(key, SSHKey) else key.get("name", name)
            doc["keys"][name] = _named({"public_key": public_key}, saved_name, name)
    if machine_entries:
        doc["machines"] = machine_entries
    extra = [a for a in addresses if a.pk not in own_ip]
    if extra:
        doc["addresses"] = {}
        for address in extra:
            name = address.labels.get(KEY_LABEL) or f"ip-{address.address.replace('.', '-')}"
            entry = {}
            if address.instance_id:
                entry["assign_to"] = address.instance.name
            doc["addresses"][_slug(name)] = entry
    volumes = list(labels_filter(qs["volume"], selectors))
    if volumes:
        doc["volumes"] = {}
        for volume in volumes:
            entry = {"size_gib": volume.size_gib}
            if volume.instance_id in machine_address:
                entry["attach_to"] = volume.instance.name
            if _user_labels(volume.labels):
                entry["labels"] = _user_labels(volume.labels)
            doc["volumes"][_doc_name(volume.labels, volume.name)] = entry
    for section in ("networks", "firewalls", "keys"):
        if section in doc and not doc[section]:
            del doc[section]
    return dump_yaml(doc)


def _slug(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return cleaned[:40].strip("-") or "item"


def _doc_name(labels: dict, name: str) -> str:
    key = (labels or {}).get(KEY_LABEL)
    return key if key and "." not in key and "/" not in key else _slug(name)


def _named(entry: dict, real_name: str, doc_name: str) -> dict:
    return {**entry, "name": real_name} if real_name != doc_name else entry


def _machine_groups(machines: list[Instance], stack: str) -> dict[str, list[tuple[int, Instance]]]:
    """The document entries the machines make: a stack's `web.1`, `web.2` back into `web` with count 2 (when their
    names follow the default pattern), every other machine an entry of its own."""
    groups: dict[str, list[tuple[int, Instance]]] = {}
    for machine in machines:
        base, _, index = machine.labels.get(KEY_LABEL, "").rpartition(".")
        if machine.labels.get(STACK_LABEL) == stack and base and index.isdigit():
            groups.setdefault(base, []).append((int(index), machine))
    result: dict[str, list[tuple[int, Instance]]] = {}
    for base, members in groups.items():
        members.sort(key=lambda pair: pair[0])
        regular = [i for i, _ in members] == list(range(1, len(members) + 1)) and (
            len(members) == 1 or all(m.name == f"{base}-{i}" for i, m in members)
        )
        if regular:
            result[base] = members
        else:
            for _index, machine in members:
                result[_slug(machine.name)] = [(1, machine)]
    grouped = {m.pk for members in result.values() for _, m in members}
    for machine in machines:
        if machine.pk not in grouped:
            name = _slug(machine.name)
            while name in result:
                name = f"{name}-x"
            result[name] = [(1, machine)]
    return result
