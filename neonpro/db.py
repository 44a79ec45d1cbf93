"""PostgreSQL pipeline mode for the per-message transactions.

Every round trip to the database is also a trip through the GIL for the thread
waiting on it, and a transaction holding a lock holds it for as many round
trips as it makes. In pipeline mode psycopg sends statements without waiting
for each reply: the replies are read when a statement's rows are needed, and
at the end of the block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import DEFAULT_DB_ALIAS, connections, transaction


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
