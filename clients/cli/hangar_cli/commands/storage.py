"""`hangar volumes …` and `hangar snapshots …`."""

from typing import Annotated

import typer

from hangar_cli.commands import (
    InstanceRef,
    Ref,
    add_common,
    events_table,
    find,
    settle,
    show,
)
from hangar_cli.errors import USAGE, HangarError
from hangar_cli.resources import (
    INSTANCES,
    SNAPSHOTS,
    VOLUMES,
)
from hangar_cli.state import (
    DEFAULT_WAIT_TIMEOUT,
    JsonOption,
    LabelOption,
    TimeoutOption,
    WaitOption,
    parse_labels,
    state,
)

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


@volumes.command("events")
def volume_events(ctx: typer.Context, ref: Ref, as_json: JsonOption = False) -> None:
    """A volume's event log."""
    events_table(ctx, VOLUMES, ref, as_json)


@snapshots.command("events")
def snapshot_events(ctx: typer.Context, ref: Ref, as_json: JsonOption = False) -> None:
    """A snapshot's event log."""
    events_table(ctx, SNAPSHOTS, ref, as_json)
