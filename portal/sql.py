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

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections
from django.db.models import Model
from django.db.models.signals import post_save, pre_save


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


def insert_objects(objects: Sequence[Model]) -> None:
    """Writes new model objects as `save()` would: each field's `pre_save` (auto_now), the pre_save and post_save
    signals, auto-increment keys read back and every object marked saved. On PostgreSQL in one statement (each run of
    objects of one model a data-modifying CTE; foreign keys are checked at the commit, so rows may name each other),
    elsewhere one INSERT per run, in order. A launch writes its machine, event, activity entry, interfaces and
    firewall links this way: one round trip instead of five saves."""
    db = current()
    runs: list[tuple[type[Model], bool, list[Model]]] = []  # (model, its keys come back, objects)
    for obj in objects:
        model = type(obj)
        returns_key = obj.pk is None and model._meta.auto_field is not None
        if runs and runs[-1][0] is model and runs[-1][1] == returns_key:
            runs[-1][2].append(obj)
        else:
            runs.append((model, returns_key, [obj]))
    for obj in objects:
        pre_save.send(sender=type(obj), instance=obj, raw=False, using=db.alias, update_fields=None)
    params = [
        field.get_db_prep_save(field.pre_save(obj, True), db)
        for model, returns_key, run in runs
        for obj in run
        for field in _insert_fields(model, returns_key)
    ]
    shapes = tuple((model, returns_key, len(run)) for model, returns_key, run in runs)
    keys = []
    with prepared_cursor(db) as cursor:
        offset = 0
        for statement, count, returns_rows in _objects_sql(shapes, db.vendor):
            cursor.execute(statement, params[offset : offset + count])  # write-ok: the caller's new objects
            offset += count
            if returns_rows:
                keys += cursor.fetchall()
    waiting = {position: iter(run) for position, (_model, returns_key, run) in enumerate(runs) if returns_key}
    for position, key in keys:  # each run's keys in the order of its rows, as Django's bulk_create reads them
        obj = next(waiting[position])
        obj.pk = obj._meta.pk.to_python(key)
    for obj in objects:
        obj._state.adding = False
        obj._state.db = db.alias
        post_save.send(sender=type(obj), instance=obj, created=True, update_fields=None, raw=False, using=db.alias)


def constraint_violated(error: IntegrityError) -> str:
    """The name of the constraint or unique index `error` broke, as the database reports it ("" if it does not)."""
    diagnostic = getattr(error.__cause__, "diag", None)
    if diagnostic is not None:
        return diagnostic.constraint_name or ""
    found = re.search(r"index '([^']+)'", str(error))  # SQLite names a unique index on expressions this way
    return found.group(1) if found else ""


@cache
def _insert_fields(model: type[Model], returns_key: bool) -> tuple:
    if model._meta.parents:
        raise TypeError(f"{model.__name__} extends another model's table: save() it instead.")
    fields = [field for field in model._meta.local_concrete_fields if not field.generated]
    return tuple(field for field in fields if not (returns_key and field.primary_key))


@cache
def _objects_sql(shapes: tuple[tuple[type[Model], bool, int], ...], vendor: str) -> tuple[tuple[str, int, bool], ...]:
    """For runs of (model, keys come back, rows): the statements, each with its number of parameters and whether it
    answers rows, (run's position, key) for every row of a run whose keys come back. PostgreSQL: one statement."""
    inserts = []
    for position, (model, returns_key, rows) in enumerate(shapes):
        fields = _insert_fields(model, returns_key)
        row = f"({', '.join(['%s'] * len(fields))})"
        statement = (
            f"INSERT INTO {table(model)} ({', '.join(quoted(field.column) for field in fields)}) "
            f"VALUES {', '.join([row] * rows)}"
        )
        if returns_key:
            statement += f" RETURNING {position}, {quoted(model._meta.pk.column)}"
        inserts.append((statement, len(fields) * rows, returns_key))
    if vendor != "postgresql" or len(inserts) == 1:
        return tuple(inserts)
    ctes = ", ".join(f"run{position} AS ({statement})" for position, (statement, _, _) in enumerate(inserts))
    answers = [f"SELECT * FROM run{position}" for position, (_, _, returns_key) in enumerate(inserts) if returns_key]
    final = " UNION ALL ".join(answers) if answers else "SELECT 1 WHERE FALSE"
    return ((f"WITH {ctes} {final}", sum(count for _, count, _ in inserts), bool(answers)),)
