"""Retention purge throughput on a large chat table (PostgreSQL).

Fills a throw-away database with sessions past retention (each with user and
assistant messages and a provider attempt per answer), a share of recent
sessions and a few under legal hold, then times `purge_expired_data` — the
same code the Celery beat task and the management command run — and checks it
deleted exactly the expired, unheld sessions.

    python benchmarks/purge_bench.py [--messages 200000] [--per-session 10]
                                     [--batch-size 500] [--workers 1] [--keep]

Needs DATABASE_URL pointing at PostgreSQL; the benchmark works in its own
database (`--db-name`, created and dropped here), never in the one named.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neonpro.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("LOG_LEVEL", "critical")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections  # noqa: E402

from benchmarks.retention_data import fill_expired_sessions  # noqa: E402
from chat.models import ChatSession  # noqa: E402
from compliance import audit, retention  # noqa: E402
from compliance.models import AuditEvent  # noqa: E402


def _purge(workers: int, batch_size: int) -> list[retention.PurgeResult]:
    results: list[retention.PurgeResult] = []

    def run() -> None:
        try:
            results.append(retention.purge_expired_data(batch_size=batch_size))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _longest_batch_seconds() -> float:
    # Each batch appends its retention_purge event as it commits: the largest gap
    # between consecutive events bounds how long one batch held its locks.
    stamps = list(AuditEvent.objects.filter(event_type=audit.Event.RETENTION_PURGE)
                  .order_by("id").values_list("created_at", flat=True))
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    return max(gaps, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000,
                        help="messages in the table (user + assistant)")
    parser.add_argument("--per-session", type=int, default=10, help="messages per session")
    parser.add_argument("--recent-share", type=float, default=0.1,
                        help="share of sessions still within retention")
    parser.add_argument("--held", type=int, default=20, help="expired sessions on legal hold")
    parser.add_argument("--batch-size", type=int, default=settings.RETENTION_PURGE_BATCH_SIZE)
    parser.add_argument("--workers", type=int, default=1, help="purges running at once")
    parser.add_argument("--db-name", default="neonpro_purge_bench")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        sys.exit("purge_bench needs DATABASE_URL pointing at PostgreSQL")
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = args.db_name
    original_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        sessions = args.messages // args.per_session
        print(f"Filling {sessions} sessions x {args.per_session} messages "
              f"({args.recent_share:.0%} recent, {args.held} on legal hold)...")
        started = time.perf_counter()
        expected = fill_expired_sessions(sessions=sessions, per_session=args.per_session,
                         recent_share=args.recent_share, held=args.held)
        print(f"  filled in {time.perf_counter() - started:.1f} s")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

        started = time.perf_counter()
        results = _purge(args.workers, args.batch_size)
        elapsed = time.perf_counter() - started

        deleted = {"sessions": sum(r.sessions for r in results),
                   "messages": sum(r.messages for r in results),
                   "attempts": sum(r.provider_attempts for r in results)}
        batches = sum(r.batches for r in results)
        assert deleted == expected, (deleted, expected)
        assert ChatSession.objects.filter(legal_hold=True).count() == args.held
        assert audit.audit_chain_verify().ok
        print(f"Purged {deleted['sessions']} sessions, {deleted['messages']} messages, "
              f"{deleted['attempts']} provider attempts in {elapsed:.2f} s "
              f"({batches} batches of up to {args.batch_size} sessions, "
              f"{args.workers} worker(s))")
        print(f"  rate: {deleted['messages'] / elapsed:,.0f} messages/s, "
              f"{deleted['sessions'] / elapsed:,.0f} sessions/s; "
              f"longest batch ~{_longest_batch_seconds():.2f} s")
        again = retention.purge_expired_data(batch_size=args.batch_size)
        print(f"  second run deleted {again.sessions} sessions (idempotent)")
    finally:
        connections.close_all()
        if not args.keep:
            connection.creation.destroy_test_db(original_name, verbosity=0)


if __name__ == "__main__":
    main()
