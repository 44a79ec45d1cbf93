"""Canonical form of a detected value, so the same datum gets the same placeholder.

"123.456.789-09" and "12345678909" are one CPF; "(11) 98765-4321" and
"+55 11 98765 4321" one phone; "José da Silva" and "JOSE DA SILVA" one name.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from functools import lru_cache

from .lexicon import fold

_NON_ALNUM_RE = re.compile(r"[\W_]+")
_SPACES_RE = re.compile(r"\s+")
_MONTHS = {
    "jan": 1,
    "fev": 2,
    "mar": 3,
    "abr": 4,
    "mai": 5,
    "jun": 6,
    "jul": 7,
    "ago": 8,
    "set": 9,
    "out": 10,
    "nov": 11,
    "dez": 12,
}
_DATE_NUMERIC_RE = re.compile(r"(\d{1,2})\D+(\d{1,2})\D+(\d{2,4})")
_DATE_WORDS_RE = re.compile(r"(\d{1,2})\D+?([a-z]{3})[a-z]*\D+?(\d{2,4})")
_DATE_ISO_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_STREET_ABBREVIATIONS = {
    "r": "rua",
    "av": "avenida",
    "tv": "travessa",
    "trav": "travessa",
    "al": "alameda",
    "rod": "rodovia",
    "pca": "praca",
    "estr": "estrada",
    "lgo": "largo",
    "qd": "quadra",
}


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def _phone(value: str) -> str:
    digits = _digits(value)
    if len(digits) >= 12 and digits.startswith("55"):
        digits = digits[2:]
    if len(digits) in (11, 12) and digits.startswith("0"):
        digits = digits[1:]  # trunk prefix (011) 98765-4321
    return digits


def _date(value: str) -> str:
    folded = fold(value)
    m = _DATE_ISO_RE.search(folded)
    if m:
        return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
    m = _DATE_NUMERIC_RE.search(folded)
    if m:
        day, month, year = m.groups()
    else:
        m = _DATE_WORDS_RE.search(folded)
        if not m:
            return _NON_ALNUM_RE.sub("", folded)
        day, month, year = m.group(1), str(_MONTHS.get(m.group(2), 0)), m.group(3)
    return f"{year}-{int(month):02d}-{int(day):02d}"


def _address(value: str) -> str:
    words = _NON_ALNUM_RE.sub(" ", fold(value)).split()
    if words and words[0] in _STREET_ABBREVIATIONS:
        words[0] = _STREET_ABBREVIATIONS[words[0]]
    return " ".join(words)


_SPELLED_AT_RE = re.compile(r"\s*[(\[{<]?\s*(?:\barroba\b|\bat\b|@)\s*[)\]}>]?\s*")
_SPELLED_DOT_RE = re.compile(r"\s*[(\[{<]?\s*(?:\bponto\b|\bdot\b|\.)\s*[)\]}>]?\s*")


def _email(value: str) -> str:
    # "maria arroba gmail ponto com" is maria@gmail.com.
    low = value.strip().lower()
    if "@" in low and " " not in low:
        return low
    local, _, domain = _SPELLED_AT_RE.sub("@", low, count=1).partition("@")
    # The local part may spell its dots too: "joana ponto silva arroba …".
    return f"{_SPELLED_DOT_RE.sub('.', local.strip())}@{_SPELLED_DOT_RE.sub('.', domain).strip()}"


def _name(value: str) -> str:
    return _SPACES_RE.sub(" ", fold(value)).strip()


def normalise_value(entity: str, value: str) -> str:
    """The canonical key of `value` for entity type `entity`."""
    if entity in ("CPF", "CNS", "PIS", "TITULO", "CNH", "CEP", "CARTAO"):
        return _digits(value)
    if entity in ("CNPJ", "RG", "PRONTUARIO"):
        return _NON_ALNUM_RE.sub("", value).upper()
    if entity == "TELEFONE":
        return _phone(value)
    if entity == "EMAIL":
        return _email(value)
    if entity == "DATA_NASCIMENTO":
        return _date(value)
    if entity == "ENDERECO":
        return _address(value)
    if entity == "NOME":
        return _name(value)
    return value


# --- The normalised view detectors run on ------------------------------------------
def _changing_chars() -> tuple[str, str]:
    """(format characters, every BMP character NFKC changes or that composes/vanishes)."""
    fmt, changing = [], []
    for code in range(0x80, 0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        c = chr(code)
        if unicodedata.category(c) == "Cf":
            fmt.append(c)
            changing.append(c)
        elif unicodedata.combining(c) or unicodedata.normalize("NFKC", c) != c:
            changing.append(c)
    return "".join(fmt), "".join(changing)


# Characters that render as nothing (zero-width space and joiners, soft hyphen,
# bidi marks, BOM...): Unicode category Cf. Typed inside a number they would
# split it in two for a regular expression while a reader sees one number.
_FORMAT_CHARS, _CHANGING_CHARS = _changing_chars()
_FORMAT_RE = re.compile(f"[{re.escape(_FORMAT_CHARS)}]")
# What the view rewrites: a character NFKC changes (full-width digits, º, ², ligatures),
# a format character, a run of combining marks (with the letter before it, as they
# compose), or anything outside the BMP (mathematical digits 𝟏𝟐𝟑...). The accented
# letters of Portuguese are none of these, so most messages have nothing to rewrite.
_CHANGING_RE = re.compile(f"[{re.escape(_CHANGING_CHARS)}\U00010000-\U0010FFFF]+")


@lru_cache(maxsize=4096)
def _normal_piece(piece: str) -> str:
    return _FORMAT_RE.sub("", unicodedata.normalize("NFKC", piece))


class NormalisedView:
    """`text` as the detectors see it, and the way back to what the clinician typed.

    `text` is `original` in Unicode NFKC (full-width digits become ASCII,
    ligatures split, combining accents composed) without format characters.
    The offset map is kept as segments: stretches copied as they are, and
    rewritten pieces, each with the original span it came from; a detection in
    the view becomes the exact span the clinician typed (a zero-width character
    or a full-width digit inside it included).
    """

    __slots__ = ("_copied", "_orig_end", "_orig_start", "_view_start", "original", "text")

    def __init__(self, original: str, text: str,
                 segments: list[tuple[int, int, int, bool]] | None = None) -> None:
        self.original = original
        self.text = text
        # (view start, original start, original end, copied as is), by view start.
        segments = segments or []
        self._view_start = [seg[0] for seg in segments]
        self._orig_start = [seg[1] for seg in segments]
        self._orig_end = [seg[2] for seg in segments]
        self._copied = [seg[3] for seg in segments]

    @property
    def identity(self) -> bool:
        return not self._view_start

    def _segment(self, index: int) -> int:
        return bisect.bisect_right(self._view_start, index) - 1

    def span(self, beg: int, end: int) -> tuple[int, int]:
        """The original span of view span [beg, end) (end > beg)."""
        if not self._view_start:
            return beg, end
        first = self._segment(beg)
        start = self._orig_start[first]
        if self._copied[first]:
            start += beg - self._view_start[first]
        last = self._segment(end - 1)
        if self._copied[last]:
            stop = self._orig_start[last] + (end - self._view_start[last])
        else:
            stop = self._orig_end[last]
        return start, stop


def normalised_view(text: str) -> NormalisedView:
    """The view of `text` detectors run on (see `NormalisedView`).

    Only the characters that change are rewritten; a message with none of them
    is its own view at the cost of one scan.
    """
    if text.isascii():
        return NormalisedView(text, text)
    pieces: list[str] = []
    segments: list[tuple[int, int, int, bool]] = []
    position = 0
    length = 0  # of the view so far
    for m in _CHANGING_RE.finditer(text):
        beg, end = m.span()
        if beg > position and unicodedata.combining(text[beg]):
            beg -= 1  # the letter a combining mark composes with
        piece = text[beg:end]
        normal = _normal_piece(piece)
        if normal == piece:
            continue
        if position < beg:  # the stretch before it is copied one to one
            segments.append((length, position, beg, True))
            pieces.append(text[position:beg])
            length += beg - position
        if normal:
            segments.append((length, beg, end, False))
            pieces.append(normal)
            length += len(normal)
        position = end
    if not segments:
        return NormalisedView(text, text)
    if position < len(text):
        segments.append((length, position, len(text), True))
        pieces.append(text[position:])
    return NormalisedView(text, "".join(pieces), segments)
