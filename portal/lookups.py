"""Lookups the ORM lacks."""

from django.core.exceptions import EmptyResultSet
from django.db.models import Lookup


class AnyOf(Lookup):
    """`AnyOf(F("column"), values)` in a filter: the column's value is one of `values`.

    PostgreSQL gets the values as one array parameter (`column = ANY(%s)`): `IN (%s, %s, …)` with a parameter per
    value cost more CPU to build and send than the query took (a 200-row page's interfaces: 2.1 → 0.9 ms). Other
    databases get `IN (…)`.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def _values(self, connection) -> list:
        if not self.rhs:
            raise EmptyResultSet
        field = self.lhs.output_field
        return [field.get_db_prep_value(value, connection) for value in self.rhs]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = self._values(connection)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", (*lhs_params, *values)

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, self._values(connection))
