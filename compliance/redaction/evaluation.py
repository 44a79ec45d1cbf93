"""Measures the redaction engine against the labelled corpus.

Recall of a type: share of labelled entities entirely covered by a detected
span of the same type (a partial cover leaks part of the value, so it counts
as a miss). Precision: share of detected spans of a type that overlap a
labelled entity of that type. Clean-altered share: negative sentences whose
text `redact` changes at all.

Real text (`evaluate_real_text`): HAREM-format documents (JSON with person
spans labelled PESSOA), scored word by word, paragraph by paragraph as a
clinician would send them. A person-name word is a capitalised word inside a
PESSOA span that is not a title or kinship word (HAREM also labels "o
Presidente" or "tio" as PESSOA); its recall is the share covered by any
placeholder. Other words kept: the share of words outside PESSOA spans left
untouched. The HAREM collections have no explicit licence, so they are read
from a path given on the command line and never shipped.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import lexicon
from .corpus import CORPUS_PATH, load_corpus
from .engine import ENTITY_TYPES, Entity, detect_entities, redact

# Targets of the product contract.
CHECKSUM_TYPES = ("CPF", "CNPJ", "CNS", "PIS", "TITULO", "CNH", "CARTAO")
RECALL_TARGETS: dict[str, float] = {
    **dict.fromkeys(CHECKSUM_TYPES, 0.99),
    "EMAIL": 0.99,
    "TELEFONE": 0.99,
    "NOME": 0.99,
}
MAX_CLEAN_ALTERED = 0.02
# Word-level targets of person names on real text (issue: names that reach a provider).
REAL_NAME_WORD_RECALL = 0.97
REAL_OTHER_WORDS_KEPT = 0.98
# Words of the generated corpus's names (all entities of type NOME, word by word).
CORPUS_NAME_WORD_RECALL = 0.99


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
    name_words: int = 0
    name_words_covered: int = 0

    @property
    def name_word_recall(self) -> float:
        return self.name_words_covered / self.name_words if self.name_words else 1.0

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
        if self.name_words and self.name_word_recall < CORPUS_NAME_WORD_RECALL:
            problems.append(
                f"NOME words: recall {self.name_word_recall:.4f} < {CORPUS_NAME_WORD_RECALL}"
            )
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
            f"name words: {self.name_words}, covered: {self.name_words_covered} "
            f"({self.name_word_recall:.4f}, target {CORPUS_NAME_WORD_RECALL})"
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
    name_words = name_words_covered = 0
    for record in records:
        text = record["text"]
        spans = detect_entities(text)
        labels = record["entities"]
        for label in labels:
            if label["type"] == "NOME":
                total, covered = _name_words_covered(text, label, spans)
                name_words += total
                name_words_covered += covered
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
    return EvaluationReport(
        scores,
        clean_total,
        clean_altered,
        misses,
        false_positives,
        name_words,
        name_words_covered,
    )


def evaluate(corpus_path: Path | None = None) -> EvaluationReport:
    """Score the engine on the shipped corpus (or another file of the same format)."""
    return evaluate_records(load_corpus(corpus_path or CORPUS_PATH))


# --- real text, word by word ---------------------------------------------------------
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
# Title, role and kinship words HAREM puts inside PESSOA spans ("Senhor Presidente",
# "tio Zé", "Deus"): not part of a person's name, so neither counted nor required.
_NOT_NAME_WORDS = frozenset(
    """
    senhor senhora presidente governador coordenador ministro ministra secretário
    secretária deputado deputada senador senadora vereador prefeito rei rainha príncipe
    princesa papa padre frei cónego cônego bispo santo santa são dom dona doutor doutora
    dr dra sr sra professor professora tio tia mana mano avô avó prima primo irmão irmã
    deus virgem divino general coronel capitão comandante juiz juíza director diretor
    directora diretora engenheiro arquitecto arquiteto mestre sir lord lady miss mister
""".split()
)


@dataclass
class WordScore:
    """Word-level scores of person names on real text."""

    name_words: int = 0
    name_words_redacted: int = 0
    other_words: int = 0
    other_words_kept: int = 0
    documents: int = 0
    missed: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)

    @property
    def name_recall(self) -> float:
        return self.name_words_redacted / self.name_words if self.name_words else 1.0

    @property
    def other_kept(self) -> float:
        return self.other_words_kept / self.other_words if self.other_words else 1.0

    @property
    def failures(self) -> list[str]:
        problems = []
        if self.name_words == 0:
            problems.append("real text: no person-name words")
        elif self.name_recall < REAL_NAME_WORD_RECALL:
            problems.append(
                f"real text: name-word recall {self.name_recall:.4f} < {REAL_NAME_WORD_RECALL}"
            )
        if self.other_kept < REAL_OTHER_WORDS_KEPT:
            problems.append(
                f"real text: other words kept {self.other_kept:.4f} < {REAL_OTHER_WORDS_KEPT}"
            )
        return problems

    def format_table(self) -> str:
        return (
            f"real text: {self.documents} documents\n"
            f"person-name words: {self.name_words}, redacted: {self.name_words_redacted} "
            f"(recall {self.name_recall:.4f}, target {REAL_NAME_WORD_RECALL})\n"
            f"other words: {self.other_words}, kept: {self.other_words_kept} "
            f"({self.other_kept:.4f}, target {REAL_OTHER_WORDS_KEPT})"
        )


def is_name_word(word: str) -> bool:
    """Does this word of a labelled person span belong to the name itself?"""
    if not word[0].isupper() or lexicon.fold(word) in _FOLDED_NOT_NAME_WORDS:
        return False
    return not lexicon.flags_of(word) & (lexicon.PARTICLE | lexicon.STOP | lexicon.HONORIFIC)


_FOLDED_NOT_NAME_WORDS = frozenset(lexicon.fold(w) for w in _NOT_NAME_WORDS)


def read_harem(path: Path) -> list[dict]:
    """Documents of a HAREM JSON file (gzip or plain): {doc_id, doc_text, entities}."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        documents = json.load(fh)
    if not isinstance(documents, list) or not all(
        isinstance(d, dict) and {"doc_text", "entities"} <= d.keys() for d in documents
    ):
        raise ValueError(f"{path.name}: not a HAREM JSON document list")
    return documents


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each non-empty paragraph: the size of a chat message."""
    position = 0
    for line in text.split("\n"):
        if line.strip():
            yield position, position + len(line)
        position += len(line) + 1


def evaluate_real_text(
    documents: Iterable[dict],
    *,
    label: str = "PESSOA",
    keep_examples: int = 0,
    as_session: bool = False,
) -> WordScore:
    """Score person-name redaction word by word on labelled real text.

    Each paragraph is redacted on its own, as a message with no history. With
    `as_session`, the paragraphs of a document are the messages of one chat
    session, in order: a name found in an earlier one is found again in the later
    ones, as the engine does with a session's mapping. The default is the stricter
    figure the targets are asserted on.
    """
    score = WordScore()
    for document in documents:
        score.documents += 1
        text = document["doc_text"]
        mapping: dict[str, str] = {}
        persons = sorted(
            (e["start_offset"], e["end_offset"])
            for e in document["entities"]
            if e["label"] == label
        )
        for p_start, p_end in _paragraphs(text):
            paragraph = text[p_start:p_end]
            found = detect_entities(paragraph, mapping=mapping)
            if as_session:
                mapping = redact(paragraph, mapping=mapping).mapping
            spans = [(e.start + p_start, e.end + p_start) for e in found]
            for m in _WORD_RE.finditer(paragraph):
                beg, end = m.start() + p_start, m.end() + p_start
                redacted = any(s < end and beg < e for s, e in spans)
                inside = any(s <= beg and end <= e for s, e in persons)
                if inside:
                    if not is_name_word(m.group()):
                        continue
                    score.name_words += 1
                    if redacted:
                        score.name_words_redacted += 1
                    elif len(score.missed) < keep_examples:
                        score.missed.append(m.group())
                elif not any(s < end and beg < e for s, e in persons):
                    score.other_words += 1
                    if not redacted:
                        score.other_words_kept += 1
                    elif len(score.altered) < keep_examples:
                        score.altered.append(m.group())
    return score


def _name_words_covered(text: str, label: dict, spans: list[Entity]) -> tuple[int, int]:
    """(words, words under a placeholder) of one labelled name, particles left out."""
    total = covered = 0
    for m in _WORD_RE.finditer(text, label["start"], label["end"]):
        if lexicon.flags_of(m.group()) & lexicon.PARTICLE:
            continue
        total += 1
        if any(s.start <= m.start() and m.end() <= s.end for s in spans):
            covered += 1
    return total, covered
