"""manage.py verify_audit_chain: check the audit trail's hash chain end to end."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from compliance.audit import audit_chain_verify
from compliance.incidents import incident_open_for_chain_failure


class Command(BaseCommand):
    help = ("Recompute every audit event's hash and link; report the first broken one and "
            "exit with status 1 when the chain does not hold.")

    def handle(self, *args, **options) -> None:
        report = audit_chain_verify()
        if report.broken is not None:
            # The officers' register gets a draft incident to assess (once while open).
            incident_open_for_chain_failure(report=report)
            raise CommandError(
                f"audit chain BROKEN at event id={report.broken.event_id}: "
                f"{report.broken.reason} ({report.checked} events verified before it)",
                returncode=1,
            )
        if report.checked == 0:
            self.stdout.write("audit chain OK: no events yet")
            return
        self.stdout.write(self.style.SUCCESS(
            f"audit chain OK: {report.checked} events verified "
            f"(ids {report.first_id}..{report.last_id})"
        ))
