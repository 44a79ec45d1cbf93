"""Disguised identifiers: the normalised view, its offset map back to what was typed,
spread-out and mistyped numbers, spelled-out e-mails, and the corpus recall on them."""

from __future__ import annotations

import pytest

from compliance.redaction import detect_entities, redact, reidentify
from compliance.redaction.corpus import CLEAN_LOOKALIKES, load_corpus
from compliance.redaction.normalise import normalised_view

CPF = "529.982.247-25"


def found(text: str) -> list[tuple[str, str]]:
    return [(e.entity, e.text) for e in detect_entities(text)]


# --- the normalised view and its offset map -------------------------------------------
def test_it_uses_the_text_itself_as_the_view_when_nothing_needs_normalising():
    view = normalised_view("Paciente José, aplicação de ácido hialurônico.")
    assert view.identity and view.text == view.original


@pytest.mark.parametrize(
    ("typed", "seen"),
    [
        ("１２３", "123"),  # full-width digits
        ("12\u200b3", "123"),  # zero-width space
        ("1\u00ad2\u20603\ufeff", "123"),  # soft hyphen, word joiner, BOM
        ("Jose\u0301", "José"),  # combining accent composed
        ("ﬁm", "fim"),  # ligature split into two letters
    ],
)
def test_it_normalises_what_a_reader_sees_as_the_same_text(typed, seen):
    assert normalised_view(typed).text == seen


def test_it_maps_every_view_span_back_to_the_exact_typed_span():
    typed = "a １\u200b２３ b Jose\u0301 ﬁm"
    view = normalised_view(typed)
    assert view.text == "a 123 b José fim"
    for beg in range(len(view.text)):
        for end in range(beg + 1, len(view.text) + 1):
            start, stop = view.span(beg, end)
            # The original span, normalised again, is the view span (nothing lost or added
            # except whole characters such as the ligature that view spans share).
            assert view.text[beg:end] in normalised_view(typed[start:stop]).text, (beg, end)
    start, stop = view.span(2, 5)
    assert typed[start:stop] == "１\u200b２３"


def test_it_puts_the_exact_typed_text_back_on_re_identification():
    typed = f"CPF {CPF[:5]}\u200b{CPF[5:]} e tel （１１） ９８７６５-４３２１."
    result = redact(typed)
    assert result.text == "CPF [CPF_1] e tel [TELEFONE_1]."
    assert result.mapping["[CPF_1]"] == f"{CPF[:5]}\u200b{CPF[5:]}"
    assert reidentify(result.text, result.mapping) == typed


def test_it_gives_a_disguised_and_a_plain_value_one_placeholder():
    result = redact(f"CPF {CPF} ou ５２９.９８２.２４７-２５ ou 5 2 9 9 8 2 2 4 7 2 5?")
    assert result.text == "CPF [CPF_1] ou [CPF_1] ou [CPF_1]?"


# --- spread-out, oddly separated and mistyped numbers ------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "5 2 9 . 9 8 2 . 2 4 7 - 2 5",
        "5 2 9 9 8 2 2 4 7 2 5",
        "529_982_247_25",
        "529/982/247/25",
        "529\\982\\247\\25",
        "529|982|247|25",
        "529~982~247~25",
        "529•982•247•25",
        "529 | 982 | 247 | 25",
        "５２９.９８２.２４７-２５",
        "529.982\u200b.247-25",
    ],
)
def test_it_finds_a_cpf_however_it_is_disguised(value):
    assert found(f"Documento {value} da paciente.") == [("CPF", value)]


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("zap 1 1 9 8 7 6 5 4 3 2 1 depois das 18h", "TELEFONE", "1 1 9 8 7 6 5 4 3 2 1"),
        ("ligar 11~98765~4321 amanhã", "TELEFONE", "11~98765~4321"),
        ("contato (11) 9 8765 • 4321", "TELEFONE", "(11) 9 8765 • 4321"),
        ("cartão 4111_1111_1111_1111 aprovado", "CARTAO", "4111_1111_1111_1111"),
        ("CNS 7 0 0 0 0 0 0 0 0 0 0 0 0 0 5 conferido", "CNS", "7 0 0 0 0 0 0 0 0 0 0 0 0 0 5"),
        ("empresa 11|222|333|0001|81 paga", "CNPJ", "11|222|333|0001|81"),
        ("CEP 0 1 3 1 0 - 1 0 0 para envio", "CEP", "0 1 3 1 0 - 1 0 0"),
    ],
)
def test_it_finds_other_disguised_identifiers(text, entity, value):
    assert (entity, value) in found(text)


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("CPF 529.982.247-26", "CPF", "529.982.247-26"),
        ("CPF: 5 2 9 9 8 2 2 4 7 2 6", "CPF", "5 2 9 9 8 2 2 4 7 2 6"),
        ("CPF 61954931635", "CPF", "61954931635"),  # mistyped, and shaped like a mobile
        ("CNS 700 0000 0000 0006", "CNS", "700 0000 0000 0006"),
        ("cartão de crédito 4111 1111 1111 1112", "CARTAO", "4111 1111 1111 1112"),
    ],
)
def test_it_redacts_a_mistyped_number_right_after_its_keyword(text, entity, value):
    assert found(text) == [(entity, value)]


def test_it_does_not_take_a_mistyped_number_far_from_its_keyword():
    text = "CPF anotado na ficha de papel, e o número interno 529.982.247-26 do kit."
    assert found(text) == []


@pytest.mark.parametrize("text", CLEAN_LOOKALIKES)
def test_it_leaves_clean_sentences_with_spaced_numbers_untouched(text):
    assert redact(text).text == text


# --- spelled-out e-mails ----------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "maria arroba gmail ponto com",
        "joao at hotmail dot com",
        "ana.souza [at] clinica [dot] com [dot] br",
        "bia (arroba) uol (ponto) com (ponto) br",
        "carla @ gmail . com",
        "MARIA ARROBA GMAIL PONTO COM",
        # The dot of the local part spelled too: the whole address, not its last piece.
        "joana ponto silva arroba gmail ponto com",
        "ana (ponto) paula (arroba) uol (ponto) com (ponto) br",
        "bia . souza @ uol . com",
    ],
)
def test_it_finds_a_spelled_out_email(value):
    assert found(f"Mandar para {value} hoje.") == [("EMAIL", value)]


@pytest.mark.parametrize(
    "text",
    [
        "Chegou at the clinic às 10h.",
        "Aplicar no ponto de maior tensão, arroba de gordura é jargão.",
        "Paciente at home care, ponto com dor.",
    ],
)
def test_it_does_not_make_an_email_of_ordinary_words(text):
    assert [e for e in detect_entities(text) if e.entity == "EMAIL"] == []


def test_it_gives_a_spelled_and_a_typed_email_one_placeholder():
    result = redact("maria@gmail.com ou maria arroba gmail ponto com")
    assert result.text == "[EMAIL_1] ou [EMAIL_1]"
    result = redact("joana.silva@gmail.com ou joana ponto silva arroba gmail ponto com")
    assert result.text == "[EMAIL_1] ou [EMAIL_1]"


# --- the corpus ------------------------------------------------------------------
IDENTIFIER_TYPES = ("CPF", "CNPJ", "CNS", "PIS", "TITULO", "CNH", "CEP", "TELEFONE", "EMAIL",
                    "CARTAO", "RG")


def _covered(record: dict) -> list[bool]:
    spans = detect_entities(record["text"])
    return [
        any(s.entity == e["type"] and s.start <= e["start"] and e["end"] <= s.end for s in spans)
        for e in record["entities"]
    ]


def test_it_finds_disguised_identifiers_of_the_corpus_with_recall_of_at_least_99_percent():
    records = [r for r in load_corpus() if r["id"].startswith("pos-o")]
    hits = [hit for r in records for hit in _covered(r)]
    assert len(hits) >= 100
    assert {e["obfuscation"] for r in records for e in r["entities"]} == {
        "spaced", "odd", "fullwidth", "zerowidth", "typo", "spelled"}
    assert sum(hits) / len(hits) >= 0.99


def test_it_finds_all_identifiers_of_the_corpus_with_recall_of_at_least_99_percent():
    hits = [
        hit
        for r in load_corpus()
        if r["kind"] == "positive"
        for e, hit in zip(r["entities"], _covered(r), strict=True)
        if e["type"] in IDENTIFIER_TYPES
    ]
    assert len(hits) >= 500
    assert sum(hits) / len(hits) >= 0.99


@pytest.mark.parametrize(
    "text",
    [
        "Tel. atualizado 12/03/2025.",
        "CEP conferido 05.11.2026.",
        "Telefone novo desde 01-02-2026 10:30.",
    ],
)
def test_it_never_takes_a_date_after_a_keyword_for_an_identifier(text):
    assert redact(text).text == text


def test_it_still_finds_a_number_typed_right_after_a_date():
    assert found("tel 12/03/2025 11 98765 4321") == [("TELEFONE", "11 98765 4321")]


def test_it_finds_an_address_typed_with_an_at_sign_and_a_spelled_dot():
    assert found("Enviar para maria@gmail ponto com hoje.") == [
        ("EMAIL", "maria@gmail ponto com")]


def test_it_does_not_run_a_phone_on_into_the_next_sentence():
    assert found("Tel. (31) 3274-5566. 209 pacientes atendidos.") == [
        ("TELEFONE", "(31) 3274-5566")]
