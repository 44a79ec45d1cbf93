"""Person names: census-scale lexicons, frequency-aware decisions, false positives, and the
targets on the generated corpus and on real text (MiniHAREM, read from the shared data)."""

from __future__ import annotations

import gzip
import importlib.util
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from compliance.redaction import detect_entities, lexicon, redact, reidentify
from compliance.redaction.corpus import Builder, load_corpus
from compliance.redaction.evaluation import (
    CORPUS_NAME_WORD_RECALL,
    REAL_NAME_WORD_RECALL,
    REAL_OTHER_WORDS_KEPT,
    evaluate,
    evaluate_real_text,
    evaluate_records,
    read_harem,
)

REPO = Path(__file__).resolve().parents[2]
# CI lays the shared data beside the clone; HAREM has no explicit licence, so it is
# never committed to this repository.
NAMES_DATA = REPO.parent / "shared" / "data" / "names"
MINIHAREM = NAMES_DATA / "ner" / "harem_MiniHAREM-total.json.gz"
needs_miniharem = pytest.mark.skipif(
    not MINIHAREM.is_file(), reason="MiniHAREM is not beside the repository (shared/data/names)"
)
needs_sources = pytest.mark.skipif(
    not (NAMES_DATA / "ibge2010_prenomes_por_decada.csv").is_file(),
    reason="the lexicons' source files are not beside the repository (shared/data/names)",
)


def names(text: str) -> list[str]:
    return [e.text for e in detect_entities(text) if e.entity == "NOME"]


# --- lexicons ------------------------------------------------------------------------
def test_it_ships_census_scale_lexicons_with_counts():
    given = lexicon.given_names_by_count()
    surnames = lexicon.surnames_by_count()
    assert len(given) >= 60_000 and len(surnames) >= 20_000
    assert given[0] == ("MARIA", 11_734_129)
    assert surnames[0][0] == "SILVA"
    assert all(count > 0 for _, count in given) and all(count >= 2 for _, count in surnames)


def test_it_loads_the_lexicons_once_per_process():
    assert lexicon.tables() is lexicon.tables()
    census = lexicon.tables()[0]
    assert isinstance(census, dict) and census["JULIANDERSON"] & lexicon.FIRST


def test_it_looks_up_any_case_and_accents():
    for spelling in ("José", "JOSE", "jose", "JOSÉ"):
        assert lexicon.flags_of(spelling) & lexicon.FIRST, spelling
    # The month keeps its accent; the name does not need one.
    assert lexicon.flags_of("Março") & lexicon.STOP
    assert lexicon.flags_of("Marco") & (lexicon.FIRST | lexicon.FIRST_AMBIGUOUS)


def test_it_ships_the_lexicon_files_in_the_package_data():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'compliance = ["redaction/data/*"]' in pyproject
    for name in ("given_names.tsv.gz", "surnames.tsv.gz", "not_names.tsv.gz", "places.tsv.gz"):
        with gzip.open(lexicon.DATA_DIR / name, "rt", encoding="utf-8") as fh:
            assert "\t" in fh.readline(), name


@needs_sources
def test_it_rebuilds_the_shipped_lexicons_byte_for_byte(tmp_path):
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_name_lexicons.py"),
            str(NAMES_DATA),
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    for name in ("given_names.tsv.gz", "surnames.tsv.gz", "not_names.tsv.gz", "places.tsv.gz"):
        assert (tmp_path / name).read_bytes() == (lexicon.DATA_DIR / name).read_bytes(), name


def test_it_refuses_a_source_directory_without_the_census_file(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_name_lexicons.py"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "ibge2010_prenomes_por_decada.csv" in result.stderr


# --- what used to slip through ---------------------------------------------------------------
@pytest.mark.parametrize(
    "text,expected",
    [
        ("Assinado: ALEXANDRE FERREIRA", ["ALEXANDRE FERREIRA"]),
        ("ANTÔNIO PEREIRA NONATO - médico responsável", ["ANTÔNIO PEREIRA NONATO"]),
        ("Julianderson ligou pedindo o orçamento.", ["Julianderson"]),
        ("A Kamilla e a Tatiany vieram juntas.", ["Kamilla", "Tatiany"]),
        ("Hoje o Ielton Souza faltou.", ["Ielton Souza"]),
        ("hoje a maria ligou", ["maria"]),
        ("José Nonato Filho retorna em março.", ["José Nonato Filho"]),
        ("Paciente: MARIA DA SILVA NETO", ["MARIA DA SILVA NETO"]),
        ("Dhayelson Pereira pediu o laudo.", ["Dhayelson Pereira"]),  # unknown + listed
        ("PACIENTE ADRIANO CASAGRARI RODRIGUES", ["ADRIANO CASAGRARI RODRIGUES"]),
        ("Sara ligou ontem.", ["Sara"]),
    ],
)
def test_it_finds_names_in_capitals_rare_names_and_lower_case(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Jean-Pierre Dubois veio.", "[NOME_1] veio."),
        ("Ana-Clara Souza ligou.", "[NOME_1] ligou."),
        ("Fernando de la Rúa renunciou.", "[NOME_1] renunciou."),
        ("Paciente J. Silva, 45 anos.", "Paciente [NOME_1], 45 anos."),
        ("Dr. R. Almeida assinou.", "Dr. [NOME_1] assinou."),
        ("Sra. M. A. S. ligou.", "Sra. [NOME_1]. ligou."),
        ("paciente M.S. retornou hoje.", "paciente [NOME_1]. retornou hoje."),
        ("Maria S. voltou.", "[NOME_1]. voltou."),
    ],
)
def test_it_keeps_hyphens_particles_and_initials_inside_one_name(text, expected):
    assert redact(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "paciente P.A. 12x8 mmHg.",
        "paciente A. relata dor.",
        "Vitamina D. Suplementar.",
        "Pós-Operatório sem queixas.",
    ],
)
def test_it_leaves_abbreviations_and_hyphenated_words(text):
    assert names(text) == []


def test_it_does_not_take_s_dot_or_d_dot_for_an_initial():
    # "S." is São (a saint, a town), "D." is Dona: not part of the name.
    assert names("Vive perto de S. Martinho Pereira.") == ["Martinho Pereira"]
    assert names("Ligou a D. Rosa, mãe da paciente.") == ["Rosa"]


def test_it_redacts_a_lower_case_full_name_after_a_context_word_as_one_entity():
    result = redact("paciente maria aparecida da silva retorna amanhã")
    assert result.text == "paciente [NOME_1] retorna amanhã"
    assert result.mapping == {"[NOME_1]": "maria aparecida da silva"}


@pytest.mark.parametrize(
    "text",
    [
        "a ferida sara em 7 dias",
        "encaminhada ao hospital santa maria",
        "paciente veio de são paulo",
        "mora em mariana e vem de carro",
        "SESSÕES ÀS TERÇAS E QUINTAS, 16H.",
        "USAR LUVAS ESTÉREIS E CAMPO FENESTRADO.",
        "HISTÓRICO DE PARALISIA DE BELL.",
        "O PAI DA MENINA ASSINOU O TERMO.",
    ],
)
def test_it_leaves_clinical_text_typed_in_lower_case_or_capitals(text):
    assert names(text) == []


def test_it_extends_a_lower_case_name_over_an_unknown_surname_after_context():
    assert names("paciente maria zambon voltou com edema") == ["maria zambon"]
    assert names("paciente maria retornou hoje") == ["maria"]


def test_it_keeps_a_surname_joined_by_e_in_one_name():
    assert names("Paciente Ana Clara de Souza e Silva, 34a.") == ["Ana Clara de Souza e Silva"]


# --- false positives ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "Paciente veio de São Paulo para o procedimento.",
        "Mora em Marília e trabalha em Vitória.",
        "Voltou do Brasil e de Portugal na semana passada.",
        "Óleo de Rosa Mosqueta na cicatriz.",
        "Serra da Mantiqueira no feriado.",
        "Leite de rosas e água de Luz.",
        "Paciente usa Yasmin há 2 anos.",
        "Prescrito Losartana e Dipirona.",
        "Histórico de paralisia de Bell.",
        "Fototipo III de Fitzpatrick.",
        "Encaminhada ao Hospital Albert Einstein.",
        "Retorno em Março, na Sexta.",
        "RETORNO EM 15 DIAS. APLICADO BOTOX 50U EM GLABELA.",
        "O Dr. responsável técnico assina o laudo.",
    ],
)
def test_it_leaves_places_medicines_and_everyday_words(text):
    assert names(text) == []


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Apliquei Stylage na olheira.", []),
        ("Usei Saypha no malar esquerdo.", []),
        ("Revanesse aplicado no sulco nasogeniano.", []),
        ("Passar Algeness à noite por 30 dias.", []),
        # The verb says what follows is a product only for words no name list holds.
        ("A paciente Julianderson usa Revanesse.", ["Julianderson"]),
        ("Passei Juliana Tessaro para as 15h.", ["Juliana Tessaro"]),
    ],
)
def test_a_product_verb_keeps_an_unknown_brand_from_the_name_model(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # Brand and device names written for this test (not in the brand benchmark),
        # after a treatment noun and a preposition, and further ones of the same list.
        ("Indicado o protocolo com Belafill e retorno em 30 dias.", []),
        ("Associado ao Juvelook na mesma sessão.", []),
        ("Fizemos 3 sessões de Gouri no abdome.", []),
        ("Protocolo combinado com Miracu, Deka e Genius.", []),
        ("Tratamento com o Vivace na fronte.", []),
        # A census name borne by fewer than ~200 people in the same places is a brand.
        ("Apliquei Lumi na região frontal.", []),
        ("Indicado o protocolo com Lumi e retorno.", []),
        # People after "com" stay names: listed ones, and unknown ones after a verb or a
        # session ("com" after a session introduces a person as often as a device).
        ("Conversei com Joana sobre o retorno.", ["Joana"]),
        ("Sessão com Kauane amanhã às 9h.", ["Kauane"]),
        ("Consulta com Thaynara Piovesan às 15h.", ["Thaynara Piovesan"]),
        ("Protocolo discutido com Khomeini Zambon.", ["Khomeini Zambon"]),
    ],
)
def test_a_treatment_and_its_preposition_keep_a_brand_from_the_name_model(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # the speaker after a verb of saying, names that are also words included
        ("Foram entregues os cobertores, disse Nascimento.", ["Nascimento"]),
        ("Ainda segundo Massa, a equipe rendeu melhor.", ["Massa"]),
        ("A equipe, afirmou Begovic, estava pronta.", ["Begovic"]),
        # not clinical vocabulary, eponyms, medicines after it, nor a capital opening
        # a sentence
        ("Classificado segundo Fitzpatrick, fototipo III.", []),
        ("Paciente disse Melhora importante da dor.", []),
        ("Segundo Protocolo da clínica, retorno em 30 dias.", []),
    ],
)
def test_it_reads_the_speaker_after_a_verb_of_saying(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # a given name that is also a word, before a surname the model reads as one
        ("Em antecipação, a conversa com o guitarrista Tom Gorman.", ["Tom Gorman"]),
        # a frequent given name that is also a town, with a surname after it
        ("O talento continua lá, apesar de Marília Pêra se empenhar.", ["Marília Pêra"]),
        ("Ela mora em Marília desde 2010.", []),
        # an everyday word after "em" is not a town that swallows the name after it
        (
            "Palestra sobre Mediunidade em Crianças Fátima Saldanha (psicóloga)",
            ["Fátima Saldanha"],
        ),
        # a sentence typed without a space after its full stop; addresses stay e-mails
        ("Houve confrontos.Carlos Fontes foi ouvido.", ["Carlos Fontes"]),
        # surnames that are also words, two of them, mid-sentence
        ("Outros continuem a investigar Pinto da Costa.", ["Pinto da Costa"]),
        ("Óleo de Rosa Mosqueta na cicatriz.", []),
    ],
)
def test_names_beside_words_towns_and_missing_spaces(text, expected):
    assert names(text) == expected


def test_a_glued_sentence_start_is_not_taken_from_an_email_address():
    found = [(e.entity, e.text) for e in detect_entities("email: joana.Silva@gmail.com")]
    assert found == [("EMAIL", "joana.Silva@gmail.com")]


@pytest.mark.parametrize(
    "text,expected",
    [
        # unknown given names (of the kind registered after 1980) in capitals
        ("PACIENTE LUCINILSON BISSOLI, CPF CONFERIDO.", ["LUCINILSON BISSOLI"]),
        (
            "MÃE: JOSENEISON DAS SPINDOLA; PAI: LORANE LUCCA.",
            ["JOSENEISON DAS SPINDOLA", "LORANE LUCCA"],
        ),
        ("SR. WEMÍSIA DAS WACHHARI, PRONTUÁRIO 329.", ["WEMÍSIA DAS WACHHARI"]),
        ("NOME COMPLETO: VALDIAYNE UNGERENER", ["VALDIAYNE UNGERENER"]),
        # not only the listed surname: the unknown given name before it too
        ("TAYLILENE BECKER LIGOU PARA REMARCAR.", ["TAYLILENE BECKER"]),
        # one unknown word in capitals after a context word needs a title or a colon
        ("PACIENTE RETORNA DIA 15.", []),
        ("PACIENTE NEGA ALERGIAS.", []),
        ("É comumente chamado de CACHORRO. Outro", []),
        ("PACIENTE OBESA DIABETICA, REFERE DOR.", []),
    ],
)
def test_it_reads_unknown_names_in_capitals_after_a_context_word(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("paciente lucinilson bissoli, 45 anos, refere melhora", ["lucinilson bissoli"]),
        (
            "cadastrado no sistema para a sra. francis zanardaro dos piovotto.",
            ["francis zanardaro dos piovotto"],
        ),
        (
            "paciente sophia do coral de tessotto belmonte, 45 anos",
            ["sophia do coral de tessotto belmonte"],
        ),
        ("responsável legal: maricísia avellar.", ["maricísia avellar"]),
        ("sra. glória menezes retorna em março.", ["glória menezes"]),
        ("a avó, dona conceição, também quer fazer.", ["conceição"]),
        # a listed name that is also a word ends the name where a clause goes on
        ("paciente joana guerra contra a acne", ["joana"]),
        # clinical adjectives, verbs and everyday words after a context word
        ("paciente hipocorada e afebril", []),
        ("paciente eupneica, corada", []),
        ("O que a senhora lia mais?", []),
        ("depois de seu anúncio e do seu pai", []),
    ],
)
def test_it_reads_full_names_in_lower_case_after_a_context_word(text, expected):
    assert names(text) == expected


def test_it_tells_a_place_from_a_person_with_the_same_words():
    assert names("Paulo Henrique veio de São Paulo.") == ["Paulo Henrique"]
    assert names("Marília ligou; ela mora em Marília.") == ["Marília"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("A paciente Rosa ligou.", ["Rosa"]),
        ("Dona Clara fez o retorno.", ["Clara"]),
        ("Rosa Silva perguntou do laser.", ["Rosa Silva"]),
        ("Vitória Albuquerque agendou.", ["Vitória Albuquerque"]),
    ],
)
def test_it_takes_ambiguous_words_as_names_only_with_evidence(text, expected):
    assert names(text) == expected


def test_it_does_not_take_ambiguous_words_alone():
    assert names("Vitória de todos, Graça e Luz.") == []


@pytest.mark.parametrize(
    "text,expected",
    [
        ("A Vitória fez peeling ontem.", ["Vitória"]),
        ("Celulite em região glútea da Clara.", ["Clara"]),
        ("Falei com a Rosa sobre o retorno.", ["Rosa"]),
        # Not evidence: a proper name the article only links, a thing's name before a
        # particle, a word few people bear as a name, capitals, a sentence's first word.
        ("Estação da Luz fica perto.", []),
        ("Hospital do Carmo atendeu.", []),
        ("A Luz do sol piora o melasma.", []),
        ("Pediu para a Aurora ligar e depois foi à Argentina.", []),
        ("FALEI COM A ROSA.", []),
        ("Rosa mosqueta na cicatriz.", []),
    ],
)
def test_an_article_before_a_frequent_name_that_is_also_a_word_is_evidence(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # A short form or a diminutive after its article, typed in lower case.
        ("a bia vem amanha as 15h pra retoque", ["bia"]),
        ("exames da gabi: TSH 2,1", ["gabi"]),
        ("o juninho caiu e cortou a testa", ["juninho"]),  # not "juninho caiu"
        ("fala com a kethlen sobre o pagamento", ["kethlen"]),
        ("segue receita da kauane: ácido azelaico", ["kauane"]),
        ("o resultado da argelia saiu", []),  # a country, though a census name
        # A given name after da/do takes its article; an eponym takes "de".
        ("resultado do Pedrinho: glicemia 88", ["Pedrinho"]),
        ("vovo da Manu ta internada", ["Manu"]),
        ("Sinal de Darier positivo, paralisia de Bell.", []),
        # Countries that are also census given names are places after an article.
        ("Voltou da Argélia e depois foi à Islândia.", []),
        ("a viagem para a tunisia foi adiada", []),
    ],
)
def test_a_short_form_or_a_given_name_after_its_article_is_a_name(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # An age right after a given name heads a patient's line.
        ("jhennifer 25a, queixa de melasma", ["jhennifer"]),
        ("paciente agatha 4 anos, impetigo", ["agatha"]),
        ("Pietra, 5 anos, alergia a látex", ["Pietra"]),
        ("Aurora, 3 anos, febre", ["Aurora"]),
        # Not an everyday word or a product in a phrase, nor an ordinal or a duration.
        ("POR NO MÁXIMO 3 MESES.", []),
        ("validade de no máximo 2 anos", []),
        ("Usou Yasmin 3 anos.", []),
        ("Luz pulsada 2a sessão.", []),
    ],
)
def test_an_age_after_a_given_name_is_evidence(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # Given names listed together: one found makes the next one a name too.
        ("Duda e Malu vem juntas sabado", ["Duda", "Malu"]),
        ("Yasmin e Vitória são irmãs.", ["Yasmin", "Vitória"]),
        ("Yasmin Vitoria retorno em 30 dias", ["Yasmin Vitoria"]),
        ("Tratado de Paris, Malta e Chipre.", []),
        # A name stops before an address that follows it.
        ("Bruna bruna.souza@gmail.com", ["Bruna"]),
        # Sign-offs are no names.
        ("Abs, Kethlen", ["Kethlen"]),
    ],
)
def test_names_listed_together_and_signed_off(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # A patient's verb after a name typed in lower case at a sentence's start.
        ("dayana pediu para adiantar a sessao", ["dayana"]),
        ("a marcella fez bioestimulador ontem", ["marcella"]),
        ("deuzayne mamede ligou para remarcar", ["deuzayne mamede"]),
        ("liziane espinola fogaca veio hoje", ["liziane espinola fogaca"]),
        # Not a word alone that is also an everyday word or a product, nor what a
        # product or an exam does.
        ("rosa pediu para remarcar", []),
        ("sol pediu desconto", []),
        ("o botox chegou hoje", []),
        ("exame veio alterado", []),
        ("a enfermeira ligou", []),
    ],
)
def test_a_patients_verb_after_a_lower_case_name_is_evidence(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # A clinician's verb whose object is a patient, and a name listed after it.
        ("agendei ilario barrios para quinta", ["ilario barrios"]),
        ("orientei agostinho eleuterio a evitar sol", ["agostinho eleuterio"]),
        ("hoje atendi kelvin lange e perpetua tessener", ["kelvin lange", "perpetua tessener"]),
        ("agendei retorno para quinta", []),
        ("orientei repouso e gelo", []),
        ("hoje atendi duas pacientes", []),
    ],
)
def test_a_clinicians_verb_before_a_lower_case_name_is_evidence(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # A label with a colon, and an identifier right after or right before the name.
        ("assinado: raila escobar", ["raila escobar"]),
        ("cadastro: narciso palhares; dn 2006-01-12", ["narciso palhares"]),
        ("hebert tessener, cpf 06414041408", ["hebert tessener"]),
        ("romilda rufino cosme (erci.picanco@bol.com.br) pediu", ["romilda rufino cosme"]),
        ("847.629.617-79 - aldir lelis", ["aldir lelis"]),
        ("340.153.145-06 - daniela zanardetti", ["daniela zanardetti"]),
        ("cadastro: feito", []),
        ("creme hidratante (nivea@gmail.com)", []),
        ("sulfato ferroso 40 mg, cpf nao informado", []),
    ],
)
def test_a_label_or_an_identifier_beside_a_lower_case_name_is_evidence(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # Inside a lower-case name: unknown words between listed ones, and an unknown
        # word after da/do though it ends like a verb.
        ("paciente mariano ungerener wanderley, 45 anos", ["mariano ungerener wanderley"]),
        ("responsável legal: elane flor da vendrener.", ["elane flor da vendrener"]),
        ("para a sra. neli das pellizzener mota.", ["neli das pellizzener mota"]),
        # An ambiguous given name with its surname after a context word.
        ("paciente clara silva retorna", ["clara silva"]),
        # Not a verb after the name, nor a relative's diminutive after da/do.
        ("o juninho da dona ivete quebrou o braco", ["juninho", "ivete"]),
        ("tia neide do luizinho ligou", ["neide", "luizinho"]),
    ],
)
def test_a_lower_case_name_runs_over_its_rare_surnames(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # A rare given name shaped like a clinical adjective after "paciente".
        ("paciente lúcida e orientada", []),
        ("Paciente lúcida, orientada, hipertensa.", []),
        ("paciente lucida silva", ["lucida silva"]),
        ("paciente relta dor ha 3 dias", []),
    ],
)
def test_a_clinical_adjective_after_paciente_is_no_name(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # A patient's verb or allergy after the first word of a line.
        ("Vivi pediu desconto", ["Vivi"]),
        ("Cacá confirmou", ["Cacá"]),
        ("Pietra alergia a latex", ["Pietra"]),
        ("ok\nVivi desmarcou", ["Vivi"]),
        ("Botox pediu reposição?", []),
        ("Hoje confirmou a vinda.", []),
        ("O paciente pediu. Vivi pediu também", []),  # not a line's start: no evidence
        # A given name with a time in a day's list after a name with a time.
        ("Lara vem 10h, Lia 11h", ["Lara", "Lia"]),
        ("Lara vem 10h, Luz 11h", ["Lara", "Luz"]),
        ("Luz pulsada 10h, Lia 11h", []),
        # A diminutive after do/da is a second person; a surname so shaped is not.
        ("tia Nena do Joaozinho", ["Nena", "Joaozinho"]),
        ("Sra. Gileno da Sardinha Assad", ["Gileno da Sardinha Assad"]),
    ],
)
def test_nicknames_at_a_lines_start_in_a_list_and_beside_a_relative(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # A product's line after a brand of the stop list, and listed names that are
        # used, applied or taken by a treatment noun.
        ("Isdin Fusion Water", []),
        ("creme Agnes", []),
        ("Usar Johnson 2x ao dia e retornar.", []),
        ("Indicado o protocolo com Agnes e retorno em 30 dias.", []),
        ("Aplicação de Agnes em 2 pontos.", []),
        # A frequent name, a name with a time, or with a surname borne by many, stays.
        ("Botox Maria Silva", ["Maria Silva"]),
        ("Botox Kauane 14h", ["Kauane"]),
        ("Botox Kauane Souza", ["Kauane Souza"]),
        ("protocolo com Maria e retorno", ["Maria"]),
        ("resultado do Pedrinho: glicemia 88", ["Pedrinho"]),
    ],
)
def test_products_named_like_people(text, expected):
    assert names(text) == expected


def _chat_bench():
    spec = importlib.util.spec_from_file_location(
        "redaction_chat_names", REPO / "benchmarks" / "redaction_chat_names.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def _chat_totals(bench, path) -> tuple[int, int, int, int]:
    """(name words, missed, other words, altered) over a file of chat messages."""
    totals = [0, 0, 0, 0]
    for text, mask in bench.read_messages(path):
        name_words, missed, other_words, altered = bench.score(text, mask)
        totals = [
            a + b
            for a, b in zip(
                totals, (name_words, len(missed), other_words, len(altered)), strict=True
            )
        ]
    return tuple(totals)


def test_it_keeps_the_chat_messages_typed_in_lower_case_of_the_sixth_round():
    # benchmarks/data/chat_names_lower.txt: 155 of 165 name words and 3 of 697 other
    # words altered on the code before the round, 161 and 0 after, a regression floor.
    bench = _chat_bench()
    name_words, missed, other_words, altered = _chat_totals(bench, bench.LOWER_CASE_MESSAGES)
    assert name_words > 150 and other_words > 600
    assert (name_words - missed) / name_words >= 0.97
    assert altered <= 1


def test_it_keeps_the_chat_style_messages_of_the_fifth_round():
    # benchmarks/redaction_chat_names.py: 451 of 455 name words and 3 of 1,480 other
    # words altered when written (434 and 23 before the round), 455 and 0 after the
    # sixth round; a regression floor.
    bench = _chat_bench()
    totals = [0, 0, 0, 0]
    for text, mask in bench.read_messages():
        name_words, missed, other_words, altered = bench.score(text, mask)
        totals = [
            a + b
            for a, b in zip(
                totals, (name_words, len(missed), other_words, len(altered)), strict=True
            )
        ]
    name_words, missed, other_words, altered = totals
    assert name_words > 400 and other_words > 1_000
    assert (name_words - missed) / name_words >= 0.99
    assert altered <= 1


@pytest.mark.parametrize(
    "text",
    [
        # An unknown word beside a listed one is no name when it is a term or a device.
        "Ceratose Pilar e Acne Vulgar.",
        "Sessões de Emsculpt Neo no abdome.",
        "Microagulhamento com Drug Delivery.",
        "Criolipólise no abdome, aplicador Cool Advantage.",
        "Teste de Contato Bateria Padrão.",
        "Nevo de Ota na face.",
        "Dieta de Dukan não recomendada.",
        "Plano Unimed e Bradesco Saúde, Convênio Amil.",
    ],
)
def test_it_leaves_terms_devices_and_insurers_beside_listed_words(text):
    assert names(text) == []


@pytest.mark.parametrize(
    "text,expected",
    [
        ("@Fernanda pode ver a agenda?", ["Fernanda"]),
        ("Oi @Kamilla, a paciente chegou.", ["Kamilla"]),
        ("@maria pode confirmar?", ["maria"]),
        ("segue @clinica_bela no Instagram", []),
    ],
)
def test_it_takes_a_colleague_named_with_an_at_sign(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Aplicar Leite de Rosas na pele.", []),
        ("Usei Leite de Magnésia.", []),  # not "Usei Leite", a name with a verb in it
        ("Rascunho de e-mail para Priscila Nogueira.", ["Priscila Nogueira"]),
        ("Gere um texto para a Priscila.", ["Priscila"]),
        ("Apliquei na Maria Leite hoje.", ["Maria Leite"]),
        ("Usei com a Maria Leite o mesmo protocolo.", ["Maria Leite"]),
    ],
)
def test_what_is_applied_and_what_is_asked_for_is_no_name(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Instagram da paciente: @joana.silva.estetica", ["joana.silva.estetica"]),
        ("Ela marcou a @kamilla_rocha88 no post.", ["kamilla_rocha88"]),
        ("meu insta: @dra.fabiolalima", ["dra.fabiolalima"]),  # no listed piece: the network
        ("Siga @clinica_estetica para novidades.", []),
        ("Mandar para ana@gmail.com.", []),  # an address, not a handle (EMAIL)
        ("Custa 10 @ 20 reais.", []),
    ],
)
def test_it_takes_a_social_handle_that_names_someone(text, expected):
    assert names(text) == expected


def test_a_handle_is_reidentified_exactly_under_every_policy():
    text = "Instagram @joana.silva.estetica"
    for policy in ({"NOME": "tag"}, {"NOME": "surrogate"}):
        result = redact(text, policy=policy)
        assert "joana" not in result.text.lower() and result.text.startswith("Instagram @")
        assert reidentify(result.text, result.mapping) == text


@pytest.mark.parametrize(
    "text,expected",
    [
        # Tens of thousands bear these; an ANVISA product of the same name is no reason
        # to ask for more evidence.
        ("Bom dia Kelly, tudo bem?", ["Kelly"]),
        ("A Ingrid remarcou para sexta.", ["Ingrid"]),
        # A greeting or a thank-you names the person spoken to.
        ("Oi Rosa, a paciente chegou.", ["Rosa"]),
        ("obrigada, maria!", ["maria"]),
        ("Olá, qual a dose de Botox?", []),
        ("Oi, tudo bem? Obrigado pela ajuda.", []),
    ],
)
def test_frequent_names_and_greetings(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("O rei Sancho I morreu.", ["Sancho I"]),
        ("Passou a Carlos I de Anjou.", ["Carlos I de Anjou"]),
        ("Segundo Robert K Merton, nas ciências", ["Segundo Robert K Merton"]),
        ("chefiado por Zulfikar Ali Bhutto, emergiu", ["Zulfikar Ali Bhutto"]),
    ],
)
def test_it_takes_in_an_ordinal_a_bare_initial_or_a_word_between_names(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # Acronyms after a name are short; a numeral after a word that is not a given
        # name, or "X" between two teams, stays out.
        ("Paciente Ana Souza HAS e DM2.", ["Ana Souza"]),
        ("Maria Silva TSH alterado.", ["Maria Silva"]),
        ("Maria Eduarda FERRITINA baixa.", ["Maria Eduarda"]),
        ("Brasil X Noruega no domingo.", []),
        ("Fototipo III de Fitzpatrick.", []),
    ],
)
def test_it_leaves_acronyms_and_numerals_that_are_not_part_of_a_name(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("M.A.T., 34 anos, retorna para revisão.", ["M.A.T"]),
        ("J. S. (45 anos) relata melhora.", ["J. S"]),
        # Dotted capitals without an age are clinical abbreviations as often as not.
        ("H.M.F., 2 irmãos com DM.", []),
        ("P.R.P., 3 anos atrás, sem intercorrências.", []),
        ("A vítima H.B.J. informou.", []),
        ("P.A., 12 anos de HAS.", []),
    ],
)
def test_it_takes_initials_followed_by_an_age_as_a_name(text, expected):
    assert names(text) == expected


def test_a_name_that_is_also_a_word_recurs_where_it_stands_as_a_name():
    text = "Felipe Massa largou em segundo. Segundo Massa, a equipe errou."
    assert names(text) == ["Felipe Massa", "Massa"]
    # Not as a word after a preposition, nor opening another capitalised phrase.
    text = "Dona Rosa Silva usa óleo de Rosa e comprou Rosa Mosqueta."
    assert names(text) == ["Rosa Silva"]
    text = "Dona Rosa Silva usou Rosa do Deserto no jardim."
    assert names(text) == ["Rosa Silva"]


def test_detection_with_a_session_mapping_finds_known_names_again():
    mapping = redact("A paciente Rosa Pinheiro agendou.").mapping
    assert names("Rosa voltou hoje.") == []
    found = detect_entities("Rosa voltou hoje.", mapping=mapping)
    assert [(e.entity, e.text) for e in found] == [("NOME", "Rosa")]


# --- targets ----------------------------------------------------------------------------
def test_the_corpus_holds_names_outside_the_lexicons():
    builder = Builder()
    assert len(builder.held_out_first) >= 100 and len(builder.held_out_surnames) >= 100
    values = [e["value"] for r in load_corpus() for e in r["entities"] if e["type"] == "NOME"]
    unlisted = [
        v
        for v in values
        if any(
            not lexicon.flags_of(w) & (lexicon.NAME_FLAGS | lexicon.PARTICLE | lexicon.STOP)
            for w in v.split()
        )
    ]
    assert len(unlisted) >= 60


def test_it_meets_the_name_word_target_on_the_generated_corpus():
    report = evaluate()
    assert report.name_words >= 800
    assert report.name_word_recall >= CORPUS_NAME_WORD_RECALL
    assert report.scores["NOME"].recall >= 0.99
    assert report.clean_altered_share <= 1 / 15


def _typed_in(change) -> list[dict]:
    """The generated corpus typed all in capitals or all in lower case (records whose
    length the change would alter are left out: their offsets would move)."""
    out = []
    for record in load_corpus():
        text = change(record["text"])
        if len(text) == len(record["text"]):
            entities = [{**e, "value": change(e["value"])} for e in record["entities"]]
            out.append({**record, "text": text, "entities": entities})
    return out


def test_it_finds_names_typed_all_in_capitals_or_in_lower_case():
    # Measured 0.931 / 0.575 of name words before names no list knows were read after a
    # context word in capitals and in lower case, 0.998 / 0.717 after (BENCHMARKS.md,
    # "Capitals, lower case and brands"); 0.727 / 0.989 in lower case before and after
    # the evidence of the sixth round (a patient's verb, a clinician's verb, a label,
    # an identifier beside the name). A name alone with no evidence stays out.
    capitals = evaluate_records(_typed_in(str.upper))
    lower = evaluate_records(_typed_in(str.lower))
    assert capitals.name_word_recall >= 0.99 and capitals.clean_altered == 0
    assert lower.name_word_recall >= 0.98 and lower.clean_altered == 0


@pytest.fixture(scope="module")
def miniharem():
    return evaluate_real_text(read_harem(MINIHAREM))


@needs_miniharem
def test_it_keeps_other_words_of_real_text(miniharem):
    assert miniharem.documents == 128 and miniharem.other_words > 40_000
    assert miniharem.other_kept >= REAL_OTHER_WORDS_KEPT


@needs_miniharem
def test_it_does_not_fall_below_the_measured_name_recall_on_real_text(miniharem):
    # Measured 0.480 with the hand lists, 0.741 with the census lexicons, 0.855 with the
    # statistical second signal, 0.853 after the rules and thresholds of the recall
    # round, 0.856 with the product-verb gate (see BENCHMARKS.md, "Recall round"), 0.858
    # after the capitals, lower-case and treatment-gate round, 0.855 merged with the
    # clinical-chat rules: a regression floor, the target is asserted below.
    assert miniharem.name_words > 1_000
    assert miniharem.name_recall >= 0.85


@needs_miniharem
@pytest.mark.xfail(
    strict=True,
    reason="person-name word recall on MiniHAREM is 0.855 (1,102/1,289), target 0.97; "
    "HAREM's PESSOA also labels offices, clubs, bands and peoples, 0.868 on the spans a "
    "rule reads as names (see BENCHMARKS.md); strict, so reaching the target turns this "
    "into a failure to update",
)
def test_it_meets_the_name_word_target_on_real_text(miniharem):
    assert miniharem.name_recall >= REAL_NAME_WORD_RECALL


def test_it_scores_real_text_word_by_word():
    text = "Ontem o Sr. Julianderson Pereira falou com o Presidente Kusturica em Lisboa."
    start = text.index("Julianderson")
    other = text.index("Kusturica")
    documents = [
        {
            "doc_id": "x",
            "doc_text": text,
            "entities": [
                {"label": "PESSOA", "start_offset": start, "end_offset": start + 21},
                {"label": "PESSOA", "start_offset": other - 11, "end_offset": other + 9},
                {
                    "label": "LOCAL",
                    "start_offset": text.index("Lisboa"),
                    "end_offset": len(text) - 1,
                },
            ],
        }
    ]
    score = evaluate_real_text(documents)
    # "Presidente" is a title, not part of the name; Kusturica alone has no evidence.
    assert (score.name_words, score.name_words_redacted) == (3, 2)
    assert score.other_words_kept == score.other_words == 8
    assert any("recall" in failure for failure in score.failures)


def test_it_can_score_a_documents_paragraphs_as_one_session():
    text = "A paciente Rosa Pinheiro agendou.\nRosa voltou hoje."
    later = text.rindex("Rosa")
    documents = [
        {
            "doc_id": "x",
            "doc_text": text,
            "entities": [
                {"label": "PESSOA", "start_offset": 11, "end_offset": 24},
                {"label": "PESSOA", "start_offset": later, "end_offset": later + 4},
            ],
        }
    ]
    # Each paragraph alone: "Rosa" in the second is also a word and has no context. As
    # one session it is the first message's patient.
    assert evaluate_real_text(documents).name_words_redacted == 2
    assert evaluate_real_text(documents, as_session=True).name_words_redacted == 3


def test_it_rejects_a_file_that_is_not_harem_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"doc_text": "a"}', encoding="utf-8")
    with pytest.raises(ValueError, match="HAREM"):
        read_harem(path)


def test_the_command_reports_a_missing_real_text_file(tmp_path):
    with pytest.raises(CommandError, match="real-text file not found"):
        call_command("evaluate_redaction", real_text=tmp_path / "none.json", stdout=StringIO())


@needs_miniharem
def test_the_command_prints_real_text_figures_and_fails_on_the_missed_target():
    out = StringIO()
    with pytest.raises(CommandError, match="name-word recall"):
        call_command("evaluate_redaction", real_text=MINIHAREM, stdout=out)
    assert "person-name words" in out.getvalue() and "other words" in out.getvalue()


# --- seventh round: initials, speakers, names alone, and adjectives ---------------------
@pytest.mark.parametrize(
    "text,expected",
    [
        ("a paciente F.G.M. nega alergias", ["F.G.M"]),
        ("o menor K.L.S., representado por sua genitora", ["K.L.S"]),
        ("genitora A.M.R. autoriza o procedimento na menor B.R.C.", ["A.M.R", "B.R.C"]),
        ("a requerente M.C.O. alega", ["M.C.O"]),
        # clinical abbreviations after the same words stay
        ("menor P.A. 12x8", []),
        ("H.D.A.: paciente refere lesão há 3 semanas", []),
        ("Dipirona 1 g V.O. S.N.", []),
    ],
)
def test_it_takes_initials_after_a_context_word_or_a_party_of_a_court_paper(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("M.: oi, posso tomar sol?\nD.: evite por 15 dias\nM.: tá bom", ["M.", "M."]),
        ("Angélica: faltou\nAngélica: vem amanhã", ["Angélica", "Angélica"]),
        ("angelica: faltou de novo", ["angelica"]),
        # parts of an interview or a note, clinical abbreviations, a record's labels
        ("P.: o que acha?\nR.: acho bom\nP.: e depois?\nR.: nada", []),
        ("H.D.: acne grau II\nC.D.: isotretinoína\nH.D.: rosácea", []),
        ("S: dor\nO: lesão\nS: melhora", []),
        ("Cor: parda\nCor: branca", []),
        ("Marca: Isdin\nMarca: Vichy", []),
        ("Joana: a pele tá ardendo\nDra: suspenda o ácido\nJoana: ok", ["Joana", "Joana"]),
    ],
)
def test_it_takes_a_recurring_speakers_label_of_a_transcript(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("paciente linda, pele ótima", []),
        ("paciente morena, fototipo IV", []),
        ("paciente linda souza, 50 anos", ["linda souza"]),
        ("laudo da ester saiu, tá normal", ["ester"]),
        ("tais desmarcou a sessão de amanhã", ["tais"]),
        ("tais medidas foram tomadas", []),
        ("a lelê pediu pra remarcar", ["lelê"]),
        ("o bebê chegou", []),
        ("paciente jamerson de serra bandeira veio hoje", ["jamerson de serra bandeira"]),
        ("paciente joana guerra contra a acne", ["joana"]),
        ("Associado ao Agnes, o resultado foi excelente", []),
        ("segundo Glogau, o envelhecimento é grau III", []),
    ],
)
def test_the_seventh_rounds_names_alone_and_what_stays(text, expected):
    assert names(text) == expected
