"""`hangar label set|unset`: labels on any kind of resource."""

from typing import Annotated

import typer

from hangar_cli import output
from hangar_cli.commands import (
    Ref,
    find,
    path_of,
    show,
)
from hangar_cli.errors import USAGE, HangarError
from hangar_cli.resources import (
    SPECS,
    Spec,
)
from hangar_cli.state import (
    JsonOption,
    parse_labels,
    state,
)

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
    show(ctx, spec, client.patch(path_of(spec, item), {"labels": merged}), as_json)


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
    show(ctx, spec, client.patch(path_of(spec, item), {"labels": remaining}), as_json)
