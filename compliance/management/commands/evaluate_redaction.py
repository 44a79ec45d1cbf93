"""`manage.py evaluate_redaction`: precision/recall of the PII redaction per entity type."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance.redaction.evaluation import evaluate


class Command(BaseCommand):
    help = (
        "Scores PII redaction on the labelled corpus: precision and recall per entity type and "
        "the share of clean sentences altered. Exits non-zero when a target is missed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--corpus", type=Path, default=None, help="JSON-lines corpus (default: the shipped one)"
        )
        parser.add_argument(
            "--show-misses",
            action="store_true",
            help="list missed entities and false positives (synthetic data only)",
        )

    def handle(self, *args, corpus: Path | None = None, show_misses: bool = False, **options):
        report = evaluate(corpus)
        self.stdout.write(report.format_table())
        if show_misses:
            for miss in report.misses:
                self.stdout.write(
                    f"miss {miss.record_id} {miss.entity} {miss.value!r} "
                    f"(detected as {miss.detected_as})"
                )
            for record_id, entity, value in report.false_positives:
                self.stdout.write(f"false positive {record_id} {entity} {value!r}")
        if report.failures:
            raise CommandError("redaction targets missed: " + "; ".join(report.failures))
        self.stdout.write(self.style.SUCCESS("all redaction targets met"))
