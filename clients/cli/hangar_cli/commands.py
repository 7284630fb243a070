"""The resource commands: `hangar instances|keys|networks|firewalls|addresses|volumes|snapshots …` and `label`."""

from pathlib import Path
from typing import Annotated

import typer

from hangar_cli import output
from hangar_cli.client import Client
from hangar_cli.errors import USAGE, HangarError
from hangar_cli.resources import (
    ADDRESSES,
    FIREWALLS,
    INSTANCES,
    KEYS,
    NETWORKS,
    SNAPSHOTS,
    SPECS,
    TRANSITIONAL,
    VOLUMES,
    Spec,
    rule_text,
)
from hangar_cli.state import (
    DEFAULT_WAIT_TIMEOUT,
    JsonOption,
    LabelOption,
    TimeoutOption,
    WaitOption,
    YesOption,
    confirm,
    label_filters,
    parse_labels,
    state,
)
from hangar_cli.wait import wait_for_state

Ref = Annotated[str, typer.Argument(help="Its name or id.", show_default=False)]
InstanceRef = Annotated[str, typer.Argument(help="The machine's name or id.", metavar="INSTANCE", show_default=False)]


def _path(spec: Spec, item: dict) -> str:
    return f"{spec.collection}/{item['id']}/"


def find(client: Client, spec: Spec, ref: str) -> dict:
    return client.find(spec.collection, ref, kind=spec.kind, key=spec.key)


def show(ctx: typer.Context, spec: Spec, item: dict, as_json: bool) -> None:
    if state(ctx).as_json or as_json:
        output.print_json(item)
    else:
        output.details(item, spec.details(state(ctx).client()), title=f"{spec.kind} {item.get(spec.key)}")


def settle(
    ctx: typer.Context, spec: Spec, item: dict, *, target: str, wait: bool, timeout: float, as_json: bool
) -> None:
    """Shows the accepted resource, or with --wait follows it until it leaves its transitional state; ending
    anywhere but `target` (when given) or in `error` is a failure."""
    client = state(ctx).client()
    if wait and item.get("state") in TRANSITIONAL:

        def failed(current: dict) -> str:
            now = current.get("state", "")
            if now == "error":
                return current.get("error_reason") or "it is in error"
            if target and now not in TRANSITIONAL and now != target:
                return f"it ended {now!r}, not {target!r}"
            return ""

        item = wait_for_state(
            client,
            _path(spec, item),
            what=f"{spec.kind} {item.get(spec.key)}",
            settled=lambda current: current.get("state") not in TRANSITIONAL,
            failed=failed,
            timeout=timeout,
            gone_is_done=target == "deleted",
        ) or {**item, "state": "deleted"}
    elif not (state(ctx).as_json or as_json):
        follow = " (add --wait to follow it)" if item.get("state") in TRANSITIONAL else ""
        output.note(f"{spec.kind} {item.get(spec.key)}: {item.get('state')}{follow}")
    show(ctx, spec, item, as_json)


def list_items(ctx: typer.Context, spec: Spec, params: list[tuple[str, str]], as_json: bool) -> None:
    client = state(ctx, as_json).client()
    items = client.list(spec.collection, params)
    if state(ctx).as_json:
        output.print_json(items)
    else:
        output.table(items, spec.columns(client), empty=f"No {spec.plural}.")


def add_common(app: typer.Typer, spec: Spec, *, with_list: bool = True, deletable: bool = True) -> None:
    """`list`, `show` and `delete` for a kind of resource."""

    if with_list:

        @app.command("list")
        def list_(ctx: typer.Context, label: LabelOption = None, as_json: JsonOption = False) -> None:
            list_items(ctx, spec, label_filters(label), as_json)

        list_.__doc__ = f"List your {spec.plural} (every page); --label key=value keeps those carrying that label."

    @app.command("show")
    def show_(ctx: typer.Context, ref: Ref, as_json: JsonOption = False) -> None:
        client = state(ctx, as_json).client()
        show(ctx, spec, find(client, spec, ref), as_json)

    show_.__doc__ = f"Show one {spec.kind}."

    if not deletable:
        return

    @app.command("delete")
    def delete_(
        ctx: typer.Context,
        ref: Ref,
        yes: YesOption = False,
        wait: WaitOption = False,
        timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT,
        as_json: JsonOption = False,
    ) -> None:
        client = state(ctx, as_json).client()
        item = find(client, spec, ref)
        confirm(f"Delete {spec.kind} {item.get(spec.key)}?", yes=yes)
        answer = client.delete(_path(spec, item))
        if spec.has_state:
            settle(
                ctx,
                spec,
                answer or {**item, "state": "deleted"},
                target="deleted",
                wait=wait,
                timeout=timeout,
                as_json=as_json,
            )
        elif state(ctx).as_json:
            output.print_json({"id": item["id"], "deleted": True})
        else:
            output.note(f"Deleted {spec.kind} {item.get(spec.key)}.")

    delete_.__doc__ = f"Delete {spec.a}" + (" (--wait follows it to the end)." if spec.has_state else ".")


def created(ctx: typer.Context, spec: Spec, item: dict, as_json: bool) -> None:
    if not (state(ctx).as_json or as_json):
        output.note(f"Created {spec.kind} {item.get(spec.key)}.")
    show(ctx, spec, item, as_json)


def _read_text(value: str, what: str) -> str:
    """`@path` or `-` (stdin) for file contents; anything else is the text itself."""
    if value == "-":
        return typer.get_text_stream("stdin").read()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_text()
        except OSError as error:
            raise HangarError(f"Cannot read {what} from {path}: {error.strerror}.", exit_code=USAGE) from error
    return value


# -- instances -------------------------------------------------------------------------------------------------------

instances = typer.Typer(help="Machines: list, show, create, start, stop, reboot, resize, rename, delete.")


add_common(instances, INSTANCES, with_list=False)


@instances.command("create")
def instance_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The machine's name (and hostname).")],
    flavor: Annotated[str, typer.Option("--flavor", "-f", help="Size: a flavor's name or id (`hangar flavors`).")],
    image: Annotated[str, typer.Option("--image", "-i", help="An image's name or id (`hangar images`).")],
    key: Annotated[list[str] | None, typer.Option("--key", "-k", help="An SSH key's name or id (repeat).")] = None,
    network: Annotated[
        list[str] | None, typer.Option("--network", "-n", help="A network's name or id (repeat; the first is eth0).")
    ] = None,
    firewall: Annotated[list[str] | None, typer.Option("--firewall", help="A firewall's name or id (repeat).")] = None,
    public_ip: Annotated[bool, typer.Option("--public-ip", help="Give it a new public IPv4 address.")] = False,
    user_data: Annotated[
        str | None, typer.Option("--user-data", help="cloud-init user-data: @file, - for stdin, or the text.")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="A region's name (`hangar regions`).")] = None,
    label: LabelOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Launch a machine (asynchronous: --wait follows it until it runs)."""
    labels_ = parse_labels(label)
    client = state(ctx, as_json).client()
    body: dict = {
        "name": name,
        "flavor": client.find("flavors", flavor, kind="flavor", catalog=True)["id"],
        "image": client.find("images", image, kind="image", catalog=True)["id"],
        "ssh_keys": [find(client, KEYS, ref)["id"] for ref in key or []],
    }
    if network:
        body["networks"] = [find(client, NETWORKS, ref)["id"] for ref in network]
    if firewall:
        body["firewalls"] = [find(client, FIREWALLS, ref)["id"] for ref in firewall]
    if public_ip:
        body["public_ip"] = True
    if user_data is not None:
        body["user_data"] = _read_text(user_data, "user-data")
    if region:
        body["region"] = region
    if labels_:
        body["labels"] = labels_
    item = client.post("instances/", body)
    settle(ctx, INSTANCES, item, target="running", wait=wait, timeout=timeout, as_json=as_json)


def _instance_action(ctx, ref: str, body: dict, *, target: str, wait: bool, timeout: float, as_json: bool) -> None:
    client = state(ctx, as_json).client()
    item = find(client, INSTANCES, ref)
    answer = client.post(f"instances/{item['id']}/actions/", body)
    settle(ctx, INSTANCES, answer, target=target, wait=wait, timeout=timeout, as_json=as_json)


def _add_instance_action(verb: str, target: str, doc: str) -> None:
    def command(
        ctx: typer.Context,
        ref: InstanceRef,
        wait: WaitOption = False,
        timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT,
        as_json: JsonOption = False,
    ) -> None:
        _instance_action(ctx, ref, {"type": verb}, target=target, wait=wait, timeout=timeout, as_json=as_json)

    command.__doc__ = doc
    instances.command(verb)(command)


for _verb, _target, _doc in (
    ("start", "running", "Start a stopped machine."),
    ("stop", "stopped", "Stop a running machine (it stays billed: its capacity is still held)."),
    ("reboot", "running", "Reboot a running machine."),
):
    _add_instance_action(_verb, _target, _doc)


@instances.command("resize")
def instance_resize(
    ctx: typer.Context,
    ref: InstanceRef,
    flavor: Annotated[str, typer.Option("--flavor", "-f", help="The new flavor's name or id.")],
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Resize a stopped machine to another flavor (the disk never shrinks)."""
    client = state(ctx, as_json).client()
    flavor_id = client.find("flavors", flavor, kind="flavor", catalog=True)["id"]
    body = {"type": "resize", "flavor": flavor_id}
    _instance_action(ctx, ref, body, target="stopped", wait=wait, timeout=timeout, as_json=as_json)


@instances.command("rename")
def instance_rename(ctx: typer.Context, ref: InstanceRef, new_name: str, as_json: JsonOption = False) -> None:
    """Rename a machine (its display name; the hostname was set when it was built)."""
    client = state(ctx, as_json).client()
    item = find(client, INSTANCES, ref)
    show(ctx, INSTANCES, client.patch(f"instances/{item['id']}/", {"name": new_name}), as_json)


@instances.command("events")
def instance_events(ctx: typer.Context, ref: InstanceRef, as_json: JsonOption = False) -> None:
    """A machine's action log: who asked for what, and how it ended."""
    _events(ctx, INSTANCES, ref, as_json)


@instances.command("list")
def instance_list(
    ctx: typer.Context,
    label: LabelOption = None,
    state_: Annotated[
        list[str] | None, typer.Option("--state", "-s", help="Only machines in this state (repeat).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only machines whose name contains this.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List your machines (every page); filter by --state, --name, --label key=value."""
    params = [("state", value) for value in state_ or []] + ([("name", name)] if name else [])
    list_items(ctx, INSTANCES, params + label_filters(label), as_json)


# -- SSH keys --------------------------------------------------------------------------------------------------------

keys = typer.Typer(help="SSH keys: list, show, create, delete.")
add_common(keys, KEYS)


@keys.command("create")
def key_create(
    ctx: typer.Context,
    name: str,
    public_key: Annotated[
        str, typer.Option("--public-key", "-p", help="The public key: @file (e.g. @~/.ssh/id_ed25519.pub), - or text.")
    ],
    label: LabelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add an SSH key (its public half)."""
    client = state(ctx, as_json).client()
    body: dict = {"name": name, "public_key": _read_text(public_key, "the public key").strip()}
    if label:
        body["labels"] = parse_labels(label)
    created(ctx, KEYS, client.post("ssh-keys/", body), as_json)


# -- networks --------------------------------------------------------------------------------------------------------

networks = typer.Typer(help="Private networks: list, show, create, rename, delete.")
add_common(networks, NETWORKS)


@networks.command("create")
def network_create(
    ctx: typer.Context,
    name: str,
    cidr: Annotated[str, typer.Option("--cidr", help="A private range, /16 to /28, e.g. 10.20.0.0/24.")],
    region: Annotated[str | None, typer.Option("--region", help="A region's name.")] = None,
    label: LabelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a private network."""
    client = state(ctx, as_json).client()
    body: dict = {"name": name, "cidr": cidr}
    if region:
        body["region"] = region
    if label:
        body["labels"] = parse_labels(label)
    created(ctx, NETWORKS, client.post("networks/", body), as_json)


@networks.command("rename")
def network_rename(ctx: typer.Context, ref: Ref, new_name: str, as_json: JsonOption = False) -> None:
    """Rename a network."""
    client = state(ctx, as_json).client()
    item = find(client, NETWORKS, ref)
    show(ctx, NETWORKS, client.patch(f"networks/{item['id']}/", {"name": new_name}), as_json)


# -- firewalls -------------------------------------------------------------------------------------------------------

firewalls = typer.Typer(help="Firewalls: list, show, create, delete; `rules` to change them; attach to machines.")
add_common(firewalls, FIREWALLS)
rules = typer.Typer(help="A firewall's rules: list, add, remove (applied live to its machines).")
firewalls.add_typer(rules, name="rules")

RULE_HELP = (
    "A rule: 'DIRECTION PROTOCOL [PORT|FROM-TO] [CIDR]', e.g. 'in tcp 443', 'in tcp 8000-8080 10.0.0.0/8', 'out any'."
)


def parse_rule(text: str, description: str = "") -> dict:
    parts = text.split()
    if len(parts) < 2 or parts[0] not in ("in", "out"):
        raise HangarError(f"The rule {text!r} must read {RULE_HELP[8:]}", exit_code=USAGE)
    rule: dict = {"direction": parts[0], "protocol": parts[1]}
    for part in parts[2:]:
        if "/" in part or ":" in part or part.count(".") == 3:
            rule["cidr"] = part
            continue
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise HangarError(f"{part!r} in the rule {text!r} is neither a port, a range nor a CIDR.", exit_code=USAGE)
        rule["port_min"] = int(low)
        if high:
            rule["port_max"] = int(high)
    if description:
        rule["description"] = description
    return rule


def _rule_body(rule: dict) -> dict:
    return {key: value for key, value in rule.items() if value not in (None, "")}


@firewalls.command("create")
def firewall_create(
    ctx: typer.Context,
    name: str,
    rule: Annotated[list[str] | None, typer.Option("--rule", "-r", help=RULE_HELP + " Repeat.")] = None,
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    label: LabelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a firewall with its rules."""
    client = state(ctx, as_json).client()
    body: dict = {"name": name, "rules": [parse_rule(text) for text in rule or []]}
    if description:
        body["description"] = description
    if label:
        body["labels"] = parse_labels(label)
    created(ctx, FIREWALLS, client.post("firewalls/", body), as_json)


def _show_rules(ctx: typer.Context, firewall: dict, as_json: bool) -> None:
    if state(ctx).as_json or as_json:
        output.print_json(firewall.get("rules", []))
        return
    numbered = [{"n": index, **rule} for index, rule in enumerate(firewall.get("rules", []), start=1)]
    f = output.field
    columns = [("#", f("n")), ("RULE", rule_text), ("DESCRIPTION", f("description"))]
    output.table(numbered, columns, title=f"firewall {firewall['name']}", empty="No rules: everything is refused.")


@rules.command("list")
def rules_list(ctx: typer.Context, ref: Ref, as_json: JsonOption = False) -> None:
    """A firewall's rules, numbered."""
    client = state(ctx, as_json).client()
    _show_rules(ctx, find(client, FIREWALLS, ref), as_json)


@rules.command("add")
def rules_add(
    ctx: typer.Context,
    ref: Ref,
    rule: Annotated[str, typer.Argument(help=RULE_HELP)],
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Add a rule to a firewall."""
    client = state(ctx, as_json).client()
    firewall = find(client, FIREWALLS, ref)
    new_rules = [_rule_body(r) for r in firewall.get("rules", [])] + [parse_rule(rule, description)]
    _show_rules(ctx, client.patch(f"firewalls/{firewall['id']}/", {"rules": new_rules}), as_json)


@rules.command("remove")
def rules_remove(
    ctx: typer.Context,
    ref: Ref,
    number: Annotated[int, typer.Argument(help="The rule's number, as `rules list` shows it.", min=1)],
    as_json: JsonOption = False,
) -> None:
    """Remove a rule by its number."""
    client = state(ctx, as_json).client()
    firewall = find(client, FIREWALLS, ref)
    current = firewall.get("rules", [])
    if number > len(current):
        raise HangarError(
            f"Firewall {firewall['name']} has {len(current)} rule(s); there is no rule {number}.", exit_code=USAGE
        )
    new_rules = [_rule_body(r) for index, r in enumerate(current, start=1) if index != number]
    _show_rules(ctx, client.patch(f"firewalls/{firewall['id']}/", {"rules": new_rules}), as_json)


def _set_machine_firewalls(ctx, ref: str, instance_ref: str, *, attach: bool, as_json: bool) -> None:
    client = state(ctx, as_json).client()
    firewall = find(client, FIREWALLS, ref)
    instance = find(client, INSTANCES, instance_ref)
    current = [fw for fw in instance.get("firewalls", []) if fw != firewall["id"]]
    wanted = [*current, firewall["id"]] if attach else current
    show(ctx, INSTANCES, client.patch(f"instances/{instance['id']}/", {"firewalls": wanted}), as_json)


@firewalls.command("attach")
def firewall_attach(ctx: typer.Context, ref: Ref, instance: InstanceRef, as_json: JsonOption = False) -> None:
    """Put a machine behind a firewall too (applied live)."""
    _set_machine_firewalls(ctx, ref, instance, attach=True, as_json=as_json)


@firewalls.command("detach")
def firewall_detach(ctx: typer.Context, ref: Ref, instance: InstanceRef, as_json: JsonOption = False) -> None:
    """Take a machine out from behind a firewall."""
    _set_machine_firewalls(ctx, ref, instance, attach=False, as_json=as_json)


# -- public addresses ------------------------------------------------------------------------------------------------

addresses = typer.Typer(help="Public IPv4 addresses: list, show, allocate, assign, unassign, release.")
add_common(addresses, ADDRESSES, deletable=False)
AddressRef = Annotated[str, typer.Argument(help="The address (e.g. 203.0.113.17) or its id.", metavar="ADDRESS")]


@addresses.command("allocate")
def address_allocate(
    ctx: typer.Context,
    instance: Annotated[str | None, typer.Option("--instance", help="Assign it to this machine at once.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Without --instance: the region it serves.")] = None,
    label: LabelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Allocate a public address (billed until released)."""
    client = state(ctx, as_json).client()
    body: dict = {}
    if instance:
        body["instance"] = find(client, INSTANCES, instance)["id"]
    if region:
        body["region"] = region
    if label:
        body["labels"] = parse_labels(label)
    item = client.post("ips/", body)
    if not (state(ctx).as_json or as_json):
        output.note(f"Allocated {item['address']}.")
    show(ctx, ADDRESSES, item, as_json)


@addresses.command("assign")
def address_assign(ctx: typer.Context, ref: AddressRef, instance: InstanceRef, as_json: JsonOption = False) -> None:
    """Map an address onto a machine (moving it if it is on another)."""
    client = state(ctx, as_json).client()
    item = find(client, ADDRESSES, ref)
    body = {"type": "assign", "instance": find(client, INSTANCES, instance)["id"]}
    show(ctx, ADDRESSES, client.post(f"ips/{item['id']}/actions/", body), as_json)


@addresses.command("unassign")
def address_unassign(ctx: typer.Context, ref: AddressRef, as_json: JsonOption = False) -> None:
    """Take an address off its machine, keeping it."""
    client = state(ctx, as_json).client()
    item = find(client, ADDRESSES, ref)
    show(ctx, ADDRESSES, client.post(f"ips/{item['id']}/actions/", {"type": "unassign"}), as_json)


@addresses.command("release")
def address_release(ctx: typer.Context, ref: AddressRef, yes: YesOption = False, as_json: JsonOption = False) -> None:
    """Give an address back (billing stops)."""
    client = state(ctx, as_json).client()
    item = find(client, ADDRESSES, ref)
    confirm(f"Release {item['address']}?", yes=yes)
    client.delete(f"ips/{item['id']}/")
    if state(ctx).as_json or as_json:
        output.print_json({"id": item["id"], "address": item["address"], "released": True})
    else:
        output.note(f"Released {item['address']}.")


# -- volumes and snapshots -------------------------------------------------------------------------------------------

volumes = typer.Typer(help="Volumes: list, show, create, attach, detach, extend, rename, events, delete.")
add_common(volumes, VOLUMES)
SizeOption = Annotated[int, typer.Option("--size", help="Size in GiB.", min=1)]


@volumes.command("create")
def volume_create(
    ctx: typer.Context,
    name: str,
    size: Annotated[
        int | None, typer.Option("--size", help="Size in GiB (from a snapshot: at least its size, the default).", min=1)
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="A region's name.")] = None,
    snapshot: Annotated[str | None, typer.Option("--snapshot", help="Make it from this snapshot.")] = None,
    label: LabelOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Create a volume, empty (--size) or from a snapshot (--snapshot); --wait until it is available."""
    labels_ = parse_labels(label)
    if size is None and not snapshot:
        raise HangarError("Give --size GIB (or --snapshot NAME to copy a snapshot).", exit_code=USAGE)
    client = state(ctx, as_json).client()
    body: dict = {"name": name}
    if size is not None:
        body["size_gib"] = size
    if region:
        body["region"] = region
    if snapshot:
        body["snapshot"] = find(client, SNAPSHOTS, snapshot)["id"]
    if labels_:
        body["labels"] = labels_
    item = client.post("volumes/", body)
    settle(ctx, VOLUMES, item, target="available", wait=wait, timeout=timeout, as_json=as_json)


def _volume_action(ctx, ref: str, verb: str, body: dict, *, target: str, wait: bool, timeout: float, as_json: bool):
    client = state(ctx, as_json).client()
    item = find(client, VOLUMES, ref)
    answer = client.post(f"volumes/{item['id']}/{verb}/", body)
    settle(ctx, VOLUMES, answer, target=target, wait=wait, timeout=timeout, as_json=as_json)


@volumes.command("attach")
def volume_attach(
    ctx: typer.Context,
    ref: Ref,
    instance: InstanceRef,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Attach a volume to a machine of its region (running or stopped)."""
    instance_id = find(state(ctx, as_json).client(), INSTANCES, instance)["id"]
    body = {"instance": instance_id}
    _volume_action(ctx, ref, "attach", body, target="in-use", wait=wait, timeout=timeout, as_json=as_json)


@volumes.command("detach")
def volume_detach(
    ctx: typer.Context,
    ref: Ref,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Detach a volume from its machine."""
    _volume_action(ctx, ref, "detach", {}, target="available", wait=wait, timeout=timeout, as_json=as_json)


@volumes.command("extend")
def volume_extend(
    ctx: typer.Context,
    ref: Ref,
    size: SizeOption,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Grow a volume to --size GiB (volumes never shrink)."""
    body = {"size_gib": size}
    _volume_action(ctx, ref, "extend", body, target="", wait=wait, timeout=timeout, as_json=as_json)


@volumes.command("rename")
def volume_rename(ctx: typer.Context, ref: Ref, new_name: str, as_json: JsonOption = False) -> None:
    """Rename a volume."""
    client = state(ctx, as_json).client()
    item = find(client, VOLUMES, ref)
    show(ctx, VOLUMES, client.patch(f"volumes/{item['id']}/", {"name": new_name}), as_json)


snapshots = typer.Typer(help="Snapshots of volumes: list, show, create, events, delete.")
add_common(snapshots, SNAPSHOTS)


@snapshots.command("create")
def snapshot_create(
    ctx: typer.Context,
    name: str,
    volume: Annotated[str, typer.Option("--volume", help="The volume's name or id.")],
    label: LabelOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Snapshot a volume (available or in use); `volumes create --snapshot` makes a volume of it."""
    labels_ = parse_labels(label)
    client = state(ctx, as_json).client()
    body: dict = {"name": name, "volume": find(client, VOLUMES, volume)["id"]}
    if labels_:
        body["labels"] = labels_
    item = client.post("snapshots/", body)
    settle(ctx, SNAPSHOTS, item, target="available", wait=wait, timeout=timeout, as_json=as_json)


def _events(ctx: typer.Context, spec: Spec, ref: str, as_json: bool) -> None:
    client = state(ctx, as_json).client()
    item = find(client, spec, ref)
    events = client.list(f"{spec.collection}/{item['id']}/events")
    if state(ctx).as_json:
        output.print_json(events)
        return
    f = output.field
    by = ("BY", lambda event: event.get("user") or event.get("actor"))
    columns = [("WHEN", f("created_at")), ("ACTION", f("action")), ("RESULT", f("result")), by]
    output.table(events, [*columns, ("MESSAGE", f("message"))], empty="No events.")


@volumes.command("events")
def volume_events(ctx: typer.Context, ref: Ref, as_json: JsonOption = False) -> None:
    """A volume's event log."""
    _events(ctx, VOLUMES, ref, as_json)


@snapshots.command("events")
def snapshot_events(ctx: typer.Context, ref: Ref, as_json: JsonOption = False) -> None:
    """A snapshot's event log."""
    _events(ctx, SNAPSHOTS, ref, as_json)


# -- labels ----------------------------------------------------------------------------------------------------------

labels = typer.Typer(help="Labels (key=value) on any resource: set, unset.")
KindArgument = Annotated[
    str, typer.Argument(help=f"The kind of resource: {', '.join(SPECS)}.", metavar="KIND", show_default=False)
]


def _spec(kind: str) -> Spec:
    spec = SPECS.get(kind) or SPECS.get(kind + "s") or {s.kind: s for s in SPECS.values()}.get(kind)
    if spec is None:
        raise HangarError(f"{kind!r} is not a kind of resource; one of: {', '.join(SPECS)}.", exit_code=USAGE)
    return spec


@labels.command("set")
def label_set(
    ctx: typer.Context,
    kind: KindArgument,
    ref: Ref,
    pairs: Annotated[list[str], typer.Argument(help="key=value (several at once).", metavar="KEY=VALUE...")],
    as_json: JsonOption = False,
) -> None:
    """Set labels on a resource (other labels stay)."""
    spec = _spec(kind)
    client = state(ctx, as_json).client()
    item = find(client, spec, ref)
    merged = {**(item.get("labels") or {}), **parse_labels(pairs)}
    show(ctx, spec, client.patch(_path(spec, item), {"labels": merged}), as_json)


@labels.command("unset")
def label_unset(
    ctx: typer.Context,
    kind: KindArgument,
    ref: Ref,
    keys_: Annotated[list[str], typer.Argument(help="The keys to remove.", metavar="KEY...")],
    as_json: JsonOption = False,
) -> None:
    """Remove labels from a resource by key."""
    spec = _spec(kind)
    client = state(ctx, as_json).client()
    item = find(client, spec, ref)
    current = item.get("labels") or {}
    unknown = [key for key in keys_ if key not in current]
    if unknown:
        raise HangarError(
            f"{spec.kind} {item.get(spec.key)} has no label {', '.join(map(repr, unknown))}; it has: "
            f"{output.labels_text(current)}.",
            exit_code=USAGE,
        )
    remaining = {key: value for key, value in current.items() if key not in keys_}
    show(ctx, spec, client.patch(_path(spec, item), {"labels": remaining}), as_json)
