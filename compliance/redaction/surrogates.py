"""Realistic fake values that stand in for personal data (the `surrogate` policy).

A provider that reads "a Joana deve reaplicar" answers more naturally than one
that reads "[NOME_1] deve reaplicar", and a CPF with valid check digits keeps a
prompt about a CPF meaningful. Each generator returns a value of the same type
and, where it matters, the same shape as the original (a landline stays a
landline, a name keeps its number of words and its capitals).

The values are drawn from the operating system's random source, never from the
original value, so a surrogate tells nothing about the datum it replaces. The
engine (`engine._Placeholders`) keeps them stable within a session and makes
sure none equals a real value seen in it.

The name lists are short and hand-picked: common Brazilian given names by
gender and common surnames, enough for variety in one conversation.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from . import checksums
from .lexicon import fold

_rng = random.SystemRandom()

FEMALE_NAMES = tuple(
    """
    Joana Beatriz Camila Fernanda Juliana Patrícia Aline Bruna Larissa Amanda Letícia
    Gabriela Mariana Renata Vanessa Daniela Cristina Tatiana Priscila Carolina Luana Helena
    Isabela Lívia Sabrina Débora Raquel Simone Elaine Viviane Adriana Luciana Rafaela Natália
    Bianca Jéssica Tainá Yara Heloísa Cecília
    """.split()
)
MALE_NAMES = tuple(
    """
    João Pedro Lucas Mateus Gabriel Rafael Bruno Felipe Gustavo Thiago Rodrigo Leonardo
    Diego Marcelo Fábio Ricardo André Eduardo Vinícius Henrique Daniel Caio Otávio Renato
    Sérgio Roberto Márcio Alexandre Leandro Murilo Samuel Heitor Davi Arthur Igor Vítor
    Wagner Fernando Cláudio Paulo
    """.split()
)
SURNAMES = tuple(
    """
    Ribeiro Carvalho Almeida Teixeira Moreira Cardoso Azevedo Barbosa Mendes Nascimento
    Correia Freitas Araújo Monteiro Vieira Medeiros Cavalcanti Siqueira Rezende Macedo
    Fontana Tavares Quintana Bittencourt Guimarães Andrade Peixoto Camargo Drummond Pacheco
    Sampaio Toledo Valadares Brandão Figueiredo Magalhães Nogueira Coutinho Bastos Moraes
    """.split()
)
_FEMALE_KEYS = frozenset(fold(n) for n in FEMALE_NAMES)
_MALE_KEYS = frozenset(fold(n) for n in MALE_NAMES)
# Given names whose ending misleads the rule of thumb below.
_FEMALE_EXCEPTIONS = frozenset({"beatriz", "raquel", "isabel", "ester", "ruth", "rute", "liz",
                                "ingrid", "miriam", "carmen", "lourdes", "dores", "mercedes"})
_MALE_EXCEPTIONS = frozenset({"luca", "luka", "joshua", "nicola", "andrea", "jonata"})
_PARTICLES = frozenset({"de", "da", "do", "das", "dos", "e"})

_EMAIL_DOMAINS = ("gmail.com", "hotmail.com", "outlook.com", "yahoo.com.br", "uol.com.br",
                  "bol.com.br", "terra.com.br", "icloud.com")
_STREET_TYPES = ("Rua", "Avenida", "Travessa", "Alameda")
_STREET_NAMES = ("das Acácias", "dos Ipês", "Sete de Setembro", "das Palmeiras",
                 "Barão do Rio Branco", "Santos Dumont", "das Hortênsias", "Tiradentes",
                 "Marechal Deodoro", "dos Jacarandás", "Quinze de Novembro", "das Orquídeas")
# Area codes in use (the same set the phone detector accepts).
_DDD = (11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38,
        41, 42, 43, 44, 45, 46, 47, 48, 49, 51, 53, 54, 55, 61, 62, 63, 64, 65, 66, 67, 68, 69,
        71, 73, 74, 75, 77, 79, 81, 82, 83, 84, 85, 86, 87, 88, 89, 91, 92, 93, 94, 95, 96,
        97, 98, 99)
# First two digits of CEPs by region (SP, RJ, MG, BA, PE, CE, DF, PR, SC, RS).
_CEP_PREFIXES = ("01", "04", "05", "13", "20", "22", "30", "31", "40", "41", "50", "52",
                 "60", "70", "71", "80", "81", "88", "90", "91")
_DATE_RE = re.compile(r"(\d{1,2})\D+(\d{1,2})\D+(\d{4}|\d{2})")
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


def _digits(count: int) -> str:
    return "".join(_rng.choice("0123456789") for _ in range(count))


def name_gender(value: str) -> str | None:
    """'F', 'M' or None (unknown) for the first word of a person's name."""
    words = _WORD_RE.findall(value)
    if not words:
        return None
    first = fold(words[0])
    if first in _FEMALE_KEYS or first in _FEMALE_EXCEPTIONS:
        return "F"
    if first in _MALE_KEYS or first in _MALE_EXCEPTIONS:
        return "M"
    # Portuguese given names: -a is almost always female, -o male.
    if first.endswith("a"):
        return "F"
    if first.endswith("o"):
        return "M"
    return None


def _with_case_of(original: str, fake: str) -> str:
    letters = [c for c in original if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(letters) > 1:
        return fake.upper()
    if letters and all(c.islower() for c in letters):
        return fake.lower()
    return fake


def _name(original: str, avoid: frozenset[str]) -> str:
    words = [w for w in _WORD_RE.findall(original) if fold(w) not in _PARTICLES]
    gender = name_gender(original) or _rng.choice("FM")
    givens = [n for n in (FEMALE_NAMES if gender == "F" else MALE_NAMES) if fold(n) not in avoid]
    surnames = [n for n in SURNAMES if fold(n) not in avoid]
    count = min(max(len(words) - 1, 0), 3)
    if not givens or len(surnames) < count:
        raise LookupError("every surrogate name is taken in this session")
    fake = [_rng.choice(givens), *_rng.sample(surnames, k=count)]
    return _with_case_of(original, " ".join(fake))


# One formatter per identifier type, alike on purpose: each prints its own type's
# layout; the check digits they share are `checksums`.
def _cpf(original: str) -> str:
    value = checksums.generate_cpf(_rng)
    if not any(c in original for c in ".-"):
        return value
    return f"{value[:3]}.{value[3:6]}.{value[6:9]}-{value[9:]}"


def _cnpj(original: str) -> str:
    v = checksums.generate_cnpj(_rng)
    return f"{v[:2]}.{v[2:5]}.{v[5:8]}/{v[8:12]}-{v[12:]}"


def _cns(original: str) -> str:
    v = checksums.generate_cns(_rng)
    return f"{v[:3]} {v[3:7]} {v[7:11]} {v[11:]}"


def _pis(original: str) -> str:
    v = checksums.generate_pis(_rng)
    return f"{v[:3]}.{v[3:8]}.{v[8:10]}-{v[10]}"


def _titulo(original: str) -> str:
    v = checksums.generate_titulo(_rng)
    return f"{v[:4]} {v[4:8]} {v[8:]}"


def _cnh(original: str) -> str:
    return checksums.generate_cnh(_rng)


def _rg(original: str) -> str:
    return f"{_rng.randint(10, 59)}.{_digits(3)}.{_digits(3)}-{_rng.choice('0123456789X')}"


def _cep(original: str) -> str:
    return f"{_rng.choice(_CEP_PREFIXES)}{_digits(3)}-{_digits(3)}"


def _phone(original: str) -> str:
    digits = "".join(c for c in original if c.isdigit())
    if len(digits) >= 12 and digits.startswith("55"):
        digits = digits[2:]
    digits = digits.lstrip("0")
    landline = (len(digits) == 10 and digits[2] != "9") or (len(digits) == 8
                                                             and digits[0] != "9")
    ddd = _rng.choice(_DDD)
    if landline:
        return f"({ddd}) {_rng.randint(2, 5)}{_digits(3)}-{_digits(4)}"
    return f"({ddd}) 9{_rng.randint(6, 9)}{_digits(3)}-{_digits(4)}"


def _email(original: str) -> str:
    gender = _rng.choice("FM")
    given = _rng.choice(FEMALE_NAMES if gender == "F" else MALE_NAMES)
    local = f"{fold(given)}.{fold(_rng.choice(SURNAMES))}{_rng.randint(1, 99)}"
    return f"{local}@{_rng.choice(_EMAIL_DOMAINS)}"


def _card(original: str) -> str:
    v = checksums.generate_luhn(_rng, _rng.choice(("4", "51", "52", "53", "54", "55")), 16)
    return " ".join(v[i:i + 4] for i in range(0, 16, 4))


def _date(original: str) -> str:
    # The year is kept when it can be read: the age matters to a clinical answer
    # (doses, contraindications) far more than the day, and alone it points at no one.
    m = _DATE_RE.search(original)
    year = m.group(3) if m else str(_rng.randint(1950, 2005))
    if len(year) == 2:
        year = ("19" if int(year) > 30 else "20") + year
    return f"{_rng.randint(1, 28):02d}/{_rng.randint(1, 12):02d}/{year}"


def _address(original: str) -> str:
    return f"{_rng.choice(_STREET_TYPES)} {_rng.choice(_STREET_NAMES)}, {_rng.randint(10, 2999)}"


def _record(original: str) -> str:
    count = sum(c.isdigit() for c in original)
    return str(_rng.randint(1, 9)) + _digits(max(count, 4) - 1)


GENERATORS: dict[str, Callable[[str], str]] = {
    "CPF": _cpf,
    "CNPJ": _cnpj,
    "RG": _rg,
    "CNS": _cns,
    "PIS": _pis,
    "TITULO": _titulo,
    "CNH": _cnh,
    "CEP": _cep,
    "TELEFONE": _phone,
    "EMAIL": _email,
    "CARTAO": _card,
    "DATA_NASCIMENTO": _date,
    "ENDERECO": _address,
    "PRONTUARIO": _record,
}  # NOME: see `_name` (it takes the words to avoid)


def surrogate_for(*, entity: str, original: str, avoid: frozenset[str] = frozenset()) -> str:
    """A fresh fake value of type `entity` shaped like `original` (not derived from it).

    `avoid`: folded words a fake name must not contain (the real names of the session).
    """
    if entity == "NOME":
        return _name(original, avoid)
    return GENERATORS[entity](original)
