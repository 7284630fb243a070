"""Filtering helpers for every API list: ordering is always total, so pages never overlap or skip rows."""

import django_filters


class StableOrderingFilter(django_filters.OrderingFilter):
    """`?ordering=name,-created`: the aliases a FilterSet offers; the primary key breaks ties."""

    def filter(self, qs, value):
        qs = super().filter(qs, value)
        if value:
            qs = qs.order_by(*qs.query.order_by, "pk")
        return qs
