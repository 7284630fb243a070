"""Infrastructure as code: `hangar plan`, `apply`, `destroy`, `export` and `hangar stacks …`."""

from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlsplit

import typer
import yaml

from hangar_cli import output
from hangar_cli.client import Client
from hangar_cli.errors import REFUSED, SERVER, USAGE, HangarError
from hangar_cli.state import (
    DEFAULT_WAIT_TIMEOUT,
    JsonOption,
    TimeoutOption,
    YesOption,
    confirm,
    label_filters,
    state,
)
from hangar_cli.wait import wait_for_run

FileOption = Annotated[
    str, typer.Option("--file", "-f", help="The stack document (YAML or JSON); - reads stdin.", metavar="FILE")
]
NameArgument = Annotated[str, typer.Argument(help="The stack's name.", metavar="NAME", show_default=False)]
SYMBOLS = {"create": ("+", "green"), "update": ("~", "yellow"), "replace": ("-/+", "magenta"), "delete": ("-", "red")}


def read_document(path: str) -> str:
    if path == "-":
        text = typer.get_text_stream("stdin").read()
    else:
        try:
            text = Path(path).expanduser().read_text()
        except OSError as error:
            raise HangarError(f"Cannot read {path}: {error.strerror}.", exit_code=USAGE) from error
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise HangarError(f"{path} is not valid YAML{where}: {problem}.", exit_code=USAGE) from error
    return text


def _value(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list | dict):
        return output.text(value)
    return str(value)


def change_text(change: dict) -> str:
    parts = [
        f"{name}: {_value(before)} → {_value(after)}" for name, (before, after) in change.get("fields", {}).items()
    ]
    if change.get("reason"):
        parts.append(change["reason"])
    return "; ".join(parts)


def money(value) -> str:
    return "—" if value in (None, "") else str(value)


def signed(value) -> str:
    text = money(value)
    return text if text.startswith(("-", "—", "+")) else f"+{text}"


def render_plan(plan: dict) -> None:
    console = output.stdout()
    cost = plan.get("cost", {})
    console.print(f"[bold]Plan for stack {plan.get('stack')}[/bold] (plan {plan.get('id')})")
    if plan.get("no_changes"):
        console.print("No changes: the resources match the document.")
    else:
        from rich.table import Table

        grid = Table(header_style="bold")
        with_cost = any("monthly_difference" in change for change in plan.get("changes", []))
        for header in ("", "ACTION", "TYPE", "NAME", "CHANGES", *(["MONTHLY"] if with_cost else [])):
            grid.add_column(header, overflow="fold", justify="right" if header == "MONTHLY" else "left")
        for change in plan.get("changes", []):
            symbol, colour = SYMBOLS.get(change["action"], ("?", "white"))
            cells = [
                f"[{colour}]{symbol}[/{colour}]",
                f"[{colour}]{change['action']}[/{colour}]",
                change.get("type", ""),
                change.get("name", ""),
                change_text(change) or "—",
            ]
            if with_cost:
                cells.append(signed(change.get("monthly_difference")))
            grid.add_row(*cells)
        console.print(grid)
        counts = {action: 0 for action in SYMBOLS}
        for change in plan.get("changes", []):
            counts[change["action"]] = counts.get(change["action"], 0) + 1
        console.print(", ".join(f"{count} to {action}" for action, count in counts.items()))
    quota = plan.get("quota", {})
    if not quota.get("ok", True):
        console.print("[red]Over quota:[/red]")
        for problem in quota.get("problems", []):
            console.print(f"  {problem}")
    if cost:
        currency = cost.get("currency", "")
        console.print(
            f"Monthly cost: {money(cost.get('monthly_before'))} → {money(cost.get('monthly_after'))} {currency} "
            f"([bold]{signed(cost.get('difference'))} {currency}[/bold] a month)"
        )


def make_plan(client: Client, document: str) -> dict:
    return client.post("stacks/plans/", {"document": document})


def run_path(location: str, body: dict) -> str:
    if location:
        return urlsplit(location).path.split("/api/v1/", 1)[-1]
    if body.get("id"):
        return f"stacks/runs/{body['id']}/"
    raise HangarError("The server accepted the work but did not say where to follow it.", exit_code=SERVER)


def follow(ctx: typer.Context, client: Client, location: str, body: dict, *, what: str, timeout: float) -> dict:
    run = wait_for_run(client, run_path(location, body), what=what, timeout=timeout)
    if not state(ctx).as_json:
        output.note(f"{what}: {run['state']} ({run.get('done', 0)} of {run.get('total', 0)} steps).")
    return run


def plan(ctx: typer.Context, file: FileOption, as_json: JsonOption = False) -> None:
    """Show what applying a stack document would change, and what it would cost a month. Changes nothing."""
    client = state(ctx, as_json).client()
    result = make_plan(client, read_document(file))
    if state(ctx).as_json:
        output.print_json(result)
    else:
        render_plan(result)


def apply(
    ctx: typer.Context,
    file: FileOption,
    yes: YesOption = False,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Plan a stack document, show the plan and its cost, ask, apply it and follow the progress until done."""
    client = state(ctx, as_json).client()
    result = make_plan(client, read_document(file))
    if not state(ctx).as_json:
        render_plan(result)
    if result.get("no_changes"):
        if state(ctx).as_json:
            output.print_json({"plan": result, "run": None})
        return
    quota = result.get("quota", {})
    if not quota.get("ok", True):
        raise HangarError(
            "The plan needs more than your quota allows; nothing was applied.",
            exit_code=REFUSED,
            code="quota_exceeded",
            details={"quota": quota.get("problems", [])},
        )
    confirm(f"Apply {len(result.get('changes', []))} change(s) to stack {result.get('stack')}?", yes=yes)
    body, location = client.post_accepted(f"stacks/plans/{result['id']}/apply/")
    run = follow(ctx, client, location, body, what=f"apply {result.get('stack')}", timeout=timeout)
    if state(ctx).as_json:
        output.print_json({"plan": result, "run": run})


def destroy(
    ctx: typer.Context,
    name: NameArgument,
    yes: YesOption = False,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Delete every resource of a stack, and follow the progress until done."""
    client = state(ctx, as_json).client()
    stack = client.get(f"stacks/{quote(name, safe='')}/")
    if not state(ctx).as_json:
        show_stack(stack)
    confirm(f"Destroy stack {name} and every resource in it?", yes=yes)
    body, location = client.delete_accepted(f"stacks/{quote(name, safe='')}/")
    run = follow(ctx, client, location, body, what=f"destroy {name}", timeout=timeout)
    if state(ctx).as_json:
        output.print_json(run)


def export(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A stack's name.", show_default=False)] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="Instead of a stack: the resources with this label.", metavar="KEY=VALUE"),
    ] = None,
    unstacked: Annotated[
        bool, typer.Option("--unstacked", help="Instead of a stack: every resource that belongs to no stack.")
    ] = False,
    stack_name: Annotated[
        str | None,
        typer.Option("--stack", help="With --label or --unstacked: the document's stack name (default: exported)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Write a stack document for a stack, or for resources you already run (--label, --unstacked): planning that
    document adopts them into a stack."""
    if sum((bool(name), bool(label), unstacked)) != 1:
        raise HangarError("Name a stack, or give --label key=value, or --unstacked (one of them).", exit_code=USAGE)
    client = state(ctx).client()
    if name:
        document = client.get(f"stacks/{quote(name, safe='')}/export/")["document"]
    else:
        params: dict = {"label": [selector for _, selector in label_filters(label)]} if label else {}
        if stack_name:
            params["stack"] = stack_name
        document = client.get("stacks/export/", **params)["document"]
    if out:
        out.write_text(document)
        output.note(f"Wrote {out}.")
    else:
        typer.echo(document, nl=not document.endswith("\n"))


# -- hangar stacks … -------------------------------------------------------------------------------------------------

stacks = typer.Typer(help="Stacks: list, show, schema (plan, apply, destroy and export are top-level commands).")


def _resources(stack: dict):
    resources = stack.get("resource_count", stack.get("resources"))
    return len(resources) if isinstance(resources, list) else resources


def _last_run(stack: dict) -> str:
    run = stack.get("last_run") or {}
    if isinstance(run, dict):
        return " ".join(str(part) for part in (run.get("kind"), run.get("state")) if part)
    return str(run)


def show_stack(stack: dict) -> None:
    f = output.field
    output.details(
        stack,
        [
            ("name", f("name")),
            ("resources", _resources),
            ("monthly cost", lambda s: f"{money(s.get('monthly_cost'))} {s.get('currency', '')}"),
            ("last run", _last_run),
        ],
        title=f"stack {stack.get('name')}",
    )
    resources = stack.get("resources")
    if isinstance(resources, list) and resources and isinstance(resources[0], dict):
        columns = [("TYPE", f("type")), ("NAME", f("name")), ("KEY", f("key")), ("DETAIL", f("detail"))]
        output.table(resources, [*columns, ("MONTHLY", f("monthly_cost"))])


@stacks.command("list")
def stacks_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Your stacks with their resource count and monthly cost."""
    client = state(ctx, as_json).client()
    items = client.list("stacks")
    if state(ctx).as_json:
        output.print_json(items)
        return
    f = output.field
    columns = [
        ("NAME", f("name")),
        ("RESOURCES", _resources),
        ("MONTHLY COST", lambda s: f"{money(s.get('monthly_cost'))} {s.get('currency', '')}"),
        ("LAST RUN", _last_run),
    ]
    output.table(items, columns, empty="No stacks yet: `hangar apply -f stack.yaml` creates one.")


@stacks.command("show")
def stacks_show(ctx: typer.Context, name: NameArgument, as_json: JsonOption = False) -> None:
    """One stack and its resources."""
    client = state(ctx, as_json).client()
    stack = client.get(f"stacks/{quote(name, safe='')}/")
    if state(ctx).as_json:
        output.print_json(stack)
    else:
        show_stack(stack)


@stacks.command("schema")
def stacks_schema(ctx: typer.Context) -> None:
    """The JSON Schema stack documents are checked against (for editors and linters)."""
    output.print_json(state(ctx).client().get("stacks/schema/"))
