"""manage.py rotate_encryption_keys: re-encrypt stored data with the first ENCRYPTION_KEY."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from compliance import audit
from compliance.key_rotation import DEFAULT_BATCH_SIZE, rotate_encryption_keys
from compliance.models import AuditEvent


class Command(BaseCommand):
    help = ("Re-encrypt with the first key of ENCRYPTION_KEY every stored value that an "
            "older key encrypted (message text, titles, PII mappings, comments), so the "
            "older key can then be removed. Safe to run while the chat is in use and to run "
            "again. Exit status 1 when a value cannot be decrypted with any configured key.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                            help=f"rows per transaction (default {DEFAULT_BATCH_SIZE})")
        parser.add_argument("--dry-run", action="store_true",
                            help="count what would be re-encrypted, change nothing")

    def handle(self, *args, batch_size: int, dry_run: bool, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        report = rotate_encryption_keys(batch_size=batch_size, dry_run=dry_run)
        if not dry_run:
            audit.record_event(event_type=AuditEvent.EventType.ENCRYPTION_KEYS_ROTATED,
                               metadata=report.audit_metadata())
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        for column in report.fields:
            self.stdout.write(f"{column.label}: {column.scanned} stored, {verb} "
                              f"{column.reencrypted}, undecryptable {column.undecryptable}")
        if report.undecryptable:
            raise CommandError(
                f"{report.undecryptable} stored values cannot be decrypted with any "
                "configured key: put back the key that encrypted them (see the runbook)",
                returncode=1)
        self.stdout.write(self.style.SUCCESS(f"{verb} {report.reencrypted} values"))
