"""Filtering helpers for every API list: strict values, and ordering that is always total."""

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field

from tenants.labels import labels_filter, parse_selector


class StableOrderingFilter(django_filters.OrderingFilter):
    """`?ordering=name,-created`: the aliases a FilterSet offers; the primary key breaks ties."""

    def filter(self, qs, value):
        qs = super().filter(qs, value)
        if value:
            qs = qs.order_by(*qs.query.order_by, "pk")
        return qs


class IntegerFilter(django_filters.NumberFilter):
    """A whole number (NumberFilter alone would take 0.5 and match nothing)."""

    field_class = forms.IntegerField


class StrictBooleanField(forms.Field):
    """`true` or `false` (any case); django-filter's own would take `null`, `unknown` or `2` as "no filter"."""

    default_error_messages = {"invalid": "Give true or false."}

    def to_python(self, value) -> bool | None:
        if value in (None, ""):
            return None
        choice = {"true": True, "false": False}.get(str(value).strip().lower())
        if choice is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return choice


@extend_schema_field({"type": "boolean"})
class BooleanFilter(django_filters.BooleanFilter):
    """A boolean query parameter that refuses anything but `true` and `false`."""

    field_class = StrictBooleanField


class StrictFilterSet(django_filters.FilterSet):
    """An empty value for a typed filter (`?image=`, `?created_after=`, `?ordering=,`) is a 400, not silently
    "no filter"."""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, filter_ in self.filters.items():
            if isinstance(filter_, django_filters.CharFilter) or name not in self.data:
                continue
            values = self.data.getlist(name) if hasattr(self.data, "getlist") else [self.data[name]]
            if isinstance(filter_, django_filters.filters.BaseCSVFilter):
                # "?ordering=name,,": django-filter would drop the empty items without a word.
                values = [item for value in values for item in value.split(",")]
            if any(value.strip() == "" for value in values):
                self.form.add_error(name, "Give a value, or leave the parameter out.")
                valid = False
        return valid


class LabelSelectorsField(forms.Field):
    """Every `label` value of the query string, each checked to be `key=value` or `key`."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[tuple[str, str | None]]:
        values = [value] if isinstance(value, str) else list(value or [])
        selectors = []
        for item in values:
            if item.strip():
                selectors.append(parse_selector(item))
        return selectors


@extend_schema_field({"type": "array", "items": {"type": "string", "example": "team=web"}})
class LabelFilter(django_filters.Filter):
    """`?label=key=value` (that value) or `?label=key` (any value); repeat it and every one must match. One filter
    for every list of labelled resources."""

    field_class = LabelSelectorsField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("help_text", "`key=value` or `key` alone (any value); repeat it for more (all must match).")
        kwargs.setdefault("label", "Label")
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        return labels_filter(qs, value) if value else qs


class LabelledFilterSet(StrictFilterSet):
    """The FilterSet of a list whose rows carry labels."""

    label = LabelFilter()
