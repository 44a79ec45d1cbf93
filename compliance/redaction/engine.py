"""Redaction engine: a scrubadub Scrubber with the Brazilian detectors, session-stable
placeholders or surrogates, re-identification (whole texts and streamed deltas) and a
log redactor.

Detectors run on a normalised view of the message (`normalise.normalised_view`:
NFKC, no zero-width characters) and every span is mapped back to what the
clinician typed, so a full-width or zero-width-split number is found and the
placeholder still re-identifies to their exact text.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from . import detectors as _detectors
from . import names as _names
from . import surrogates as _surrogates
from ._scrubadub import scrubadub
from .lexicon import fold
from .normalise import normalise_value, normalised_view
from .policy import BLOCK, SURROGATE

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
# Session-mapping entries "~[NOME_1]" -> "Joana Ribeiro" hold the surrogate shown to
# providers for a placeholder (whose own entry keeps the real value).
SURROGATE_PREFIX = "~"
_NUMERIC_TYPES = frozenset({"CPF", "CNPJ", "CNS", "PIS", "TITULO", "CNH", "CEP", "TELEFONE",
                            "CARTAO", "RG", "PRONTUARIO"})
_WORD_RE = re.compile(r"[^\W\d_]+")


class RedactionError(Exception):
    """Redaction could not complete; the text must not be sent. The message never contains it."""


@dataclass(frozen=True)
class RedactionResult:
    """Outcome of `redact`.

    text: the redacted text.
    mapping: placeholder -> original value, the session's whole mapping (old + new),
        with the surrogates given so far ("~[NOME_1]" -> fake value).
    counts: entity type -> number of entities found in this text.
    blocked: the types found whose policy is `block` (the caller must refuse the text).
    """

    text: str
    mapping: dict[str, str]
    counts: dict[str, int]
    blocked: tuple[str, ...] = ()


class Entity(NamedTuple):
    """A detected span (used by evaluation and diagnostics)."""

    entity: str
    start: int
    end: int
    text: str


# --- Detection ------------------------------------------------------------------
def _union_same_type(filths: Iterable[Filth]) -> list[Filth]:
    """Overlapping spans of one type become one span covering both.

    Otherwise the higher-priority one would win alone and the rest of the other
    would leak: "Camila Ribeiro" found as a name while "Ribeiro" alone is a name
    known in the session must not go out as "Camila [NOME_2]". The merged
    filth's `text` is set by the caller, which has the document.
    """
    by_type: dict[str, list[Filth]] = {}
    for filth in filths:
        by_type.setdefault(filth.entity, []).append(filth)
    merged: list[Filth] = []
    for group in by_type.values():
        group.sort(key=lambda f: f.beg)
        current = group[0]
        for filth in group[1:]:
            if filth.beg < current.end:
                beg, end = current.beg, max(current.end, filth.end)
                if getattr(filth, "priority", 0) > getattr(current, "priority", 0):
                    current = filth
                current.beg, current.end = beg, end
                continue
            merged.append(current)
            current = filth
        merged.append(current)
    return merged


def resolve_overlaps(filths: Iterable[Filth]) -> list[Filth]:
    """Keep non-overlapping spans, preferring priority, then length; return them in text order.

    scrubadub's own merge would fuse a CPF and an adjacent phone into one
    "CPF+TELEFONE" blob; placeholders need exactly one type per span.
    """
    ordered = sorted(_union_same_type(filths),
                     key=lambda f: (-getattr(f, "priority", 0), -(f.end - f.beg), f.beg))
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
        """Detected spans of `text`, non-overlapping, in text order.

        The detectors are called directly rather than through scrubadub's
        document loop (the same calls, without its per-detector generators),
        and a detector whose identifier needs a longer run of digits than the
        message's longest is not called at all: most messages hold only
        doses, prices and dates, and each call costs a few microseconds.
        """
        try:
            longest = _detectors.longest_digit_run(text)
            filths: list[Filth] = []
            for detector in self._detectors.values():
                if getattr(detector, "min_run_digits", 0) > longest:
                    continue
                filths.extend(f for f in detector.iter_filth(text) if f.is_valid())
            found = resolve_overlaps(filths)
            for filth in found:
                filth.text = text[filth.beg : filth.end]  # spans may have been merged
            return found
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


def _find(text: str) -> list[Entity]:
    """Detected spans of `text` in its own offsets, found on its normalised view."""
    view = normalised_view(text)
    filths = _scrubber.find(view.text)
    if view.identity:
        return [Entity(f.entity, f.beg, f.end, f.text) for f in filths]
    found: list[Entity] = []
    for filth in filths:
        beg, end = view.span(filth.beg, filth.end)
        if found and beg < found[-1].end:
            # Two spans from one original character (a ligature split by NFKC):
            # one entity covers both rather than leaving a piece out.
            last = found.pop()
            beg, end = last.start, max(end, last.end)
            found.append(Entity(last.entity, beg, end, text[beg:end]))
            continue
        found.append(Entity(filth.entity, beg, end, text[beg:end]))
    return found


def detect_entities(text: str, *, mapping: Mapping[str, str] | None = None) -> list[Entity]:
    """Every PII span in `text`. Without `mapping` no session state is used; with a
    session's mapping, the names it already holds are found again as `redact` finds
    them. Raises on internal errors."""
    if not mapping:
        return _find(text)
    token = _detectors.known_names.set(_Placeholders(mapping).known_names)
    try:
        return _find(text)
    finally:
        _detectors.known_names.reset(token)


# --- Session mapping ---------------------------------------------------------------
class _Placeholders:
    """Reverse index of a session mapping: canonical value -> placeholder, plus counters."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping: dict[str, str] = dict(mapping)
        self.by_key: dict[tuple[str, str], str] = {}
        self.next_index: dict[str, int] = {}
        self.surrogates: dict[str, str] = {}  # placeholder -> its surrogate
        self.real_name_words: set[str] = set()
        first_words: dict[str, list[str]] = {}
        names: list[tuple[str, ...]] = []
        for placeholder, value in self.mapping.items():
            if placeholder.startswith(SURROGATE_PREFIX) and isinstance(value, str):
                self.surrogates[placeholder[len(SURROGATE_PREFIX):]] = value
                continue
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
                self.real_name_words.update(words)
        # "Maria" later in the session is the "Maria Silva" already known, as long
        # as only one known person has that first name.
        for word, placeholders in first_words.items():
            if len(set(placeholders)) == 1:
                self.by_key.setdefault(("NOME", word), placeholders[0])
        self.known_names: tuple[tuple[str, ...], ...] = tuple(names)

    def placeholder_for(self, entity: str, value: str) -> str:
        # The key is taken on the normalised value: "１２３…" and "123…" are one CPF.
        plain = value if value.isascii() else normalised_view(value).text
        key = (entity, normalise_value(entity, plain))
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
            if entity == "NOME":
                self.real_name_words.update(key[1].split())
        return placeholder

    def surrogate_for(self, placeholder: str, entity: str, message_words: frozenset[str]) -> str:
        """The session's surrogate for `placeholder`, drawn the first time it is needed.

        A new surrogate never equals a real value of its type seen in the session
        (nor, for names, shares a word with a real name or with the message), and
        no two placeholders share one, so the answer maps back without ambiguity.
        """
        surrogate = self.surrogates.get(placeholder)
        if surrogate is not None:
            return surrogate
        taken = {normalise_value(entity, s) for s in self.surrogates.values()}
        avoid = frozenset()
        if entity == "NOME":
            avoid = frozenset(self.real_name_words | message_words | {
                w for s in self.surrogates.values() for w in normalise_value("NOME", s).split()})
        for _ in range(64):
            candidate = _surrogates.surrogate_for(entity=entity, original=self.mapping[placeholder],
                                                  avoid=avoid)
            key = normalise_value(entity, candidate)
            if key not in taken and (entity, key) not in self.by_key:
                break
        else:  # practically unreachable; never fall back to sending the real value
            raise RuntimeError("no free surrogate")
        self.surrogates[placeholder] = candidate
        self.mapping[SURROGATE_PREFIX + placeholder] = candidate
        return candidate


# --- Public API ------------------------------------------------------------------
def _redact(text: str, mapping: Mapping[str, str] | None,
            policy: Mapping[str, str] | None) -> RedactionResult:
    if not isinstance(text, str):
        raise TypeError("text must be str")
    index = _Placeholders(mapping or {})
    token = _detectors.known_names.set(index.known_names)
    try:
        entities = _find(text)
    finally:
        _detectors.known_names.reset(token)
    counts: dict[str, int] = {}
    # Every value of this message is registered first, so that no surrogate drawn
    # below can equal a real value that appears later in the same message.
    placeholders = [index.placeholder_for(e.entity, e.text) for e in entities]
    for entity in entities:
        counts[entity.entity] = counts.get(entity.entity, 0) + 1
    policy = policy or {}
    blocked = tuple(sorted(t for t in counts if policy.get(t) == BLOCK))
    message_words: frozenset[str] | None = None
    pieces: list[str] = []
    position = 0
    for entity, placeholder in zip(entities, placeholders, strict=True):
        pieces.append(text[position : entity.start])
        if policy.get(entity.entity) == SURROGATE and not blocked:
            if message_words is None:
                message_words = frozenset(fold(w) for w in _WORD_RE.findall(text))
            pieces.append(index.surrogate_for(placeholder, entity.entity, message_words))
        else:
            pieces.append(placeholder)
        position = entity.end
    pieces.append(text[position:])
    return RedactionResult(text="".join(pieces), mapping=index.mapping, counts=counts,
                           blocked=blocked)


def redact(text: str, *, mapping: dict[str, str] | None = None,
           policy: Mapping[str, str] | None = None) -> RedactionResult:
    """Replace personal data in `text` by placeholders (or surrogates) stable within the
    session.

    `mapping` is the session's placeholder -> original value table from earlier
    messages; it is not modified, and the result carries the updated copy. The
    same value (after normalisation: punctuation of numbers, case and accents of
    names) always maps to the same placeholder. `policy` (entity type -> tag,
    surrogate or block; see `policy.parse_policy`) says what replaces each type;
    without it every type is tagged. Types under `block` are listed in
    `RedactionResult.blocked` and the text is tagged, never surrogated. Any
    internal failure raises `RedactionError` so that callers fail closed and send
    nothing.
    """
    try:
        return _redact(text, mapping, policy)
    except Exception as exc:  # every failure must fail closed
        kind = type(exc).__name__
    # Raised outside the except block so no chained exception (whose message
    # could quote the text) travels with it.
    raise RedactionError(f"PII redaction failed ({kind})")


def redact_for_log(text: str) -> str:
    """Fast, stateless redaction for log output: PII becomes [TYPE]. Never raises; if
    detection fails the whole text is withheld. Names are found by the rules and
    lexicons alone (see `names.rules_only`)."""
    try:
        if not isinstance(text, str):
            text = str(text)
        if not text:
            return text
        with _names.rules_only():
            entities = _find(text)
        if not entities:
            return text
        pieces: list[str] = []
        position = 0
        for entity in entities:
            pieces.append(text[position : entity.start])
            pieces.append(f"[{entity.entity}]")
            position = entity.end
        pieces.append(text[position:])
        return "".join(pieces)
    except Exception:  # a log line must never break nor leak
        return _FAILED_LOG_TEXT


def reverse_pairs(mapping: Mapping[str, str]) -> dict[str, str]:
    """What to look for in an answer -> what the clinician sees instead.

    Placeholders map to their value; a surrogate maps to the real value, and so
    does its digits-only spelling (numbers) or, for names, its first or last word
    alone when no other surrogate shares it ("a Joana deve…").
    """
    pairs = {k: v for k, v in mapping.items()
             if isinstance(k, str) and isinstance(v, str) and k.startswith("[")}
    partial: dict[str, list[str]] = {}
    for key, surrogate in mapping.items():
        if not (isinstance(key, str) and key.startswith(SURROGATE_PREFIX)):
            continue
        placeholder = key[len(SURROGATE_PREFIX):]
        original = mapping.get(placeholder)
        m = _PLACEHOLDER_RE.fullmatch(placeholder)
        if not isinstance(original, str) or not isinstance(surrogate, str) or not m or \
                not surrogate:
            continue
        pairs[surrogate] = original
        entity = m.group(1)
        if entity in _NUMERIC_TYPES:
            digits = "".join(c for c in surrogate if c.isdigit())
            if len(digits) >= 8 and digits != surrogate:
                pairs.setdefault(digits, original)
        elif entity == "NOME":
            fake_words = _WORD_RE.findall(surrogate)
            real_words = [w for w in _WORD_RE.findall(original)
                          if fold(w) not in ("de", "da", "do", "das", "dos", "e")]
            if len(fake_words) > 1 and len(real_words) > 1:
                partial.setdefault(fake_words[0], []).append(real_words[0])
                partial.setdefault(fake_words[-1], []).append(real_words[-1])
    for word, originals in partial.items():
        if len(set(originals)) == 1 and word not in pairs:
            pairs[word] = originals[0]
    return pairs


def reidentify(text: str, mapping: dict[str, str]) -> str:
    """Put the original values back in place of known placeholders and surrogates; unknown
    placeholders stay as-is."""
    if not mapping:
        return text
    stream = StreamReidentifier(mapping)
    return stream.feed(text) + stream.flush()


class StreamReidentifier:
    """Re-identifies a streamed answer delta by delta.

    A placeholder or a surrogate may arrive split across deltas ("[NO" + "ME_1]",
    "Joa" + "na Ribeiro"). Text that could still become a known one is held back;
    as soon as it cannot, it is released unchanged. Unknown placeholders
    ([NOME_9] invented by the model) are shown as they are. A surrogate that
    starts or ends with a letter or digit counts only as a whole word: "Joana"
    is not replaced inside "Joanas", and "Joana" at the end of a delta waits for
    the next character.
    """

    def __init__(self, mapping: dict[str, str]) -> None:
        self._pairs = reverse_pairs(mapping) if mapping else {}
        keys = sorted(self._pairs, key=len, reverse=True)
        self._prefixes = {k[:i] for k in keys for i in range(1, len(k))}
        self._longest = len(keys[0]) if keys else 0
        self._first_chars = frozenset(k[0] for k in keys)
        self._word_end = frozenset(k for k in keys if k[-1].isalnum())
        self._regex = re.compile("|".join(
            ("(?<!\\w)" if k[0].isalnum() else "") + re.escape(k)
            + ("(?!\\w)" if k[-1].isalnum() else "")
            for k in keys)) if keys else None
        self._pending = ""
        self._before = ""  # the character shown just before the pending text

    def feed(self, delta: str) -> str:
        """Text safe to show now (re-identified); a possible partial value is kept."""
        buffer = self._pending + delta
        self._pending = ""
        if self._regex is None or not buffer:
            return buffer
        if not any(c in buffer for c in self._first_chars):
            self._before = buffer[-1]
            return buffer
        return self._process(buffer, final=False)

    def flush(self) -> str:
        """Whatever is held back at the end of the stream (re-identified if complete)."""
        pending, self._pending = self._pending, ""
        if not pending or self._regex is None:
            return pending
        return self._process(pending, final=True)

    def _hold(self, text: str, start: int) -> bool:
        """Could text[start:] still grow into a (longer) known value?"""
        tail = len(text) - start
        return tail < self._longest and text[start:] in self._prefixes

    def _process(self, buffer: str, *, final: bool) -> str:
        text = self._before + buffer
        base = len(self._before)
        out: list[str] = []
        position = base
        held = len(text)
        for m in self._regex.finditer(text, base):
            if not final and (
                self._hold(text, m.start())
                or (m.end() == len(text) and m.group() in self._word_end)
            ):
                held = m.start()  # "Joana" may become "Joana Ribeiro" or "Joanas"
                break
            out.append(text[position:m.start()])
            out.append(self._pairs[m.group()])
            position = m.end()
        else:
            if not final:
                for start in range(max(position, len(text) - self._longest + 1), len(text)):
                    if text[start] in self._first_chars and self._hold(text, start):
                        held = start
                        break
        out.append(text[position:held])
        self._pending = text[held:]
        shown = text[base:held]
        if shown:
            self._before = text[held - 1]
        return "".join(out)
