"""Request bodies: JSON only, nested no deeper than any real request needs."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Our deepest real input is a few levels (an object of lists); this leaves room while keeping every later step that
# walks the data (validation, the idempotency fingerprint, storing it) far from Python's recursion limit.
MAX_DEPTH = 32


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with nesting bounded: any depth is a 400 (`malformed_request`), never a RecursionError."""

    def parse(self, stream, media_type=None, parser_context=None):
        too_deep = ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep.")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # the decoder recursed past the interpreter's limit: far beyond ours, too
            raise too_deep from None
        if _deeper_than(data, MAX_DEPTH):
            raise too_deep
        return data


def _deeper_than(data, limit: int) -> bool:
    """True if arrays and objects nest more than `limit` levels; iterative, so any depth is safe to measure."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
