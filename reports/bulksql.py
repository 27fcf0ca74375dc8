"""Hand-built statements where the ORM's cost shows at hundreds of messages per second.

Set-based UPDATEs for batches: one `UPDATE ... FROM (VALUES ...)` statement per table. Django's
bulk_update builds a CASE WHEN expression per field and row; for a batch of fifty inbound
messages that costs more CPU than parsing them. VALUES columns are named column1, column2... on
both PostgreSQL and SQLite, so one statement shape serves both.

And one INSERT that skips a conflicting row, for the store every intake path acknowledges.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models

_INSERT_SQL: dict[tuple[type[models.Model], str], str] = {}


def _field(model: type[models.Model], name: str) -> models.Field:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is the reverse side of a relation, not a column")
    return field


def _column(field: models.Field) -> str:
    # Concrete fields have a column; only virtual ones (GenericForeignKey...) do not.
    if field.column is None:
        raise TypeError(f"{field} has no column")
    return field.column


def _slot(field: models.Field) -> str:
    # PostgreSQL types a VALUES column from its literals, and NULLs alone would be text; SQLite
    # must not cast (CAST AS a date type would turn '2026-...' into the number 2026).
    return f"CAST(%s AS {field.db_type(connection)})" if connection.vendor == "postgresql" else "%s"


def _update_from_values(model: type[models.Model], assignments: str, row: str, rows: int, params: list[Any]) -> None:
    """UPDATE the model's table SET `assignments` FROM `rows` copies of the VALUES `row`, joined on
    the primary key (the first VALUES column, `v.column1`)."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([row] * rows)}) AS v "
            f"WHERE {table}.{quote(_column(model._meta.pk))} = v.column1",
            params,
        )


def update_rows(objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of each object to its row, like QuerySet.bulk_update."""
    if not objs:
        return
    model = type(objs[0])
    columns = [_field(model, name) for name in fields]
    row = "(" + ", ".join(_slot(field) for field in [model._meta.pk, *columns]) + ")"
    params: list[Any] = []
    for obj in objs:
        params.append(obj.pk)
        params += [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(_column(field))} = v.column{i}" for i, field in enumerate(columns, start=2))
    _update_from_values(model, assignments, row, len(objs), params)


def add_report_counts(model: type[models.Model], counts: dict[int, int], **set_to: datetime) -> None:
    """report_count += n for each row id, and the given timestamps set; concurrent edits of other
    fields survive, and concurrent increments add up."""
    if not counts:
        return
    quote = connection.ops.quote_name
    assignments = "report_count = report_count + v.column2" + "".join(f", {quote(column)} = %s" for column in set_to)
    # The SET clause comes before VALUES in the statement, so its parameters come first.
    params: list[Any] = [connection.ops.adapt_datetimefield_value(value) for value in set_to.values()]
    params += itertools.chain.from_iterable(sorted(counts.items()))
    _update_from_values(model, assignments, "(%s, %s)", len(counts), params)


def insert_unless_conflicting(obj: models.Model) -> bool:
    """INSERT the unsaved object's row and set its pk; False (nothing written) if the row would
    violate any unique constraint.

    One statement, ON CONFLICT DO NOTHING RETURNING on both databases: it needs no savepoint
    inside a transaction and no look-up before it. Django's own insert compiles the statement on
    every call, which costs four times the CPU of executing it.
    """
    model = type(obj)
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    key = (model, connection.vendor)
    if key not in _INSERT_SQL:
        quote = connection.ops.quote_name
        _INSERT_SQL[key] = (
            f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(_column(f)) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT DO NOTHING "
            f"RETURNING {quote(_column(model._meta.pk))}"
        )
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL[key], params)
        row = cursor.fetchone()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    return True
