"""Person-name recognition for Portuguese clinical text.

A name is a chain of name words joined by single spaces and the particles
da/de/do/dos/das/e, optionally closed by Filho/Júnior/Neto/Sobrinho, and it
becomes one entity (one placeholder). Whether a chain is a name depends on how
much evidence it carries, weighed against how common the name is in the census
(see `lexicon`):

- after a context word or honorific (paciente, mãe de, Sr., Dra., "nome:"),
  any capitalised word that is not clinical vocabulary counts, and so does a
  listed name in lower case ("paciente maria aparecida da silva");
- without context, a chain of two or more words counts when one of them is a
  listed name ("Julianderson Pereira"); a single word counts when it is a
  listed name that is not also an everyday word or product (Rosa, Yasmin need
  a context word or a surname), and a rare one (borne by fewer than ~200
  people) only away from the start of a sentence;
- in lower case without context only very common names count ("hoje a maria
  ligou"; not "sara", which is also a verb); after a context word a lower-case
  word no list knows continues the name ("paciente maria zambon");
- in ALL CAPS (signatures, forms) a chain counts when it holds a given name
  that is not rare or a frequent surname, and then words no list knows
  continue it ("ADRIANO CASAGRARI RODRIGUES"); an unknown given name goes with
  a surname the rules would take alone ("TAYLILENE BECKER");
- after a context word, a word no list knows counts in capitals and in lower
  case when it is not shaped like an abbreviation, a clinical adjective, a noun
  or a verb ("PACIENTE LUCINILSON BISSOLI", "paciente lucinilson bissoli"; not
  "PACIENTE RETORNA", "paciente hipocorada"); alone it needs an honorific or a
  label with a colon;
- the speaker after a verb of saying ("disse Nascimento", "segundo Massa") and
  two or more capitalised words that are each mainly a surname ("Pinto da
  Costa") count without other evidence;
- dotted initials count after a context word or a party of a court paper ("a
  paciente F.G.M.", "o menor K.L.S.") unless they are a clinical abbreviation,
  and the speakers' labels of a transcript that recur at line starts ("M.: oi")
  are read by `find_speaker_labels`.

Municipality and state names are context: "São Paulo" and "de Marília" are
places, "Paulo Henrique" and "Marília ligou" are people.

A capitalised word these rules leave undecided (no lexicon holds it and no
context word or listed neighbour makes it a name: Khomeini, Sarkozy) goes to a
second signal, the statistical model of `name_model`, unless it cannot be a
name in clinical text (see `model_candidate`: stop words, medicines, brands,
eponyms, acronyms in capitals, nouns and verbs by their ending, names that are
also everyday words, and what a product verb or a treatment noun with its
preposition names: "Apliquei Sciton", "protocolo com Sciton").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from . import lexicon, name_model

Token = tuple[int, int, str]
SecondSignal = Callable[[str, Sequence[Token], int], bool]

_SPACE_GAP_RE = re.compile(r"[ \t]{1,3}\Z")
_CONNECT_GAP_RE = re.compile(r"[\s:,\-–—(\"'“]{0,4}\Z")
_HONORIFIC_GAP_RE = re.compile(r"\.?[ \t]{0,2}\Z")
_INITIAL_GAP_RE = re.compile(r"\.[ \t]{0,2}")
_APPOSITION_END_RE = re.compile(r"\s*[,;)]")
_SENTENCE_END_RE = re.compile(r"[.!?:;\n]\s*[\"'“(]?\s*\Z")
# Endings of Portuguese nouns/adjectives that are not given names (diseases,
# participles, adjectives): used only for words absent from the name lists.
_WORD_SUFFIX_RE = re.compile(
    r"(?:ção|ções|são|sões|ismo|ite|ose|ase|ada|ado|ida|ido|ável|ível|osa|oso|ica|ico"
    r"|mente|agem|ência|ância|ista)$",
    re.IGNORECASE,
)
# Relatives: "Mãe: ..." heads a family-history line more often than a name.
_FAMILY_WORDS = frozenset(
    """
    mãe mae pai irmã irma irmão irmao avó avô avo tia tio prima primo filho filha esposa
    esposo marido neta neto sobrinha sobrinho sogra sogro genro nora enteada enteado
    madrasta padrasto
""".split()
)
# Labels that head a person's record: "Paciente: Kauane Zambon".
_PERSON_LABELS = frozenset(
    """
    paciente cliente responsável responsavel acompanhante titular dependente beneficiária
    beneficiario tutor tutora
""".split()
)
# Context words that introduce a name and nothing else.
_NAMING_WORDS = frozenset({"nome", "chama", "chamada", "chamado", "chamo"})
# Prepositions before a town: "mora em Marília", "veio de São Paulo".
_LOCATIVES = frozenset({"em", "de", "para", "pra", "até", "ate", "no", "na", "do", "da"})
_MAX_PLACE_WORDS = 5

_STOP = lexicon.STOP
_FIRST = lexicon.FIRST
_AMBIG = lexicon.FIRST_AMBIGUOUS
_SUR = lexicon.SURNAME
_SUR_COMMON = lexicon.SURNAME_COMMON_WORD
_PARTICLE = lexicon.PARTICLE
_HONORIFIC = lexicon.HONORIFIC
_CONTEXT = lexicon.CONTEXT
_CONNECTOR = lexicon.CONNECTOR
_PLACE = lexicon.PLACE
_COMMON = lexicon.COMMON
_RARE = lexicon.RARE
_NOT_NAME = lexicon.NOT_NAME
_SUFFIX = lexicon.SUFFIX
_MAINLY_SURNAME = lexicon.MAINLY_SURNAME
_LISTED = _FIRST | _AMBIG | _SUR
# A word that is a name and nothing else (no everyday or product reading).
_CLEAR = _FIRST | _SUR

_flags = lexicon.flags_of
_LOWER_TRIGGERS = lexicon.TRIGGER_WORDS
_LOWER_CASE_WORDS = lexicon.LOWER_CASE_WORDS


def _clear_name(flags: int) -> bool:
    """A listed name with no everyday/product reading (Maria, Pereira; not Rosa, Costa)."""
    if flags & _FIRST:
        return True
    return bool(flags & _SUR) and not flags & _SUR_COMMON


def distinctive(word: str) -> bool:
    """Is this word of a found name a name wherever it recurs: a listed name with no
    everyday or product reading, or a word no list knows (Zambon, Hume)?"""
    flags = _flags(word)
    if flags & _LISTED:
        return _clear_name(flags) and not flags & _NOT_NAME
    return not flags & (_NOT_NAME | _STOP | _PLACE)


def gap_is_space(text: str, end: int, beg: int) -> bool:
    """True when only one to three spaces/tabs separate two tokens."""
    gap = text[end:beg]
    return 0 < len(gap) <= 3 and (gap == " " or _SPACE_GAP_RE.match(gap) is not None)


def _sentence_start(text: str, tokens: Sequence[Token], i: int) -> bool:
    if i == 0:
        return True
    return _SENTENCE_END_RE.search(text, tokens[i - 1][1], tokens[i][0]) is not None


# Ordinal numbers of monarchs and popes after their name, read as part of it.
# ("Brasil X Noruega" is a match: X is left out.)
_REGNAL_RE = re.compile(r"(?:I{1,3}|IV|VI{0,3}|IX)")


def _address_part(text: str, token: Token) -> bool:
    """Does the token open an e-mail address or a handle ("Bruna bruna.souza@gmail.com")?
    It belongs to the address, not to the name before it."""
    end = token[1]
    return text[end : end + 1] == "@" or (
        text[end : end + 1] in (".", "_") and text[end + 1 : end + 2].isalnum()
    )


class _Chain:
    """Greedy walk over name tokens starting at a given token."""

    __slots__ = ("text", "tokens")

    def __init__(self, text: str, tokens: Sequence[Token]) -> None:
        self.text = text
        self.tokens = tokens

    def _initial(self, k: int) -> bool:
        """Is token k an initial inside a name ("Fernando H. Cardoso")?"""
        beg, end, word = self.tokens[k]
        return len(word) == 1 and word.isupper() and self.text[end : end + 1] == "."

    def _joined(self, k: int) -> bool:
        """Are tokens k-1 and k separated as words of one name are?"""
        text, tokens = self.text, self.tokens
        if gap_is_space(text, tokens[k - 1][1], tokens[k][0]):
            return True
        if text[tokens[k - 1][1] : tokens[k][0]] == "-":
            # "Ana-Clara", "Jean-Pierre", "Kim Jong-Il": both halves capitalised
            return tokens[k - 1][2][0].isupper() and tokens[k][2][0].isupper()
        return (
            self._initial(k - 1)
            and _INITIAL_GAP_RE.fullmatch(text, tokens[k - 1][1], tokens[k][0]) is not None
        )

    @staticmethod
    def _continues(word: str, caps_mode: bool, lower_mode: bool = False) -> bool:
        flags = _flags(word)
        if flags & (_STOP | _PARTICLE) or len(word) < 2:
            return False
        if flags & _NOT_NAME and not flags & _LISTED:
            return False  # "Maria Paracetamol" is not a surname
        if caps_mode:
            # In capitals a word no list knows still continues a name
            # ("ADRIANO CASAGRARI RODRIGUES"); everyday words do not (they carry NOT_NAME).
            return word.isupper() and (bool(flags & _LISTED) or len(word) >= 3)
        if word[0].isupper():
            return not word.isupper() or bool(flags & _LISTED)
        # Lower case ("Maria silva", "paciente maria aparecida da silva"): listed names
        # that are not also everyday words ("Ana dias depois" stops at "Ana").
        # Ambiguous given names join only a name typed all in lower case
        # ("maria aparecida"), never a capitalised word ("Reavaliar luz").
        if flags & _FIRST:
            return True
        if lower_mode and flags & _AMBIG:
            # "maria aparecida", "suely palma"; not the verb of "o juninho caiu", a
            # given name of a few hundred people that is an everyday word first
            return not flags & _NOT_NAME or bool(flags & _SUR) or lexicon.frequent_given_name(word)
        return bool(flags & _SUR) and not flags & _SUR_COMMON

    def extend(self, j: int, caps_mode: bool) -> int:
        """Index of the last token of the name starting at token j."""
        tokens, text = self.tokens, self.text
        n = len(tokens)
        last = j
        k = j + 1
        lower_mode = tokens[j][2][0].islower()
        while k < n:
            if not self._joined(k) or _address_part(text, tokens[k]):
                break
            word = tokens[k][2]
            flags = _flags(word)
            if not caps_mode and self._initial(k) and k + 1 < n and self._joined(k + 1):
                if self._continues(tokens[k + 1][2], caps_mode, lower_mode):
                    last = k + 1
                    k += 2
                    continue
            if flags & _PARTICLE and k + 1 < n:
                if (
                    word.lower() != "e"
                    and _flags(tokens[k + 1][2]) & _PARTICLE
                    and tokens[k + 1][2].lower() != "e"
                    and k + 2 < n
                    and gap_is_space(text, tokens[k][1], tokens[k + 1][0])
                ):
                    k += 1  # two particles: "Fernando de la Rúa", "Rembrandt van der Rijn"
                    word = tokens[k][2]
                nxt = tokens[k + 1][2]
                if not gap_is_space(text, tokens[k][1], tokens[k + 1][0]):
                    break
                if not self._continues(nxt, caps_mode, lower_mode):
                    break
                if word.lower() in ("da", "do") and _diminutive_given_name(nxt):
                    break  # "tia Nena do Joaozinho": two people, the boy's aunt
                if word.lower() == "e":
                    # "Silva e Souza" is one surname, "Maria e João" are two people.
                    nflags = _flags(nxt)
                    if not nflags & _SUR or (
                        nflags & (_FIRST | _AMBIG) and not nflags & _MAINLY_SURNAME
                    ):
                        break
                last = k + 1
                k += 2
                continue
            if not caps_mode and self._initial(k):
                last = k  # "Maria S.", "M. A. S.": an initial ends or continues a name
                k += 1
                continue
            if (
                not caps_mode
                and k + 1 < n
                and tokens[k + 1][2][0].isupper()
                and self._joined(k + 1)
                and self._continues(tokens[k + 1][2], caps_mode, lower_mode)
                and (
                    (len(word) == 1 and word.isupper() and word not in "AEOX")
                    or (len(word) > 1 and word.istitle() and lexicon.census_name(word))
                )
            ):
                # Between two words of a name: a middle initial written without its
                # full stop ("Robert K Merton"), or a given name that is also a common
                # word ("Zulfikar Ali Bhutto").
                last = k + 1
                k += 2
                continue
            if flags & _SUFFIX and _same_case(tokens[j][2], word, caps_mode):
                return k  # "José Nonato Filho", "MARIA DA SILVA NETO": the suffix ends it
            if (
                not caps_mode
                and _REGNAL_RE.fullmatch(word)
                and _flags(tokens[k - 1][2]) & _FIRST
                and not tokens[k - 1][2].isupper()
            ):
                last = k  # "Sancho I", "D. Pedro V", "Carlos I de Anjou": an ordinal of the name
                k += 1
                continue
            if not self._continues(word, caps_mode, lower_mode):
                break
            last = k
            k += 1
        return last


def _glued_sentence(text: str, tokens: Sequence[Token], i: int) -> bool:
    """Does capitalised token i open a sentence typed without a space after the full
    stop ("confrontos.Carlos Fontes")? Not a part of an address or a file name: the
    word before is a lower-case word, and no dot, @ or underscore follows the name."""
    beg, end, word = tokens[i]
    if text[beg - 1] != "." or i == 0 or tokens[i - 1][1] != beg - 1:
        return False
    previous = tokens[i - 1][2]
    if len(previous) < 3 or not previous.isalpha() or not previous.islower():
        return False
    if not word[0].isupper() or word.isupper():
        return False
    last = i
    while last + 1 < len(tokens) and gap_is_space(text, tokens[last][1], tokens[last + 1][0]):
        last += 1
        if not tokens[last][2][0].isupper():
            break
    return text[tokens[last][1] : tokens[last][1] + 1] not in ("@", ".", "_") or (
        text[tokens[last][1] : tokens[last][1] + 2] in (". ", ".")
        and tokens[last][1] + 1 >= len(text)
    )


def _same_case(first: str, word: str, caps_mode: bool) -> bool:
    if caps_mode:
        return word.isupper()
    return word[0].isupper() == first[0].isupper()


def _starts_name(word: str, flags: int) -> bool:
    """Can `word` be the first word of a name found after a context word?"""
    if flags & (_STOP | _PARTICLE) or len(word) < 2:
        return False
    if word.isupper():
        if flags & _LISTED:
            return not flags & (_CONNECTOR | _CONTEXT)
        return _unknown_caps_word(word, flags)
    if word[0].isupper():
        return not flags & (_CONNECTOR | _CONTEXT | _HONORIFIC) or bool(flags & _LISTED)
    if not flags:
        return _unknown_lower_word(word)
    return _clear_name(flags) and word not in _LOWER_CASE_WORDS


def _unknown_caps_word(word: str, flags: int) -> bool:
    """Can a word in capitals that no list knows be a name's first word after a context
    word ("PACIENTE LUCINILSON BISSOLI", "MÃE: JOSENEISON DAS SPINDOLA")? Not an
    acronym or an abbreviation (too short, no vowel, listed), and not shaped like a
    Portuguese noun or verb ("PACIENTE ORIENTADA", "PACIENTE RETORNANDO")."""
    if flags or len(word) < 4 or not word.isalpha():
        return False
    if not any(c in "AEIOUYÁÉÍÓÚÂÊÔÃÕÀ" for c in word):
        return False
    if word in _CLINICAL_INITIALS or word in _ABBREVIATIONS:
        return False
    return not _shaped_like_a_word(word)


def _place_end(text: str, tokens: Sequence[Token], i: int) -> int | None:
    """Index of the last token of a place name starting at token i, when it reads as a place.

    A multi-word municipality is a place after a locative preposition or when it
    starts with a place word (São, Santa, Rio...); a one-word municipality only
    after a locative ("mora em Marília"), since many are also names.
    """
    n = len(tokens)
    previous = tokens[i - 1][2] if i else ""
    after_locative = (
        bool(previous)
        and previous.lower() in _LOCATIVES
        and gap_is_space(text, tokens[i - 1][1], tokens[i][0])
    )
    prefixes = lexicon.place_prefixes()
    places = lexicon.tables()[3]
    phrase = lexicon.key(tokens[i][2])
    k = i
    best = None
    while phrase in prefixes:
        if phrase in places and (after_locative or (k > i and _flags(tokens[i][2]) & _PLACE)):
            best = k
        k += 1
        if k >= n or k - i >= _MAX_PLACE_WORDS:
            break
        if not gap_is_space(text, tokens[k - 1][1], tokens[k][0]) and text[
            tokens[k - 1][1] : tokens[k][0]
        ] not in ("-", " - "):
            break
        phrase += " " + lexicon.key(tokens[k][2])
    if best == i and _given_name_with_surname(text, tokens, i):
        return None  # "apesar de Marília Pêra", "veio de Fátima Saldanha": a person
    return best


def _given_name_with_surname(text: str, tokens: Sequence[Token], i: int) -> bool:
    """Is token i, a one-word town after a preposition, the given name of a person
    whose surname follows ("de Marília Pêra")? Only for a frequent given name, followed
    by a capitalised surname that is not a place word ("de Vitória da Conquista" and
    "em Fátima Sul" stay towns)."""
    word = tokens[i][2]
    if not _flags(word) & _FIRST or not _flags(word) & _COMMON or word.isupper():
        return False
    k = i + 1
    if k >= len(tokens) or not gap_is_space(text, tokens[i][1], tokens[k][0]):
        return False
    nxt = tokens[k][2]
    nflags = _flags(nxt)
    if not nxt[0].isupper() or nxt.isupper() or nflags & (_STOP | _PLACE | _PARTICLE):
        return False
    return bool(nflags & _SUR) and _clear_name(nflags) or not nflags & (_LISTED | _NOT_NAME)


def model_candidate(text: str, tokens: Sequence[Token], i: int, flags: int) -> bool:
    """May the second signal decide capitalised token i, which the rules left undecided?

    Words that are never a person's name in clinical text stay out whatever a
    model trained on news text would say: stop words and clinical vocabulary,
    medicine and everyday words no name list holds, place, context and
    honorific words, acronyms in capitals (SUS, TSH), nouns and adjectives by
    their ending, parts of e-mail addresses and paths.
    """
    beg, end, word = tokens[i]
    if len(word) < 2 or word.isupper() or not word[0].isupper():
        return False
    if not word[1:].islower() and "'" not in word and "’" not in word:
        return False  # capitals inside: code and product names (ValueError, WhatsApp)
    if flags & _NEVER_MODEL or (flags & _NOT_NAME and not flags & _LISTED):
        return False
    if flags & _LISTED and not _clear_name(flags):
        return False  # Rosa, Serra, Mora, Vital: both a name and a word, they need evidence
    if beg and text[beg - 1] in "@._/-\\":
        return False
    if end < len(text) and text[end] in "@_":
        return False
    if _NUMBER_NEXT_RE.match(text, end):
        return False  # "Jessner 3 camadas", "Restylane 1 ml": a product or a procedure
    if i and gap_is_space(text, tokens[i - 1][1], beg):
        previous = tokens[i - 1][2]
        pflags = _flags(previous)
        if previous in ("de", "da", "do") and (
            lexicon.fold(word) in lexicon.EPONYMS or _eponym_head(text, tokens, i - 1)
        ):
            return False  # an eponym: "paralisia de Bell", "grau II de Ludwig"
        if previous in ("segundo", "conforme") and lexicon.fold(word) in lexicon.EPONYMS:
            return False  # the scale or the classification: "segundo Glogau, grau III"
        if (
            previous[0].isupper()
            and pflags & (_NOT_NAME | _STOP)
            and not pflags & _LISTED
            and not _sentence_start(text, tokens, i - 1)
        ):
            return False  # the second word of a product's name: "Usar Episol Color"
        if (
            previous[0].isupper()
            and not pflags & _LISTED
            and (_product_context(text, tokens, i - 1) or _treatment_context(text, tokens, i - 1))
        ):
            return False  # "aplicador Cool Advantage", "com Drug Delivery": its second word
    if word.lower() in _PRODUCT_BEFORE:
        return False
    if (not flags & _LISTED or flags & _RARE) and (
        _product_context(text, tokens, i) or _treatment_context(text, tokens, i)
    ):
        # "Apliquei Sciton na fronte", "Teosyal aplicado em sulco", "protocolo com
        # Sciton", "associado ao Ultraformer", "sessões de Tixel"; a listed name only
        # when borne by fewer than ~200 people ("Apliquei Kylane")
        return False
    if flags & _LISTED:
        return not _product_in_place_of_name(text, tokens, i, flags)
    # Nouns and adjectives by their ending, and verbs in the first person ("Mandei",
    # "Fizemos"): a clinician's note opens with them, a name seldom ends so.
    if _sentence_start(text, tokens, i) and _INFINITIVE_RE.search(word):
        return False  # "Reavaliar em 30 dias", "Faturar a consulta"
    return not (
        _WORD_SUFFIX_RE.search(word)
        or _NOUN_ENDING_RE.search(word)
        or _VERB_ENDING_RE.search(word)
        or _BRAND_PART_RE.search(word)
    )


# Endings of nouns, clinical ones above all ("Parcelamento", "Assepsia", "Blefaroplastia").
_NOUN_ENDING_RE = re.compile(
    r"\w{2}(?:mentos?|dades?|logia|tomia|plastia|scopia|grafia|terapia|patia|algia|emia"
    r"|sepsia|trofia|plasia|logista)$",
    re.IGNORECASE,
)
# Pieces of the names of skin-care products and aesthetic devices (Heliocare,
# Dermotivin, Ultherapy, Coolsculpting, Botox), found in no Portuguese given name.
_BRAND_PART_RE = re.compile(
    r"derm|care|therap|sculpt|skin|lift|laser|pharm|farma|clinic|cosmet|peel|tox|fill",
    re.IGNORECASE,
)
_VERB_ENDING_RE = re.compile(r"\w{3}(?:ei|amos|emos|imos|ando|endo|indo)$", re.IGNORECASE)
_INFINITIVE_RE = re.compile(r"\w{3}[aei]r$", re.IGNORECASE)
_NUMBER_NEXT_RE = re.compile(r"[ \t]*\d")

# Verbs a note puts before what is applied, used or prescribed, and the participle
# it puts after it: the word between is a product or a device, never a person
# ("Apliquei Sciton", "Usar Teosyal", "Thermage aplicado"). Asked only of words no
# name list holds; a listed name still goes to the model.
_PRODUCT_BEFORE = frozenset(
    """
aplicar aplico apliquei aplicou aplicamos aplicaram aplica aplicando reaplicar
usar uso usei usou usamos usa usando passar passei passou passe
prescrevo prescrevi prescreveu prescrever receitei receitou receitar
aplicador aplicadores ponteira ponteiras manopla
""".split()
)
_PRODUCT_AFTER = frozenset("aplicado aplicada aplicados aplicadas".split())


def _product_context(text: str, tokens: Sequence[Token], i: int) -> bool:
    """Is token i between a product verb and its object, or before "aplicado"?"""
    beg, end, _ = tokens[i]
    if (
        i
        and gap_is_space(text, tokens[i - 1][1], beg)
        and tokens[i - 1][2].lower() in _PRODUCT_BEFORE
    ):
        return True
    return (
        i + 1 < len(tokens)
        and gap_is_space(text, end, tokens[i + 1][0])
        and tokens[i + 1][2] in _PRODUCT_AFTER
    )


# Nouns and participles of a treatment that take the product or device they use
# after a preposition: "protocolo com Sculptra", "associado ao Ultraformer",
# "sessões de Fotona", "tratamento com Kybella". Words that also take a person
# after "com" (sessão, consulta, atendimento, retorno: "sessão com Joana") take
# only "de" here.
_TREATMENT_HEADS = frozenset(
    """
    protocolo protocolos tratamento tratamentos terapia terapias associado associada
    associados associadas associar associamos combinado combinada combinados combinadas
    combinar combinamos combinacao combinacoes aplicacao aplicacoes aplicado aplicada
    preenchimento preenchimentos bioestimulador bioestimuladores bioestimulacao
    tecnologia tecnologias ponteira ponteiras aparelho aparelhos equipamento equipamentos
    plataforma laser lasers luz toxina toxinas acido fios skinbooster skinboosters
    procedimento procedimentos mesclado mesclada intercalado intercalada seguido seguida
    finalizado finalizada finalizamos iniciado iniciada iniciamos resultado resultados
    marca marcas linha produto produtos creme cremes serum gel locao mascara kit
    microagulhamento
    """.split()
)
_SESSION_HEADS = frozenset(
    "sessao sessoes consulta consultas atendimento retorno retornos ciclo ciclos".split()
)
_TREATMENT_PREPOSITIONS = frozenset(
    "com de do da dos das ao aos à às a no na nos nas pelo pela".split()
)
_ARTICLES = frozenset("o a os as um uma uns umas".split())


def _treatment_context(
    text: str, tokens: Sequence[Token], i: int, depth: int = 0, *, device_only: bool = False
) -> bool:
    """Is token i what a treatment uses: after a treatment noun and a preposition
    ("protocolo com Sciton", "associado ao Ultraformer", "sessões de Fotona"), or a
    further product of the same list ("protocolo com Sciton, Tixel e Lumecca")?

    Asked only of words no name list holds and of census names borne by fewer than
    ~200 people ("conversei com Joana" and "sessão com Kauane" are untouched by it);
    "com" after a session or a consultation introduces a person as often as a
    device, so only "de" counts after those. With `device_only`, only a treatment
    noun with "com" or "de" counts ("protocolo com Agnes", "sessões de Agnes"): no
    session word, no article ("resultado do Pedrinho" is a person's)."""
    k = i - 1
    if k < 0:
        return False
    gap = text[tokens[k][1] : tokens[i][0]]
    if depth < 3 and k >= 0 and (gap in (", ", ",") or (gap == " " and tokens[k][2] == "e")):
        # a list: "Sciton, Tixel e Lumecca" - the word before is a product itself
        m = k if gap != " " else k - 1
        if (
            m >= 0
            and tokens[m][2][0].isupper()
            and not _flags(tokens[m][2]) & _LISTED
            and (m == k or gap_is_space(text, tokens[m][1], tokens[k][0]))
        ):
            return _treatment_context(text, tokens, m, depth + 1, device_only=device_only)
        return False
    if gap != " ":
        return False
    if (
        depth < 3
        and k >= 2
        and tokens[k][2].lower() in ("ao", "aos", "à", "às", "no", "na", "do", "da", "o", "a")
        and tokens[k - 1][2] == "e"
        and gap_is_space(text, tokens[k - 1][1], tokens[k][0])
        and gap_is_space(text, tokens[k - 2][1], tokens[k - 1][0])
        and tokens[k - 2][2][0].isupper()
        and not _flags(tokens[k - 2][2]) & _LISTED
    ):
        # a list with the article repeated: "associado ao Ultraformer e ao Agnes"
        return _treatment_context(text, tokens, k - 2, depth + 1, device_only=device_only)
    if tokens[k][2].lower() in _ARTICLES and k > 0 and tokens[k - 1][2].lower() in ("com", "de"):
        k -= 1  # "protocolo com o Sciton"
        if not gap_is_space(text, tokens[k][1], tokens[k + 1][0]):
            return False
    preposition = tokens[k][2].lower()
    if preposition not in _TREATMENT_PREPOSITIONS or k == 0:
        return False
    if not gap_is_space(text, tokens[k - 1][1], tokens[k][0]):
        return False
    head = lexicon.fold(tokens[k - 1][2])
    if device_only:
        if preposition in ("ao", "aos", "no", "nos") and head not in _RECORD_HEADS:
            return head in _TREATMENT_HEADS  # "associado ao Agnes": a device, "o Agnes"
        return head in _TREATMENT_HEADS and preposition in ("com", "de")
    if head in _TREATMENT_HEADS:
        return True
    return head in _SESSION_HEADS and preposition in ("de", "do", "da")


def _product_in_place_of_name(text: str, tokens: Sequence[Token], i: int, flags: int) -> bool:
    """Is the listed name at i what is applied or used ("Apliquei Johnson", "Usar
    Johnson"), or what a treatment noun takes with "com"/"de" ("protocolo com Agnes",
    "sessões de Agnes")? There a word borne by a few thousand people is more often a
    product or a device; a given name borne by 30,000 or more stays a person
    ("protocolo com Maria"), and so does a diminutive."""
    word = tokens[i][2]
    if flags & _COMMON or lexicon.frequent_given_name(word) or _diminutive_given_name(word):
        return False
    return _product_context(text, tokens, i) or _treatment_context(
        text, tokens, i, device_only=True
    )


def _product_line(text: str, tokens: Sequence[Token], i: int, flags: int) -> bool:
    """Is the capitalised word at i part of the name of a product whose brand or kind
    comes right before it ("Isdin Fusion Water", "creme Agnes", "Botox Cosmetic")?
    The brands, products and procedures of the stop list head such names; words no
    list knows may stand between ("Fusion"). A given name borne by 30,000 or more and
    a surname borne by many stay names ("Botox Maria Silva"), and so does a name with
    a time or an age after it."""
    if i == 0 or not gap_is_space(text, tokens[i - 1][1], tokens[i][0]):
        return False
    previous = tokens[i - 1][2]
    if lexicon.fold(previous) not in lexicon.PRODUCT_WORDS and (
        not previous[0].isupper() or _flags(previous)
    ):
        return False  # most words: neither a brand nor an unknown word of a product before
    if flags & _COMMON or lexicon.frequent_given_name(tokens[i][2]):
        return False
    if _TIME_NEXT_RE.match(text, tokens[i][1]) or _AGE_NEXT_RE.match(text, tokens[i][1]):
        return False  # "Botox Kauane 14h", "Toxina Kelvin 8a": a day's list of patients
    if i + 1 < len(tokens) and gap_is_space(text, tokens[i][1], tokens[i + 1][0]):
        following = tokens[i + 1][2]
        if following[0].isupper() and (
            _flags(following) & _COMMON or lexicon.frequent_given_name(following)
        ):
            return False  # "Botox Kauane Souza": a surname borne by many follows
    k = i - 1
    while k >= 0 and k > i - 4 and gap_is_space(text, tokens[k][1], tokens[k + 1][0]):
        word = tokens[k][2]
        if lexicon.fold(word) in lexicon.PRODUCT_WORDS:
            return True
        if not word[0].isupper() or _flags(word):
            return False
        k -= 1
    return False


def _eponym_head(text: str, tokens: Sequence[Token], k: int) -> bool:
    """Does a word naming a sign, scale or method come before the "de" at token k
    ("escala de Carruthers", "manobra de Valsalva")?"""
    return (
        k > 0
        and gap_is_space(text, tokens[k - 1][1], tokens[k][0])
        and lexicon.fold(tokens[k - 1][2]) in _EPONYM_HEADS
    )


_EPONYM_HEADS = frozenset(
    """
    sindrome doenca sinal sinais manobra teste escala escore classificacao criterio criterios
    grau estagio tecnica metodo estudo estudos triade reacao fenomeno lei regra indice
    protocolo lampada cisto paralisia fototipo peeling solucao formula tumor nodulo dieta
""".split()
)
_NEVER_MODEL = _STOP | _PARTICLE | _HONORIFIC | _CONTEXT | _CONNECTOR | _PLACE | _SUFFIX


# The second signal `find_names` uses by default; benchmarks set it to None to
# measure the rules alone.
SECOND_SIGNAL: SecondSignal | None = name_model.is_name

# Log lines are the developers' English ("Timeout talking to Anthropic", "Starting
# Celery"), not clinical Portuguese: the model, trained on prose, takes their
# capitalised words for names and would leave on-call engineers unreadable logs.
# Log redaction runs the rules and lexicons only (`rules_only`).
_second_signal_on: ContextVar[bool] = ContextVar("names_second_signal_on", default=True)


@contextmanager
def rules_only() -> Iterator[None]:
    """Within the block, `find_names` leaves the second signal out."""
    token = _second_signal_on.set(False)
    try:
        yield
    finally:
        _second_signal_on.reset(token)


def find_names(
    text: str,
    tokens: Sequence[Token],
    second_signal: SecondSignal | None | str = "model",
    places: list[tuple[int, int]] | None = None,
) -> Iterator[tuple[int, int]]:
    """(start, end) of every person name in `text`; `tokens` are its (start, end, word).

    `second_signal(text, tokens, i)` decides the capitalised words the rules
    leave undecided (see `model_candidate`); "model" is the module's
    `SECOND_SIGNAL` (the shipped model), None turns it off. When `places` is a
    list, the (start, end) of the place names read along the way are appended
    to it.
    """
    if second_signal == "model":
        second_signal = SECOND_SIGNAL if _second_signal_on.get() else None
    chain = _Chain(text, tokens)
    n = len(tokens)
    i = 0
    lower_triggers = _LOWER_TRIGGERS
    undecided_given = -1  # a capitalised given name the rules left undecided
    last_name = -1  # the last token of the last name found
    while i < n:
        beg, end, word = tokens[i]
        lower = word[0].islower()
        if lower and word not in lower_triggers:
            initials = None
            if word in _INITIALS_TRIGGERS:
                initials = _initials_after_trigger(text, tokens, i)
            if initials is not None:
                yield tokens[i + 1][0], tokens[initials][1]  # "o menor K.L.S."
                last_name = initials
                i = initials + 1
                continue
            flags = _flags(word)
            if (
                (flags & _COMMON and _clear_name(flags) and word not in _LOWER_CASE_WORDS)
                or (
                    flags & (_FIRST | _AMBIG)
                    and (
                        _lower_nickname_after_article(text, tokens, i, flags)
                        or _age_follows(text, tokens, chain, i, flags)
                        or _frequent_name_in_record(text, tokens, i, flags)
                        or _lower_patient_at_line_start(text, tokens, i, flags)
                    )
                )
                or (not flags and _reduplicated_nickname(text, tokens, i))
            ):
                found = _lower_without_context(text, tokens, chain, i)
                if found is not None:
                    further = _lower_name_with_evidence(text, tokens, i, last_name)
                    if further is not None and further > found[1]:
                        # "340.153.145-06 - daniela zanardetti": with evidence, the
                        # words no list knows after a frequent name are its surnames
                        found = found[0], further
                    yield tokens[found[0]][0], tokens[found[1]][1]
                    last_name = found[1]
                    i = found[1] + 1
                    continue
            if (flags & _LISTED and not flags & (_STOP | _CONTEXT | _HONORIFIC | _CONNECTOR)) or (
                not flags and _listed_next(tokens, i)
            ):
                # a listed name, or a word no list knows before one ("deuzayne mamede")
                last = _lower_name_with_evidence(text, tokens, i, last_name)
                if last is not None:
                    yield tokens[i][0], tokens[last][1]
                    last_name = last
                    i = last + 1
                    continue
            i += 1  # most tokens: ordinary lower-case words
            continue
        flags = _flags(word)
        if len(word) == 1 and text[end : end + 1] != ".":
            flags &= ~_HONORIFIC  # "D." is Dona, a lone "d" is not
        found = None
        if flags & (_HONORIFIC | _CONTEXT):
            found = _after_context(text, tokens, chain, i, flags)
        if found is None and len(word) == 1 and chain._initial(i):
            last = _initials_end(text, tokens, i)
            if last is not None:
                yield beg, tokens[last][1]
                i = last + 1
                continue
        if (
            found is None
            and not lower
            and not flags & _STOP
            and _product_line(text, tokens, i, flags)
        ):
            i += 1  # "Isdin Fusion Water", "creme Agnes": a product's line, not a person
            continue
        if found is None and not lower and not flags & _STOP:
            place = _place_end(text, tokens, i)
            if place is not None:
                if places is not None:
                    places.append((beg, tokens[place][1]))
                i = place + 1
                continue
            found = _without_context(text, tokens, chain, i, flags)
            if found is None and _after_reporting_verb(text, tokens, i, flags):
                found = i, chain.extend(i, caps_mode=False)
            if found is None and _patient_at_line_start(text, tokens, i, flags):
                found = i, i
            if found is None and _given_name_with_time(text, tokens, last_name, i, flags):
                found = i, i
            if (
                found is None
                and second_signal is not None
                and model_candidate(text, tokens, i, flags)
                and second_signal(text, tokens, i)
            ):
                found = i, chain.extend(i, caps_mode=False)
                if undecided_given == i - 1 and chain._joined(i):
                    # "Tom Wolfe", "Tom Gorman": a given name that is also a word
                    # needed a surname beside it, and the model reads the next word as one
                    found = i - 1, found[1]
            if found is None and _listed_after_name(text, tokens, last_name, i, flags):
                found = i, chain.extend(i, caps_mode=False)
            if (
                found is None
                and flags & (_FIRST | _AMBIG)
                and not flags & (_SUFFIX | _PLACE | _CONNECTOR)  # "Segundo Chomsky"
                and word[1:].islower()
            ):
                undecided_given = i
        if found is None:
            i += 1
            continue
        if len(found) == 3:
            if places is not None:
                places.append((tokens[found[0] - 1][0], tokens[found[1]][1]))
            i = found[1] + 1  # a place name: skip all of it
            continue
        first, last = found[0], found[1]
        yield _leading_initials(text, tokens, first), tokens[last][1]
        last_name = last
        i = last + 1


# Verbs of saying that put the speaker after them ("disse Nascimento", "segundo Massa",
# "afirmou Canosa"): news and reports write them so, and clinical chat too ("conforme
# orientou Dra. Ana" is caught by its honorific). "refere" is left out: notes open
# every line with it ("Refere Dor").
_REPORTING_VERBS = frozenset(
    """
    disse diz dizia afirmou afirma afirmava explicou explica contou declarou declara
    acrescentou acrescenta completou completa ressaltou ressalta lembrou lembra observou
    comentou comenta garantiu garante destacou destaca admitiu admite relatou informou
    perguntou pergunta respondeu responde sublinhou sublinha frisou defendeu defende
    adiantou salientou reconheceu avisou concluiu criticou critica escreveu escreve
    segundo insistiu confirmou confirma negou nega
    """.split()
)


def _after_reporting_verb(text: str, tokens: Sequence[Token], i: int, flags: int) -> bool:
    """Is capitalised token i the speaker after a verb of saying ("disse Nascimento",
    "segundo Massa", ", diz Canosa")? A name that is also a word counts there (Massa,
    Serra); a word no name list holds only when it has the shape of one (not clinical
    vocabulary, a medicine, an eponym or a noun by its ending)."""
    if i == 0 or not gap_is_space(text, tokens[i - 1][1], tokens[i][0]):
        return False
    verb = tokens[i - 1][2]
    if verb not in _REPORTING_VERBS:  # lower case only: "Segundo" opens a sentence
        return False
    word = tokens[i][2]
    if len(word) < 2 or word.isupper() or not word[1:].islower():
        return False
    if flags & (_NEVER_MODEL & ~_PLACE) or lexicon.fold(word) in lexicon.EPONYMS:
        return False
    if flags & _LISTED:
        return not lexicon.is_place((word,)) or bool(flags & _FIRST)
    if flags & (_NOT_NAME | _PLACE):
        return False
    if _FOREIGN_LETTERS_RE.search(word) and not _BRAND_PART_RE.search(word):
        return True  # "segundo Kusturica": -ica ends Portuguese adjectives, but not with a k
    return not (
        _WORD_SUFFIX_RE.search(word) or _NOUN_ENDING_RE.search(word) or _BRAND_PART_RE.search(word)
    )


# Letters and clusters of foreign surnames that Portuguese words do not hold (k, w, y;
# sch, tz, cz): such a word is not the Portuguese noun or adjective its ending suggests.
_FOREIGN_LETTERS_RE = re.compile(r"[kwy]|sch|tz|cz", re.IGNORECASE)


# What a clinician's chat says of a patient, and of nothing else, right after the
# patient's name at a line's start: "Vivi pediu desconto", "Cacá confirmou", "Pietra
# alergia a látex". Narrower than `_PERSON_VERBS`: a firm or a body also comes,
# says and asks in prose ("Petrobras disse"), and only the first word of a line is
# asked, where news text seldom puts a name.
_LINE_START_PATIENT_WORDS = frozenset(
    """
    pediu confirmou desmarcou remarcou faltou agradeceu reclamou cancelou
    alergia alergica alergico
    """.split()
)
_LINE_START_RE = re.compile(r"(?:\A|\n)[ \t\-•*>]*\Z")


def _patient_at_line_start(text: str, tokens: Sequence[Token], i: int, flags: int) -> bool:
    """Is the capitalised word opening a line the patient's name, a patient's verb or
    allergy right after it ("Vivi pediu desconto", "Cacá confirmou", "Pietra alergia a
    látex")? Nicknames there are often also words or products (Vivi, Pietra): the
    verb says it is a person. Not a word in capitals, a place, a word of a noun's or
    a brand's shape, or an eponym."""
    beg, end, word = tokens[i]
    if i + 1 >= len(tokens) or tokens[i + 1][2] not in _LINE_START_PATIENT_WORDS:
        return False
    if not gap_is_space(text, end, tokens[i + 1][0]):
        return False
    if not _LINE_START_RE.search(text, 0, beg):
        return False
    if len(word) < 3 or not word[0].isupper() or not word[1:].islower():
        return False
    if flags & (_STOP | _PLACE | _CONTEXT | _HONORIFIC | _CONNECTOR | _PARTICLE | _SUFFIX):
        return False
    if lexicon.is_place((word,)) or lexicon.fold(word) in lexicon.EPONYMS:
        return False
    return not (
        _WORD_SUFFIX_RE.search(word) or _NOUN_ENDING_RE.search(word) or _BRAND_PART_RE.search(word)
    )


# A time after a given name in a day's list: "Lara vem 10h, Lia 11h", "Bia 14:30".
_TIME_NEXT_RE = re.compile(r"[ \t]+(?:às[ \t]+|as[ \t]+)?\d{1,2}(?:h\d{0,2}|:\d{2})\b")


def _given_name_with_time(
    text: str, tokens: Sequence[Token], last_name: int, i: int, flags: int
) -> bool:
    """Is the capitalised given name at i an entry of a day's list after a name already
    found ("Lara vem 10h, Lia 11h")? A time follows it, a comma or a line break comes
    before it, and the name found before it also had a time after it: a given name that
    is also a word (Lia, Luz) needs the list to be a person."""
    if last_name < 0 or not flags & (_FIRST | _AMBIG):
        return False
    word = tokens[i][2]
    if len(word) < 3 or not word[0].isupper() or not word[1:].islower():
        return False
    if flags & (_STOP | _PLACE | _CONTEXT | _HONORIFIC | _CONNECTOR | _SUFFIX):
        return False
    if not _TIME_NEXT_RE.match(text, tokens[i][1]):
        return False
    before = text[tokens[last_name][1] : tokens[i][0]]
    if not re.search(r"(?:,|\n)[ \t]*\Z", before):
        return False
    return re.search(r"\d{1,2}(?:h\d{0,2}|:\d{2})\b", before) is not None


def _leading_initials(text: str, tokens: Sequence[Token], first: int) -> int:
    """Start of a name found at token `first`, taking in the initials right before it
    ("J. Silva", "R. Almeida")."""
    k = first
    while (
        k > 0
        and len(tokens[k - 1][2]) == 1
        and tokens[k - 1][2].isupper()
        and tokens[k - 1][2] != "S"  # "S. Martinho", "S. João": São, a saint or a town
        and not _flags(tokens[k - 1][2]) & _HONORIFIC  # "D. Rosa": Dona
        and _INITIAL_GAP_RE.fullmatch(text, tokens[k - 1][1], tokens[k][0]) is not None
    ):
        k -= 1
    return tokens[k][0]


def _after_context(text, tokens, chain, i, flags) -> tuple[int, int] | None:
    n = len(tokens)
    j = i + 1
    punctuated = False
    colonless = True
    # Skip up to four connectors ("a paciente, a Sra. Ana"), never across a sentence end.
    for _ in range(5):
        if j >= n:
            return None
        prev_end = tokens[j - 1][1]
        gap = text[prev_end : tokens[j][0]]
        gap_ok = (
            _HONORIFIC_GAP_RE.match(gap) if _flags(tokens[j - 1][2]) & _HONORIFIC else None
        ) or _CONNECT_GAP_RE.match(gap)
        if not gap_ok or not gap:
            return None
        punctuated = punctuated or gap.strip(" \t.") != ""
        colonless = colonless and ":" not in gap
        word = tokens[j][2]
        wflags = _flags(word)
        if _starts_name(word, wflags) or chain._initial(j):
            break
        if (
            flags & _HONORIFIC
            and word.islower()
            and wflags & _AMBIG
            and not wflags & (_RARE | _CONTEXT | _CONNECTOR | _STOP)
            and tokens[i][2].lower() not in ("seu", "senhor", "senhora", "senhores", "senhoras")
            and len(word) > 2
        ):
            break  # "sra. glória menezes", "dona conceição", "d. rosa": the title says it
        if (
            word.islower()
            and wflags & _AMBIG
            and lexicon.frequent_given_name(word)
            and j + 1 < n
            and gap_is_space(text, tokens[j][1], tokens[j + 1][0])
            and tokens[j + 1][2].islower()
            and _clear_name(_flags(tokens[j + 1][2]))
            and not _flags(tokens[j + 1][2]) & (_NOT_NAME | _STOP | _PLACE)
        ):
            break  # "paciente clara silva": a given name that is also a word, its surname
        if not wflags & (_CONNECTOR | _HONORIFIC | _CONTEXT):
            return None
        j += 1
    else:
        return None
    word = tokens[j][2]
    wflags = _flags(word)
    caps_mode = word.isupper() and len(word) > 1
    last = chain.extend(j, caps_mode)
    trigger = tokens[i][2].lower()
    if word[0].islower():
        last = max(last, _lower_chain_end(text, tokens, j))
        if not wflags and last == j and (colonless or flags & _HONORIFIC):
            # "paciente hipocorada": one word in lower case that no list knows is a name
            # only after a label with a colon ("responsável legal: maricísia"); a title
            # with a colon is a speaker's label ("Dra: suspenda o ácido")
            return None
        if lexicon.fold(word) in _APPEARANCE_WORDS and not any(
            _flags(t[2]) & _CLEAR and not _flags(t[2]) & _NOT_NAME for t in tokens[j + 1 : last + 1]
        ):
            # "paciente linda, pele ótima", "paciente morena, fototipo IV": how the
            # patient looks, though the census lists Linda and Morena as given names;
            # "paciente linda souza" keeps its surname and stays a name
            return None
        if (
            wflags & _RARE
            and not wflags & _COMMON
            and (_CLINICAL_LOWER_RE.search(word) or _WORD_SUFFIX_RE.search(word))
            and not any(_flags(t[2]) & _CLEAR for t in tokens[j + 1 : last + 1])
            and colonless
        ):
            # "paciente lúcida e orientada": a given name of a few hundred people that
            # ends like a clinical adjective is the adjective, unless a surname follows
            return None
    if chain._initial(j) and len(trigger) > 1:
        dotted = _dotted_initials_end(text, tokens, j)
        if dotted is not None and dotted > last:
            last = dotted  # "a paciente F.G.M.": initials written together, no address
        # Initials: "Sra. M. A. S.", "paciente M.S.", "Dr. R. Almeida". Initials alone
        # after a word that is not an honorific must be two or more and not a clinical
        # abbreviation ("paciente P.A. 12x8").
        letters = [t[2] for t in tokens[j : last + 1]]
        if all(len(w) == 1 for w in letters) and not flags & _HONORIFIC:
            if len(letters) < 2 or "".join(letters).upper() in _CLINICAL_INITIALS:
                return None
        return j, last
    if (
        caps_mode
        and not wflags & _LISTED
        and last == j
        and not (flags & _HONORIFIC or not colonless)
    ):
        # "PACIENTE RETORNA", "chamado de CACHORRO": one unknown word in capitals is a
        # name only after an honorific or a label with a colon ("NOME: LUCINILSON")
        return None
    if (len(trigger) == 1 or trigger == "seu") and not wflags & _LISTED:
        # "Vitamina D. Suplementar", "seu Dermatologista": these triggers are
        # everyday words too, so only a listed name follows them ("D. Rosa").
        return None
    if wflags & _NOT_NAME and not wflags & _LISTED and last == j:
        return None  # "paciente Losartana": a medicine, not a person
    if wflags & _LISTED or flags & _HONORIFIC or trigger in _NAMING_WORDS:
        return j, last
    if _WORD_SUFFIX_RE.search(word):
        return None  # "Esposa Grávida", "Mãe: Hipotireoidismo": a word, not a name
    if trigger in _FAMILY_WORDS and not colonless:
        # "Pai: Câncer de Próstata" - family history lists use these labels; after
        # "Mãe:" an unknown phrase counts only with a listed name in it, or as two
        # or more name-shaped words ("Mãe: Edleuza Piovesan").
        chain_words = [t[2] for t in tokens[j : last + 1] if not _flags(t[2]) & _PARTICLE]
        if not any(_flags(w) & _LISTED for w in chain_words) and (
            len(chain_words) < 2 or any(_WORD_SUFFIX_RE.search(w) for w in chain_words)
        ):
            return None
    elif trigger in _PERSON_LABELS and not colonless:
        return j, last  # "Paciente: Kauane Zambon" is how records are headed
    if last == j and punctuated and not _APPOSITION_END_RE.match(text, tokens[j][1]):
        # "Paciente, Orientada..." - a lone unknown word after a comma is a
        # sentence start; the apposition "a filha, Lohane, vai..." is a name.
        return None
    return j, last


# Adjectives of appearance or state typed in lower case after "paciente" that the
# census also lists as given names, or whose other gender it lists (Linda, Morena,
# Bela): after a context word, alone, they describe the patient. A hand list: the
# corpora that give everyday words their kind are news text, where "linda" and
# "morena" are seldom written in lower case.
_APPEARANCE_WORDS = frozenset(
    """
    linda lindo morena moreno loira loiro ruiva ruivo branca branco negra negro parda
    pardo clara claro bela belo magra magro gorda gordo jovem idosa idoso calma calmo
    serena sereno vaidosa vaidoso simpatica simpatico querida querido
    """.split()
)


# Abbreviations written with full stops that can follow "paciente" ("paciente P.A.
# 12x8"): not a person's initials.
_CLINICAL_INITIALS = frozenset(
    """
    PA FC FR HD QP HDA HPP HMA SOS VO EV IM SC SL ID BID TID QID MMII MMSS MID MIE MSD MSE
    AP AF EF CD RN IG DUM DPP TC RM US RX ECG EEG BEG REG MEG AC AO DM HAS IAM AVC ITU DPOC
    TSH CID SUS UBS UPA OD OE AO OS EVA
""".split()
)


def _initials_end(text, tokens, i) -> int | None:
    """Index of the last letter of a person's initials starting at token i, when an age
    follows them ("M.A.T., 34 anos", "J. S. (45 anos)"), or None.

    Two or more capital letters, each followed by a full stop, written together or
    with single spaces, that are not a clinical or common abbreviation (P.A., S.O.S.).
    Case reports name patients so. Without the age, dotted capitals are as often a
    clinical abbreviation (H.M.F., P.R.P., I.P.L., F.P.S.) and need a context word
    (`_after_context`: "paciente M.S.").
    """
    last = _dotted_initials_end(text, tokens, i)
    if last is None or _AGE_AFTER_RE.match(text, tokens[last][1] + 1) is None:
        return None
    return last


def _dotted_initials_end(text, tokens, i) -> int | None:
    """Index of the last of two or more dotted capitals starting at token i ("M.A.T.",
    "J. S."), written together or with single spaces, that are no clinical or common
    abbreviation (P.A., S.O.S.), or None."""
    beg = tokens[i][0]
    if beg and (text[beg - 1].isalnum() or text[beg - 1] in "._/-@"):
        return None
    if len(tokens[i][2]) != 1 or not tokens[i][2].isupper():
        return None
    last = i
    while (
        last + 1 < len(tokens)
        and len(tokens[last + 1][2]) == 1
        and tokens[last + 1][2].isupper()
        and text[tokens[last][1] : tokens[last + 1][0]] in (".", ". ")
    ):
        last += 1
    if last == i or text[tokens[last][1] : tokens[last][1] + 1] != ".":
        return None
    letters = "".join(t[2] for t in tokens[i : last + 1])
    if letters in _CLINICAL_INITIALS or letters in _ABBREVIATIONS:
        return None
    return last


# Who court papers and referrals anonymise by initials: "o menor K.L.S., representado
# por", "a requerente M.C.O.", "genitora A.M.R.". Not context words for a name in full:
# "menor" and "autor" are everyday words first ("autor Machado" is a writer).
_INITIALS_TRIGGERS = frozenset(
    """
    menor autor autora requerente requerido requerida reclamante reclamado reclamada
    genitor genitora representante interessado interessada periciando periciada
    periciado examinando examinanda
    """.split()
)


def _initials_after_trigger(text: str, tokens: Sequence[Token], i: int) -> int | None:
    """Index of the last initial of a person's dotted initials right after a word of
    `_INITIALS_TRIGGERS` ("o menor K.L.S."), or None."""
    if i + 1 >= len(tokens):
        return None
    if text[tokens[i][1] : tokens[i + 1][0]] not in (" ", ": ", ", "):
        return None
    return _dotted_initials_end(text, tokens, i + 1)


# An age after initials: "M.A.T., 34 anos", "J.S. (45 anos)". The word "anos" is
# required: "H.M.F., 2 irmãos" and "P.R.P., 3 sessões" are clinical abbreviations.
_AGE_AFTER_RE = re.compile(r"\s*[,(]\s*\d{1,3}\s*(?:anos|ano|a)\b", re.IGNORECASE)


# Dotted abbreviations in capitals that are not a person's initials.
_ABBREVIATIONS = frozenset(
    """
    SA EUA UI SN PS USP CRM CRO CFM RG CPF CNPJ OK IMC UTI CTI DR DRA SR SRA AM PM DC AC
    PC NR ND OBS ONU UE UK US USA EU AS FM TV CD DVD PF GO MG SP RJ RS PR SC BA PE CE
    DF ES MT MS PA AL AP PB PI RN RO RR SE TO MA
    PRP IPL LED FPS UVA UVB HIFU PDO PMMA PLLA RF AH TB HMF HPP EF ISDA ECG USG RX TC
    RM HIV HPV
""".split()
)


def _lower_unknown_tail(text, tokens, last: int) -> int:
    """After a context word, extend a lower-case name over words no list knows at all
    ("paciente maria zambon voltou"): every everyday word carries a flag, so an
    unknown lower-case word right after a name is most likely its surname."""
    n = len(tokens)
    for _ in range(3):
        k = last + 1
        if k >= n or not gap_is_space(text, tokens[last][1], tokens[k][0]):
            break
        word = tokens[k][2]
        if not word.islower() or len(word) < 3 or _flags(word):
            break
        if _PAST_OR_GERUND_RE.search(word):
            break  # "dona ivete quebrou o braço": a verb after the name, not a surname
        last = k
    return last


# Verbs in the past or the gerund, which follow a subject's name: "quebrou", "caiu",
# "sumiram", "chorando". A surname seldom ends so (Abreu and Ribeiro are listed).
_PAST_OR_GERUND_RE = re.compile(r"\w\w(?:ou|iu|eu|aram|eram|iram|avam|ando|endo|indo)$")


def _unknown_lower_word(word: str) -> bool:
    """Can a lower-case word that no list knows be a word of a name typed in lower case
    after a context word ("paciente lucinilson bissoli")? Every everyday word carries a
    flag, so an unknown one is a rare name, a foreign word or a clinical term: the
    latter are told by their endings ("paciente hipocorada", "mãe hipertensa")."""
    if len(word) < 3 or not word.isalpha() or not word.islower():
        return False
    return not (_shaped_like_a_word(word) or _CLINICAL_LOWER_RE.search(word))


def _shaped_like_a_word(word: str) -> bool:
    """Does the word end like a Portuguese noun, adjective or verb, or hold a piece of
    a brand's name? A name seldom does."""
    return bool(
        _WORD_SUFFIX_RE.search(word)
        or _NOUN_ENDING_RE.search(word)
        or _VERB_ENDING_RE.search(word)
        or _INFINITIVE_RE.search(word)
        or _BRAND_PART_RE.search(word)
    )


# Endings of clinical adjectives and participles typed after "paciente" in notes.
_CLINICAL_LOWER_RE = re.compile(
    r"(?:tensa|tenso|ática|ático|atica|atico|ênica|enica|ótica|otica|ante|ente|ível|ivel"
    r"|ável|avel|ória|oria|ório|orio|ual|ica|ico|iva|ivo|eto|eta|ada|ado|ida|ido|ura|uda|udo"
    r"|ou|iu|aram|eram|iram|avam)$"  # and verbs in the past: "o sr. luz apagou"
)


def _lower_name_word(text: str, tokens: Sequence[Token], k: int) -> bool:
    """Is lower-case token k a word of a name typed in lower case (a listed name, or a
    word no list knows that has a name's shape)? A name that is also an everyday word
    ("guerra", "mota", "branco") only where the name ends or goes on after it:
    "paciente joana guerra, 40 anos" but not "paciente joana guerra contra a acne"."""
    word = tokens[k][2]
    flags = _flags(word)
    if flags & (_STOP | _PARTICLE | _CONTEXT | _HONORIFIC | _CONNECTOR):
        return False
    if not flags:
        return _unknown_lower_word(word)
    if not flags & _LISTED:
        return False
    if not flags & _NOT_NAME and word not in _LOWER_CASE_WORDS:
        return True
    n = len(tokens)
    if k + 1 >= n or not gap_is_space(text, tokens[k][1], tokens[k + 1][0]):
        return True  # it closes the name: "joana guerra, 40 anos", "… das branco."
    nxt = tokens[k + 1][2]
    if _flags(nxt) & _PARTICLE and nxt != "e":
        return True  # "sophia do coral de tessotto"
    if flags & _SUR and nxt.islower() and _flags(nxt) & _MAINLY_SURNAME and not _flags(nxt) & _STOP:
        return True  # "jamerson de serra bandeira": surnames in a row, each also a word
    if flags & _SUR and (nxt in _PERSON_VERBS or nxt in ("retorna", "volta")):
        return True  # "... de serra bandeira veio hoje": the name's verb follows it
    return (
        nxt.islower()
        and not _flags(nxt) & (_STOP | _NOT_NAME)
        and (bool(_flags(nxt) & (_LISTED | _PARTICLE)) or not _flags(nxt))
    )


def _surname_after_article(word: str) -> bool:
    """Can an unknown lower-case word after da/do/das/dos inside a name be a surname,
    though it ends like a verb ("neli das pellizzener", "elane flor da vendrener")?
    An article takes a noun, never a verb; nouns and adjectives are told by their
    endings as elsewhere."""
    if len(word) < 3 or not word.isalpha() or _flags(word):
        return False
    return not (
        _WORD_SUFFIX_RE.search(word)
        or _NOUN_ENDING_RE.search(word)
        or _BRAND_PART_RE.search(word)
        or _CLINICAL_LOWER_RE.search(word)
    )


def _lower_name_end(text: str, tokens: Sequence[Token], j: int) -> int:
    """Index of the last token of a name typed in lower case that starts at token j, a
    context word before it: listed names, words no list knows shaped like names, and
    the particles between them ("paciente francis zanardaro dos piovotto")."""
    n = len(tokens)
    last = j
    k = j + 1
    while k < n and k - j < 8:
        if not gap_is_space(text, tokens[k - 1][1], tokens[k][0]) or not tokens[k][2].islower():
            break
        word = tokens[k][2]
        if _flags(word) & _PARTICLE:
            if word == "e" or k + 1 >= n or not gap_is_space(text, tokens[k][1], tokens[k + 1][0]):
                break
            if word in ("da", "do") and _diminutive_given_name(tokens[k + 1][2]):
                break  # "tia neide do luizinho": two people
            if tokens[k + 1][2].islower() and (
                _lower_name_word(text, tokens, k + 1)
                or (word in ("da", "do", "das", "dos") and _surname_after_article(tokens[k + 1][2]))
            ):
                last = k + 1
                k += 2
                continue
            break
        if not _lower_name_word(text, tokens, k):
            break
        last = k
        k += 1
    return last


def _lower_chain_end(text: str, tokens: Sequence[Token], j: int) -> int:
    """Index of the last token of a name typed in lower case that starts at token j:
    listed names and name-shaped words (`_lower_name_end`) and, right after a name
    word, words no list knows (`_lower_unknown_tail`), in any order ("mariano
    ungerener wanderley": a rare surname between two listed ones)."""
    last = j
    while True:
        further = max(_lower_unknown_tail(text, tokens, last), _lower_name_end(text, tokens, last))
        if further == last:
            return last
        last = further


# What only a person does, said of a patient in a clinic's chat: "joana pediu para
# remarcar", "a cornelio fez bioestimulador", "kauane ligou". A product or an exam
# also comes and arrives ("o sculptra chegou", "exame veio"), but those words carry
# no name's flag, and a single word must be a listed given name that is nothing else.
_PERSON_VERBS = frozenset(
    """
    ligou ligaram liga pediu pede pediram perguntou pergunta quer queria confirmou
    desmarcou desmarca remarcou remarca cancelou agendou faltou retornou voltou
    compareceu mandou enviou disse falou reclamou agradeceu avisou respondeu relatou
    relata referiu refere trouxe pagou fez esta veio vem chegou
    """.split()
)
# A clinician's verbs whose object is a patient: "hoje atendi kelvin lange",
# "agendei ilario barrios para quinta", "orientei agostinho a evitar sol".
_PATIENT_OBJECT_VERBS = frozenset(
    """
    atendi atendemos atendeu agendei agendamos orientei orientamos examinei examinamos
    avaliei avaliamos reavaliei encaminhei encaminhamos
    """.split()
)
# Labels with a colon that head a person's name in a signature or a record
# ("assinado: ronei lovato", "cadastro: narciso palhares; dn ...").
_NAME_LABELS = frozenset("assinado assinada ass cadastro cadastrada cadastrado".split())
# An identifier right after a name ("lucas prado, cpf 341...", "romilda cosme
# (erci@bol.com.br)", "hebert tessener, (11) 98765-4321") or right before it
# ("340.153.145-06 - daniela zanardetti"): a patient's record line.
_IDENTIFIER_AFTER_RE = re.compile(
    r"[ \t]*[,(–-]?[ \t]*(?:\(?[\w.+-]+@|(?:cpf|rg|cns|tel|cel|fone|whats|zap)\b"
    r"|\(?\d{2}\)?[ \t]?9?\d{4}[ .-]?\d{4}\b|\d{3}[. ]?\d{3}[. ]?\d{3}[ .-]?\d{2}\b)",
    re.IGNORECASE,
)
_IDENTIFIER_BEFORE_RE = re.compile(r"\d[\d. ()/-]{7,}\d\)?[ \t]*[-–—:][ \t]*\Z")


def _listed_next(tokens: Sequence[Token], i: int) -> bool:
    """Is the token after i a listed name that is nothing else?"""
    return i + 1 < len(tokens) and bool(_flags(tokens[i + 1][2]) & _CLEAR)


def _lower_name_with_evidence(
    text: str, tokens: Sequence[Token], i: int, last_name: int
) -> int | None:
    """Index of the last token of a name typed in lower case that starts at token i,
    when the clinician's text says it is a person, or None.

    The words must have a name's shape (`_lower_chain_end`): either the first is a
    listed given name that is nothing else, or two or more words hold a listed name.
    The evidence: a patient's verb after it at a sentence start ("dayana pediu para
    adiantar", "a marcella fez peeling"), a clinician's verb before it ("atendi kelvin
    lange"), a name just before it in a list ("atendi X e enir loureiro"), a label
    with a colon ("assinado: raila escobar"), or an identifier beside it ("aldir
    lelis, cpf ...", "156.060.020-94 - leonora alonso"). A word alone that is also
    an everyday word or a product never counts (luz, rosa)."""
    if not _lower_name_word(text, tokens, i):
        return None
    last = _lower_chain_end(text, tokens, i)
    words = [t[2] for t in tokens[i : last + 1] if not _flags(t[2]) & _PARTICLE]
    first = _flags(words[0])
    if len(words) == 1:
        if not (first & _FIRST and _clear_name(first)) or first & (_NOT_NAME | _PLACE):
            return None
        if words[0] in _LOWER_CASE_WORDS or len(words[0]) < 3:
            return None
    elif not any(_flags(w) & _CLEAR and not _flags(w) & (_NOT_NAME | _PLACE) for w in words):
        return None
    if lexicon.is_place(tuple(words)):
        return None
    beg, end = tokens[i][0], tokens[last][1]
    previous = tokens[i - 1][2] if i else ""
    joined = bool(i) and gap_is_space(text, tokens[i - 1][1], beg)
    if joined and lexicon.fold(previous) in _PATIENT_OBJECT_VERBS:
        return last
    if (
        last_name >= 0
        and i == last_name + 2
        and previous == "e"
        and joined
        and gap_is_space(text, tokens[last_name][1], tokens[i - 1][0])
    ) or (
        last_name >= 0 and i == last_name + 1 and text[tokens[last_name][1] : beg] in (", ", ",")
    ):
        return last
    if i and lexicon.fold(previous) in _NAME_LABELS and text[tokens[i - 1][1] : beg].strip() == ":":
        return last
    if _IDENTIFIER_AFTER_RE.match(text, end) or _IDENTIFIER_BEFORE_RE.search(
        text, max(0, beg - 40), beg
    ):
        return last
    if last + 1 < len(tokens) and tokens[last + 1][2] in _PERSON_VERBS:
        if not gap_is_space(text, end, tokens[last + 1][0]):
            return None
        if _sentence_start(text, tokens, i):
            return last
        if joined and previous in ("a", "o") and _sentence_start(text, tokens, i - 1):
            return last
    return None


def _lower_without_context(text, tokens, chain, i) -> tuple[int, int] | None:
    """A very common name typed in lower case: "hoje a maria ligou", "ana paula souza"."""
    beg, end = tokens[i][0], tokens[i][1]
    if beg and text[beg - 1] in "@._/-\\" and not _mention(text, beg, end):
        return None
    if end < len(text) and text[end] in "@_":
        return None
    if i and gap_is_space(text, tokens[i - 1][1], beg):
        previous = tokens[i - 1][2]
        if _flags(previous) & _PLACE or previous.lower() == "em":
            return None  # "hospital santa maria", "mora em mariana"
    return i, chain.extend(i, caps_mode=False)


def _title_before_person(text: str, tokens: Sequence[Token], k: int) -> bool:
    """Is token k a title heading a person ("o presidente Sarkozy", "Rei Jorge") rather
    than part of a place's name ("Avenida Presidente Vargas", "Hospital Dom Pedro")?"""
    if lexicon.fold(tokens[k][2]) not in _TITLES:
        return False
    if k and gap_is_space(text, tokens[k - 1][1], tokens[k][0]):
        return not _flags(tokens[k - 1][2]) & _PLACE
    return True


# Place words that are a person's title too: a place only after a street or building word.
_TITLES = frozenset(
    """
    presidente governador marechal general coronel almirante brigadeiro duque barao conde
    visconde princesa imperatriz rainha rei papa
""".split()
)


def _evidence(word: str, previous: str) -> bool:
    """Does this neighbour make an unknown capitalised word a name? ("Julianderson
    Pereira" yes; "Banco do Brasil" no: Brasil is a surname, but after "do" a country)."""
    if not word[0].isupper() or not _flags(word) & _LISTED:
        return False
    return not (_flags(previous) & _PARTICLE and lexicon.is_place((word,)))


# Articles and their contractions: in Brazilian speech a person's given name takes one
# ("a Clara", "falei com o Leo"); a town's name does not ("em Vitória").
_ARTICLES = frozenset("a o à ao da do na no pela pelo".split())


def _article_before_name(text: str, tokens: Sequence[Token], i: int) -> bool:
    """Is the capitalised everyday word at i ("Vitória", "Clara", "Rosa") a given name
    because an article stands right before it in running text ("A Vitória fez peeling",
    "região glútea da Clara")? Not in a proper name that the article only links
    ("Estação da Luz", "Hospital do Carmo": a capitalised word before the article),
    not before a particle ("a Luz do sol"), and not in capitals (headings)."""
    word = tokens[i][2]
    if i == 0 or word.isupper() or not word[0].isupper() or _sentence_start(text, tokens, i):
        return False
    if not lexicon.frequent_given_name(word):
        return False  # "a Argentina", "o Pacífico", "a Lua": few people bear these
    if i + 1 < len(tokens) and _flags(tokens[i + 1][2]) & _PARTICLE:
        return False  # "a Luz do sol", "a Rosa dos ventos": a thing's name
    article_beg, article_end, article = tokens[i - 1]
    if article.lower() not in _ARTICLES or not gap_is_space(text, article_end, tokens[i][0]):
        return False
    if article[0].isupper():
        return _sentence_start(text, tokens, i - 1)  # "A Vitória fez…", not "Rua A Clara"
    if i >= 2 and gap_is_space(text, tokens[i - 2][1], article_beg):
        return not tokens[i - 2][2][0].isupper()
    return True


def _given_name_after_article(text: str, tokens: Sequence[Token], i: int, flags: int) -> bool:
    """Is the capitalised word at i, after "da"/"do", a given name with its article ("vovó
    da Manu", "resultado do Pedrinho") rather than an eponym ("sinal de Nikolsky",
    "paralisia de Bell")? Eponyms take "de" and are surnames; a word that is only or
    mainly a given name takes the article, as Brazilians put one before a given name.
    Not after a capitalised word ("Hospital do Carmo", "Jardim do Éden": a proper name
    the article only links)."""
    if tokens[i - 1][2] not in ("da", "do") or not flags & _FIRST or flags & _MAINLY_SURNAME:
        return False
    if lexicon.fold(tokens[i][2]) in lexicon.EPONYMS or _eponym_head(text, tokens, i - 1):
        return False
    if _diminutive_given_name(tokens[i][2]):
        return True  # "tia Nena do Joaozinho": the boy is named after his aunt's article
    if i >= 2 and gap_is_space(text, tokens[i - 2][1], tokens[i - 1][0]):
        return not tokens[i - 2][2][0].isupper()
    return True


# An age right after a name: "Kelvin 8a", "Pietra, 5 anos", "Kauã (12a)", "Heitor 3m".
# A bare "a" or "m" after the number counts only where the phrase ends there: "2a
# dose" and "3m de distância" are ordinals and lengths.
_AGE_NEXT_RE = re.compile(
    r"[ \t]*[,(–-]?[ \t]*\d{1,3}[ \t]*(?:(?:anos|ano|meses|mes|mês)\b"
    r"|[am](?=[ \t]*(?:[,;.)\n]|$)))",
    re.IGNORECASE,
)
_AGE_UNIT_RE = re.compile(
    r"[ \t]*[,(–-]?[ \t]*\d{1,3}[ \t]*(?:anos|ano|meses|mes|mês)\b", re.IGNORECASE
)


_GOVERNING_WORDS = frozenset(
    "a o as os à ao da do das dos na no nas nos de em por pelo pela com para pra um uma".split()
)


def _age_follows(text: str, tokens: Sequence[Token], chain: _Chain, i: int, flags: int) -> bool:
    """Is the given name at i (any case) followed, at the end of its name, by an age
    ("jhennifer 25a, queixa de melasma", "paciente agatha 4 anos")? Clinicians head a
    patient's line so. A given name that is also an everyday word or a product (Pietra,
    Luz) needs the age spelt out with its unit or closed by punctuation, and one typed
    in lower case must open the line or follow a context word; one of the lower-case
    words of Portuguese (sara, rui) never counts."""
    word = tokens[i][2]
    if flags & (_STOP | _CONTEXT | _CONNECTOR | _HONORIFIC | _PLACE) or len(word) < 3:
        return False
    if word.islower():
        if word in _LOWER_CASE_WORDS:
            return False
        if i and not _sentence_start(text, tokens, i) and not _flags(tokens[i - 1][2]) & _CONTEXT:
            return False
    if flags & _NOT_NAME and (
        _product_context(text, tokens, i)
        or (
            i
            and gap_is_space(text, tokens[i - 1][1], tokens[i][0])
            and tokens[i - 1][2].lower() in _GOVERNING_WORDS
        )
    ):
        # "no máximo 3 anos", "usou Yasmin 3 anos": an everyday word or a product
        return False
    last = chain.extend(i, caps_mode=word.isupper())
    end = tokens[last][1]
    if _AGE_UNIT_RE.match(text, end):
        return True
    return _AGE_NEXT_RE.match(text, end) is not None and not flags & _NOT_NAME


def _listed_after_name(
    text: str, tokens: Sequence[Token], last_name: int, i: int, flags: int
) -> bool:
    """Is the capitalised given name at i listed after a name just found ("Duda e Malu
    vêm juntas", "Ana, Bruno e Carla")? A given name that is also a word or a product
    needs this evidence, and a name beside another one is a person too."""
    if last_name < 0 or not flags & (_FIRST | _AMBIG):
        return False
    word = tokens[i][2]
    if word.isupper() or not word[1:].islower() or len(word) < 3:
        return False
    if flags & (_STOP | _PLACE | _CONTEXT | _HONORIFIC | _CONNECTOR | _SUFFIX | _MAINLY_SURNAME):
        return False
    if lexicon.is_place((word,)) and not lexicon.frequent_given_name(word):
        return False  # "Tratado de Paris, Malta": a list of places
    if i + 1 < len(tokens) and _flags(tokens[i + 1][2]) & _PARTICLE and tokens[i + 1][2] != "e":
        return False  # "Maria e Rosa do Deserto": a thing's name
    gap = text[tokens[last_name][1] : tokens[i][0]]
    if i == last_name + 1:
        return gap in (", ", ",")
    return (
        i == last_name + 2
        and tokens[last_name + 1][2] == "e"
        and gap_is_space(text, tokens[last_name][1], tokens[last_name + 1][0])
        and gap_is_space(text, tokens[last_name + 1][1], tokens[i][0])
    )


def _frequent_given_names(words: Sequence[str]) -> bool:
    """Two or more capitalised words that are each a given name borne by at least
    30,000 people ("Yasmin Vitória", "Vitória Rosa"), and not a town together: a person,
    though each alone is also a word or a product."""
    return (
        len(words) >= 2
        and all(
            w[0].isupper() and not w.isupper() and lexicon.frequent_given_name(w) for w in words
        )
        and not lexicon.is_place(tuple(words))
    )


def _after_device_word(text: str, tokens: Sequence[Token], i: int) -> bool:
    """Does the word at i follow, as its second word, a product or device that a
    treatment names ("Sessões de Emsculpt Neo")?"""
    if i == 0 or not gap_is_space(text, tokens[i - 1][1], tokens[i][0]):
        return False
    previous = tokens[i - 1][2]
    if not previous[0].isupper() or _flags(previous) & _LISTED:
        return False
    return _product_context(text, tokens, i - 1) or _treatment_context(text, tokens, i - 1)


def _frequent_given_names_paired(text: str, tokens: Sequence[Token], i: int) -> bool:
    """Is the word at i one of two frequent given names joined by "e" ("Yasmin e Vitória
    são irmãs")? Each is also a word or a product; together they are two people (the
    second is then taken as listed after a name)."""
    if i + 2 >= len(tokens) or tokens[i + 1][2] != "e":
        return False
    if not (
        gap_is_space(text, tokens[i][1], tokens[i + 1][0])
        and gap_is_space(text, tokens[i + 1][1], tokens[i + 2][0])
    ):
        return False
    return _frequent_given_names([tokens[i][2], tokens[i + 2][2]])


# What belongs to a patient in a clinic's chat: "receita da kauane", "exames do wellington".
_RECORD_HEADS = frozenset(
    """
    receita receitas prontuario prontuarios exame exames laudo laudos resultado resultados
    atestado atestados ficha cadastro consulta consultas retorno agenda agendamento foto fotos
    orcamento pagamento pix boleto historico evolucao prescricao encaminhamento
    """.split()
)
_NICKNAME_END_RE = re.compile(r"(?:inho|inha)$")


def _diminutive_given_name(word: str) -> bool:
    """A given name's diminutive (Joaozinho, Pedrinho, Aninha) that no one bears as a
    surname (unlike Sardinha, Coutinho, Pinho): after da/do it is a second person."""
    return bool(_NICKNAME_END_RE.search(lexicon.fold(word))) and not _flags(word) & _SUR


def _lower_nickname_after_article(text: str, tokens: Sequence[Token], i: int, flags: int) -> bool:
    """Is the lower-case word at i a given name's short form after its article ("a bia
    vem amanhã", "exames da gabi", "o juninho caiu")? Only a given name that is nothing
    else (no everyday, product, town or mainly-surname reading, not rare), short (up to
    five letters) or a diminutive in -inho/-inha: in running text the longer ones after
    an article are as often a country or a firm."""
    word = tokens[i][2]
    if i == 0 or not flags & _FIRST or not _clear_name(flags):
        return False
    if flags & (_NOT_NAME | _RARE | _STOP | _MAINLY_SURNAME | _PLACE) or word in _LOWER_CASE_WORDS:
        return False
    article = tokens[i - 1][2]
    if article not in _ARTICLES or not gap_is_space(text, tokens[i - 1][1], tokens[i][0]):
        return False
    if len(word) < 3:
        return False
    if len(word) > 5 and not _NICKNAME_END_RE.search(word):
        # a longer one only as whom one talks with ("fala com a kethlen") or whose record
        # it is ("receita da kauane", "prontuário do wellington")
        if i < 2 or not gap_is_space(text, tokens[i - 2][1], tokens[i - 1][0]):
            return False
        head = lexicon.fold(tokens[i - 2][2])
        if not (
            (head == "com" and article in ("a", "o"))
            or (head in _RECORD_HEADS and article in ("da", "do"))
        ):
            return False
    return not lexicon.is_place((word,))


def _frequent_name_in_record(text: str, tokens: Sequence[Token], i: int, flags: int) -> bool:
    """Is the lower-case word at i a given name borne by 30,000 or more that is also a
    word, after a record's noun and its article ("laudo da ester saiu", "exames da
    glória")? A record of the clinic is a patient's; the word's other reading (the
    chemical "éster" is masculine) does not take "da" there."""
    word = tokens[i][2]
    if i < 2 or not flags & _AMBIG or flags & (_STOP | _PLACE | _CONTEXT | _CONNECTOR):
        return False
    if word in _LOWER_CASE_WORDS or not lexicon.frequent_given_name(word):
        return False
    if tokens[i - 1][2] not in ("da", "do") or lexicon.fold(tokens[i - 2][2]) not in _RECORD_HEADS:
        return False
    return gap_is_space(text, tokens[i - 2][1], tokens[i - 1][0]) and gap_is_space(
        text, tokens[i - 1][1], tokens[i][0]
    )


def _lower_patient_at_line_start(text: str, tokens: Sequence[Token], i: int, flags: int) -> bool:
    """Is the lower-case word opening a line a frequent given name before a patient's
    verb ("tais desmarcou", "tais faltou")? A given name that is also a word in news
    text ("tais" is "such") never stands so. Not a given name the lists hold as a word
    first (rosa, luz: `_AMBIG`), nor one of fewer than 30,000 bearers."""
    word = tokens[i][2]
    if not flags & _FIRST or flags & (_STOP | _PLACE | _CONTEXT | _CONNECTOR | _HONORIFIC):
        return False
    if word in _LOWER_CASE_WORDS or not lexicon.frequent_given_name(word):
        return False
    if i + 1 >= len(tokens) or tokens[i + 1][2] not in _LINE_START_PATIENT_WORDS:
        return False
    if not gap_is_space(text, tokens[i][1], tokens[i + 1][0]):
        return False
    return _LINE_START_RE.search(text, 0, tokens[i][0]) is not None


# A nickname of a syllable said twice: lelê, cacá, dudu, juju, vivi, tetê (folded).
_REDUPLICATED_RE = re.compile(r"([b-df-hj-np-tv-z]{1,2}[aeiou])\1")


def _reduplicated_nickname(text: str, tokens: Sequence[Token], i: int) -> bool:
    """Is the lower-case word at i, which no list knows, a nickname of one syllable
    said twice after its article and before a patient's verb ("a lelê pediu pra
    remarcar", "o dudu vem hoje")? Everyday words so shaped (bebê, vovó, coco, xixi)
    carry a flag; the article and the verb say it is a person."""
    if i == 0 or i + 1 >= len(tokens) or tokens[i - 1][2] not in ("a", "o"):
        return False
    if not _REDUPLICATED_RE.fullmatch(lexicon.fold(tokens[i][2])):
        return False
    if tokens[i + 1][2] not in _PERSON_VERBS and tokens[i + 1][2] not in ("ta", "tá"):
        return False  # "a lelê pediu", "a lelê tá com catapora"
    return gap_is_space(text, tokens[i - 1][1], tokens[i][0]) and gap_is_space(
        text, tokens[i][1], tokens[i + 1][0]
    )


def _mention(text: str, beg: int, end: int) -> bool:
    """"@Fernanda pode ver a agenda?": a colleague named with an @, not part of an
    address or a handle ("ana@Clinica.com", "x@Fernanda_2")."""
    if text[beg - 1] != "@" or (beg > 1 and not text[beg - 2].isspace()):
        return False
    return end == len(text) or text[end] not in "@._/-\\"


def _surnames_only(words: Sequence[str]) -> bool:
    """Two or more capitalised words that are each mainly a surname and none a town
    ("investigar Pinto da Costa", "em representação de Sales Marques"): a person's
    surnames, though each is also an everyday word."""
    return len(words) >= 2 and all(
        w[0].isupper()
        and not w.isupper()
        and _flags(w) & _MAINLY_SURNAME
        and not _flags(w) & _PLACE
        and not lexicon.is_place((w,))
        for w in words
    )


def _name_alone(word: str) -> bool:
    """A listed name with no everyday reading and not rare: redacted even alone."""
    flags = _flags(word)
    return _clear_name(flags) and not flags & (_RARE | _NOT_NAME)


def _strong(word: str) -> bool:
    """A given name that is not rare, or a surname borne by many (Ferreira): enough to
    read words in capitals as a name."""
    flags = _flags(word)
    if flags & _FIRST and not flags & _RARE:
        return True
    return bool(flags & _COMMON) and _clear_name(flags)


def _without_context(
    text, tokens, chain, i, flags
) -> tuple[int, int] | tuple[int, int, bool] | None:
    beg, end, word = tokens[i]
    if len(word) < 2:
        return None
    if (beg and text[beg - 1] in "@._/-\\" and not _mention(text, beg, end)
            and not _glued_sentence(text, tokens, i)):
        return None
    if end < len(text) and text[end] in "@_":
        return None
    caps_mode = word.isupper()
    last = chain.extend(i, caps_mode=caps_mode)
    previous = ""
    if i and gap_is_space(text, tokens[i - 1][1], beg):
        previous = tokens[i - 1][2]
        if (
            _flags(previous) & _PLACE
            and previous not in ("são", "nossa")  # "os heróis são David Hume", "a nossa Vânia"
            and not _title_before_person(text, tokens, i - 1)
        ):
            return i, last, False  # São Paulo, Hospital Albert Einstein, Rua Oscar Freire
        if previous.lower() == "em" and not text[tokens[i - 1][0]].isupper():
            if flags & _NOT_NAME and not flags & _LISTED and not lexicon.is_place((word,)):
                return None  # "em Crianças Fátima Saldanha": a title word, then a name
            return i, last, False  # "mora em Mariana", "nasceu em Vitória": a town
        if previous.lower() in _PRODUCT_BEFORE and not _name_alone(word):
            return None  # "Aplicar Leite de Rosas", "Usar Rosa Mosqueta": what is applied
    if word.lower() in _PRODUCT_BEFORE:
        return None  # "Usei Leite de Magnésia": the verb is no name's first word
    if not flags & _LISTED:
        # An unknown capitalised word ("Julianderson", "Hüffner") is a name only
        # next to a listed name word.
        if flags & _NOT_NAME:
            return None
        if (
            _WORD_SUFFIX_RE.search(word)
            or _NOUN_ENDING_RE.search(word)
            or _BRAND_PART_RE.search(word)
            or _product_context(text, tokens, i)
            or _treatment_context(text, tokens, i)
        ):
            return None  # "Ceratose Pilar", "Sessões de Emsculpt Neo": a term or a device
        if (
            previous
            and not caps_mode
            and previous[0].isupper()
            and not previous.isupper()
            and _flags(previous) & (_NOT_NAME | _STOP)
            and not _flags(previous) & _LISTED
            and (
                not _sentence_start(text, tokens, i - 1)
                or lexicon.fold(previous) in lexicon.PRODUCT_WORDS
            )
        ):
            # "usei Isdin Fusion Water", and "Isdin Fusion Water" on a line of its own:
            # the words after a brand are its product line
            return None
        if last == i:
            # Alone it is more often a brand or a foreign place than a person
            # (measured on the tuning corpora: +7 points of name recall on news
            # text for 2.7% of clean clinical sentences altered).
            return None
        words = [t[2] for t in tokens[i + 1 : last + 1]]
        if not any(_evidence(w, p) for p, w in zip([word, *words], words, strict=False)):
            return None
        if (
            caps_mode
            and not any(_strong(w) for w in words)
            and not (_unknown_caps_word(word, flags) and any(_name_alone(w) for w in words))
        ):
            # "LUVAS ESTÉREIS": in capitals a rare surname is no evidence; a surname
            # the rules would take alone takes the unknown given name before it with
            # it ("TAYLILENE BECKER LIGOU": not just BECKER)
            return None
        return i, last
    if flags & (_FIRST | _AMBIG) and _age_follows(text, tokens, chain, i, flags):
        return i, last  # "Pietra, 5 anos", "Kauã (12a)": an age says it is a person
    if last == i:
        if flags & _AMBIG and _article_before_name(text, tokens, i):
            return i, i
        if flags & _AMBIG and _frequent_given_names_paired(text, tokens, i):
            return i, i
        if flags & _AMBIG or not _clear_name(flags):
            return None
        if caps_mode and flags & _RARE:
            return None
        if (
            not flags & _COMMON
            and previous.lower() in ("de", "da", "do")
            and not _given_name_after_article(text, tokens, i, flags)
        ):
            return None  # an eponym: "paralisia de Bell", "grau II de Ludwig"
        if not flags & _FIRST and (_sentence_start(text, tokens, i) or lexicon.is_place((word,))):
            # A bare surname opening a sentence, or one that is also a town or a
            # state (Braga, Portugal, Brasil), needs a given name or context.
            return None
        if not flags & _COMMON and lexicon.is_place((word,)):
            return None  # "o Brasil", "a Covilhã"; a frequent name (Marília) stays a name
        if flags & _RARE and _sentence_start(text, tokens, i):
            return None
        if flags & _RARE and (
            _product_context(text, tokens, i)
            or _treatment_context(text, tokens, i)
            or _after_device_word(text, tokens, i)
        ):
            # Borne by fewer than ~200 people, and a product verb or a treatment
            # before it: a brand that is also a census name ("Apliquei Venus",
            # "protocolo com Kylane"); a frequent name there stays a name.
            return None
        if _product_in_place_of_name(text, tokens, i, flags):
            return None  # "Apliquei Johnson", "protocolo com Agnes"
        return i, i
    if flags & _PLACE:
        return None  # "Serra da Mantiqueira", "Santa Cruz": a place word opens it
    if caps_mode and not any(_strong(t[2]) for t in tokens[i : last + 1]):
        return None
    if not _clear_name(flags):
        # "Rosa Mosqueta" is an oil, "Leite de rosas" a cosmetic, "Graça e Luz" two
        # words; "Rosa Silva" is a person: an ambiguous first word needs a clear name.
        following = [t[2] for t in tokens[i + 1 : last + 1] if not _flags(t[2]) & _PARTICLE]
        if (
            not any(w[0].isupper() and _clear_name(_flags(w)) for w in following)
            and not (_surnames_only([word, *following]) and not _sentence_start(text, tokens, i))
            and not _frequent_given_names([word, *following])
        ):
            return None
    return i, last


def find_known_names(
    text: str, tokens: Sequence[Token], names: Sequence[tuple[str, ...]]
) -> Iterator[tuple[int, int]]:
    """(start, end) of names already known in the session, wherever they reappear.

    `names` are accent-folded word tuples; the full name matches anywhere and
    each of its words when capitalised.
    """
    if not names:
        return
    full = {name for name in names if len(name) > 1}
    words = {
        w for name in names for w in name if len(w) >= 3 and not _flags(w) & (_PARTICLE | _STOP)
    }
    longest = max(len(name) for name in names)
    firsts = {name[0] for name in full}
    fold = lexicon.fold
    n = len(tokens)
    i = 0
    while i < n:
        word = tokens[i][2]
        key = fold(word)
        match_end = None
        if key in firsts:  # most words start no known name: fold the next ones only then
            folded = [key, *(fold(t[2]) for t in tokens[i + 1 : i + longest])]
            for size in range(len(folded), 1, -1):
                if tuple(folded[:size]) in full and all(
                    gap_is_space(text, tokens[k - 1][1], tokens[k][0])
                    for k in range(i + 1, i + size)
                ):
                    match_end = i + size - 1
                    break
        if match_end is None and key in words and word[0].isupper():
            match_end = i
        if match_end is None:
            i += 1
            continue
        yield tokens[i][0], tokens[match_end][1]
        i = match_end + 1


def weak_words(words: Sequence[str]) -> frozenset[str]:
    """Folded words of a found name that are names only where they read as one: a surname
    or given name that is also an everyday word or a product (Massa, Serra, Rosa, Capa).
    `distinctive` words recur anywhere; these recur only in a name's position (see
    `find_weak_recurrences`)."""
    return frozenset(
        lexicon.fold(w)
        for w in words
        if len(w) >= 3
        and w[0].isupper()
        and not w.isupper()
        and not distinctive(w)
        and not _flags(w) & (_STOP | _PARTICLE | _PLACE | _HONORIFIC | _CONTEXT)
    )


def find_weak_recurrences(
    text: str, tokens: Sequence[Token], words: frozenset[str]
) -> Iterator[tuple[int, int]]:
    """(start, end) of the recurrences of `weak_words` of a name found in the same message
    that stand where a name stands: capitalised, alone (not the first word of another
    capitalised phrase: "Rosa Silva ... óleo de Rosa Mosqueta", "Leite de Rosas"), not
    after a preposition ("leite de Rosa", "na Serra"). "Vitória Costa ... Costa refere
    melhora" is the same person."""
    if not words:
        return
    fold = lexicon.fold
    n = len(tokens)
    for i, (beg, end, word) in enumerate(tokens):
        if not word[0].isupper() or word.isupper() or fold(word) not in words:
            continue
        if i + 1 < n and gap_is_space(text, end, tokens[i + 1][0]):
            following = tokens[i + 1][2]
            if following[0].isupper() and not _flags(following) & _LISTED:
                continue
            if (
                _flags(following) & _PARTICLE
                and i + 2 < n
                and gap_is_space(text, tokens[i + 1][1], tokens[i + 2][0])
                and tokens[i + 2][2][0].isupper()
            ):
                continue  # "Leite de Rosas", "Serra da Mantiqueira": a phrase of its own
        if i and gap_is_space(text, tokens[i - 1][1], beg):
            previous = tokens[i - 1][2]
            if previous.lower() in _LOCATIVES or _flags(previous) & _PLACE:
                continue
        yield beg, end


# A speaker's label at a line's start in a transcript of an interview or a chat:
# initials ("A.H.:", "R.:") or one word ("Joana:", "angelica:") and a colon.
_LABEL_RE = re.compile(
    r"^[ \t\-•*>]*(?P<label>(?:[A-Z]\.[ \t]?){1,4}|[^\W\d_]{2,20})[ \t]*:", re.MULTILINE
)
# Single letters that label the parts of an interview or a note, not a person:
# Pergunta/Resposta, and the S/O/A/P of a clinical evolution (Subjetivo, Objetivo,
# Avaliação, Plano), Exame.
_PART_LETTERS = frozenset("PRSOAE")


def find_speaker_labels(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of the speakers' labels of a transcript ("A.H.: boa tarde\\nR.: ...").

    A label is a person when it recurs at line starts at least twice in the message
    and is the person's initials or a given name, never a clinical abbreviation
    (H.D.:, Q.P.:, C.D.:), a label of a record (Obs:, Paciente:, Dra:) or a part of
    a note. A single letter that also labels a part (P./R. of an interview, S/O/A/P
    of a note) counts only beside another speaker already read as a person. A
    given name opening a line once counts before a patient's verb ("angelica:
    faltou")."""
    if ":" not in text:
        return
    labels: dict[str, list[tuple[int, int]]] = {}
    for match in _LABEL_RE.finditer(text):
        label = match.group("label").rstrip(" \t")
        labels.setdefault(label.replace(" ", "").replace("\t", ""), []).append(
            (match.start("label"), match.start("label") + len(label))
        )
    people: list[str] = []
    letters: list[str] = []
    for label, spans in labels.items():
        if "." in label:
            initials = label.replace(".", "")
            if initials in _CLINICAL_INITIALS or initials in _ABBREVIATIONS:
                continue
            if len(spans) < 2:
                continue
            if len(initials) == 1 and initials in _PART_LETTERS:
                letters.append(label)
            else:
                people.append(label)
            continue
        flags = _flags(label)
        if not flags & (_FIRST | _AMBIG) or flags & (
            _STOP | _CONTEXT | _HONORIFIC | _CONNECTOR | _PLACE | _PARTICLE | _SUFFIX
        ):
            continue
        if not flags & _FIRST and not lexicon.frequent_given_name(label):
            continue  # "Cor: parda", "Marca: …": a form's field, though a rare given name
        if len(spans) >= 2:
            people.append(label)
            continue
        beg, end = spans[0]
        after = _LABEL_VERB_RE.match(text, end)
        if after and after.group(1).lower() in _LINE_START_PATIENT_WORDS:
            people.append(label)  # "angelica: faltou"
    if people:
        people.extend(letters)
    for label in people:
        yield from labels[label]


_LABEL_VERB_RE = re.compile(r"[ \t]*:[ \t]*(\w+)")
