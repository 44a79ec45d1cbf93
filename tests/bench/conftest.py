"""Fixtures of the benchmark harness's tests."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.db import connection
from psycopg import sql


def _admin_conninfo() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (f"postgresql://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/postgres")


@pytest.fixture
def bench_database_url(transactional_db):
    """A database of its own for this run, dropped afterwards.

    Copied from the (already migrated) test database when possible, so the
    harness's `migrate` has nothing left to do; otherwise created empty.
    """
    if connection.vendor != "postgresql":
        pytest.skip("the benchmark needs PostgreSQL")
    name = f"neonpro_bench_smoke_{uuid.uuid4().hex[:12]}"
    template = connection.settings_dict["NAME"]
    connection.close()  # a template must have no other sessions
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
        except psycopg.errors.ObjectInUse:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(_admin_conninfo())._replace(path=f"/{name}"))
    yield url
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
