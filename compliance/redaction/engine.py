"""Redaction engine: a scrubadub Scrubber with the Brazilian detectors, session-stable
placeholders, re-identification (whole texts and streamed deltas) and a log redactor.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from . import detectors as _detectors
from ._scrubadub import scrubadub
from .normalise import normalise_value

ENTITY_TYPES: tuple[str, ...] = (
    "CPF",
    "CNPJ",
    "RG",
    "CNS",
    "PIS",
    "TITULO",
    "CNH",
    "CEP",
    "TELEFONE",
    "EMAIL",
    "CARTAO",
    "DATA_NASCIMENTO",
    "ENDERECO",
    "PRONTUARIO",
    "NOME",
)
_ENTITY_SET = frozenset(ENTITY_TYPES)
Filth = scrubadub.filth.Filth

# A placeholder this engine writes: [CPF_1], [DATA_NASCIMENTO_12].
_PLACEHOLDER_RE = re.compile(r"\[([A-Z][A-Z_]*?)_(\d+)\]")
_FAILED_LOG_TEXT = "[REDACTED]"


class RedactionError(Exception):
    """Redaction could not complete; the text must not be sent. The message never contains it."""


@dataclass(frozen=True)
class RedactionResult:
    """Outcome of `redact`.

    text: the redacted text.
    mapping: placeholder -> original value, the session's whole mapping (old + new).
    counts: entity type -> number of entities found in this text.
    """

    text: str
    mapping: dict[str, str]
    counts: dict[str, int]


class Entity(NamedTuple):
    """A detected span (used by evaluation and diagnostics)."""

    entity: str
    start: int
    end: int
    text: str


# --- Detection ------------------------------------------------------------------
def resolve_overlaps(filths: Iterable[Filth]) -> list[Filth]:
    """Keep non-overlapping spans, preferring priority, then length; return them in text order.

    scrubadub's own merge would fuse a CPF and an adjacent phone into one
    "CPF+TELEFONE" blob; placeholders need exactly one type per span.
    """
    ordered = sorted(filths, key=lambda f: (-getattr(f, "priority", 0), -(f.end - f.beg), f.beg))
    starts: list[int] = []  # kept spans, disjoint, sorted by start (hence by end too)
    ends: list[int] = []
    kept: list[Filth] = []
    for filth in ordered:
        # Only the kept span starting last before this one ends can overlap it.
        index = bisect.bisect_left(starts, filth.end)
        if index and ends[index - 1] > filth.beg:
            continue
        starts.insert(index, filth.beg)
        ends.insert(index, filth.end)
        kept.append(filth)
    kept.sort(key=lambda f: f.beg)
    return kept


class BrazilianScrubber(scrubadub.Scrubber):
    """scrubadub's Scrubber with the Brazilian detectors only (its English defaults
    misfire on Portuguese clinical text) and priority-based overlap resolution."""

    def __init__(self, detector_list: Sequence[scrubadub.detectors.Detector] | None = None) -> None:
        super().__init__(
            detector_list=list(detector_list)
            if detector_list is not None
            else _detectors.default_detectors(),
            post_processor_list=[],
            locale="pt_BR",
        )

    @staticmethod
    def _merge_filths(filth_list: Sequence[Filth]) -> Iterator[Filth]:
        return iter(resolve_overlaps(filth_list))

    def find(self, text: str) -> list[Filth]:
        """Detected spans of `text`, non-overlapping, in text order."""
        try:
            return list(self.iter_filth(text, run_post_processors=False))
        finally:
            _detectors.clear_message_caches()


_scrubber = BrazilianScrubber()


def get_scrubber() -> BrazilianScrubber:
    """The process-wide scrubber (stateless between calls, safe to share across threads)."""
    return _scrubber


def set_scrubber(scrubber: BrazilianScrubber) -> BrazilianScrubber:
    """Replace the process-wide scrubber (tests, custom detectors); returns the previous one."""
    global _scrubber
    previous, _scrubber = _scrubber, scrubber
    return previous


def detect_entities(text: str) -> list[Entity]:
    """Every PII span in `text` (no session state). Raises on internal errors."""
    return [Entity(f.entity, f.beg, f.end, f.text) for f in _scrubber.find(text)]


# --- Session mapping ---------------------------------------------------------------
class _Placeholders:
    """Reverse index of a session mapping: canonical value -> placeholder, plus counters."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping: dict[str, str] = dict(mapping)
        self.by_key: dict[tuple[str, str], str] = {}
        self.next_index: dict[str, int] = {}
        first_words: dict[str, list[str]] = {}
        names: list[tuple[str, ...]] = []
        for placeholder, value in self.mapping.items():
            m = _PLACEHOLDER_RE.fullmatch(placeholder)
            if not m or m.group(1) not in _ENTITY_SET or not isinstance(value, str):
                continue
            entity, index = m.group(1), int(m.group(2))
            self.next_index[entity] = max(self.next_index.get(entity, 1), index + 1)
            key = normalise_value(entity, value)
            self.by_key.setdefault((entity, key), placeholder)
            if entity == "NOME" and key:
                words = tuple(key.split())
                names.append(words)
                first_words.setdefault(words[0], []).append(placeholder)
        # "Maria" later in the session is the "Maria Silva" already known, as long
        # as only one known person has that first name.
        for word, placeholders in first_words.items():
            if len(set(placeholders)) == 1:
                self.by_key.setdefault(("NOME", word), placeholders[0])
        self.known_names: tuple[tuple[str, ...], ...] = tuple(names)

    def placeholder_for(self, entity: str, value: str) -> str:
        key = (entity, normalise_value(entity, value))
        placeholder = self.by_key.get(key)
        if placeholder is None:
            index = self.next_index.get(entity, 1)
            placeholder = f"[{entity}_{index}]"
            while placeholder in self.mapping:  # a hand-edited mapping may have gaps
                index += 1
                placeholder = f"[{entity}_{index}]"
            self.next_index[entity] = index + 1
            self.mapping[placeholder] = value
            self.by_key[key] = placeholder
        return placeholder


# --- Public API ------------------------------------------------------------------
def _redact(text: str, mapping: Mapping[str, str] | None) -> RedactionResult:
    if not isinstance(text, str):
        raise TypeError("text must be str")
    index = _Placeholders(mapping or {})
    token = _detectors.known_names.set(index.known_names)
    try:
        filths = _scrubber.find(text)
    finally:
        _detectors.known_names.reset(token)
    pieces: list[str] = []
    counts: dict[str, int] = {}
    position = 0
    for filth in filths:
        entity = filth.entity
        pieces.append(text[position : filth.beg])
        pieces.append(index.placeholder_for(entity, filth.text))
        counts[entity] = counts.get(entity, 0) + 1
        position = filth.end
    pieces.append(text[position:])
    return RedactionResult(text="".join(pieces), mapping=index.mapping, counts=counts)


def redact(text: str, *, mapping: dict[str, str] | None = None) -> RedactionResult:
    """Replace personal data in `text` by placeholders stable within the session.

    `mapping` is the session's placeholder -> original value table from earlier
    messages; it is not modified, and the result carries the updated copy. The
    same value (after normalisation: punctuation of numbers, case and accents of
    names) always maps to the same placeholder. Any internal failure raises
    `RedactionError` so that callers fail closed and send nothing.
    """
    try:
        return _redact(text, mapping)
    except Exception as exc:  # every failure must fail closed
        kind = type(exc).__name__
    # Raised outside the except block so no chained exception (whose message
    # could quote the text) travels with it.
    raise RedactionError(f"PII redaction failed ({kind})")


def reidentify(text: str, mapping: dict[str, str]) -> str:
    """Put the original values back in place of known placeholders; unknown ones stay as-is."""
    if not mapping or "[" not in text:
        return text
    return _PLACEHOLDER_RE.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)


def redact_for_log(text: str) -> str:
    """Fast, stateless redaction for log output: PII becomes [TYPE]. Never raises; if
    detection fails the whole text is withheld."""
    try:
        if not isinstance(text, str):
            text = str(text)
        if not text:
            return text
        filths = _scrubber.find(text)
        if not filths:
            return text
        pieces: list[str] = []
        position = 0
        for filth in filths:
            pieces.append(text[position : filth.beg])
            pieces.append(f"[{filth.entity}]")
            position = filth.end
        pieces.append(text[position:])
        return "".join(pieces)
    except Exception:  # a log line must never break nor leak
        return _FAILED_LOG_TEXT


class StreamReidentifier:
    """Re-identifies a streamed answer delta by delta.

    A placeholder may arrive split across deltas ("[NO" + "ME_1]"). Text that
    could still become a known placeholder is held back; as soon as it cannot,
    it is released unchanged. Unknown placeholders ([NOME_9] invented by the
    model) are shown as they are.
    """

    def __init__(self, mapping: dict[str, str]) -> None:
        self._mapping = {
            k: v for k, v in mapping.items() if isinstance(k, str) and k.startswith("[")
        }
        self._prefixes = {p[:i] for p in self._mapping for i in range(1, len(p))}
        self._longest = max((len(p) for p in self._mapping), default=0)
        self._pending = ""

    def feed(self, delta: str) -> str:
        """Text safe to show now (re-identified); a possible partial placeholder is kept."""
        buffer = self._pending + delta
        self._pending = ""
        if not self._mapping or "[" not in buffer:
            return buffer
        out: list[str] = []
        position = 0
        length = len(buffer)
        while True:
            start = buffer.find("[", position)
            if start < 0:
                out.append(buffer[position:])
                break
            out.append(buffer[position:start])
            close = buffer.find("]", start + 1, start + self._longest)
            if close >= 0:
                candidate = buffer[start : close + 1]
                value = self._mapping.get(candidate)
                if value is not None:
                    out.append(value)
                    position = close + 1
                    continue
            elif buffer[start:] in self._prefixes:
                # Could still be a placeholder: hold it until the next delta decides.
                self._pending = buffer[start:]
                break
            out.append("[")
            position = start + 1
            if position >= length:
                break
        return "".join(out)

    def flush(self) -> str:
        """Whatever is held back at the end of the stream, as-is."""
        pending, self._pending = self._pending, ""
        return pending
