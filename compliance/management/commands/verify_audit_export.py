"""manage.py verify_audit_export FILE MANIFEST: check an audit-trail export offline.

The same checks as `python -m compliance.export_check` (which needs no Django),
with the signing key taken from the settings (AUDIT_EXPORT_KEY).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from compliance.export_check import check_export


class Command(BaseCommand):
    help = ("Check an audit-trail export from the admin: the manifest's signature, the file's "
            "SHA-256, count, first/last hash and every event's hash; exit 1 on any problem.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="the exported .csv or .json")
        parser.add_argument("manifest", type=Path, help="its manifest.json")

    def handle(self, *args, file: Path, manifest: Path, **options) -> None:
        try:
            content = file.read_bytes()
            document = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot read the export: {error}", returncode=2) from error
        result = check_export(content=content, manifest=document, key=settings.AUDIT_EXPORT_KEY)
        if not result.ok:
            raise CommandError("export NOT verified: " + "; ".join(result.problems),
                               returncode=1)
        self.stdout.write(self.style.SUCCESS(
            f"export OK: {result.events} events, signature and hashes verified"))
