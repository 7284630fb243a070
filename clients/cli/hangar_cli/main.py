"""`hangar`: the command-line client of Hangar's REST API."""

import os
import sys
from typing import Annotated

import typer

from hangar_cli import __version__, config, output
from hangar_cli.client import Client
from hangar_cli.commands.compute import instances, keys
from hangar_cli.commands.labels import labels
from hangar_cli.commands.network import addresses, firewalls, networks
from hangar_cli.commands.storage import snapshots, volumes
from hangar_cli.errors import EXIT_CODES, USAGE, HangarError
from hangar_cli.stacks import apply, destroy, export, plan, stacks
from hangar_cli.state import JsonOption, State, state

EPILOG = "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + "."

app = typer.Typer(
    name="hangar",
    help="Hangar from the command line: machines, keys, networks, firewalls, addresses, volumes and stacks.\n\n"
    "The URL and token come from --url/--token, else HANGAR_URL/HANGAR_TOKEN, else a profile of "
    "~/.config/hangar/config.toml (written by `hangar login`).",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hangar {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option("--url", help="Hangar's address, e.g. https://hangar.example.com.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="An API token (prefer HANGAR_TOKEN).")] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="A profile of the config file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) everywhere.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = State(url=url, token=token, profile=profile, as_json=as_json)


for sub, name in (
    (instances, "instances"),
    (keys, "keys"),
    (networks, "networks"),
    (firewalls, "firewalls"),
    (addresses, "addresses"),
    (volumes, "volumes"),
    (snapshots, "snapshots"),
    (labels, "label"),
    (stacks, "stacks"),
):
    app.add_typer(sub, name=name)
for command in (plan, apply, destroy, export):
    app.command()(command)


@app.command()
def login(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option("--url", help="Hangar's address.")] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="The token (else HANGAR_TOKEN); asked for, hidden, when neither.")
    ] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="The profile to write.")] = None,
) -> None:
    """Check a token and save it with the URL in a profile of the config file (mode 600)."""
    root = ctx.find_root().obj
    name = profile or root.profile or config.DEFAULT_PROFILE
    data = config.load()
    stored = data.get("profiles", {}).get(name, {})
    url = url or root.url or os.environ.get("HANGAR_URL") or stored.get("url")
    if not url:
        url = typer.prompt("Hangar URL", err=True)
    token = token or root.token or os.environ.get("HANGAR_TOKEN")
    if not token:
        token = typer.prompt("API token (from the dashboard's API tokens page)", hide_input=True, err=True)
    url = config.normalise_url(url)
    from hangar_cli import state as state_module

    tenant = Client(url, token.strip(), transport=state_module.transport).get("tenant/")
    data.setdefault("profiles", {})[name] = {"url": url, "token": token.strip()}
    data["current_profile"] = name
    path = config.save(data)
    output.note(
        f"Logged in to {url} as {tenant.get('role')} of {tenant.get('name')}; profile {name!r} saved in {path}."
    )


@app.command()
def logout(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="The profile to forget.")] = None,
) -> None:
    """Forget a profile's token (revoke the token itself on the dashboard)."""
    name = profile or ctx.find_root().obj.profile or config.load().get("current_profile") or config.DEFAULT_PROFILE
    data = config.load()
    if name not in data.get("profiles", {}):
        raise HangarError(f"No profile named {name!r} in {config.config_path()}.", exit_code=USAGE)
    del data["profiles"][name]
    if data.get("current_profile") == name:
        data.pop("current_profile")
    config.save(data)
    output.note(f"Forgot profile {name!r}.")


@app.command()
def profiles(as_json: JsonOption = False) -> None:
    """The profiles of the config file (tokens are not shown)."""
    data = config.load()
    current = data.get("current_profile") or config.DEFAULT_PROFILE
    rows = [
        {"name": name, "url": profile.get("url"), "current": name == current}
        for name, profile in sorted(data.get("profiles", {}).items())
    ]
    if as_json:
        output.print_json(rows)
    else:
        f = output.field
        columns = [("PROFILE", f("name")), ("URL", f("url")), ("CURRENT", f("current"))]
        output.table(rows, columns, empty="No profiles: `hangar login` makes one.")


@app.command()
def whoami(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The organisation and role the token acts as."""
    tenant = state(ctx, as_json).client().get("tenant/")
    if state(ctx).as_json:
        output.print_json(tenant)
        return
    f = output.field
    columns = [("organisation", f("name")), ("role", f("role")), ("status", f("status")), ("id", f("id"))]
    output.details(tenant, columns)


@app.command()
def quotas(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Your organisation's limits and what it uses."""
    body = state(ctx, as_json).client().get("quotas/")
    if state(ctx).as_json:
        output.print_json(body)
        return
    rows = [{"resource": name, **item} for name, item in body.items()]
    f = output.field
    columns = [("RESOURCE", f("resource")), ("USED", f("used")), ("LIMIT", f("limit")), ("FREE", f("free"))]
    output.table(rows, [*columns, ("%", f("percent"))])


def _catalog(ctx: typer.Context, collection: str, columns: list, as_json: bool) -> None:
    items = state(ctx, as_json).client().list(collection)
    if state(ctx).as_json:
        output.print_json(items)
    else:
        output.table(items, columns)


@app.command()
def flavors(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Machine sizes and their prices."""
    f = output.field
    columns = [("NAME", f("name")), ("VCPUS", f("vcpus")), ("RAM MIB", f("ram_mib")), ("DISK GIB", f("disk_gib"))]
    _catalog(ctx, "flavors", [*columns, ("MONTHLY", f("monthly_price")), ("HOURLY", f("hourly_price"))], as_json)


@app.command()
def images(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Operating system images."""
    f = output.field
    columns = [("NAME", f("name")), ("OS", f("os")), ("VERSION", f("version")), ("MIN DISK GIB", f("min_disk_gib"))]
    _catalog(ctx, "images", columns, as_json)


@app.command()
def regions(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Regions machines, networks and addresses belong to."""
    f = output.field
    _catalog(ctx, "regions", [("NAME", f("name")), ("LABEL", f("label")), ("DEFAULT", f("default"))], as_json)


def run(args: list[str] | None = None) -> None:
    """The console script: every HangarError ends the process with its exit code and its message on stderr."""
    try:
        app(args=args, prog_name="hangar")
    except HangarError as error:
        error.show()
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        output.note("Interrupted; work already accepted by the server goes on.")
        sys.exit(130)
