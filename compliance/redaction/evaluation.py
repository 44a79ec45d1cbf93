"""Measures the redaction engine against the labelled corpus.

Recall of a type: share of labelled entities entirely covered by a detected
span of the same type (a partial cover leaks part of the value, so it counts
as a miss). Precision: share of detected spans of a type that overlap a
labelled entity of that type. Clean-altered share: negative sentences whose
text `redact` changes at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import CORPUS_PATH, load_corpus
from .engine import ENTITY_TYPES, Entity, detect_entities, redact

# Targets of the product contract.
CHECKSUM_TYPES = ("CPF", "CNPJ", "CNS", "PIS", "TITULO", "CNH", "CARTAO")
RECALL_TARGETS: dict[str, float] = {
    **dict.fromkeys(CHECKSUM_TYPES, 0.99),
    "EMAIL": 0.99,
    "TELEFONE": 0.99,
    "NOME": 0.95,
}
MAX_CLEAN_ALTERED = 0.02


@dataclass
class TypeScore:
    """Counts and ratios of one entity type."""

    entity: str
    labelled: int = 0
    found: int = 0  # labelled entities fully covered by a span of the same type
    covered_any: int = 0  # labelled entities fully covered by a span of any type
    predicted: int = 0
    predicted_correct: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def precision(self) -> float:
        return self.predicted_correct / self.predicted if self.predicted else 1.0


@dataclass
class Miss:
    """A labelled entity the engine did not cover (synthetic corpus data only)."""

    record_id: str
    entity: str
    value: str
    detected_as: str | None


@dataclass
class EvaluationReport:
    """Per-type scores, the clean-sentence figure and which targets were missed."""

    scores: dict[str, TypeScore]
    clean_total: int
    clean_altered: int
    misses: list[Miss] = field(default_factory=list)
    false_positives: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def clean_altered_share(self) -> float:
        return self.clean_altered / self.clean_total if self.clean_total else 0.0

    @property
    def failures(self) -> list[str]:
        """Human-readable list of targets missed (empty when all are met)."""
        problems = []
        for entity, target in RECALL_TARGETS.items():
            score = self.scores[entity]
            if score.labelled == 0:
                problems.append(f"{entity}: no labelled examples")
            elif score.recall < target:
                problems.append(f"{entity}: recall {score.recall:.4f} < {target}")
        if self.clean_altered_share >= MAX_CLEAN_ALTERED:
            problems.append(
                f"clean sentences altered {self.clean_altered_share:.2%} >= {MAX_CLEAN_ALTERED:.0%}"
            )
        return problems

    def format_table(self) -> str:
        """Plain-text report, one line per entity type."""
        lines = [
            f"{'type':<16}{'labelled':>9}{'found':>7}{'recall':>9}{'predicted':>11}"
            f"{'precision':>11}{'target':>9}",
        ]
        for entity in ENTITY_TYPES:
            s = self.scores[entity]
            target = RECALL_TARGETS.get(entity)
            lines.append(
                f"{entity:<16}{s.labelled:>9}{s.found:>7}{s.recall:>9.4f}{s.predicted:>11}"
                f"{s.precision:>11.4f}{(f'{target:.2f}' if target else '-'):>9}"
            )
        total_labelled = sum(s.labelled for s in self.scores.values())
        total_any = sum(s.covered_any for s in self.scores.values())
        lines.append(
            f"all entities: {total_labelled}, covered by some placeholder: {total_any} "
            f"({total_any / total_labelled if total_labelled else 1:.4f})"
        )
        lines.append(
            f"clean sentences: {self.clean_total}, altered: {self.clean_altered} "
            f"({self.clean_altered_share:.2%}, target < {MAX_CLEAN_ALTERED:.0%})"
        )
        return "\n".join(lines)


def _covers(span: Entity, start: int, end: int) -> bool:
    return span.start <= start and end <= span.end


def _overlaps(span: Entity, start: int, end: int) -> bool:
    return span.start < end and start < span.end


def evaluate_records(records: Iterable[dict]) -> EvaluationReport:
    """Score the engine on corpus records ({id, kind, text, entities})."""
    scores = {entity: TypeScore(entity) for entity in ENTITY_TYPES}
    clean_total = clean_altered = 0
    misses: list[Miss] = []
    false_positives: list[tuple[str, str, str]] = []
    for record in records:
        text = record["text"]
        spans = detect_entities(text)
        labels = record["entities"]
        if record.get("kind") == "negative":
            clean_total += 1
            if redact(text).text != text:
                clean_altered += 1
                false_positives.extend((record["id"], s.entity, s.text) for s in spans)
        for label in labels:
            score = scores[label["type"]]
            score.labelled += 1
            same = [
                s
                for s in spans
                if s.entity == label["type"] and _covers(s, label["start"], label["end"])
            ]
            covering = [s for s in spans if _covers(s, label["start"], label["end"])]
            if same:
                score.found += 1
            else:
                overlapping = [s for s in spans if _overlaps(s, label["start"], label["end"])]
                misses.append(
                    Miss(
                        record["id"],
                        label["type"],
                        label["value"],
                        overlapping[0].entity if overlapping else None,
                    )
                )
            if covering:
                score.covered_any += 1
        for span in spans:
            score = scores[span.entity]
            score.predicted += 1
            if any(
                label["type"] == span.entity and _overlaps(span, label["start"], label["end"])
                for label in labels
            ):
                score.predicted_correct += 1
            elif record.get("kind") != "negative":
                false_positives.append((record["id"], span.entity, span.text))
    return EvaluationReport(scores, clean_total, clean_altered, misses, false_positives)


def evaluate(corpus_path: Path | None = None) -> EvaluationReport:
    """Score the engine on the shipped corpus (or another file of the same format)."""
    return evaluate_records(load_corpus(corpus_path or CORPUS_PATH))
