"""Word lists behind the name detector, loaded once from the shipped data files.

Each word is classified into bit flags so the detector does one dictionary
lookup per distinct token. Matching is case-insensitive; accents are compared
exactly first and folded second, so "Marco" (a name) and "Março" (a month)
stay apart while "Jose" still finds "José".
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"

# Flags of a token (bit set).
STOP = 1
FIRST = 2  # a first name that is only a name (safe without context)
FIRST_AMBIGUOUS = 4  # a first name that is also an everyday word (Rosa, Clara, Vitória)
SURNAME = 8
SURNAME_COMMON_WORD = 16  # a surname that is also an everyday word (Leite, Costa, Vale)
PARTICLE = 32
HONORIFIC = 64
CONTEXT = 128
CONNECTOR = 256
PLACE = 512

NAME_FLAGS = FIRST | FIRST_AMBIGUOUS | SURNAME

# First names that are also ordinary words or brands (Rosa, Clara, Dores,
# Yasmin): redacted after a context word or with a surname, never alone, and
# never from lower-case text.
_AMBIGUOUS_FIRST = set(
    """
    rosa luz flor vitória glória graça aurora estrela céu paz bela pérola cristal jade íris
    violeta margarida dália jasmim angélica celeste clara serena branca socorro dores amparo
    natal sol marina franco leal vera mel lua alegria esperança fé consolação conceição
    neves prazeres piedade bento justo salvador sales domingos cândida melissa liz max jesus
    aparecida estela gil ester ian noé augusto celso yasmin yasmim
""".split()
)

# Surnames that are also common words; accepted after a first name when
# capitalised, but not when a clinician types them in lower case.
_COMMON_WORD_SURNAMES = set(
    """
    vale rosa luz paz leite pinto cruz neves flores fontes chagas jardim brasil estrela
    pimenta bento neto sobrinho jesus trindade franco nobre lobo leão braga rios campos
    ramos costa lima rocha barros castro valente moreno salgado serra porto lago mota guerra
    torres passos fortes hora gama sardinha bispo prado prates reis sales matos vaz dias
    nunes marques ribas sena fraga lemos maia penha santiago alves pires brito assis couto
    faria figueira garrido lessa malta patrício paixão pessoa câmara conceição assunção
    ventura vidal vilar gaspar caldeira pacheco
""".split()
)

_PARTICLES = set(
    """
    de da do das dos e d' d’ di du del della van von dalla
""".split()
)

_HONORIFICS = set(
    """
    d sr sra srta dr dra doutor doutora dona seu prof profa professor professora enf
    enfermeira enfermeiro padre frei pastor pastora senhor senhora sras srs
""".split()
)

_CONTEXT_WORDS = set(
    """
    paciente mãe mae pai responsável responsavel filho filha esposa esposo marido cliente
    acompanhante irmã irma irmão irmao avó avô avo tia tio prima primo neta neto sobrinha
    sobrinho namorada namorado noiva noivo companheira companheiro cônjuge conjuge genro
    nora sogra sogro enteada enteado madrasta padrasto tutor tutora nome chamada chamado
    chama chamo amiga amigo colega vizinha vizinho titular dependente beneficiária
    beneficiario menina menino bebê criança gestante parturiente atendida atendido
""".split()
)

# Short words allowed between a context word and the name ("a paciente, a Sra. Ana").
_CONNECTORS = set(
    """
    a o da do de dela dele é se sr sra srta dr dra dona seu senhora senhor completo legal
    chama chamada chamado sua minha nossa nosso
""".split()
)

_PLACES = set(
    """
    são sao santa santo vila jardim parque bairro cidade rua r avenida av travessa tv trav
    alameda al rodovia rod praça praca pça estrada largo edifício edificio ed condomínio
    condominio residencial shopping colégio colegio escola faculdade universidade instituto
    igreja capela hospital clínica clinica unidade posto ubs upa dom nossa senhora fazenda
    sítio sitio ilha lagoa serra monte morro ponte hotel restaurante loja farmácia farmacia
    laboratório laboratorio consultório consultorio rede grupo fundação associação academia
    studio estúdio spa centro espaço prédio aeroporto estação presidente governador marechal
    general coronel almirante brigadeiro duque barão conde visconde princesa imperatriz
    rainha rei papa beato frei
""".split()
)


def fold(word: str) -> str:
    """Lower case without accents: 'José' -> 'jose'."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def read_list(name: str) -> list[str]:
    """Entries of a shipped word list (comments and blank lines dropped)."""
    lines = (DATA_DIR / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _build() -> tuple[dict[str, int], dict[str, int]]:
    exact: dict[str, int] = {}
    folded: dict[str, int] = {}

    def add(words: set[str] | list[str], flag: int) -> None:
        for word in words:
            low = word.lower()
            exact[low] = exact.get(low, 0) | flag
            f = fold(low)
            folded[f] = folded.get(f, 0) | flag

    ambiguous = {w.lower() for w in _AMBIGUOUS_FIRST}
    for word in read_list("first_names.txt"):
        low = word.lower()
        add([low], FIRST_AMBIGUOUS if low in ambiguous or fold(low) in ambiguous else FIRST)
    common = {fold(w) for w in _COMMON_WORD_SURNAMES}
    for word in read_list("surnames.txt"):
        add([word], SURNAME | (SURNAME_COMMON_WORD if fold(word) in common else 0))
    add(read_list("stopwords.txt"), STOP)
    add(_PARTICLES, PARTICLE)
    add(_HONORIFICS, HONORIFIC)
    add(_CONTEXT_WORDS, CONTEXT)
    add(_CONNECTORS, CONNECTOR)
    add(_PLACES, PLACE)
    return exact, folded


_EXACT, _FOLDED = _build()

# Lower-case spellings of the words that can introduce a name (context words
# and honorifics), with and without accents: the name detector looks up only
# these among lower-case tokens.
TRIGGER_WORDS = frozenset(
    {w for w in (*_CONTEXT_WORDS, *_HONORIFICS)}
    | {fold(w) for w in (*_CONTEXT_WORDS, *_HONORIFICS)}
)


@lru_cache(maxsize=65536)
def flags_of(word: str) -> int:
    """Flags of one token (any case). Exact spelling wins over the accent-folded one."""
    low = word.lower()
    value = _EXACT.get(low)
    if value is None:
        value = _FOLDED.get(fold(low), 0)
    if value & STOP:
        # A stop word can still be an honorific/context/place word, never a name.
        value &= ~(FIRST | FIRST_AMBIGUOUS | SURNAME | SURNAME_COMMON_WORD)
    return value


def is_known_first_name(word: str) -> bool:
    """True for a first name of the shipped list (ambiguous ones included)."""
    return bool(flags_of(word) & (FIRST | FIRST_AMBIGUOUS))


def is_known_surname(word: str) -> bool:
    """True for a surname of the shipped list."""
    return bool(flags_of(word) & SURNAME)
