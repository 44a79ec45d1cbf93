"""Check-digit rules of Brazilian identifiers, and generators of valid numbers.

Every validator takes the identifier already reduced to its characters
(digits, or digits and letters for the alphanumeric CNPJ) and returns a bool;
none of them raises. The generators take a `random.Random` so the evaluation
corpus and the tests are reproducible.
"""

from __future__ import annotations

import random
from operator import mul

__all__ = [
    "cnh_is_valid",
    "cnpj_is_valid",
    "cns_is_valid",
    "cpf_is_valid",
    "generate_cnh",
    "generate_cnpj",
    "generate_cns",
    "generate_cpf",
    "generate_luhn",
    "generate_pis",
    "generate_titulo",
    "luhn_is_valid",
    "pis_is_valid",
    "titulo_is_valid",
]

_CNPJ_W1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_W2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_PIS_W = (3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_TITULO_UF_SP_MG = ("01", "02")


def _repeated(value: str) -> bool:
    # 000.000.000-00 and friends pass the arithmetic but are placeholders, not people.
    return value == value[0] * len(value)


def _mod11_dv(total: int) -> int:
    rest = total % 11
    return 0 if rest < 2 else 11 - rest


# --- CPF ----------------------------------------------------------------------
def _cpf_digits(base: str) -> str:
    # map/mul instead of a generator: this runs for every 11-digit number of every message.
    digits = list(map(int, base[:9]))
    d1 = _mod11_dv(sum(map(mul, digits, range(10, 1, -1))))
    digits.append(d1)
    d2 = _mod11_dv(sum(map(mul, digits, range(11, 1, -1))))
    return f"{d1}{d2}"


def cpf_is_valid(digits: str) -> bool:
    """11 digits whose two mod-11 check digits match (repeated digits rejected)."""
    if len(digits) != 11 or not digits.isdigit() or _repeated(digits):
        return False
    return _cpf_digits(digits) == digits[9:]


def generate_cpf(rng: random.Random) -> str:
    """A valid CPF as 11 digits."""
    while True:
        base = "".join(rng.choice("0123456789") for _ in range(9))
        if not _repeated(base):
            return base + _cpf_digits(base)


# --- CNPJ (numeric and the alphanumeric format introduced in 2026) -------------
def _cnpj_value(char: str) -> int:
    # Receita Federal rule: each character is worth its ASCII code minus 48,
    # so digits keep their value and 'A' is worth 17.
    return ord(char) - 48


def _cnpj_digits(base: str) -> str:
    d1 = _mod11_dv(sum(_cnpj_value(c) * w for c, w in zip(base[:12], _CNPJ_W1, strict=True)))
    body = base[:12] + str(d1)
    d2 = _mod11_dv(sum(_cnpj_value(c) * w for c, w in zip(body, _CNPJ_W2, strict=True)))
    return f"{d1}{d2}"


def cnpj_is_valid(value: str) -> bool:
    """14 characters: 12 of [0-9A-Z] (any case) then two numeric check digits."""
    if len(value) != 14:
        return False
    value = value.upper()
    head, tail = value[:12], value[12:]
    if not tail.isdigit() or not head.isascii() or not head.isalnum() or _repeated(value):
        return False
    return _cnpj_digits(head) == tail


def generate_cnpj(rng: random.Random, *, alphanumeric: bool = False) -> str:
    """A valid CNPJ; with `alphanumeric` the first 12 characters mix letters and digits."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" if alphanumeric else "0123456789"
    while True:
        root = "".join(rng.choice(alphabet) for _ in range(8))
        branch = (
            rng.choice(("0001", "0002", "0003"))
            if not alphanumeric
            else "".join(rng.choice(alphabet) for _ in range(4))
        )
        base = root + branch
        if alphanumeric and base.isdigit():
            continue
        if not _repeated(base):
            return base + _cnpj_digits(base)


# --- CNS (Cartão Nacional de Saúde) --------------------------------------------
def _cns_from_pis(pis: str) -> str:
    # Definitive cards (first digit 1 or 2) derive from the holder's PIS number.
    total = sum(int(c) * (15 - i) for i, c in enumerate(pis))
    dv = 11 - total % 11
    if dv == 11:
        dv = 0
    if dv == 10:
        total += 2
        dv = 11 - total % 11
        return f"{pis}001{dv}"
    return f"{pis}000{dv}"


def cns_is_valid(digits: str) -> bool:
    """15 digits; 1/2-prefixed cards follow the PIS rule, 7/8/9 the weighted-sum rule."""
    if len(digits) != 15 or not digits.isdigit():
        return False
    first = digits[0]
    if first in "12":
        return _cns_from_pis(digits[:11]) == digits
    if first in "789":
        return sum(int(c) * (15 - i) for i, c in enumerate(digits)) % 11 == 0
    return False


def generate_cns(rng: random.Random, *, provisional: bool = False) -> str:
    """A valid CNS: definitive (1/2 prefix) or provisional (7/8/9 prefix)."""
    if not provisional:
        return _cns_from_pis(
            rng.choice("12") + "".join(rng.choice("0123456789") for _ in range(10))
        )
    while True:
        head = rng.choice("789") + "".join(rng.choice("0123456789") for _ in range(12))
        partial = sum(int(c) * (15 - i) for i, c in enumerate(head))
        # The last two digits carry weights 2 and 1: pick them to close the sum mod 11.
        for d14 in range(10):
            d15 = (-(partial + 2 * d14)) % 11
            if d15 <= 9:
                return f"{head}{d14}{d15}"


# --- PIS / PASEP / NIT / NIS ---------------------------------------------------
def _pis_digit(base: str) -> int:
    dv = 11 - sum(int(c) * w for c, w in zip(base, _PIS_W, strict=True)) % 11
    return 0 if dv >= 10 else dv


def pis_is_valid(digits: str) -> bool:
    """11 digits, last one the mod-11 check digit over weights 3,2,9..2."""
    if len(digits) != 11 or not digits.isdigit() or _repeated(digits):
        return False
    return _pis_digit(digits[:10]) == int(digits[10])


def generate_pis(rng: random.Random) -> str:
    """A valid PIS/PASEP/NIT as 11 digits."""
    while True:
        base = rng.choice("123") + "".join(rng.choice("0123456789") for _ in range(9))
        if not _repeated(base):
            return base + str(_pis_digit(base))


# --- Título de eleitor ---------------------------------------------------------
def _titulo_digits(sequential: str, uf: str) -> str:
    special = uf in _TITULO_UF_SP_MG
    rest = sum(int(c) * w for c, w in zip(sequential[:8], range(2, 10), strict=True)) % 11
    # Remainder 10 becomes 0; for SP and MG a remainder 0 becomes 1 (TSE rule).
    d1 = 0 if rest == 10 else (1 if rest == 0 and special else rest)
    rest = (int(uf[0]) * 7 + int(uf[1]) * 8 + d1 * 9) % 11
    d2 = 0 if rest == 10 else (1 if rest == 0 and special else rest)
    return f"{d1}{d2}"


def titulo_is_valid(digits: str) -> bool:
    """12 digits (13 for SP/MG with a 9-digit sequence): UF code 01-28 and two check digits."""
    if not digits.isdigit() or len(digits) not in (12, 13) or _repeated(digits):
        return False
    uf = digits[-4:-2]
    if len(digits) == 13 and uf not in _TITULO_UF_SP_MG:
        return False
    if not 1 <= int(uf) <= 28:
        return False
    return _titulo_digits(digits[:8], uf) == digits[-2:]


def generate_titulo(rng: random.Random, *, uf: int | None = None) -> str:
    """A valid 12-digit título de eleitor, optionally for a given UF code (1-28)."""
    code = f"{uf if uf is not None else rng.randint(1, 28):02d}"
    while True:
        sequential = "".join(rng.choice("0123456789") for _ in range(8))
        if not _repeated(sequential):
            return sequential + code + _titulo_digits(sequential, code)


# --- CNH -----------------------------------------------------------------------
def _cnh_candidates(base: str) -> set[str]:
    s1 = sum(int(c) * (9 - i) for i, c in enumerate(base))
    s2 = sum(int(c) * (1 + i) for i, c in enumerate(base))
    d1 = s1 % 11
    if d1 < 10:
        x = s2 % 11
        return {f"{d1}{0 if x >= 10 else x}"}
    # First remainder 10: DENATRAN sets the digit to 0 and discounts 2 from the
    # second one. Published implementations disagree on how the discount wraps,
    # so both readings are accepted (the detector is context-gated anyway).
    x = s2 % 11
    candidates = set()
    if x < 10 and x - 2 >= 0:
        candidates.add(f"0{x - 2}")
    wrapped = (s2 - 2) % 11
    candidates.add(f"0{0 if wrapped >= 10 else wrapped}")
    return candidates


def cnh_is_valid(digits: str) -> bool:
    """11-digit CNH registration number with its two DENATRAN check digits."""
    if len(digits) != 11 or not digits.isdigit() or _repeated(digits):
        return False
    return digits[9:] in _cnh_candidates(digits[:9])


def generate_cnh(rng: random.Random) -> str:
    """A valid CNH registration number whose check digits are unambiguous."""
    while True:
        base = "".join(rng.choice("0123456789") for _ in range(9))
        candidates = _cnh_candidates(base)
        if len(candidates) == 1 and not _repeated(base):
            return base + candidates.pop()


# --- Payment cards -------------------------------------------------------------
def luhn_is_valid(digits: str) -> bool:
    """Luhn (mod 10) checksum over a digit string."""
    if not digits.isdigit():
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def generate_luhn(rng: random.Random, prefix: str, length: int) -> str:
    """A Luhn-valid number of `length` digits starting with `prefix`."""
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for last in "0123456789":
        if luhn_is_valid(body + last):
            return body + last
    raise AssertionError("unreachable: one of ten check digits always satisfies Luhn")
