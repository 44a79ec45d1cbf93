"""manage.py anchor_audit_chain: sign a checkpoint of the audit chain, outside the database."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from compliance import anchors, audit


class Command(BaseCommand):
    help = ("Write a signed anchor (last event id, its hash, event count, time) of the audit "
            "chain to AUDIT_ANCHOR_DIR and the JSON log. Exit status 1 when it cannot: no "
            "AUDIT_ANCHOR_KEY, an unwritable directory, or a chain that contradicts the "
            "newest anchor.")

    def handle(self, *args, **options) -> None:
        try:
            record = audit.audit_chain_anchor(trigger="manual")
        except anchors.AnchorError as exc:
            raise CommandError(str(exc), returncode=1) from exc
        self.stdout.write(self.style.SUCCESS(
            f"audit chain anchored: up to id {record['last_id']} ({record['event_count']} "
            f"events) at {record['anchored_at']}"))
