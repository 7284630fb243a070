"""Exit codes, and the one exception every command raises to end with one of them."""

from __future__ import annotations

import json
import sys

OK = 0
REFUSED = 1  # the API refused the request (invalid input, a state conflict, quota), or you declined a prompt
USAGE = 2  # the command line is wrong (click's own code for usage errors)
AUTH = 3  # no token, a bad or expired token, or a role/scope that may not do this
NOT_FOUND = 4  # no such resource (by name or id)
TIMEOUT = 5  # --wait gave up before the resource settled
SERVER = 6  # the server failed (5xx) or could not be reached
FAILED = 7  # the work was accepted but ended in failure (a machine in `error`, a stack run that failed)

EXIT_CODES = {
    OK: "success",
    REFUSED: "the API refused the request (or you answered no)",
    USAGE: "usage error: a wrong option, argument or file",
    AUTH: "authentication or permission: no token, a bad one, or a role that may not do this",
    NOT_FOUND: "not found",
    TIMEOUT: "timed out waiting",
    SERVER: "server error or no connection",
    FAILED: "the work ended in failure",
}

# What to do next, for the error codes a user can act on.
HINTS = {
    "not_authenticated": "Set HANGAR_TOKEN (and HANGAR_URL), or run `hangar login`.",
    "authentication_failed": "The token is wrong, revoked or expired: create a new one on the dashboard's API "
    "tokens page, then `hangar login`.",
    "permission_denied": "Your role or a read-only token may not do this: ask an owner, or use a read_write token.",
    "quota_exceeded": "`hangar quotas` shows your limits and what you use.",
    "instance_busy": "Its state does not allow that now: `hangar instances show NAME` lists what it can do "
    "(`can`); add --wait to an action to follow it until it is done.",
    "plan_stale": "The resources changed since the plan was made: run `hangar apply` again for a fresh plan.",
    "rate_limited": "Too many requests: wait a moment and try again.",
}


def flatten_details(details, prefix: str = "") -> list[tuple[str, str]]:
    """The API's `details` as (field, message) pairs, with nested fields joined by dots (`rules.1.port_max`)."""
    pairs: list[tuple[str, str]] = []
    if isinstance(details, dict):
        for key, value in details.items():
            pairs += flatten_details(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(details, list):
        if details and all(isinstance(item, dict) and "message" in item for item in details):
            # A stack document's errors: [{"field": "machines.web.flavor", "line": 7, "message": "…"}].
            for item in details:
                where = item.get("field") or prefix or "document"
                if item.get("line"):
                    where += f" (line {item['line']})"
                pairs.append((where, str(item["message"])))
        elif all(not isinstance(item, dict | list) for item in details):
            pairs += [(prefix, str(item)) for item in details]
        else:
            for index, item in enumerate(details):
                pairs += flatten_details(item, f"{prefix}.{index}" if prefix else str(index))
    elif details not in (None, ""):
        pairs.append((prefix, str(details)))
    return pairs


class HangarError(Exception):
    """Ends the command with `exit_code`, printing the message, the API's field errors and a hint."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int = REFUSED,
        code: str = "",
        status: int | None = None,
        details=None,
        hint: str = "",
        as_json: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.code = code
        self.status = status
        self.details = details if details is not None else {}
        self.hint = hint or HINTS.get(code, "")
        self.as_json = as_json

    def lines(self) -> list[str]:
        origin = ", ".join(part for part in (self.code, f"HTTP {self.status}" if self.status else "") if part)
        lines = [f"Error: {self.message}" + (f" ({origin})" if origin else "")]
        for field, message in flatten_details(self.details):
            lines.append(f"  {field}: {message}" if field else f"  {message}")
        if self.hint:
            lines.append(self.hint)
        return lines

    def show(self, file=None) -> None:
        stream = file or sys.stderr
        if self.as_json:
            body = {"error": {"code": self.code or "cli_error", "message": self.message, "details": self.details}}
            stream.write(json.dumps(body) + "\n")
        else:
            stream.write("\n".join(self.lines()) + "\n")
