"""Hot statements written once in SQL, with the ORM's own conversions on the way in and out.

A worker's build runs a dozen statements, and building each through the ORM (a Query, its WHERE tree, the compiler)
cost several times the CPU of sending it. The few statements on that path are written here as text with the tables'
and columns' names taken from the models; parameters go through each field's `get_db_prep_value` and results
through the converters the compiler would apply, so values look exactly as an ORM read gives them (aware datetimes,
UUIDs, decoded JSON) on PostgreSQL and SQLite alike. Both support `UPDATE … RETURNING` (SQLite from 3.35).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model


def current():
    """The default database's connection object itself (`django.db.connection` is a proxy that looks it up again on
    every attribute: hundreds of times per build, through the parameter and result conversions)."""
    return connections[DEFAULT_DB_ALIAS]


def prepared_cursor(db):
    """A cursor of `db` for the statements written here: on PostgreSQL the server binds its parameters, and a
    statement the connection has run DATABASE_PREPARE_THRESHOLD times is prepared, then only executed (parsing and
    planning them was a quarter to a third of PostgreSQL's CPU per launch). Each is a lookup or a write by key, whose
    plan does not depend on the values; the ORM's statements (lists among them, whose best plan does) stay bound
    client-side and planned on every run. Django's wrappers (error translation) stay around it; while queries are
    logged (DEBUG, a test capturing them) it is the ordinary cursor, whose log shows each statement's text. A query
    of several statements cannot go this way (the server binds parameters for one statement only)."""
    cursor = db.cursor()
    if db.vendor == "postgresql" and not db.queries_logged:
        cursor.cursor.close()
        cursor.cursor = _server_binding_cursor()(db.connection)
    return cursor


@cache
def _server_binding_cursor() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    return ServerBindingCursor


def quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model: type[Model]) -> str:
    return quoted(model._meta.db_table)


def columns(model: type[Model], names: Sequence[str], *, alias: str = "") -> str:
    """The quoted columns of fields `names` (attnames or names), optionally qualified by `alias`."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + quoted(model._meta.get_field(name).column) for name in names)


def param(model: type[Model], name: str, value, *, db=None):
    """`value` as the field sends it to the database (a UUID as text on SQLite, a naive UTC datetime there, …)."""
    return model._meta.get_field(name).get_db_prep_value(value, db or current())


_CONSTANT = re.compile(r"[A-Za-z0-9_ ,.-]*")


def literal(value: str) -> str:
    """One of our own constants (a state, a task, an action, a fixed message) written into a statement's text
    instead of as a parameter: each parameter costs the driver a conversion on every execution."""
    if not _CONSTANT.fullmatch(value):
        raise ValueError(f"{value!r} is not a constant that can be written into SQL")
    return f"'{value}'"


@cache
def _converters(model: type[Model], names: tuple[str, ...], vendor: str) -> tuple:
    found = []
    for name in names:
        field = model._meta.get_field(name)
        column = field.get_col(model._meta.db_table)
        found.append((column, tuple(connection.ops.get_db_converters(column) + field.get_db_converters(connection))))
    return tuple(found)


def reader(model: type[Model], names: Sequence[str]) -> Callable[[Sequence], list]:
    """A function turning a row of fields `names` into their Python values, as the ORM's compiler converts them."""
    db = current()
    converters = _converters(model, tuple(names), db.vendor)

    def convert(row: Sequence) -> list:
        values = list(row)
        for position, (column, functions) in enumerate(converters):
            if functions:
                value = values[position]
                for function in functions:
                    value = function(value, column, db)
                values[position] = value
        return values

    return convert


@cache
def attnames(model: type[Model]) -> tuple[str, ...]:
    """Every concrete field's attname, in the model's order (what `Model.from_db` takes)."""
    return tuple(field.attname for field in model._meta.concrete_fields)


def instance_from_row(model: type[Model], row: Sequence):
    """A model object from a row of all its concrete columns (in `attnames` order), as if the ORM had read it."""
    names = attnames(model)
    return model.from_db(DEFAULT_DB_ALIAS, names, reader(model, names)(row))


def insert(model: type[Model], values: dict, *, returning: str = "", ignore_conflicts: bool = False):
    """One INSERT of `values` (field name → value; no defaults are filled in), each prepared as a save prepares it.
    With `returning`, the returned column's value (None: `ignore_conflicts` skipped a row that would break a unique
    constraint)."""
    db = current()
    statement = _insert_sql(model, tuple(values), returning, ignore_conflicts, db.vendor)
    get_field = model._meta.get_field
    params = [get_field(name).get_db_prep_save(value, db) for name, value in values.items()]
    with prepared_cursor(db) as cursor:
        cursor.execute(statement, params)  # write-ok: the INSERT of the service or driver that calls insert()
        if returning:
            row = cursor.fetchone()
            return None if row is None else reader(model, [returning])(row)[0]
    return None


@cache
def _insert_sql(model: type[Model], names: tuple[str, ...], returning: str, ignore_conflicts: bool, vendor: str) -> str:
    statement = f"INSERT INTO {table(model)} ({columns(model, names)}) VALUES ({', '.join(['%s'] * len(names))})"
    if ignore_conflicts:
        statement += " ON CONFLICT DO NOTHING"
    if returning:
        statement += f" RETURNING {columns(model, [returning])}"
    return statement
