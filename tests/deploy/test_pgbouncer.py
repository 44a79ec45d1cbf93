"""The chat works through PgBouncer in transaction pooling mode (the compose deployment's
pooler, with the deployment plan's pool sizes).

The chat REST and WebSocket suites run in a pytest subprocess whose DATABASE_URL points
at a real PgBouncer. pytest-django cannot create and drop its test database through it:
DROP DATABASE fails while PgBouncer keeps pooled server connections to that database
open, and those connections are not ours to close in transaction mode. So the test
database is cloned here, straight on PostgreSQL, from the template that `manage.py
migrate` built through PgBouncer, and the subprocess runs with `--reuse-db`: it keeps
the database (its `migrate` finds nothing to do) and every query of the suite, from
the test body, the async pipeline and the consumers, goes through the pooler.
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests.deploy import support

SUITES = ["tests/chat/test_rest_api.py", "tests/chat/test_websocket.py"]


def _transactions(pgbouncer, database: str) -> int:
    for row in pgbouncer.admin("SHOW STATS"):
        if row["database"] == database:
            return int(row["total_xact_count"])
    return 0


def test_it_runs_the_chat_suites_through_pgbouncer_in_transaction_mode(pgbouncer,
                                                                       clone_database):
    config = {row["key"]: row["value"] for row in pgbouncer.admin("SHOW CONFIG")}
    assert {k: config[k] for k in support.POOL_SETTINGS} == support.POOL_SETTINGS
    database = clone_database("pgbouncer")
    env = support.subprocess_env(
        DATABASE_URL=pgbouncer.url("neonpro"), TEST_DATABASE_NAME=database, DEBUG="true")

    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--reuse-db",
         "--no-header", *SUITES],
        cwd=support.ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)

    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 30 and "failed" not in summary and "error" not in summary, summary
    # The suite's transactions went through the pooler to that database.
    assert _transactions(pgbouncer, database) > 1000
