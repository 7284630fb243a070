"""Ordering that is always total: the primary key breaks ties, so pages never overlap or skip rows."""

from rest_framework.filters import OrderingFilter


class StableOrderingFilter(OrderingFilter):
    ordering_description = "Sort by one or more fields, comma-separated; prefix with `-` for descending."

    def get_ordering(self, request, queryset, view):
        ordering = list(super().get_ordering(request, queryset, view) or queryset.query.order_by or ["pk"])
        if not any(field.lstrip("-") in ("pk", "id") for field in ordering):
            ordering.append("pk")
        return ordering
