"""Tables for people (Rich), JSON for scripts; progress and notes go to stderr so stdout stays clean."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

Column = tuple[str, Callable[[dict], Any]]
PIPE_WIDTH = 200


def _console(file) -> Console:
    # Piped into a file or another program, a table keeps its natural width instead of folding at 80 columns.
    width = None if file.isatty() else int(os.environ.get("COLUMNS") or PIPE_WIDTH)
    return Console(file=file, highlight=False, soft_wrap=False, width=width)


def stdout() -> Console:
    return _console(sys.stdout)


def stderr() -> Console:
    return _console(sys.stderr)


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def note(message: str) -> None:
    """A line for the person at the terminal (stderr), e.g. what was done."""
    stderr().print(message)


def text(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return labels_text(value)
    if isinstance(value, list | tuple):
        return ", ".join(text(item) for item in value) or "—"
    return str(value)


def labels_text(labels: dict | None) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted((labels or {}).items())) or "—"


def table(
    rows: Iterable[dict], columns: Sequence[Column], *, title: str = "", empty: str = "Nothing here yet."
) -> None:
    rows = list(rows)
    if not rows:
        stderr().print(empty)
        return
    grid = Table(title=title or None, title_justify="left", header_style="bold")
    for header, _ in columns:
        grid.add_column(header, overflow="fold")
    for row in rows:
        grid.add_row(*(text(getter(row)) for _, getter in columns))
    stdout().print(grid)


def details(item: dict, fields: Sequence[Column], *, title: str = "") -> None:
    grid = Table(show_header=False, title=title or None, title_justify="left", box=None, pad_edge=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, getter in fields:
        grid.add_row(label, text(getter(item)))
    stdout().print(grid)


def field(name: str) -> Callable[[dict], Any]:
    return lambda item: item.get(name)
