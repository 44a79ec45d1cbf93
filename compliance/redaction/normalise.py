"""Canonical form of a detected value, so the same datum gets the same placeholder.

"123.456.789-09" and "12345678909" are one CPF; "(11) 98765-4321" and
"+55 11 98765 4321" one phone; "José da Silva" and "JOSE DA SILVA" one name.
"""

from __future__ import annotations

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
    return f"{local.strip()}@{_SPELLED_DOT_RE.sub('.', domain).strip()}"


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
# Characters that render as nothing (zero-width space and joiners, soft hyphen,
# bidi marks, BOM...): Unicode category Cf. Typed inside a number they would
# split it in two for a regular expression while a reader sees one number.
_FORMAT_CHARS = "".join(chr(c) for c in range(0x10000) if unicodedata.category(chr(c)) == "Cf")
_FORMAT_RE = re.compile(f"[{re.escape(_FORMAT_CHARS)}]")


class NormalisedView:
    """`text` as the detectors see it, and the way back to what the clinician typed.

    `text` is `original` in Unicode NFKC (full-width digits become ASCII,
    ligatures split, combining accents composed) without format characters.
    `starts[i]`/`ends[i]` are the original span that view character i came
    from, so a detection in the view becomes the exact span the clinician typed
    (a zero-width character or a full-width digit inside it included).
    """

    __slots__ = ("ends", "original", "starts", "text")

    def __init__(self, original: str, text: str, starts: list[int] | None,
                 ends: list[int] | None) -> None:
        self.original = original
        self.text = text
        self.starts = starts  # None: the view is the original, offsets are the same
        self.ends = ends

    @property
    def identity(self) -> bool:
        return self.starts is None

    def span(self, beg: int, end: int) -> tuple[int, int]:
        """The original span of view span [beg, end) (end > beg)."""
        if self.starts is None or self.ends is None:
            return beg, end
        return self.starts[beg], self.ends[end - 1]


# What may change under NFKC or must go: a base character followed by combining
# marks (they compose), or any single non-ASCII character. Everything else -
# ASCII, and the precomposed accented letters of Portuguese - is its own view.
_COMBINING = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_SUSPECT_RE = re.compile(f".?[{_COMBINING}]+|[^\\x00-\\x7f]", re.DOTALL)


@lru_cache(maxsize=4096)
def _normal_piece(piece: str) -> str:
    return _FORMAT_RE.sub("", unicodedata.normalize("NFKC", piece))


def normalised_view(text: str) -> NormalisedView:
    """The view of `text` detectors run on (see `NormalisedView`).

    Most messages are already in NFKC without format characters: they are their
    own view, at the cost of one check. Otherwise only the characters that change
    are rewritten; the offset map records where each view character came from.
    """
    if text.isascii() or (
        unicodedata.is_normalized("NFKC", text) and not _FORMAT_RE.search(text)
    ):
        return NormalisedView(text, text, None, None)
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    position = 0
    for m in _SUSPECT_RE.finditer(text):
        piece = m.group()
        normal = _normal_piece(piece)
        if normal == piece:
            continue
        beg, end = m.span()
        if position < beg:  # the unchanged run before it maps one to one
            pieces.append(text[position:beg])
            starts.extend(range(position, beg))
            ends.extend(range(position + 1, beg + 1))
        pieces.append(normal)
        starts.extend([beg] * len(normal))
        ends.extend([end] * len(normal))
        position = end
    if position < len(text):
        pieces.append(text[position:])
        starts.extend(range(position, len(text)))
        ends.extend(range(position + 1, len(text) + 1))
    return NormalisedView(text, "".join(pieces), starts, ends)
