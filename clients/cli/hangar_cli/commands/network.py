"""`hangar networks …`, `hangar firewalls …` (with `rules`) and `hangar addresses …`."""

from typing import Annotated

import typer

from hangar_cli import output
from hangar_cli.commands import (
    InstanceRef,
    Ref,
    add_common,
    created,
    find,
    show,
)
from hangar_cli.errors import USAGE, HangarError
from hangar_cli.resources import (
    ADDRESSES,
    FIREWALLS,
    INSTANCES,
    NETWORKS,
    rule_text,
)
from hangar_cli.state import (
    JsonOption,
    LabelOption,
    YesOption,
    confirm,
    parse_labels,
    state,
)

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
