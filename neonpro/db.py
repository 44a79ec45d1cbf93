"""Database helpers for the statements every chat message runs.

Pipeline mode: a transaction holding a lock holds it for as many round trips
as it makes. In pipeline mode psycopg sends statements without waiting for
each reply: the replies are read when a statement's rows are needed, and at
the end of the block. The audit append uses it (its lock serialises every
answer of every process); for the chat's own transactions psycopg's pipeline
bookkeeping cost more CPU than the saved round trips gave back (BENCHMARKS.md).

Rows without the query compiler: building a statement through the ORM took
about half of the CPU of a message's database work (2 ms for the session's
locked read alone, 0.45 ms as SQL). The few per-message statements are written
as SQL; these helpers keep Django's own field conversions (encryption, JSON,
UUIDs and dates on every backend) for what goes in and what comes out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction

ModelT = TypeVar("ModelT", bound=models.Model)


@contextlib.contextmanager
def pipelined(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Statements inside are sent without waiting for each reply; the first one whose
    rows are read waits for them all.

    Only for statements whose row count nobody reads (psycopg reports it late), such
    as INSERTs without RETURNING and queryset updates: `Model.save()` on an existing
    row reads it, `QuerySet.update()`'s return value would be wrong. An error of any
    statement is raised where the replies are next awaited, at the latest when the
    block ends, as Django's exception. Elsewhere (SQLite) statements simply run one
    by one.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    # Django's health check of a kept connection (CONN_HEALTH_CHECKS) must run now: in
    # pipeline mode its `SELECT 1` would be sent and never read, and psycopg then
    # refuses to begin the transaction.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


@contextlib.contextmanager
def pipelined_atomic(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """`transaction.atomic()` in pipeline mode: BEGIN goes out with the first
    statement and COMMIT with the last writes, two round trips fewer than
    `atomic()` around `pipelined()`. The same rule about row counts applies.

    Inside another transaction it is a plain savepoint, without pipeline mode:
    after an error psycopg skips what is sent until the pipeline syncs, the
    ROLLBACK TO SAVEPOINT included, and the outer transaction would stay aborted.
    """
    if connections[using].in_atomic_block:
        with transaction.atomic(using=using):
            yield
        return
    with pipelined(using), transaction.atomic(using=using):
        yield


def insert_rows(objs: Sequence[models.Model], using: str = DEFAULT_DB_ALIAS) -> None:
    """INSERT instances of one model in one statement, reading nothing back.

    `bulk_create` without the query compiler and without RETURNING (on PostgreSQL
    it asks for the ids back even when they are known, and in a pipeline reading
    them waits for the reply). Field values go through each field's `pre_save`
    and `get_db_prep_save`, as with `save()`. An auto-incremented primary key is
    left to the database and stays None on the instance. No signals are sent.
    """
    if not objs:
        return
    model = type(objs[0])
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.db_returning]
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection)
              for obj in objs for f in fields]
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    columns = ", ".join(quote(f.column) for f in fields)
    # Table and column names come from the model, values are parameters.
    sql = (f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608  # nosec B608
           f"VALUES {', '.join([row] * len(objs))}")
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


def db_value(model: type[models.Model], name: str, value: Any,
             using: str = DEFAULT_DB_ALIAS) -> Any:
    """`value` of field `name` as a statement parameter (encrypted, adapted to the backend)."""
    return model._meta.get_field(name).get_db_prep_save(value, connections[using])


_Converters = tuple[Any, list[Callable[..., Any]]]
_converters_cache: dict[tuple[str, type[models.Model], str], _Converters] = {}


def _converters(model: type[models.Model], name: str, connection: Any) -> _Converters:
    """(column expression, converters) of a field, as the ORM's compiler applies them."""
    key = (connection.vendor, model, name)
    cached = _converters_cache.get(key)
    if cached is None:
        field = model._meta.get_field(name)
        column = field.get_col(model._meta.db_table)
        cached = _converters_cache[key] = (
            column,
            connection.ops.get_db_converters(column) + field.get_db_converters(connection))
    return cached


def python_value(model: type[models.Model], name: str, value: Any,
                 using: str = DEFAULT_DB_ALIAS) -> Any:
    """A column of field `name` read by raw SQL, converted as the ORM would (decrypted...)."""
    connection = connections[using]
    column, converters = _converters(model, name, connection)
    for convert in converters:
        value = convert(value, column, connection)
    return value


def instance_from_row(model: type[ModelT], names: Sequence[str], row: Sequence[Any],
                      using: str = DEFAULT_DB_ALIAS) -> ModelT:
    """A model instance from the columns `names` (attnames) of a raw row; the other
    fields are deferred, as with `.only()`."""
    by_name = {name: python_value(model, name, value, using)
               for name, value in zip(names, row, strict=True)}
    # from_db takes the values in the model's field order.
    ordered = [f.attname for f in model._meta.concrete_fields if f.attname in by_name]
    return model.from_db(using, ordered, [by_name[name] for name in ordered])
