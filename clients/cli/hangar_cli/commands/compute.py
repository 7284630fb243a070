"""`hangar instances …` and `hangar keys …`."""

from typing import Annotated

import typer

from hangar_cli.commands import (
    InstanceRef,
    add_common,
    created,
    events_table,
    find,
    list_items,
    read_text,
    settle,
    show,
)
from hangar_cli.resources import (
    FIREWALLS,
    INSTANCES,
    KEYS,
    NETWORKS,
)
from hangar_cli.state import (
    DEFAULT_WAIT_TIMEOUT,
    JsonOption,
    LabelOption,
    TimeoutOption,
    WaitOption,
    label_filters,
    parse_labels,
    state,
)

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
        body["user_data"] = read_text(user_data, "user-data")
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
    events_table(ctx, INSTANCES, ref, as_json)


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
    body: dict = {"name": name, "public_key": read_text(public_key, "the public key").strip()}
    if label:
        body["labels"] = parse_labels(label)
    created(ctx, KEYS, client.post("ssh-keys/", body), as_json)
