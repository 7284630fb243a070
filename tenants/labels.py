"""Labels (`key=value`) on every tenant resource: the one validator, the one list filter and how people write them.

A resource's `labels` is a JSON object of strings. Keys are lower-case, 1 to 63 characters of letters, digits and
`. _ / -`, starting and ending with a letter or digit (`team`, `hangar.stack`, `example.com/role`); values are at
most 63 characters (empty allowed); a resource has at most 32. Lists filter with `?label=key=value` (that value)
or `?label=key` (any value), repeatable, all of them must match.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact

from portal.errors import InvalidRequest

KEY_RE = re.compile(r"^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$")
MAX_VALUE_LENGTH = 63
MAX_LABELS = 32

KEY_RULE = (
    "1 to 63 lower-case letters, digits and . _ / -, starting and ending with a letter or digit (e.g. team, app.tier)"
)


def label_problems(labels) -> list[tuple[str, str]]:
    """Every problem of a labels object as (key or "", message); empty when it is valid."""
    if not isinstance(labels, dict):
        return [("", "Labels are an object of key → value strings.")]
    problems: list[tuple[str, str]] = []
    if len(labels) > MAX_LABELS:
        problems.append(("", f"At most {MAX_LABELS} labels per resource ({len(labels)} given)."))
    for key, value in labels.items():
        if not isinstance(key, str) or not KEY_RE.match(key):
            problems.append((str(key), f"Label key {key!r} is not valid: use {KEY_RULE}."))
        elif not isinstance(value, str):
            problems.append((key, f"The value of label {key} must be a string."))
        elif len(value) > MAX_VALUE_LENGTH:
            problems.append((key, f"The value of label {key} is too long: at most {MAX_VALUE_LENGTH} characters."))
    return problems


def validate_labels(labels) -> None:
    """Model, form and serializer validator."""
    problems = label_problems(labels)
    if problems:
        raise ValidationError([message for _, message in problems], code="invalid_labels")


def labels_clean(labels) -> dict[str, str]:
    """A valid labels object with whitespace around values trimmed, keys sorted (so equal labels compare equal)."""
    validate_labels(labels)
    return {key: labels[key].strip() for key in sorted(labels)}


def labels_checked(labels) -> dict[str, str]:
    """A labels object as services store it (None: no labels), or InvalidRequest naming the field `labels`."""
    if labels is None:
        return {}
    try:
        return labels_clean(labels)
    except ValidationError as error:
        raise InvalidRequest(" ".join(error.messages), code="invalid_labels", details={"field": "labels"}) from None


def labels_parse_text(text: str) -> dict[str, str]:
    """What people type in a form: one `key=value` per line (or separated by commas); `key` alone is an empty value."""
    labels: dict[str, str] = {}
    for raw in re.split(r"[\n,]", text or ""):
        item = raw.strip()
        if not item:
            continue
        key, _, value = item.partition("=")
        key = key.strip()
        if key in labels:
            raise ValidationError(f"Label {key} is given twice.", code="invalid_labels")
        labels[key] = value.strip()
    return labels_clean(labels)


def labels_text(labels: dict[str, str] | None) -> str:
    """The form's text for a labels object: one `key=value` per line."""
    return "\n".join(f"{key}={value}" for key, value in sorted((labels or {}).items()))


def labels_change_message(before: dict[str, str], after: dict[str, str]) -> str:
    """The activity log's line for a change: "added team=web; changed tier: a → b; removed old"."""
    parts = []
    added = [f"{key}={after[key]}" for key in sorted(after) if key not in before]
    changed = [
        f"{key}: {before[key]} → {after[key]}" for key in sorted(after) if key in before and before[key] != after[key]
    ]
    removed = [key for key in sorted(before) if key not in after]
    if added:
        parts.append("added " + ", ".join(added))
    if changed:
        parts.append("changed " + ", ".join(changed))
    if removed:
        parts.append("removed " + ", ".join(removed))
    return "; ".join(parts) or "no change"


def parse_selector(selector: str) -> tuple[str, str | None]:
    """`key=value` → (key, value); `key` → (key, None). Raises ValidationError for a key that cannot exist."""
    key, has_value, value = selector.strip().partition("=")
    key = key.strip()
    if not KEY_RE.match(key):
        raise ValidationError(f"Label selector {selector!r}: the key must be {KEY_RULE}.", code="invalid_label")
    return key, (value.strip() if has_value else None)


def label_condition(key: str, value: str | None, *, field: str = "labels") -> Q:
    """The condition "has label key (with this value)", on SQLite and PostgreSQL alike."""
    if value is None:
        return Q(**{f"{field}__has_key": key})
    # KeyTextTransform names the key as a JSON path / operator argument, so keys with dots or slashes are safe.
    return Q(**{f"{field}__has_key": key}) & Q(Exact(KeyTextTransform(key, field), value))


def labels_filter(queryset: QuerySet, selectors: list[str] | list[tuple[str, str | None]], *, field: str = "labels"):
    """Narrows a queryset to rows carrying every selector (`key=value` or `key`, or already parsed pairs)."""
    for selector in selectors:
        key, value = parse_selector(selector) if isinstance(selector, str) else selector
        queryset = queryset.filter(label_condition(key, value, field=field))
    return queryset
