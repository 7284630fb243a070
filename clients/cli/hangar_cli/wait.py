"""--wait: poll a resource until its state settles, with a live line on stderr."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from hangar_cli.client import Client
from hangar_cli.errors import FAILED, NOT_FOUND, TIMEOUT, HangarError
from hangar_cli.output import stderr

DEFAULT_TIMEOUT = 900.0


def poll_interval() -> float:
    return float(os.environ.get("HANGAR_POLL_INTERVAL", "1"))


def wait_for_state(
    client: Client,
    path: str,
    *,
    what: str,
    settled: Callable[[dict], bool],
    failed: Callable[[dict], str] = lambda item: "",
    timeout: float = DEFAULT_TIMEOUT,
    gone_is_done: bool = False,
) -> dict:
    """Polls `path` until `settled(item)`; `failed(item)` returns a reason when it ended badly. A resource that
    disappears (404) counts as settled when `gone_is_done` (a deleted network has no `deleted` state)."""
    deadline = time.monotonic() + timeout
    item: dict = {}
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=stderr(), transient=True
    ) as progress:
        task = progress.add_task(f"{what}: waiting")
        while True:
            try:
                item = client.get(path)
            except HangarError as error:
                if gone_is_done and error.exit_code == NOT_FOUND:
                    return {}
                raise
            state = item.get("state", "")
            progress.update(task, description=f"{what}: {state}")
            reason = failed(item)
            if reason:
                raise HangarError(f"{what} failed: {reason}", exit_code=FAILED, code=state)
            if settled(item):
                break
            if time.monotonic() >= deadline:
                raise HangarError(
                    f"{what} is still {state!r} after {timeout:.0f} s.",
                    exit_code=TIMEOUT,
                    hint="It goes on in the background: check it later with `show`, or wait longer with --timeout.",
                )
            time.sleep(poll_interval())
    stderr().print(f"{what}: {item.get('state', 'done')}")
    return item


def wait_for_run(client: Client, path: str, *, what: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Follows a stack run (`pending` → `running` → `succeeded` | `failed`) with a bar of steps done."""
    deadline = time.monotonic() + timeout
    console = stderr()
    reported: set[tuple[str, str, str]] = set()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(what, total=None)
        while True:
            run = client.get(path)
            progress.update(
                task,
                total=run.get("total") or None,
                completed=run.get("done", 0),
                description=f"{what}: {run['state']}",
            )
            for step in run.get("steps", []):
                marker = (step.get("type", ""), step.get("name", ""), step.get("state", ""))
                if step.get("state") in ("succeeded", "failed") and marker not in reported:
                    reported.add(marker)
                    sign = "✓" if step["state"] == "succeeded" else "✗"
                    error = f": {step['error']}" if step.get("error") else ""
                    progress.console.print(
                        f"  {sign} {step.get('action')} {step.get('type')} {step.get('name')}{error}"
                    )
            if run["state"] in ("succeeded", "failed"):
                break
            if time.monotonic() >= deadline:
                raise HangarError(
                    f"{what} is still {run['state']} after {timeout:.0f} s.",
                    exit_code=TIMEOUT,
                    hint=f"It goes on in the background; its progress: GET {path}",
                )
            time.sleep(poll_interval())
    if run["state"] == "failed":
        failed = [step for step in run.get("steps", []) if step.get("state") == "failed"]
        raise HangarError(
            f"{what} failed: {run.get('error') or 'a step failed'}",
            exit_code=FAILED,
            code="run_failed",
            details={f"{step.get('type')}.{step.get('name')}": step.get("error") or "failed" for step in failed},
            hint="Fix the cause and apply again: applying converges from where it stopped.",
        )
    return run
