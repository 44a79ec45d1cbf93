"""manage.py purge_expired_data [--dry-run]: the retention purge, by hand."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance import anchors, audit, retention


class Command(BaseCommand):
    help = (
        "Delete chat sessions (with messages and provider attempts) whose last activity is "
        "older than DATA_RETENTION_DAYS, skipping legal holds, and audit events older than "
        "AUDIT_RETENTION_DAYS. Batched, idempotent, safe alongside the scheduled task."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="Count what would be deleted; delete and record nothing.")
        parser.add_argument("--batch-size", type=int, default=None,
                            help="Sessions per transaction (default RETENTION_PURGE_BATCH_SIZE).")

    def handle(self, *args, dry_run: bool, batch_size: int | None, **options) -> None:
        started = time.monotonic()
        with audit.acting_as(None):
            result = retention.purge_expired_data(dry_run=dry_run, batch_size=batch_size)
            audit_events = retention.audit_purge_expired(dry_run=dry_run)
        elapsed = time.monotonic() - started
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(
            f"{verb}: {result.sessions} sessions, {result.messages} messages, "
            f"{result.provider_attempts} provider attempts older than "
            f"{settings.DATA_RETENTION_DAYS} days (in {result.batches} batches); "
            f"{result.legal_hold_skipped} expired sessions kept under legal hold; "
            f"{audit_events} audit events older than {settings.AUDIT_RETENTION_DAYS} days "
            f"({elapsed:.1f} s)."
        )
        if not dry_run:
            # The purge removed rows on purpose: anchor the chain as it now stands.
            try:
                audit.audit_chain_anchor(trigger="purge")
            except anchors.AnchorError as exc:
                raise CommandError(f"purge done, but {exc}", returncode=1) from exc
