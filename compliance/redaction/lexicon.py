"""Word lists behind the name detector: census-scale name lexicons and "not a name" lists.

The big lists (64k IBGE 2010 given names, 21k surnames with counts, ANVISA
and everyday words, municipalities and states) ship as gzip TSV built by
`scripts/build_name_lexicons.py` and are read once per process, on first use
(a web process that never redacts a name never pays for them). Every word is
folded into one small integer of bit flags keyed by its accent-folded
upper-case form, so a lookup is one dictionary access; `flags_of` adds an LRU
cache in front because chat messages repeat the same words.

The hand-written lists below stay as documented additions: words that the
census cannot tell apart from everyday vocabulary (Rosa, Clara, Vitória),
context words, honorifics and place words. They keep their accents: exact
spelling is compared first, so "Março" (a month) stays apart from "Marco" (a
name) while "Jose" still finds "José".
"""

from __future__ import annotations

import gzip
import re
import threading
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"

# Flags of a token (bit set).
STOP = 1
FIRST = 2  # a given name that is only a name
FIRST_AMBIGUOUS = 4  # a given name that is also an everyday word or a product (Rosa, Yasmin)
SURNAME = 8
SURNAME_COMMON_WORD = 16  # a surname that is also an everyday word (Leite, Costa, Vale)
PARTICLE = 32
HONORIFIC = 64
CONTEXT = 128
CONNECTOR = 256
PLACE = 512
COMMON = 1024  # borne by so many people that it counts as a name even in lower case
RARE = 2048  # a given name borne by few people: needs a second signal on its own
NOT_NAME = 4096  # ANVISA ingredient/product word or everyday word (needs evidence)
SUFFIX = 8192  # Filho, Júnior, Neto, Sobrinho: ends a full name
MAINLY_SURNAME = 16384  # far more frequent as a surname than as a given name (Silva)

NAME_FLAGS = FIRST | FIRST_AMBIGUOUS | SURNAME

# Frequency bands (people in the 2010 census / in the servants register).
COMMON_GIVEN = 30_000
COMMON_SURNAME = 1_000
RARE_GIVEN = 200
# A given name that is also an everyday word is still read as a name when this
# frequent (Marco, Vera, Tais): "Marco ligou" is a person.
EVERYDAY_BUT_NAME = 150_000

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

# Frequent given names that are also Portuguese words when typed in lower case ("a
# ferida sara", "rui o dente"): names when capitalised, never in lower case.
LOWER_CASE_WORDS = frozenset(
    """
    sara rose ane eli ari rui roque magno amaro tales messias leda nara ione dione ilma
    lara mara iara sa levi ivo ramos cosme lazaro dario nadir rute eder alan
""".split()
)

_PARTICLES = set(
    """
    de da do das dos e d' d’ di du del della van von dalla la las los der den
""".split()
)

_SUFFIXES = set("filho filha júnior junior jr neto neta sobrinho sobrinha segundo".split())

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
    sobrinho vovó vovô vovo bisavó bisavô namorada namorado noiva noivo companheira
    companheiro cônjuge conjuge genro
    nora sogra sogro enteada enteado madrasta padrasto tutor tutora nome chamada chamado
    chama chamo amiga amigo colega vizinha vizinho titular dependente beneficiária
    beneficiario menina menino bebê criança gestante parturiente atendida atendido
    oi olá ola obrigada obrigado
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

# Countries and world cities often named in notes ("voltou de Portugal"); many are
# also surnames (Portugal, Brasil, Lisboa, Paris), so they are place context.
_COUNTRIES_AND_CITIES = [
    "Brasil",
    "Portugal",
    "Argentina",
    "Uruguai",
    "Paraguai",
    "Chile",
    "Bolívia",
    "Peru",
    "Colômbia",
    "Venezuela",
    "México",
    "Cuba",
    "Estados Unidos",
    "Canadá",
    "Espanha",
    "França",
    "Itália",
    "Alemanha",
    "Inglaterra",
    "Reino Unido",
    "Holanda",
    "Bélgica",
    "Suíça",
    "Áustria",
    "Grécia",
    "Rússia",
    "China",
    "Japão",
    "Índia",
    "Israel",
    "Líbano",
    "Síria",
    "Iraque",
    "Irã",
    "Egito",
    "Angola",
    "Moçambique",
    "Cabo Verde",
    "Guiné",
    "Macau",
    "Timor",
    "Europa",
    "América",
    "África",
    "Ásia",
    "Lisboa",
    "Porto",
    "Coimbra",
    "Braga",
    "Madrid",
    "Paris",
    "Londres",
    "Roma",
    "Nova York",
    "Miami",
    "Buenos Aires",
    # countries, regions and world cities that are also census given names ("da
    # Argélia", "a Islândia"): a place after an article, not a person
    "África do Sul",
    "Arábia Saudita",
    "Coreia do Sul",
    "Coreia do Norte",
    "Costa Rica",
    "Nova Zelândia",
    "Oriente Médio",
    "Nova Jersey",
    "Santiago do Chile",
    "Afeganistão",
    "Albânia",
    "Andorra",
    "Argélia",
    "Armênia",
    "Arménia",
    "Austrália",
    "Azerbaijão",
    "Bahamas",
    "Bangladesh",
    "Barbados",
    "Bielorrússia",
    "Bulgária",
    "Camarões",
    "Camboja",
    "Catar",
    "Cazaquistão",
    "Chipre",
    "Cingapura",
    "Singapura",
    "Coreia",
    "Croácia",
    "Dinamarca",
    "Equador",
    "Eslováquia",
    "Eslovênia",
    "Eslovénia",
    "Escócia",
    "Escandinávia",
    "Estônia",
    "Estónia",
    "Etiópia",
    "Filipinas",
    "Finlândia",
    "Gana",
    "Guatemala",
    "Haiti",
    "Honduras",
    "Hungria",
    "Iêmen",
    "Indonésia",
    "Islândia",
    "Jamaica",
    "Jordânia",
    "Kuwait",
    "Letônia",
    "Letónia",
    "Líbia",
    "Lituânia",
    "Luxemburgo",
    "Macedônia",
    "Madagascar",
    "Malásia",
    "Mali",
    "Marrocos",
    "Mônaco",
    "Mongólia",
    "Montenegro",
    "Namíbia",
    "Nepal",
    "Nicarágua",
    "Nigéria",
    "Noruega",
    "Panamá",
    "Paquistão",
    "Polônia",
    "Polónia",
    "Quênia",
    "Quénia",
    "Romênia",
    "Roménia",
    "Ruanda",
    "Senegal",
    "Sérvia",
    "Somália",
    "Sudão",
    "Suécia",
    "Tailândia",
    "Taiwan",
    "Tanzânia",
    "Tunísia",
    "Turquia",
    "Ucrânia",
    "Uganda",
    "Vietnã",
    "Vietname",
    "Zâmbia",
    "Zimbábue",
    "Sibéria",
    "Amazônia",
    "Patagônia",
    "Caribe",
    "Palestina",
    "Gaza",
    "Cairo",
    "Istambul",
    "Tóquio",
    "Pequim",
    "Berlim",
    "Moscou",
    "Viena",
    "Praga",
    "Atenas",
    "Dubai",
    "Califórnia",
    "Flórida",
    "Texas",
    "Havaí",
    "Toronto",
    "Montevidéu",
]


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """Lower case without accents: 'José' -> 'jose' (cached: chat messages repeat words)."""
    if word.isascii():  # most words: nothing to decompose (NFKD leaves ASCII alone)
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def key(word: str) -> str:
    """Lookup key of the census-scale lists: accent-folded upper case ('José' -> 'JOSE')."""
    return fold(word).upper()


def read_list(name: str) -> list[str]:
    """Entries of a shipped word list (comments and blank lines dropped)."""
    lines = (DATA_DIR / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def read_section(name: str, heading: str) -> list[str]:
    """Entries of one section of a shipped word list: the lines after the comment
    "# --- <heading>" up to the next such comment."""
    entries: list[str] = []
    inside = False
    for line in (DATA_DIR / name).read_text(encoding="utf-8").splitlines():
        if line.startswith("# ---"):
            inside = line[5:].strip() == heading
            continue
        if inside and line.strip() and not line.startswith("#"):
            entries.append(line.strip())
    return entries


def read_tsv(name: str) -> Iterator[tuple[str, str]]:
    """(key, value) rows of a shipped gzip TSV list."""
    with gzip.open(DATA_DIR / name, "rt", encoding="utf-8") as fh:
        for line in fh:
            word, _, value = line.rstrip("\n").partition("\t")
            yield word, value


def _small_lists() -> tuple[dict[str, int], dict[str, int]]:
    """The hand-written lists, by exact lower-case spelling and by folded spelling."""
    exact: dict[str, int] = {}
    folded: dict[str, int] = {}

    def add(words, flag: int) -> None:
        for word in words:
            low = word.lower()
            exact[low] = exact.get(low, 0) | flag
            f = fold(low)
            folded[f] = folded.get(f, 0) | flag

    add(read_list("stopwords.txt"), STOP)
    add(read_list("name_additions.txt"), FIRST)
    add(_AMBIGUOUS_FIRST, FIRST_AMBIGUOUS)
    add(_PARTICLES, PARTICLE)
    add(_SUFFIXES, SUFFIX)
    add(_HONORIFICS, HONORIFIC)
    add(_CONTEXT_WORDS, CONTEXT)
    add(_CONNECTORS, CONNECTOR)
    add(_PLACES, PLACE)
    return exact, folded


def _census_flags(given: int, surname: int, kinds: str, ambiguous: bool, common_word: bool) -> int:
    """Flags of a word of the census-scale lists from its counts and "not a name" kinds."""
    everyday = "w" in kinds
    product = "a" in kinds or "p" in kinds
    value = NOT_NAME if kinds else 0
    if given:
        unclear = ambiguous or (product and given < COMMON_GIVEN)
        unclear = unclear or (everyday and given < EVERYDAY_BUT_NAME)
        value |= FIRST_AMBIGUOUS if unclear else FIRST
        if given >= COMMON_GIVEN and not unclear and not kinds:
            value |= COMMON
        if given < RARE_GIVEN:
            value |= RARE
    # Shares of the 2010 population (~190 million) and of the register (~645 thousand).
    if surname and surname / 645_000 > 4 * given / 190_000_000:
        value |= MAINLY_SURNAME
    if surname:
        value |= SURNAME
        if kinds or common_word:
            value |= SURNAME_COMMON_WORD
        elif surname >= COMMON_SURNAME:
            value |= COMMON
    return value


_LOAD_LOCK = threading.Lock()


def tables() -> tuple[dict[str, int], dict[str, int], dict[str, int], frozenset[str]]:
    """(census flags by key, small-list flags by exact spelling, by folded spelling, places).

    Built on first use and kept for the life of the process; the lock keeps two
    threads redacting their first message at once from building it twice.
    """
    if _loaded:
        return _loaded[0]
    with _LOAD_LOCK:
        if not _loaded:
            _loaded.append(_build_tables())
    return _loaded[0]


_loaded: list[tuple[dict[str, int], dict[str, int], dict[str, int], frozenset[str]]] = []


def _build_tables() -> tuple[dict[str, int], dict[str, int], dict[str, int], frozenset[str]]:
    given = {w: int(c) for w, c in read_tsv("given_names.tsv.gz")}
    surnames = {w: int(c) for w, c in read_tsv("surnames.tsv.gz")}
    kinds = dict(read_tsv("not_names.tsv.gz"))
    ambiguous = {key(w) for w in _AMBIGUOUS_FIRST}
    common_words = {key(w) for w in _COMMON_WORD_SURNAMES}
    census: dict[str, int] = {}
    for word in given.keys() | surnames.keys():
        census[word] = _census_flags(
            given.get(word, 0),
            surnames.get(word, 0),
            kinds.get(word, ""),
            word in ambiguous,
            word in common_words,
        )
    for word in kinds.keys() - census.keys():
        census[word] = NOT_NAME
    # Place names: whole phrases, folded ("SAO PAULO"), used as context.
    places = frozenset(w for w, _ in read_tsv("places.tsv.gz")) | {
        key(w) for w in _COUNTRIES_AND_CITIES
    }
    exact, folded = _small_lists()
    return census, exact, folded, places


_NAME_BITS = (
    FIRST | FIRST_AMBIGUOUS | SURNAME | SURNAME_COMMON_WORD | COMMON | RARE | MAINLY_SURNAME
)
_ROMAN_RE = re.compile(r"[IVXLC]{2,}")


def census_name(word: str) -> bool:
    """Is the word in the census lists of given names or surnames, whatever else it is
    ("Ali" is also an adverb, "Luz" a noun)?"""
    return bool(tables()[0].get(key(word.lower()), 0) & NAME_FLAGS)


@lru_cache(maxsize=65536)
def flags_of(word: str) -> int:
    """Flags of one token (any case). Exact spelling wins over the accent-folded one."""
    census, exact, folded, _ = tables()
    low = word.lower()
    big = census.get(key(low), 0)
    small = exact.get(low)
    if small is None:
        small = folded.get(fold(low), 0)
        if big & NAME_FLAGS:
            # "Marco" is a name; only "Março" (spelt so) is the month.
            small &= ~STOP
    value = small | big
    if word.isupper() and _ROMAN_RE.fullmatch(word):
        value |= STOP  # "Fototipo III", "Dom Pedro II"
    if value & (STOP | HONORIFIC):
        # A stop word or an honorific (Sr, Dr: both in the census list) can still
        # be a context or place word, never a name.
        value &= ~_NAME_BITS
    if value & FIRST_AMBIGUOUS:
        value &= ~(FIRST | COMMON)
    return value


def place_prefixes() -> frozenset[str]:
    """Every leading run of words of a place name, folded ("SAO", "SAO JOSE", "SAO JOSE DOS
    CAMPOS"): a walk over the words of a message stops as soon as no place starts so."""
    if not _prefixes:
        with _LOAD_LOCK:
            if not _prefixes:
                prefixes = set()
                for phrase in tables()[3]:
                    words = phrase.split(" ")
                    prefixes.update(" ".join(words[:k]) for k in range(1, len(words) + 1))
                _prefixes.append(frozenset(prefixes))
    return _prefixes[0]


_prefixes: list[frozenset[str]] = []


def is_place(words: tuple[str, ...]) -> bool:
    """True when the words spell a municipality or state name ("São Paulo", "Rio de Janeiro")."""
    return " ".join(key(w) for w in words) in tables()[3]


def _eponyms() -> frozenset[str]:
    return frozenset(fold(w) for w in read_list("eponyms.txt"))


# Surnames used as the eponym of a sign or a syndrome ("paralisia de Bell"), folded.
EPONYMS = _eponyms()


def trigger_words() -> frozenset[str]:
    """Lower-case spellings of the words that can introduce a name (context words and
    honorifics), with and without accents."""
    words = (*_CONTEXT_WORDS, *_HONORIFICS)
    return frozenset(words) | frozenset(fold(w) for w in words)


TRIGGER_WORDS = trigger_words()

# Procedures, products, brands and substances of the stop list (Isdin, Botox,
# Heliocare, peeling): the capitalised words right after one are its product line
# ("Isdin Fusion Water"), not a person, even where the brand opens a sentence.
PRODUCT_WORDS = frozenset(
    fold(w) for w in read_section("stopwords.txt", "procedures, products, substances")
)


def is_known_first_name(word: str) -> bool:
    """True for a given name of the shipped lexicons (ambiguous ones included)."""
    return bool(flags_of(word) & (FIRST | FIRST_AMBIGUOUS))


def is_known_surname(word: str) -> bool:
    """True for a surname of the shipped lexicons."""
    return bool(flags_of(word) & SURNAME)


@lru_cache(maxsize=1)
def _frequent_given_keys() -> frozenset[str]:
    keys = set()
    for word, count in read_tsv("given_names.tsv.gz"):  # most frequent first
        if int(count) < COMMON_GIVEN:
            break
        keys.add(word)
    return frozenset(keys)


def frequent_given_name(word: str) -> bool:
    """Borne by at least COMMON_GIVEN people, whatever else the word means: true for
    Vitória, Rosa and Clara (whose flags say only "ambiguous"), false for Lua or Nice."""
    return key(word) in _frequent_given_keys()


def given_names_by_count() -> list[tuple[str, int]]:
    """(name, count) of the shipped given-name lexicon, most frequent first."""
    return [(w, int(c)) for w, c in read_tsv("given_names.tsv.gz")]


def surnames_by_count() -> list[tuple[str, int]]:
    """(surname, count) of the shipped surname lexicon, most frequent first."""
    return [(w, int(c)) for w, c in read_tsv("surnames.tsv.gz")]
