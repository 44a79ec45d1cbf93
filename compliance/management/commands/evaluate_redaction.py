"""`manage.py evaluate_redaction`: precision/recall of the PII redaction per entity type."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance.redaction.evaluation import evaluate, evaluate_real_text, read_harem


class Command(BaseCommand):
    help = (
        "Scores PII redaction on the labelled corpus: precision and recall per entity type, "
        "name words covered and the share of clean sentences altered; with --real-text, also "
        "person-name words on real text (a HAREM JSON file such as MiniHAREM, read from the "
        "given path: it is not shipped). Exits non-zero when a target is missed."
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
        parser.add_argument(
            "--real-text",
            type=Path,
            default=None,
            help="HAREM-format JSON (.json or .json.gz) with PESSOA spans, e.g. MiniHAREM",
        )

    def handle(
        self,
        *args,
        corpus: Path | None = None,
        show_misses: bool = False,
        real_text: Path | None = None,
        **options,
    ):
        if corpus is not None and not corpus.is_file():
            raise CommandError(f"corpus file not found: {corpus}")
        if real_text is not None and not real_text.is_file():
            raise CommandError(f"real-text file not found: {real_text}")
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
        failures = list(report.failures)
        if real_text is not None:
            try:
                documents = read_harem(real_text)
            except (OSError, ValueError, json.JSONDecodeError) as exc:
                raise CommandError(f"cannot read {real_text.name}: {exc}") from exc
            words = evaluate_real_text(documents)
            self.stdout.write(words.format_table())
            failures += words.failures
        if failures:
            raise CommandError("redaction targets missed: " + "; ".join(failures))
        self.stdout.write(self.style.SUCCESS("all redaction targets met"))
