"""The resource commands, one module per area; here what they share: finding a resource by name, showing it,
following it with --wait, and `list`/`show`/`delete` for every kind."""

from pathlib import Path
from typing import Annotated

import typer

from hangar_cli import output
from hangar_cli.client import Client
from hangar_cli.errors import USAGE, HangarError
from hangar_cli.resources import TRANSITIONAL, Spec
from hangar_cli.state import (
    DEFAULT_WAIT_TIMEOUT,
    JsonOption,
    LabelOption,
    TimeoutOption,
    WaitOption,
    YesOption,
    confirm,
    label_filters,
    state,
)
from hangar_cli.wait import wait_for_state

Ref = Annotated[str, typer.Argument(help="Its name or id.", show_default=False)]
InstanceRef = Annotated[str, typer.Argument(help="The machine's name or id.", metavar="INSTANCE", show_default=False)]


def path_of(spec: Spec, item: dict) -> str:
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
            path_of(spec, item),
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
        answer = client.delete(path_of(spec, item))
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


def read_text(value: str, what: str) -> str:
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


def events_table(ctx: typer.Context, spec: Spec, ref: str, as_json: bool) -> None:
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
