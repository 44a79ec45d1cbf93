"""scrubadub detectors for Brazilian personal data.

Each detector is a `scrubadub.detectors.Detector` yielding one `Filth`
subclass per entity type. A filth carries the placeholder type (`entity`) and
a `priority` used when spans of different detectors overlap (see
`engine.resolve_overlaps`): a keyword right before a number ("CNH ...",
"tel. ...") outranks a bare checksum match, and longer/more specific spans
outrank shorter ones.

Detectors run on every chat message, so each one starts with a cheap test
(a digit, an '@', a keyword) before running its regular expressions.
"""

from __future__ import annotations

import contextvars
import re
from abc import ABCMeta, abstractmethod
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import ClassVar, NamedTuple

from . import checksums, lexicon, names
from ._scrubadub import scrubadub
from .context import NEGATIVE, lowered, nearest_keyword

Detector = scrubadub.detectors.Detector
Filth = scrubadub.filth.Filth

CONTEXT_BONUS = 100

_DIGIT_RE = re.compile(r"\d")
_NON_DIGIT_RE = re.compile(r"\D+")
# Runs of digits joined by the separators identifiers use: "111.444.777-35",
# "(11) 98765-4321", "4111 1111 1111 1111".
_RUN_RE = re.compile(r"\d+(?:[ .\-/()]{1,3}\d+)*")
_TOKEN_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


# Per-message analyses shared by all detectors. The scrubber hands every
# detector the same string, so caching on it computes each of them once.
@lru_cache(maxsize=32)
def _digit_runs(text: str) -> tuple[tuple[int, int, int], ...]:
    """(start, end, digit count) of every digit run."""
    runs = []
    for m in _RUN_RE.finditer(text):
        run = m.group()
        # Most runs are a bare number ("50", "2025"): no separator to strip.
        runs.append((m.start(), m.end(), len(run) if run.isdigit()
                     else len(_NON_DIGIT_RE.sub("", run))))
    return tuple(runs)


def longest_digit_run(text: str) -> int:
    """Digits in the longest digit run of `text` (0 when it has none)."""
    return max((run[2] for run in _digit_runs(text)), default=0)


@lru_cache(maxsize=32)
def _tokens(text: str) -> list[tuple[int, int, str]]:
    """(start, end, word) of every word; callers must not modify the list."""
    return [(m.start(), m.end(), m.group()) for m in _TOKEN_RE.finditer(text)]


@lru_cache(maxsize=256)
def _windows(text: str, min_digits: int, before: int = 3, after: int = 3) -> list[tuple[int, int]]:
    """Merged (pos, endpos) regions around the digit runs with at least `min_digits` digits.

    Detectors search only there instead of the whole message: most of a clinical
    note is words and short numbers (doses, dates, prices) that cannot hold an
    identifier. `before` leaves room for a '+', '(' or a keyword; `after` lets
    the patterns' look-aheads see past the run. Callers must not modify the list.
    """
    size = len(text)
    windows: list[tuple[int, int]] = []
    for beg, end, digits in _digit_runs(text):
        if digits < min_digits:
            continue
        beg = max(0, beg - before)
        end = min(size, end + after)
        if windows and beg <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((beg, end))
    return windows


def clear_message_caches() -> None:
    """Forget the per-message analyses so no message text lingers in module caches."""
    _digit_runs.cache_clear()
    _tokens.cache_clear()
    _windows.cache_clear()
    lowered.cache_clear()


def _has_cue(text: str, cues: tuple[str, ...]) -> bool:
    low = lowered(text)
    return any(cue in low for cue in cues)


def _finditer(
    regex: re.Pattern[str], text: str, windows: list[tuple[int, int]]
) -> Iterator[re.Match]:
    for pos, endpos in windows:
        yield from regex.finditer(text, pos, endpos)


class Candidate(NamedTuple):
    beg: int
    end: int
    priority: int


# --- Filth -------------------------------------------------------------------
class BrazilianFilth(Filth):
    """A span of personal data with its placeholder type and conflict priority."""

    type = "br_pii"
    entity: ClassVar[str] = ""

    def __init__(self, *args, priority: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.priority = priority


class CpfFilth(BrazilianFilth):
    type = "cpf"
    entity = "CPF"


class CnpjFilth(BrazilianFilth):
    type = "cnpj"
    entity = "CNPJ"


class RgFilth(BrazilianFilth):
    type = "rg"
    entity = "RG"


class CnsFilth(BrazilianFilth):
    type = "cns"
    entity = "CNS"


class PisFilth(BrazilianFilth):
    type = "pis"
    entity = "PIS"


class TituloFilth(BrazilianFilth):
    type = "titulo"
    entity = "TITULO"


class CnhFilth(BrazilianFilth):
    type = "cnh"
    entity = "CNH"


class CepFilth(BrazilianFilth):
    type = "cep"
    entity = "CEP"


class TelefoneFilth(BrazilianFilth):
    type = "telefone"
    entity = "TELEFONE"


class EmailFilth(BrazilianFilth):
    type = "email"
    entity = "EMAIL"


class CartaoFilth(BrazilianFilth):
    type = "cartao"
    entity = "CARTAO"


class DataNascimentoFilth(BrazilianFilth):
    type = "data_nascimento"
    entity = "DATA_NASCIMENTO"


class EnderecoFilth(BrazilianFilth):
    type = "endereco"
    entity = "ENDERECO"


class ProntuarioFilth(BrazilianFilth):
    type = "prontuario"
    entity = "PRONTUARIO"


class NomeFilth(BrazilianFilth):
    type = "nome"
    entity = "NOME"


# --- Detector base -------------------------------------------------------------
class BrazilianDetector(Detector, metaclass=ABCMeta):
    """Base: subclasses implement `candidates(text)`; this turns them into Filth.

    The checksum detectors below (CPF, CNPJ, CNS, PIS, título…) share one shape on
    purpose: regex, check digits, score by context. Each type's rules differ in
    the details that matter (which separators, which keywords, when a bad check
    digit still counts), and a reviewer checks one type by reading one class; a
    table-driven builder would hide those details behind parameters.
    """

    filth_cls: ClassVar[type[BrazilianFilth]] = BrazilianFilth
    name = "br_base"
    needs_digit: ClassVar[bool] = True
    # The fewest digits an identifier of this detector holds in one run of
    # `_digit_runs`; the scrubber skips the detector when no run is as long. It
    # must equal the `_windows` threshold the detector searches within (0: no skip).
    min_run_digits: ClassVar[int] = 0

    def __init__(self, name: str | None = None, locale: str = "pt_BR") -> None:
        super().__init__(name=name, locale=locale)

    @abstractmethod
    def candidates(self, text: str) -> Iterable[Candidate]:
        """(start, end, priority) of each candidate entity in `text`."""

    def iter_filth(self, text: str, document_name: str | None = None) -> Iterator[Filth]:
        if self.needs_digit and not _DIGIT_RE.search(text):
            return
        cls = self.filth_cls
        for beg, end, priority in self.candidates(text):
            yield cls(
                beg=beg,
                end=end,
                text=text[beg:end],
                priority=priority,
                detector_name=self.name,
                document_name=document_name,
                locale=self.locale,
            )

    # The Scrubber calls this first; implementing it avoids the NotImplementedError
    # round-trip scrubadub's base class would cost on every message.
    def iter_filth_documents(self, document_list, document_names) -> Iterator[Filth]:
        for text, document_name in zip(document_list, document_names, strict=True):
            yield from self.iter_filth(text, document_name=document_name)


def _only_digits(value: str) -> str:
    return _NON_DIGIT_RE.sub("", value)


def _score(text: str, beg: int, entity: str, base: int, strong: bool) -> int | None:
    """Priority of a candidate, or None when a negative keyword vetoes a weak one."""
    keyword = nearest_keyword(text, beg)
    if keyword == entity:
        return base + CONTEXT_BONUS
    if keyword == NEGATIVE and not strong:
        return None
    return base


# --- Checksum-validated identifiers ------------------------------------------
class CpfDetector(BrazilianDetector):
    """CPF: 11 digits as 123.456.789-09, 12345678909, 123 456 789 09 or 123456789-09."""

    name = "br_cpf"
    min_run_digits = 11
    filth_cls = CpfFilth
    regex = re.compile(r"(?<![\d.,/])\d{3}([.\s]?)\d{3}\1\d{3}[-.\s]?\d{2}(?![\d])(?![.,/-]\d)")

    def candidates(self, text: str) -> Iterator[Candidate]:
        for m in _finditer(self.regex, text, _windows(text, 11)):
            if not checksums.cpf_is_valid(_only_digits(m.group())):
                continue
            strong = m.group(1) == "." or "-" in m.group()
            priority = _score(text, m.start(), "CPF", 60, strong)
            if priority is not None:
                yield Candidate(m.start(), m.end(), priority)


class CnpjDetector(BrazilianDetector):
    """CNPJ, numeric or alphanumeric (2026): 12.ABC.345/01DE-35, any case, with or without marks."""

    name = "br_cnpj"
    min_run_digits = 2
    filth_cls = CnpjFilth
    regex = re.compile(
        r"(?<![\w.,/])([0-9A-Za-z]{2})(\.?)([0-9A-Za-z]{3})\2([0-9A-Za-z]{3})(/?)([0-9A-Za-z]{4})"
        r"-?(\d{2})(?![\w])(?![.,/-]\d)"
    )

    def candidates(self, text: str) -> Iterator[Candidate]:
        # Every form ends in two digits and spans at most 18 characters, so a match
        # ends inside a digit run and starts at most 18 characters before it.
        for m in _finditer(self.regex, text, _windows(text, 2, before=18)):
            value = "".join(c for c in m.group() if c.isalnum())
            if not checksums.cnpj_is_valid(value):
                continue
            strong = bool(m.group(2) or m.group(5))
            # An unformatted all-letter base ("ABCDEFGHIJKL" + 2 digits) reads like
            # a code word; it counts only right after the word CNPJ.
            if (
                not strong
                and not any(c.isdigit() for c in value[:12])
                and (nearest_keyword(text, m.start()) != "CNPJ")
            ):
                continue
            priority = _score(text, m.start(), "CNPJ", 65, strong)
            if priority is not None:
                yield Candidate(m.start(), m.end(), priority)


class CnsDetector(BrazilianDetector):
    """Cartão Nacional de Saúde: 15 digits (123 4567 8901 2345), both check rules."""

    name = "br_cns"
    min_run_digits = 15
    filth_cls = CnsFilth
    regex = re.compile(r"(?<![\d.,/])[1-27-9]\d{2}([\s.-]?)\d{4}\1\d{4}\1\d{4}(?!\d)(?![.,/-]\d)")

    def candidates(self, text: str) -> Iterator[Candidate]:
        for m in _finditer(self.regex, text, _windows(text, 15)):
            if not checksums.cns_is_valid(_only_digits(m.group())):
                continue
            priority = _score(text, m.start(), "CNS", 62, bool(m.group(1)))
            if priority is not None:
                yield Candidate(m.start(), m.end(), priority)


class PisDetector(BrazilianDetector):
    """PIS/PASEP/NIT/NIS: 123.45678.90-1 anywhere; other spellings only after a keyword."""

    name = "br_pis"
    min_run_digits = 11
    filth_cls = PisFilth
    regex = re.compile(r"(?<![\d.,/])\d{3}([.\s]?)\d{5}\1\d{2}([-.\s]?)\d(?!\d)(?![.,/-]\d)")

    def candidates(self, text: str) -> Iterator[Candidate]:
        for m in _finditer(self.regex, text, _windows(text, 11)):
            if not checksums.pis_is_valid(_only_digits(m.group())):
                continue
            formatted = m.group(1) == "." and m.group(2) == "-"
            keyword = nearest_keyword(text, m.start())
            if keyword == "PIS":
                yield Candidate(m.start(), m.end(), 61 + CONTEXT_BONUS)
            elif formatted and keyword != NEGATIVE:
                yield Candidate(m.start(), m.end(), 61)


class TituloDetector(BrazilianDetector):
    """Título de eleitor: 12 digits (1023 8501 0671), UF code and both check digits."""

    name = "br_titulo"
    min_run_digits = 12
    filth_cls = TituloFilth
    regex = re.compile(
        r"(?<![\d.,/])\d{4}([\s.]?)\d{4}\1\d{4}(?!\d)(?![.,/-]\d)"
        r"|(?<![\d.,/])\d{4}\s\d{4}\s\d{2}\s\d{2}(?!\d)"
        r"|(?<![\d.,/])\d{9}[\s.]?\d{4}(?!\d)(?![.,/-]\d)"
    )

    def candidates(self, text: str) -> Iterator[Candidate]:
        for m in _finditer(self.regex, text, _windows(text, 12)):
            digits = _only_digits(m.group())
            if not checksums.titulo_is_valid(digits):
                continue
            keyword = nearest_keyword(text, m.start())
            if len(digits) == 13 and keyword != "TITULO":
                continue  # 13-digit SP/MG titles only with the word título/eleitor
            priority = _score(text, m.start(), "TITULO", 58, bool(m.group(1)))
            if priority is not None:
                yield Candidate(m.start(), m.end(), priority)


class CardDetector(BrazilianDetector):
    """Payment card: 13-19 digits, optional space/hyphen groups, known issuer prefix, Luhn."""

    name = "br_cartao"
    min_run_digits = 13
    filth_cls = CartaoFilth
    regex = re.compile(r"(?<![\d.,/])\d(?:[ -]?\d){12,18}(?!\d)")
    _group_re = re.compile(r"\d+")

    @staticmethod
    def _issuer_ok(digits: str) -> bool:
        first = digits[0]
        if first == "4":  # Visa, Elo 4xxx
            return len(digits) in (13, 16, 19)
        if first == "5":  # Mastercard, Elo 50xx
            return len(digits) == 16
        if first == "2":  # Mastercard 2-series
            return len(digits) == 16 and 2221 <= int(digits[:4]) <= 2720
        if first == "3":  # Amex, Diners, JCB
            return (
                (digits[:2] in ("34", "37") and len(digits) == 15)
                or (digits[:2] in ("30", "36", "38", "39") and len(digits) in (14, 16))
                or (digits[:2] == "35" and len(digits) == 16)
            )
        if first == "6":  # Discover, Elo, Hipercard
            return 16 <= len(digits) <= 19
        return False

    def candidates(self, text: str) -> Iterator[Candidate]:
        for m in _finditer(self.regex, text, _windows(text, 13)):
            groups = list(self._group_re.finditer(m.group()))
            # The greedy match may swallow a following number ("... 1111 12 anos"):
            # try the longest run of groups that forms a valid card.
            for count in range(len(groups), 0, -1):
                end = groups[count - 1].end()
                digits = _only_digits(m.group()[:end])
                if len(digits) < 13:
                    break
                if (
                    len(digits) <= 19
                    and self._issuer_ok(digits)
                    and checksums.luhn_is_valid(digits)
                ):
                    beg = m.start()
                    strong = len(groups) > 1
                    priority = _score(text, beg, "CARTAO", 70, strong)
                    if priority is not None:
                        yield Candidate(beg, beg + end, priority)
                    break


# --- Context-gated identifiers -------------------------------------------------
_GAP = r"[^\d\n]{0,30}?"


class RgDetector(BrazilianDetector):
    """RG, only after 'RG', 'identidade' or 'registro geral' (no national check digit)."""

    name = "br_rg"
    min_run_digits = 7
    filth_cls = RgFilth
    regex = re.compile(
        r"(?<![\w])(?:r\.?\s?g\.?|identidade|registro\s+geral)(?![\w])"
        + _GAP
        + r"(?<![\w.])(?P<v>(?:[A-Za-z]{1,2}-?\s?)?\d{1,3}\.?\d{3}\.?\d{3}(?:-?[\dXx])?)(?![\w])"
        r"(?![.,/-]\d)",
        re.IGNORECASE,
    )
    _cues = ("rg", "r.g", "identidade", "registro geral")

    def candidates(self, text: str) -> Iterator[Candidate]:
        windows = _windows(text, 7, before=60)
        if not windows or not _has_cue(text, self._cues):
            return
        for m in _finditer(self.regex, text, windows):
            if nearest_keyword(text, m.start("v")) != "RG":
                continue  # another keyword ("CPF") sits between the cue and the number
            yield Candidate(m.start("v"), m.end("v"), 45 + CONTEXT_BONUS)


class CnhDetector(BrazilianDetector):
    """CNH registration number (11 digits, DENATRAN check digits), only after a CNH keyword."""

    name = "br_cnh"
    min_run_digits = 11
    filth_cls = CnhFilth
    regex = re.compile(
        r"(?<![\w])(?:cnh|habilita[cç][aã]o|carteira\s+(?:nacional\s+)?de\s+(?:motorista|habilita[cç][aã]o))"
        r"(?![\w])"
        + _GAP
        + r"(?<![\d.])(?P<v>\d{3}[.\s]?\d{3}[.\s]?\d{3}[-.\s]?\d{2})(?!\d)(?![.,/-]\d)",
        re.IGNORECASE,
    )
    _cues = ("cnh", "habilita", "motorista")

    def candidates(self, text: str) -> Iterator[Candidate]:
        windows = _windows(text, 11, before=75)
        if not windows or not _has_cue(text, self._cues):
            return
        for m in _finditer(self.regex, text, windows):
            if nearest_keyword(text, m.start("v")) != "CNH":
                continue
            if checksums.cnh_is_valid(_only_digits(m.group("v"))):
                yield Candidate(m.start("v"), m.end("v"), 60 + CONTEXT_BONUS)


class CepDetector(BrazilianDetector):
    """CEP: 01310-100 / 01.310-100 anywhere, 01310100 only after 'CEP'."""

    name = "br_cep"
    min_run_digits = 8
    filth_cls = CepFilth
    hyphen_re = re.compile(r"(?<![\d.,/-])\d{2}\.?\d{3}-\d{3}(?![\d-])(?![.,/]\d)")
    context_re = re.compile(
        r"(?<![\w])cep(?![\w])[\s:.nº°o-]{0,6}(?P<v>\d{5}-?\d{3}|\d{2}\.\d{3}-?\d{3})(?!\d)",
        re.IGNORECASE,
    )

    def candidates(self, text: str) -> Iterator[Candidate]:
        seen = set()
        if _has_cue(text, ("cep",)):
            for m in _finditer(self.context_re, text, _windows(text, 8, before=14)):
                seen.add(m.start("v"))
                yield Candidate(m.start("v"), m.end("v"), 40 + CONTEXT_BONUS)
        for m in _finditer(self.hyphen_re, text, _windows(text, 8)):
            if m.start() in seen:
                continue
            priority = _score(text, m.start(), "CEP", 40, strong=False)
            if priority is not None:
                yield Candidate(m.start(), m.end(), priority)


# Brazilian area codes (DDD) in use.
_VALID_DDD = frozenset(
    int(code)
    for code in (
        "11 12 13 14 15 16 17 18 19 21 22 24 27 28 31 32 33 34 35 37 38 41 42 43 44 45 46 47 48"
        " 49 51 53 54 55 61 62 63 64 65 66 67 68 69 71 73 74 75 77 79 81 82 83 84 85 86 87 88 89"
        " 91 92 93 94 95 96 97 98 99"
    ).split()
)


class PhoneDetector(BrazilianDetector):
    """Brazilian phones: +55, DDD with or without parentheses, 8 or 9 digits, any separator."""

    name = "br_telefone"
    min_run_digits = 8
    filth_cls = TelefoneFilth
    regex = re.compile(
        r"(?<![\w@/])"
        r"(?P<cc>\+\s?55|(?<!\d)55(?=[\s.-]?\(?0?\d{2}\)?[\s.-]?9?[\s.]?\d{4}[\s.-]?\d{4}(?!\d)))?"
        r"[\s.-]?"
        r"(?:(?P<dddp>\(\s?0?\d{2}\s?\))|(?P<ddd>0?\d{2}))?"
        r"(?P<sep1>[\s.-]?)"
        r"(?P<a>9[\s.]?\d{4}|\d{4})"
        r"(?P<sep2>[\s.-]?)"
        r"(?P<b>\d{4})"
        r"(?!\d)(?![.,/]\d)"
    )

    def _judge(self, text: str, m: re.Match) -> int | None:
        ddd_raw = m.group("dddp") or m.group("ddd")
        a = _only_digits(m.group("a"))
        if ddd_raw is not None:
            ddd = int(_only_digits(ddd_raw)[-2:])
            if ddd not in _VALID_DDD:
                return None
        elif m.group("cc"):
            return None
        if len(a) == 5 and a[0] != "9":
            return None
        if len(a) == 4 and a[0] in "01":
            return None
        keyword = nearest_keyword(text, m.start())
        if keyword == "TELEFONE":
            return 55 + CONTEXT_BONUS
        if keyword == NEGATIVE:
            return None
        separated = bool(m.group("sep2"))
        if ddd_raw is None:
            # A bare 8/9-digit number is a phone only in the mobile shape 9XXXX-XXXX.
            return 50 if (len(a) == 5 and separated) else None
        if m.group("cc") or m.group("dddp") or separated or m.group("sep1"):
            return 55
        # Contiguous 10/11 digits with a valid DDD: still a phone, but a checksum
        # identifier of the same length wins the overlap.
        return 35

    def candidates(self, text: str) -> Iterator[Candidate]:
        for pos, endpos in _windows(text, 8):
            yield from self._scan(text, pos, endpos)

    def _scan(self, text: str, pos: int, endpos: int) -> Iterator[Candidate]:
        regex = self.regex
        while True:
            m = regex.search(text, pos, endpos)
            if m is None:
                return
            beg = m.start()
            # The leading optional separator is not part of the phone.
            while beg < m.end() and text[beg] in " .-":
                beg += 1
            priority = self._judge(text, m)
            if priority is None:
                # Retry one character later: a rejected candidate must not hide
                # a valid phone that starts inside it.
                pos = m.start() + 1
                continue
            yield Candidate(beg, m.end(), priority)
            pos = m.end()


class EmailDetector(BrazilianDetector):
    """E-mail addresses (replaces scrubadub's English 'john at gmail dot com' detector)."""

    name = "br_email"
    filth_cls = EmailFilth
    needs_digit = False
    regex = re.compile(
        r"(?<![\w.+-])[\w][\w.%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
    )

    def candidates(self, text: str) -> Iterator[Candidate]:
        if "@" not in text:
            return
        for m in self.regex.finditer(text):
            yield Candidate(m.start(), m.end(), 90)


# --- Disguised identifiers ------------------------------------------------------
# What may stand between the digits of a number typed sloppily or on purpose to
# dodge a filter: spaces between every digit, "_ / \ | ~ •", dashes of any width.
_LOOSE_SEP = r"[ \t.\-‐‑‒–—_/\\|~•·∙⋅‧*()]"
_LOOSE_GAP_RE = re.compile(_LOOSE_SEP + r"{1,3}")
# A date or a time is never an identifier, even right after "tel." or "CEP".
_DATE_SHAPE_RE = re.compile(r"\d{1,2}([/.-])\d{1,2}\1\d{2,4}(?!\d)")
_DIGIT_GROUP_RE = re.compile(r"\d+")
# Digit counts a number may have right after the keyword of its type. After
# "CPF" an 11-digit number is a CPF even when a typo broke its check digit.
_KEYWORD_LENGTHS: dict[str, tuple[type[BrazilianFilth], int, range]] = {
    "CPF": (CpfFilth, 60, range(11, 12)),
    "CNPJ": (CnpjFilth, 65, range(14, 15)),
    "CNS": (CnsFilth, 62, range(15, 16)),
    "PIS": (PisFilth, 61, range(11, 12)),
    "TITULO": (TituloFilth, 58, range(12, 14)),
    "CNH": (CnhFilth, 60, range(11, 12)),
    "CEP": (CepFilth, 40, range(8, 9)),
    "TELEFONE": (TelefoneFilth, 55, range(8, 14)),
    "CARTAO": (CartaoFilth, 70, range(13, 20)),
    "RG": (RgFilth, 45, range(7, 11)),
}
# "right after the keyword": closer than the general context window.
_KEYWORD_GATE_WINDOW = 32
_MAX_ID_DIGITS = 19


def _mobile_phone(digits: str) -> bool:
    """DDD + 9 + 8 digits, optionally after the country code 55."""
    if len(digits) in (12, 13) and digits.startswith("55"):
        digits = digits[2:]
    if len(digits) == 12 and digits[0] == "0":
        digits = digits[1:]
    return len(digits) == 11 and int(digits[:2]) in _VALID_DDD and digits[2] == "9"


def _validated(digits: str) -> tuple[type[BrazilianFilth], int] | None:
    """The type a bare digit string proves to be by its check digits (or mobile shape)."""
    n = len(digits)
    if n == 11 and checksums.cpf_is_valid(digits):
        return CpfFilth, 60
    if n == 14 and checksums.cnpj_is_valid(digits):
        return CnpjFilth, 65
    if n == 15 and checksums.cns_is_valid(digits):
        return CnsFilth, 62
    if 13 <= n <= 19 and CardDetector._issuer_ok(digits) and checksums.luhn_is_valid(digits):
        return CartaoFilth, 70
    if n == 12 and checksums.titulo_is_valid(digits):
        return TituloFilth, 58
    if _mobile_phone(digits):
        return TelefoneFilth, 50
    return None


class LooseNumberDetector(BrazilianDetector):
    """Identifiers whose digits are spread out or mistyped.

    "1 2 3 . 4 5 6 . 7 8 9 - 0 9", "529_982_247_25", "11~98765~4321": the
    digits are joined and count when they validate (check digits, or a mobile
    number with a real DDD) or sit right after the keyword of their type, in
    which case a wrong check digit does not matter ("CPF 123.456.789-00" is
    still someone's CPF with a typo). Detections of the exact-format detectors
    win ties; this one adds what they cannot see.
    """

    name = "br_numero_disfarcado"
    filth_cls = BrazilianFilth

    def candidates(self, text: str) -> Iterable[Candidate]:  # pragma: no cover - see iter_filth
        return ()

    @staticmethod
    def _loose_runs(text: str) -> Iterator[tuple[int, int]]:
        """(start, end) of digit runs joined across odd separators, with >= 8 digits.

        Built from the per-message digit runs every detector shares: neighbouring
        runs whose gap is only separators belong together.
        """
        runs = _digit_runs(text)
        if sum(run[2] for run in runs) < 8:  # no identifier has fewer digits
            return
        beg, end, digits = runs[0]
        for next_beg, next_end, next_digits in runs[1:]:
            if _LOOSE_GAP_RE.fullmatch(text, end, next_beg):
                end, digits = next_end, digits + next_digits
                continue
            if digits >= 8:
                yield beg, end
            beg, end, digits = next_beg, next_end, next_digits
        if digits >= 8:
            yield beg, end

    def iter_filth(self, text: str, document_name: str | None = None) -> Iterator[Filth]:
        for beg, end in self._loose_runs(text):
            if beg and (text[beg - 1].isalnum() or text[beg - 1] == "_"):
                continue  # inside a code word ("AB1234...")
            if beg and text[beg - 1] == "(":
                beg -= 1  # "(11) 9 8765 4321": the area code's parenthesis belongs to it
            run = text[beg:end]
            date = _DATE_SHAPE_RE.match(run)
            if date:  # "12/03/2025 10" - what follows a date may still be a number
                beg += date.end()
                while beg < end and not text[beg].isdigit() and text[beg] not in "(+":
                    beg += 1  # the separator after the date is not part of the number
                run = text[beg:end]
            groups = [(g.start(), g.end()) for g in _DIGIT_GROUP_RE.finditer(run)]
            if sum(e - b for b, e in groups) < 8:
                continue
            for part in self._sentences(run, groups):
                if sum(e - b for b, e in part) < 8:
                    continue
                lead = beg if part[0] is groups[0] else beg + part[0][0]
                yield from self._filths(text, beg, lead, part, document_name)

    @staticmethod
    def _sentences(run: str, groups: list[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
        """The groups split where a full stop or comma and a space end a number
        ("... 5566. 209" is a phone, then another number)."""
        part = [groups[0]]
        for previous, group in zip(groups, groups[1:], strict=False):
            if run[previous[1]] in ".," and run[previous[1] + 1: group[0]].strip() == "" \
                    and group[0] > previous[1] + 1:
                yield part
                part = []
            part.append(group)
        yield part

    def _filths(self, text: str, offset: int, lead: int, groups: list[tuple[int, int]],
                document_name: str | None) -> Iterator[Filth]:
        # Most numbers long enough to get here are plain identifiers in a format the
        # exact detectors read: checked first, without the keyword lookup.
        whole = text[lead : offset + groups[-1][1]]
        digits = _only_digits(whole)
        judged = _validated(digits) if len(digits) <= _MAX_ID_DIGITS else None
        # (Not for phones: a mobile-shaped number right after "CPF" is a mistyped CPF.)
        if judged is not None and judged[0] is not TelefoneFilth:
            exact = _EXACT_FORMS.get(judged[0])
            if exact is not None and exact(whole, validated=True):
                return
        keyword = nearest_keyword(text, lead, _KEYWORD_GATE_WINDOW)
        for cls, start, stop, priority in self._scan(text, offset, lead, groups, keyword):
            exact = _EXACT_FORMS.get(cls)
            if exact is not None and exact(text[start:stop], validated=priority < CONTEXT_BONUS):
                continue  # in a format its own detector reads (and validates): nothing to add
            yield cls(beg=start, end=stop, text=text[start:stop], priority=priority,
                      detector_name=self.name, document_name=document_name,
                      locale=self.locale)

    @staticmethod
    def _scan(text: str, offset: int, lead: int, groups: list[tuple[int, int]],
              keyword: str | None):
        first = 0
        while first < len(groups):
            beg = lead if first == 0 else offset + groups[first][0]
            found = None
            digits = ""
            # Longest run of groups from `first` that is an identifier.
            options = []
            for last in range(first, len(groups)):
                digits += text[offset + groups[last][0]: offset + groups[last][1]]
                if len(digits) > _MAX_ID_DIGITS:
                    break
                if len(digits) >= 8:
                    options.append((last, digits))
            if not options and len(digits) < 8:
                return  # what is left of the run is too short for any identifier
            if first and options:
                keyword = nearest_keyword(text, beg, _KEYWORD_GATE_WINDOW)
            for last, digits in reversed(options):
                judged = LooseNumberDetector._judge(digits, keyword)
                if judged is not None:
                    found = (last, *judged)
                    break
            if found is None:
                first += 1
                continue
            last, cls, priority = found
            yield cls, beg, offset + groups[last][1], priority
            first = last + 1

    @staticmethod
    def _judge(digits: str, keyword: str | None) -> tuple[type[BrazilianFilth], int] | None:
        gated = _KEYWORD_LENGTHS.get(keyword or "")
        if gated is not None and len(digits) in gated[2] and len(set(digits)) > 1:
            # (000.000.000-00 after "CPF" is a form's placeholder, not a person's number.)
            # Just below an exact-format detection after the same keyword.
            return gated[0], gated[1] + CONTEXT_BONUS - 1
        if keyword == NEGATIVE:
            return None  # "lote 1 2 3 ...", "protocolo ...": not a person's number
        return _validated(digits)


# Values an exact-format detector finds on its own, keyword or not (see
# LooseNumberDetector._filths): emitting them again would only cost time.
def _exact(regex: re.Pattern[str], valid=None):
    def check(value: str, *, validated: bool = False) -> bool:
        if regex.fullmatch(value) is None:
            return False
        return validated or valid is None or valid(_only_digits(value))
    return check


_EXACT_FORMS = {
    CpfFilth: _exact(CpfDetector.regex, checksums.cpf_is_valid),
    CnpjFilth: _exact(CnpjDetector.regex, checksums.cnpj_is_valid),
    CnsFilth: _exact(CnsDetector.regex, checksums.cns_is_valid),
    CartaoFilth: _exact(CardDetector.regex, checksums.luhn_is_valid),
    TituloFilth: _exact(TituloDetector.regex, checksums.titulo_is_valid),
    PisFilth: _exact(PisDetector.regex, checksums.pis_is_valid),
    CnhFilth: _exact(re.compile(r"\d{3}[.\s]?\d{3}[.\s]?\d{3}[-.\s]?\d{2}"),
                     checksums.cnh_is_valid),
    CepFilth: _exact(re.compile(r"\d{5}-?\d{3}|\d{2}\.\d{3}-?\d{3}")),
    RgFilth: _exact(re.compile(r"\d{1,3}\.?\d{3}\.?\d{3}(?:-?[\dXx])?")),
    TelefoneFilth: _exact(PhoneDetector.regex, _mobile_phone),
}

_EMAIL_TLDS = (
    "com|br|net|org|edu|gov|mil|io|me|info|biz|co|us|uk|pt|es|de|fr|it|ar|app|dev|online"
    "|site|med|adv|eng|tech|xyz|live|email|digital"
)
_SPELLED_AT = r"(?:\s+(?:arroba|at)\s+|\s*[(\[{<]\s*(?:arroba|at|@)\s*[)\]}>]\s*|\s*@\s*)"
_SPELLED_DOT = r"(?:\s+(?:ponto|dot)\s+|\s*[(\[{<]\s*(?:ponto|dot|\.)\s*[)\]}>]\s*|\s*\.\s*)"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"


class SpelledEmailDetector(BrazilianDetector):
    """E-mail addresses spelled out or spaced: "maria arroba gmail ponto com",
    "joao at hotmail dot com", "ana [at] clinica [dot] com [dot] br", "bia @ uol . com".

    The domain must end in a known top-level domain, so "arroba" or "at" in a
    sentence does not make an address of the words around it.
    """

    name = "br_email_soletrado"
    filth_cls = EmailFilth
    needs_digit = False
    _at_word_re = re.compile(r"(?<![a-z])at(?![a-z])")
    # Anchored on the "at" (cheap to find), then the local part backwards and the
    # domain forwards: one pattern starting at every word would cost O(length x 64).
    _at_core_re = re.compile(r"@|(?<![a-z])(?:arroba|at)(?![a-z])")
    _local_re = re.compile(r"(?<![\w.+-])[a-z0-9][a-z0-9._%+-]{0,63}(?<![.])\Z", re.IGNORECASE)
    # One more piece of a local part spelled with its dot: "joana ponto silva arroba…".
    _local_piece_re = re.compile(
        r"(?<![\w.+-])[a-z0-9][a-z0-9_%+-]{0,63}"
        r"(?:\s+(?:ponto|dot)\s+|\s*[(\[{<]\s*(?:ponto|dot|\.)\s*[)\]}>]\s*|\s+\.\s+)\Z",
        re.IGNORECASE,
    )
    _domain_re = re.compile(
        _LABEL
        + r"(?:" + _SPELLED_DOT + _LABEL + r")*?"
        + _SPELLED_DOT
        + r"(?:" + _EMAIL_TLDS + r")"
        + r"(?:" + _SPELLED_DOT + r"(?:br|pt|ar|uk|us|es))?"
        + r"(?![\w-])",
        re.IGNORECASE,
    )

    def candidates(self, text: str) -> Iterator[Candidate]:
        low = lowered(text)
        # Substring tests first: "at" inside words (data, tratamento) is everywhere.
        if "@" not in low and "arroba" not in low and not (
            ("at " in low or "at]" in low or "at)" in low or "at}" in low or "at>" in low)
            and self._at_word_re.search(low)
        ):
            return
        end = 0
        for core in self._at_core_re.finditer(low):
            left, right = self._around(text, core.start(), core.end())
            if left < end or (core.group() != "@" and (left == core.start()
                                                        or right == core.end())):
                continue  # "arroba"/"at" count only set apart by spaces or brackets
            if left == core.start() and right == core.end() and not (
                "ponto" in low[right:right + 80] or "dot" in low[right:right + 80]
            ):
                continue  # maria@gmail.com: a typed address, EmailDetector's
            local = self._local_re.search(text, max(end, left - 64), left)
            if local is None:
                continue
            domain = self._domain_re.match(text, right)
            if domain is None:
                continue
            start = local.start()
            for _ in range(3):
                piece = self._local_piece_re.search(text, max(end, start - 80), start)
                if piece is None:
                    break
                start = piece.start()
            end = domain.end()
            yield Candidate(start, end, 89)

    @staticmethod
    def _around(text: str, beg: int, end: int) -> tuple[int, int]:
        """The "at" widened over the spaces and one pair of brackets around it."""
        size = len(text)
        while beg and text[beg - 1].isspace():
            beg -= 1
        while end < size and text[end].isspace():
            end += 1
        if beg and end < size and text[beg - 1] in "([{<" and text[end] in ")]}>":
            beg, end = beg - 1, end + 1
            while beg and text[beg - 1].isspace():
                beg -= 1
            while end < size and text[end].isspace():
                end += 1
        return beg, end

_MONTHS = (
    "janeiro|fevereiro|mar[cç]o|abril|maio|junho|julho|agosto|setembro|outubro|novembro|dezembro"
)
_MONTH_ABBR = "jan|fev|mar|abr|mai|jun|jul|ago|set|out|nov|dez"
_MONTH_NUMBER = {
    name: i + 1
    for i, name in enumerate(
        ("jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez")
    )
}


class BirthDateDetector(BrazilianDetector):
    """Dates of birth, only right after a birth keyword ('nascida em', 'DN:', 'data de
    nascimento'): a procedure date ('aplicado em 12/03/2025') is not personal data."""

    name = "br_data_nascimento"
    min_run_digits = 4
    filth_cls = DataNascimentoFilth
    regex = re.compile(
        r"(?<![\w])(?:data\s+de\s+nascimento|data\s+(?:de\s+)?nasc\.?|dt\.?\s*(?:de\s+)?nasc(?:imento|\.)?"
        r"|d\.\s?n\.?|dn|nascid[oa]s?|nasceu|nascimento|nasc\.?|anivers[aá]rio)(?![\w])"
        r"\s*(?:[:=\-–]\s*)?(?:(?:em|no|na|dia|de|a|o|:)\s+){0,3}"
        r"(?P<v>"
        r"(?P<d1>\d{1,2})[/.\-](?P<m1>\d{1,2})[/.\-](?P<y1>\d{4}|\d{2})"
        r"|(?P<d2>\d{1,2})(?:º|°)?\s+de\s+(?P<m2>" + _MONTHS + r")(?:\s+de)?\s+(?P<y2>\d{4})"
        r"|(?P<d3>\d{1,2})[/\s\-]?(?P<m3>" + _MONTH_ABBR + r")[a-zç]*\.?[/\s\-]?(?P<y3>\d{4}|\d{2})"
        r"|(?P<y4>\d{4})-(?P<m4>\d{2})-(?P<d4>\d{2})"
        r")(?![\d/])",
        re.IGNORECASE,
    )
    _cues = ("nasc", "dn", "d.n", "d. n", "anivers")

    @staticmethod
    def _plausible(m: re.Match) -> bool:
        for n in "1234":
            if m.group("d" + n):
                day = int(m.group("d" + n))
                month_raw = m.group("m" + n)
                if month_raw.isdigit():
                    month = int(month_raw)
                else:
                    month = _MONTH_NUMBER.get(lexicon.fold(month_raw)[:3], 0)
                year = m.group("y" + n)
                if len(year) == 4 and not 1880 <= int(year) <= 2100:
                    return False
                return 1 <= day <= 31 and 1 <= month <= 12
        return False

    def candidates(self, text: str) -> Iterator[Candidate]:
        windows = _windows(text, 4, before=60)
        if not windows or not _has_cue(text, self._cues):
            return
        for m in _finditer(self.regex, text, windows):
            if self._plausible(m):
                yield Candidate(m.start("v"), m.end("v"), 50 + CONTEXT_BONUS)


_STREET_TYPES = (
    r"rua|r\.|avenida|av\.?|travessa|trav\.|tv\.|alameda|al\.|rodovia|rod\.|pra[cç]a|p[cç]a\.?"
    r"|estrada|estr\.|largo|lgo\.|viela|beco|ladeira|servid[aã]o|passagem|quadra|qd\."
)
_STREET_WORDS = frozenset(
    {
        "rua",
        "avenida",
        "travessa",
        "alameda",
        "rodovia",
        "praça",
        "praca",
        "estrada",
        "largo",
        "viela",
        "beco",
        "ladeira",
        "servidão",
        "servidao",
        "passagem",
        "quadra",
        "r",
        "av",
        "trav",
        "tv",
        "al",
        "rod",
        "pça",
        "pca",
        "estr",
        "lgo",
        "qd",
    }
)
# A capitalised word of a street name; a trailing dot only on abbreviations ("Dr.",
# "Pe.", "Cel.") so that a sentence's full stop stays out of the span.
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ](?:[a-zà-ÿ]{0,4}\.(?=\s)|[\w'’-]*)"
# "Rua 25 de Março", "Av. 9 de Julho": a leading number only as a date-like street name.
_FIRST_NAME_WORD = r"(?:" + _NAME_WORD + r"|\d{1,2}\s+de\s+" + _NAME_WORD + r")"
_PARTICLE = r"(?:de|da|do|das|dos|e|d['’])"
_COMPLEMENT = (
    r"(?:\s*[,;\-–]?\s*(?:"
    r"(?i:apto?|apartamento|ap|bloco|bl|casa|cs|sala|sl|conjunto|conj|cj|torre|lote|lt|quadra|qd"
    r"|loja|lj|unidade|un)\.?\s*[A-Za-z]?\d{0,5}[A-Za-z]?(?![\w])"
    r"|\d{1,2}\s?[ºo°]\s?(?i:andar)|(?i:fundos|t[eé]rreo)))"
)
_NUMBER = (
    r"\s*,?\s*(?:(?i:n[º°o]\.?|n\.|n[uú]mero|num\.?)\s*|#\s*)?"
    r"(?P<num>\d{1,5}[A-Za-z]?(?![\w/])(?![.,]\d)|(?i:s/?n(?![\w]))|(?i:km)\s*\d{1,4}(?:[.,]\d{1,3})?)"
)


class AddressDetector(BrazilianDetector):
    """Street addresses: street type + name + number (+ complements); without a number only
    after 'mora', 'reside' or 'endereço'."""

    name = "br_endereco"
    filth_cls = EnderecoFilth
    needs_digit = False
    with_number_re = re.compile(
        r"(?<![\w])(?i:" + _STREET_TYPES + r")\s+"
        r"(?:"
        + _PARTICLE
        + r"\s+)?"
        + _FIRST_NAME_WORD
        + r"(?:\s+(?:"
        + _PARTICLE
        + r"\s+)?"
        + _NAME_WORD
        + r"){0,6}?"
        + _NUMBER
        + _COMPLEMENT
        + r"*"
    )
    residence_re = re.compile(
        r"(?<![\w])(?i:mora|moram|reside|residente|endere[cç]o|resid[eê]ncia)(?![\w])[^\n.;]{0,20}?"
        r"(?P<v>(?<![\w])(?i:"
        + _STREET_TYPES
        + r")\s+(?:"
        + _PARTICLE
        + r"\s+)?"
        + _FIRST_NAME_WORD
        + r"(?:\s+(?:"
        + _PARTICLE
        + r"\s+)?"
        + _NAME_WORD
        + r"){0,5})"
    )
    _residence_cues = ("mora", "resid", "endere")

    def candidates(self, text: str) -> Iterator[Candidate]:
        end = -1
        street_words = _STREET_WORDS
        for beg, _, word in _tokens(text):
            if beg < end or (word not in street_words and word.lower() not in street_words):
                continue
            # Anchored at each street word instead of scanning the whole message.
            m = self.with_number_re.match(text, beg)
            if m:
                end = m.end()
                yield Candidate(m.start(), m.end(), 75)
        if end == -1 and not _has_cue(text, self._residence_cues):
            return
        for m in self.residence_re.finditer(text):
            yield Candidate(m.start("v"), m.end("v"), 74)


class MedicalRecordDetector(BrazilianDetector):
    """Medical-record numbers after 'prontuário', 'pront.', 'MRN', 'registro' or 'ficha'."""

    name = "br_prontuario"
    min_run_digits = 3
    filth_cls = ProntuarioFilth
    regex = re.compile(
        r"(?<![\w])(?:prontu[aá]rio|pront\.?|mrn|registro(?!\s+(?:anvisa|ms|no\s+ms|do\s+produto|"
        r"profissional|geral|do\s+crm|crm))|ficha(?:\s+cl[ií]nica)?|n[º°o]?\s*(?:de\s+)?atendimento)"
        r"(?![\w])"
        r"(?:\s*(?:do|da|de|n[º°o]\.?|n\.|n[uú]mero|num\.?|#|:|-|hospitalar|eletr[oô]nico|"
        r"paciente|cl[ií]nico)\s*){0,4}\s*"
        r"(?P<v>(?:[A-Za-z]{1,4}[-/.]?)?\d(?:[\d./-]{0,14}\d)?)(?![\w])(?![.,/-]\d)",
        re.IGNORECASE,
    )
    _cues = ("pront", "mrn", "registro", "ficha", "atendimento")

    def candidates(self, text: str) -> Iterator[Candidate]:
        windows = _windows(text, 3, before=75)
        if not windows or not _has_cue(text, self._cues):
            return
        for m in _finditer(self.regex, text, windows):
            if sum(c.isdigit() for c in m.group("v")) >= 3:
                yield Candidate(m.start("v"), m.end("v"), 55 + CONTEXT_BONUS)


# --- Names -------------------------------------------------------------------
class NameDetector(BrazilianDetector):
    """Person names in Portuguese: the rules live in `names.find_names`."""

    name = "br_nome"
    filth_cls = NomeFilth
    needs_digit = False

    def candidates(self, text: str) -> Iterator[Candidate]:
        tokens = _tokens(text)
        places: list[tuple[int, int]] = []
        found = list(names.find_names(text, tokens, places=places))
        for beg, end in names.find_speaker_labels(text):
            # "A.H.: boa tarde\nR.: ...": the speakers of a transcript
            if not any(b < end and beg < e for b, e in found):
                found.append((beg, end))
        for beg, end in found:
            yield Candidate(beg, end, 30)
        if not found:
            return
        # A name found once is a name wherever it recurs in the message: "Kauane
        # Zambon ... Zambon ligou", "David Hume ... Para Hume," (same rules as names
        # known in the session).
        # Words that are also everyday words or products stay out ("Rosa Silva ... óleo
        # de Rosa Mosqueta").
        words = (_TOKEN_RE.findall(text, b, e) for b, e in found)
        own = tuple(
            {tuple(lexicon.fold(w) for w in name if names.distinctive(w)) for name in words} - {()}
        )
        taken = found + places  # "Paulo Henrique veio de São Paulo": the town stays
        for beg, end in names.find_known_names(text, tokens, own):
            if not any(b < end and beg < e for b, e in taken):
                taken.append((beg, end))
                yield Candidate(beg, end, 30)
        weak = names.weak_words([w for b, e in found for w in _TOKEN_RE.findall(text, b, e)])
        for beg, end in names.find_weak_recurrences(text, tokens, weak):
            if not any(b < end and beg < e for b, e in taken):
                yield Candidate(beg, end, 30)


class HandleDetector(BrazilianDetector):
    """Social-media handles that name someone: "Instagram @joana.silva.estetica",
    "marcou a @kamilla_rocha88". A handle is redacted as a name (the @ stays) when one
    of its pieces is a given name or surname with no everyday reading, or when a social network or
    "perfil" comes right before it; "@clinica_estetica" alone stays.

    E-mail addresses are not handles: the @ must open a word.
    """

    name = "br_perfil_social"
    filth_cls = NomeFilth
    needs_digit = False
    # Instagram's and TikTok's rules: letters, digits, '.' and '_', at most 30.
    _handle_re = re.compile(r"(?<![\w@.+-])@([a-z0-9_](?:[a-z0-9_.]{0,28}[a-z0-9_])?)(?![\w@])",
                            re.IGNORECASE)
    _piece_re = re.compile(r"[^\W\d_]{3,}")
    _network_re = re.compile(
        r"(?:instagram|insta|ig|tiktok|tik tok|twitter|facebook|face|threads|kwai|perfil)"
        r"[^\w@]{0,12}\Z",
        re.IGNORECASE,
    )

    def candidates(self, text: str) -> Iterator[Candidate]:
        if "@" not in text:
            return
        for match in self._handle_re.finditer(text):
            handle = match.group(1)
            named = any(self._clear_name(piece) for piece in self._piece_re.findall(handle))
            if named or self._network_re.search(text, max(0, match.start() - 40),
                                                match.start()):
                yield Candidate(match.start(1), match.end(1), 30)

    @staticmethod
    def _clear_name(piece: str) -> bool:
        # Not words that are names too: "@clinica_bela", "@studio.rosa" are businesses.
        flags = lexicon.flags_of(piece)
        if flags & lexicon.FIRST:
            return True
        return bool(flags & lexicon.SURNAME) and not flags & lexicon.SURNAME_COMMON_WORD


# Names already known in the session (from the mapping), set per call by the engine.
known_names: contextvars.ContextVar[tuple[tuple[str, ...], ...]] = contextvars.ContextVar(
    "known_names", default=()
)


class KnownNameDetector(BrazilianDetector):
    """Names already in the session mapping, found again wherever they reappear.

    A rare name introduced once with context ("paciente Thayná Zambon") is
    redacted in later messages even without context ("Thayná voltou"): the
    full name anywhere, and each of its words when capitalised.
    """

    name = "br_nome_conhecido"
    filth_cls = NomeFilth
    needs_digit = False

    def candidates(self, text: str) -> Iterator[Candidate]:
        known = known_names.get()
        if not known:
            return
        for beg, end in names.find_known_names(text, _tokens(text), known):
            yield Candidate(beg, end, 31)


def default_detectors() -> list[BrazilianDetector]:
    """The detectors of the redaction engine, in no particular order (overlaps are resolved
    by priority)."""
    return [
        CpfDetector(),
        CnpjDetector(),
        RgDetector(),
        CnsDetector(),
        PisDetector(),
        TituloDetector(),
        CnhDetector(),
        CepDetector(),
        PhoneDetector(),
        EmailDetector(),
        SpelledEmailDetector(),
        CardDetector(),
        LooseNumberDetector(),
        BirthDateDetector(),
        AddressDetector(),
        MedicalRecordDetector(),
        NameDetector(),
        KnownNameDetector(),
        HandleDetector(),
    ]
