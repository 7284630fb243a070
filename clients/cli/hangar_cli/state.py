"""What every command shares: the global options, the API client made from them, and a few common options."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Annotated

import httpx
import typer

from hangar_cli import config
from hangar_cli.client import Client
from hangar_cli.errors import REFUSED, USAGE, HangarError
from hangar_cli.wait import DEFAULT_TIMEOUT

# Tests put an httpx.MockTransport here.
transport: httpx.BaseTransport | None = None


@dataclass
class State:
    url: str | None = None
    token: str | None = None
    profile: str | None = None
    as_json: bool = False
    _client: Client | None = field(default=None, repr=False)

    def client(self) -> Client:
        if self._client is None:
            settings = config.resolve(url=self.url, token=self.token, profile=self.profile)
            self._client = Client(settings.url, settings.token, transport=transport, as_json=self.as_json)
        return self._client


def state(ctx: typer.Context, as_json: bool = False) -> State:
    """The root's state; a command's own --json switches JSON on for everything it prints, errors included."""
    current: State = ctx.find_root().obj
    if as_json:
        current.as_json = True
        if current._client is not None:
            current._client.as_json = True
    return current


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]
WaitOption = Annotated[bool, typer.Option("--wait", help="Wait, with progress, until the work is done.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds --wait waits at most.", min=1)]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
LabelOption = Annotated[
    list[str] | None, typer.Option("--label", "-l", help="A label key=value (repeat for several).", metavar="KEY=VALUE")
]
DEFAULT_WAIT_TIMEOUT = DEFAULT_TIMEOUT


def parse_labels(values: list[str] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values or []:
        key, sep, label = value.partition("=")
        if not sep or not key.strip():
            raise HangarError(f"--label {value!r} must read key=value, e.g. --label env=prod.", exit_code=USAGE)
        labels[key.strip()] = label.strip()
    return labels


def label_filters(values: list[str] | None) -> list[tuple[str, str]]:
    """`?label=key=value` (that value) or `?label=key` (any value), each one as given."""
    filters = []
    for value in values or []:
        if not value.partition("=")[0].strip():
            raise HangarError(f"--label {value!r} must read key=value, or key alone for any value.", exit_code=USAGE)
        filters.append(("label", value.strip()))
    return filters


def confirm(question: str, *, yes: bool) -> None:
    """Asks at a terminal; without one, --yes is required (a script must say so)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise HangarError(f"{question} Pass --yes to confirm without a terminal.", exit_code=USAGE)
    if not typer.confirm(question, default=False, err=True):
        raise HangarError("Cancelled; nothing was changed.", exit_code=REFUSED)
