"""What the commands know about each kind of resource: where it lives in the API, how to show it, how it settles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hangar_cli.client import Client
from hangar_cli.output import Column
from hangar_cli.output import field as f

# States in which a machine (or volume) is still doing something.
TRANSITIONAL = {
    "pending",
    "building",
    "starting",
    "stopping",
    "rebooting",
    "resizing",
    "migrating",
    "deleting",
    "creating",
    "attaching",
    "detaching",
    "extending",
    "restoring",
}


@dataclass
class Spec:
    """One kind of resource: `collection` is its API path (`/api/v1/<collection>/`), `kind` how messages name it."""

    collection: str
    kind: str
    command: str
    columns: Callable[[Client], list[Column]]
    details: Callable[[Client], list[Column]]
    key: str = "name"  # what people call it (a public address by its address)
    has_state: bool = False
    help: str = ""
    plural: str = ""

    def __post_init__(self):
        self.plural = self.plural or f"{self.kind}s"

    @property
    def a(self) -> str:
        """The kind with its article: `an instance`, `a volume`."""
        return f"{'an' if self.kind[0] in 'aeiou' else 'a'} {self.kind}"


def labels(item: dict):
    return item.get("labels") or {}


def _instance_columns(client: Client) -> list[Column]:
    return [
        ("NAME", f("name")),
        ("STATE", f("state")),
        ("FLAVOR", lambda item: client.name_of("flavors", item.get("flavor"))),
        ("IMAGE", lambda item: client.name_of("images", item.get("image"))),
        ("REGION", f("region")),
        ("PRIVATE IP", f("private_ip")),
        ("PUBLIC IP", f("public_ip")),
        ("LABELS", labels),
    ]


def _instance_details(client: Client) -> list[Column]:
    return [
        ("id", f("id")),
        ("name", f("name")),
        ("state", f("state")),
        ("power", f("power_state")),
        ("flavor", lambda item: client.name_of("flavors", item.get("flavor"))),
        ("resizing to", lambda item: client.name_of("flavors", item.get("resize_flavor"))),
        ("image", lambda item: client.name_of("images", item.get("image"))),
        ("region", f("region")),
        ("private ip", f("private_ip")),
        ("public ip", f("public_ip")),
        ("networks", lambda item: [f"{a['interface']} {a['ip']}/{a['prefix']}" for a in item.get("addresses", [])]),
        ("firewalls", lambda item: [client.name_of("firewalls", fw) for fw in item.get("firewalls", [])]),
        ("ssh keys", lambda item: [key.get("name") for key in item.get("ssh_keys", [])]),
        ("labels", labels),
        ("error", f("error_reason")),
        ("can", f("allowed_actions")),
        ("created", f("created_at")),
    ]


def _key_columns(client: Client) -> list[Column]:
    return [("NAME", f("name")), ("TYPE", f("key_type")), ("FINGERPRINT", f("fingerprint")), ("LABELS", labels)]


def _key_details(client: Client) -> list[Column]:
    return [
        ("id", f("id")),
        ("name", f("name")),
        ("type", lambda item: f"{item.get('key_type')} ({item.get('bits')} bits)"),
        ("fingerprint", f("fingerprint")),
        ("public key", f("public_key")),
        ("labels", labels),
        ("created", f("created_at")),
    ]


def _network_columns(client: Client) -> list[Column]:
    return [
        ("NAME", f("name")),
        ("CIDR", f("cidr")),
        ("REGION", f("region")),
        ("MACHINES", lambda item: f"{item.get('machine_count', 0)} / {item.get('capacity')}"),
        ("DEFAULT", f("is_default")),
        ("LABELS", labels),
    ]


def _network_details(client: Client) -> list[Column]:
    return [
        ("id", f("id")),
        ("name", f("name")),
        ("cidr", f("cidr")),
        ("gateway", f("gateway_ip")),
        ("region", f("region")),
        ("machines", lambda item: f"{item.get('machine_count', 0)} of {item.get('capacity')}"),
        ("default", f("is_default")),
        ("labels", labels),
        ("created", f("created_at")),
    ]


def rule_text(rule: dict) -> str:
    ports = ""
    if rule.get("port_min") is not None:
        ports = str(rule["port_min"])
        if rule.get("port_max") not in (None, rule["port_min"]):
            ports += f"-{rule['port_max']}"
    parts = [rule.get("direction", ""), rule.get("protocol", ""), ports, rule.get("cidr") or ""]
    return " ".join(part for part in parts if part)


def _firewall_columns(client: Client) -> list[Column]:
    return [
        ("NAME", f("name")),
        ("RULES", lambda item: len(item.get("rules", []))),
        ("MACHINES", lambda item: [client.name_of("instances", i) for i in item.get("instances", [])]),
        ("DEFAULT", f("is_default")),
        ("LABELS", labels),
    ]


def _firewall_details(client: Client) -> list[Column]:
    return [
        ("id", f("id")),
        ("name", f("name")),
        ("description", f("description")),
        ("default", f("is_default")),
        ("rules", lambda item: [rule_text(rule) for rule in item.get("rules", [])]),
        ("machines", lambda item: [client.name_of("instances", i) for i in item.get("instances", [])]),
        ("labels", labels),
        ("updated", f("updated_at")),
    ]


def _address_columns(client: Client) -> list[Column]:
    return [
        ("ADDRESS", f("address")),
        ("STATE", f("state")),
        ("MACHINE", lambda item: client.name_of("instances", item.get("instance"))),
        ("REGION", f("region")),
        ("LABELS", labels),
    ]


def _address_details(client: Client) -> list[Column]:
    return [
        ("id", f("id")),
        ("address", f("address")),
        ("state", f("state")),
        ("machine", lambda item: client.name_of("instances", item.get("instance"))),
        ("region", f("region")),
        ("labels", labels),
        ("allocated", f("allocated_at")),
        ("assigned", f("assigned_at")),
    ]


def _size(item: dict):
    size = item.get("size_gib")
    return f"{size} GiB" if size is not None else None


def _attachment(item: dict):
    attachment = item.get("attachment") or {}
    if not attachment:
        return None
    return f"{attachment.get('instance_name')} ({attachment.get('device')})"


def _volume_columns(client: Client) -> list[Column]:
    return [
        ("NAME", f("name")),
        ("STATE", f("state")),
        ("SIZE", _size),
        ("ATTACHED TO", _attachment),
        ("REGION", f("region")),
        ("LABELS", labels),
    ]


def _volume_details(client: Client) -> list[Column]:
    return [
        ("id", f("id")),
        ("name", f("name")),
        ("state", f("state")),
        ("size", _size),
        ("attached to", _attachment),
        ("region", f("region")),
        ("guest id", lambda item: f"/dev/disk/by-id/virtio-{item['guest_id']}" if item.get("guest_id") else None),
        ("from snapshot", lambda item: client.name_of("snapshots", item.get("source_snapshot"))),
        ("labels", labels),
        ("error", f("error_reason")),
        ("can", f("allowed_actions")),
        ("created", f("created_at")),
    ]


def _snapshot_columns(client: Client) -> list[Column]:
    return [
        ("NAME", f("name")),
        ("STATE", f("state")),
        ("SIZE", _size),
        ("SOURCE", f("source_name")),
        ("REGION", f("region")),
        ("CREATED", f("created_at")),
        ("LABELS", labels),
    ]


def _snapshot_details(client: Client) -> list[Column]:
    return [
        ("id", f("id")),
        ("name", f("name")),
        ("state", f("state")),
        ("size", _size),
        ("source", f("source_name")),
        ("region", f("region")),
        ("crash-consistent", f("crash_consistent")),
        ("labels", labels),
        ("error", f("error_reason")),
        ("can", f("allowed_actions")),
        ("created", f("created_at")),
    ]


INSTANCES = Spec(
    "instances", "instance", "instances", _instance_columns, _instance_details, has_state=True, help="Machines."
)
KEYS = Spec("ssh-keys", "SSH key", "keys", _key_columns, _key_details, help="SSH keys put on new machines.")
NETWORKS = Spec("networks", "network", "networks", _network_columns, _network_details, help="Private networks.")
FIREWALLS = Spec("firewalls", "firewall", "firewalls", _firewall_columns, _firewall_details, help="Firewalls.")
ADDRESSES = Spec(
    "ips",
    "public address",
    "addresses",
    _address_columns,
    _address_details,
    key="address",
    help="Public IPv4.",
    plural="public addresses",
)
VOLUMES = Spec("volumes", "volume", "volumes", _volume_columns, _volume_details, has_state=True, help="Volumes.")
SNAPSHOTS = Spec(
    "snapshots", "snapshot", "snapshots", _snapshot_columns, _snapshot_details, has_state=True, help="Snapshots."
)
SPECS = {spec.command: spec for spec in (INSTANCES, KEYS, NETWORKS, FIREWALLS, ADDRESSES, VOLUMES, SNAPSHOTS)}
