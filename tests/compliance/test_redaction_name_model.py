"""The statistical second signal of the name detector: what it adds, what it must leave
alone in clinical text, how it ships and how it is rebuilt."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from compliance.redaction import detect_entities, name_model, names, redact
from compliance.redaction.detectors import _tokens

REPO = Path(__file__).resolve().parents[2]
NER = REPO.parent / "shared" / "data" / "names" / "ner"
needs_corpora = pytest.mark.skipif(
    not (NER / "paramopama_plus_second_harem.conll.gz").is_file(),
    reason="the training corpora are not beside the repository (shared/data/names/ner)",
)


def found(text: str) -> list[str]:
    return [e.text for e in detect_entities(text) if e.entity == "NOME"]


def rules_alone(text: str) -> list[str]:
    return [text[b:e] for b, e in names.find_names(text, _tokens(text), second_signal=None)]


# --- what the second signal adds -------------------------------------------------------------
@pytest.mark.parametrize(
    "text,expected",
    [
        ("Ontem o presidente Sarkozy falou com a imprensa.", ["Sarkozy"]),
        ("A reunião com Khomeini foi adiada.", ["Khomeini"]),
        ("Segundo Chomsky, a linguagem é inata.", ["Chomsky"]),
        ("O ator Schwarzenegger visitou a clínica.", ["Schwarzenegger"]),
    ],
)
def test_it_redacts_a_name_no_lexicon_holds_which_the_rules_leave(text, expected):
    assert rules_alone(text) == []
    assert found(text) == expected


def test_the_rules_can_run_without_it():
    text = "A reunião com Khomeini foi adiada."
    previous = names.SECOND_SIGNAL
    names.SECOND_SIGNAL = None
    try:
        assert found(text) == []
    finally:
        names.SECOND_SIGNAL = previous
    assert found(text) == ["Khomeini"]


def test_a_name_found_once_is_redacted_where_it_recurs_in_the_message():
    result = redact("Kauane Zambon veio hoje. Zambon ligou depois para remarcar.")
    assert result.text == "[NOME_1] veio hoje. [NOME_2] ligou depois para remarcar."
    assert result.mapping == {"[NOME_1]": "Kauane Zambon", "[NOME_2]": "Zambon"}


def test_each_part_of_a_hyphenated_name_is_redacted_where_it_recurs():
    result = redact("Jean-Pierre Dubois veio. Pierre disse que volta.")
    assert result.text == "[NOME_1] veio. [NOME_2] disse que volta."


def test_a_recurring_word_stays_when_it_is_also_a_word_or_a_place():
    assert found("Rosa Silva perguntou sobre o óleo de Rosa Mosqueta.") == ["Rosa Silva"]
    assert found("Paulo Henrique veio de São Paulo.") == ["Paulo Henrique"]


def test_a_title_heads_a_person_unless_a_street_word_comes_first():
    assert found("O presidente Lula Cardoso chegou.") == ["Lula Cardoso"]
    assert found("Mora na Avenida Presidente Vargas, 100.") == []
    assert found("Os heróis são David Hume e outros.") == ["David Hume"]


# --- what it must leave alone ----------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "Usar Episol Color FPS 70 e reaplicar.",  # the second word of a product
        "Histórico de paralisia de Bell há 5 anos.",  # an eponym
        "Escala de Carruthers para rugas glabelares.",  # a scale's author
        "Peeling de Hilberseimer na face.",  # unknown word after a technique's name
        "Jessner 3 camadas, frost nível 1.",  # a number follows
        "Reavaliar em 30 dias.",  # an infinitive opening a note
        "Mandei a receita por e-mail.",  # a verb in the first person
        "Amamentando, sem queixas.",  # a gerund
        "Lote 123, fabricante Allergan.",  # a registration holder (ANVISA)
        "Parcelamento em até 10x.",  # a noun by its ending
        "Assepsia com clorexidina.",
        "Indicado Heliocare diariamente.",  # a skin-care brand by its parts
        "Agendado Ultherapy para sexta.",
        "Aplicado BOTOX e DYSPORT.",  # capitals: acronyms and brands
        "Enviar pelo WhatsApp ou pelo iPhone.",  # capitals inside a word
        'raise ValueError("could not parse")',  # code, as in a logged traceback
        "Óleo de Rosa Mosqueta na cicatriz.",  # a name that is also a word
        "Mora em Mariana, MG.",
        "Paciente usa Yasmin há 2 anos.",
    ],
)
def test_it_leaves_clinical_words(text):
    assert found(text) == []


def test_words_it_must_leave_are_never_put_to_it():
    asked: list[str] = []

    def record(text, tokens, i):
        asked.append(tokens[i][2])
        return True

    text = "Usar Episol Color. Mandei Botox, Parcelamento e SUS ao Dr. Allergan de Bell."
    list(names.find_names(text, _tokens(text), second_signal=record))
    assert asked == []


# --- how it ships ------------------------------------------------------------------------------
def test_it_ships_small_inside_the_package_and_loads_once():
    assert name_model.MODEL_PATH.parent == Path(names.__file__).parent / "data"
    assert name_model.MODEL_PATH.stat().st_size < 200_000
    model = name_model.model()
    assert model is name_model.model()
    assert set(model.thresholds) == set(name_model.GROUPS)
    assert model.thresholds["start"] > model.thresholds["inside"]
    assert 1_000 < len(model.weights) < 50_000


def test_it_refuses_a_model_file_without_its_thresholds(tmp_path):
    path = tmp_path / "model.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("#threshold_inside\t-1.5\nbias\t-2.0\n")
    with pytest.raises(ValueError, match="no threshold for start"):
        name_model.read_model(path)


def test_a_written_model_reads_back(tmp_path):
    path = tmp_path / "model.tsv.gz"
    name_model.write_model(path, {"bias": -1.0, "w=khomeini": 3.25}, {"inside": 0.5, "start": 1})
    model = name_model.read_model(path)
    assert model.weights == {"bias": -1.0, "w=khomeini": 3.25}
    assert model.thresholds == {"inside": 0.5, "start": 1.0}
    tokens = [(0, 8, "Khomeini")]
    assert model.margin(name_model.features("Khomeini", tokens, 0)) == 2.25
    assert model.is_name("Khomeini", tokens, 0)  # a sentence start: 2.25 >= 1


@needs_corpora
def test_the_training_script_rebuilds_the_shipped_model_byte_for_byte(tmp_path):
    out = tmp_path / "name_model.tsv.gz"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_name_model.py"), str(NER), "--out", out],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "threshold" in result.stdout
    assert out.read_bytes() == name_model.MODEL_PATH.read_bytes()
