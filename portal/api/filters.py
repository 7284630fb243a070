"""Filtering helpers for every API list: strict values, and ordering that is always total."""

import django_filters
from django import forms


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
