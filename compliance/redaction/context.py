"""Keywords that say what a nearby number is ("CPF:", "tel.", "lote").

Detectors ask for the keyword closest before a candidate: a matching keyword
raises the candidate's priority when spans compete (an 11-digit number after
"CNH" is a CNH even if it also passes the CPF check), and a negative keyword
("lote", "validade", "ANVISA") vetoes weak candidates such as a bare
12345-678 that would otherwise look like a CEP.
"""

from __future__ import annotations

import re
from functools import lru_cache

NEGATIVE = "NEG"

# Window (characters before the candidate) in which a keyword counts.
WINDOW = 48

_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("CPF", r"c\.?p\.?f"),
    ("CNPJ", r"cnpj|c\.n\.p\.j"),
    ("RG", r"r\.?g|identidade|registro\s+geral"),
    ("CNS", r"cns|cart[aã]o\s+(?:do\s+)?sus|cart[aã]o\s+nacional\s+de\s+sa[uú]de|sus"),
    ("PIS", r"pis|pasep|nit|nis|pis/pasep"),
    ("TITULO", r"t[ií]tulo(?:\s+de)?(?:\s+eleitor(?:al)?)?|eleitor(?:al)?"),
    ("CNH", r"cnh|habilita[cç][aã]o|carteira\s+de\s+motorista"),
    ("CEP", r"cep"),
    (
        "TELEFONE",
        r"tel|telefone|fone|celular|cel|whats(?:app)?|zap|contato|ligar|ligue|liga|recado"
        r"|fixo|ramal|n[uú]mero\s+(?:de\s+)?contato",
    ),
    (
        "CARTAO",
        r"cart[aã]o\s+de\s+(?:cr[eé]dito|d[eé]bito)|cr[eé]dito|d[eé]bito|visa|mastercard"
        r"|master|amex|elo|hipercard|diners",
    ),
    ("PRONTUARIO", r"prontu[aá]rio|pront|mrn|registro|ficha"),
    (
        NEGATIVE,
        r"lote|lot|validade|val|venc|vencimento|anvisa|crm|cro|coren|rqe|nf|nf-e|nota\s+fiscal"
        r"|pedido|protocolo|c[oó]digo|c[oó]d|ref|sku|ean|nsu|autoriza[cç][aã]o|guia|senha"
        r"|fabrica[cç][aã]o|fab|s[eé]rie|modelo|reg\.?\s*ms|ms",
    ),
)

# Matched against the lower-cased text: case-sensitive matching of lower-case
# literals is several times faster than IGNORECASE.
_KEYWORD_RE = re.compile(
    r"(?<![\w])(?:"
    + "|".join(f"(?P<{name}>{pattern})" for name, pattern in _KEYWORDS)
    + r")(?![\w])"
)


@lru_cache(maxsize=32)
def lowered(text: str) -> str:
    """`text.lower()`, computed once per message for all detectors.

    Lower-casing keeps the length for the Latin scripts clinicians write in, so
    offsets stay valid; a text where it does not (e.g. 'İ') is returned as is.
    """
    low = text.lower()
    return low if len(low) == len(text) else text


def nearest_keyword(text: str, beg: int, window: int = WINDOW) -> str | None:
    """Entity type (or NEGATIVE) of the last keyword in the `window` characters before `beg`."""
    last = None
    for match in _KEYWORD_RE.finditer(lowered(text), max(0, beg - window), beg):
        last = match.lastgroup
    return last
