"""Public API of the redaction engine: placeholders, session mapping, re-identification,
fail-closed behaviour and the log redactor."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from compliance.redaction import (
    ENTITY_TYPES,
    RedactionError,
    RedactionResult,
    engine,
    redact,
    redact_for_log,
    reidentify,
)
from compliance.redaction.detectors import BrazilianDetector, Candidate, default_detectors

REPO = Path(__file__).resolve().parents[2]

MESSAGE = (
    "Paciente Maria da Silva, CPF 111.444.777-35, tel (11) 98765-4321, "
    "e-mail maria.silva@gmail.com, mora na Rua Augusta, 1500, apto 12, CEP 01310-100. "
    "Aplicado 50 U de Botox em 12/03/2025, lote 23A145, R$ 1.500,00."
)


class ExplodingDetector(BrazilianDetector):
    """A detector that fails, to prove the engine fails closed."""

    name = "br_exploding"
    needs_digit = False

    def candidates(self, text):
        raise ValueError(f"cannot parse {text!r}")  # an error message quoting the text


@pytest.fixture
def exploding_scrubber():
    broken = engine.BrazilianScrubber(detector_list=[*default_detectors(), ExplodingDetector()])
    previous = engine.set_scrubber(broken)
    yield broken
    engine.set_scrubber(previous)


def test_it_lists_the_entity_types_in_order():
    assert ENTITY_TYPES == (
        "CPF",
        "CNPJ",
        "RG",
        "CNS",
        "PIS",
        "TITULO",
        "CNH",
        "CEP",
        "TELEFONE",
        "EMAIL",
        "CARTAO",
        "DATA_NASCIMENTO",
        "ENDERECO",
        "PRONTUARIO",
        "NOME",
    )


def test_it_replaces_pii_by_numbered_placeholders():
    result = redact(MESSAGE)
    assert result.text == (
        "Paciente [NOME_1], CPF [CPF_1], tel [TELEFONE_1], e-mail [EMAIL_1], mora na "
        "[ENDERECO_1], CEP [CEP_1]. Aplicado 50 U de Botox em 12/03/2025, lote 23A145, "
        "R$ 1.500,00."
    )
    assert result.mapping == {
        "[NOME_1]": "Maria da Silva",
        "[CPF_1]": "111.444.777-35",
        "[TELEFONE_1]": "(11) 98765-4321",
        "[EMAIL_1]": "maria.silva@gmail.com",
        "[ENDERECO_1]": "Rua Augusta, 1500, apto 12",
        "[CEP_1]": "01310-100",
    }
    assert result.counts == {
        "NOME": 1,
        "CPF": 1,
        "TELEFONE": 1,
        "EMAIL": 1,
        "ENDERECO": 1,
        "CEP": 1,
    }


def test_it_returns_an_immutable_result():
    result = redact("CPF 111.444.777-35")
    assert isinstance(result, RedactionResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.text = "x"  # type: ignore[misc]


def test_it_gives_the_same_value_the_same_placeholder_in_one_text():
    result = redact("CPF 111.444.777-35, confirmo: 11144477735. Outro CPF 529.982.247-25.")
    assert result.text == "CPF [CPF_1], confirmo: [CPF_1]. Outro CPF [CPF_2]."
    assert result.counts == {"CPF": 3}


@pytest.mark.parametrize(
    "text",
    [
        "CNPJ 12.abc.345/01de-35, ou seja 12ABC34501DE35.",
        "DN 12/03/1985; nascida em 12 de março de 1985.",
        "Tel (11) 98765-4321 ou +55 11 98765 4321.",
        "E-mail Ana.Souza@Gmail.com ou ana.souza@gmail.com.",
        "Mora na Av. Paulista, 1000 (Avenida Paulista 1000).",
    ],
)
def test_it_normalises_spellings_of_the_same_value(text):
    result = redact(text)
    assert len(result.mapping) == 1, result.text
    assert sum(result.counts.values()) == 2


def test_it_keeps_placeholders_stable_across_messages_of_a_session():
    first = redact("Paciente Maria da Silva, tel (11) 98765-4321.")
    second = redact(
        "A MARIA DA SILVA ligou do +55 11 98765-4321; a irmã, Joana Souza, do 11 3456-7890.",
        mapping=first.mapping,
    )
    assert second.text == ("A [NOME_1] ligou do [TELEFONE_1]; a irmã, [NOME_2], do [TELEFONE_2].")
    assert second.mapping == {
        **first.mapping,
        "[NOME_2]": "Joana Souza",
        "[TELEFONE_2]": "11 3456-7890",
    }
    assert second.counts == {"NOME": 2, "TELEFONE": 2}


def test_it_matches_names_ignoring_accents_and_case():
    first = redact("Paciente José Antônio Pereira chegou.")
    second = redact("O paciente jose antonio pereira voltou.", mapping=first.mapping)
    assert second.text == "O paciente [NOME_1] voltou."


def test_it_recognises_a_known_name_again_without_context():
    first = redact("A paciente Thayná Zambon quer toxina.")  # a name absent from the lists
    assert first.text == "A paciente [NOME_1] quer toxina."
    second = redact("Thayná Zambon confirmou. Thayná pediu recibo.", mapping=first.mapping)
    assert second.text == "[NOME_1] confirmou. [NOME_1] pediu recibo."


def test_it_maps_a_first_name_to_the_only_known_person_with_it():
    mapping = {"[NOME_1]": "Maria Silva", "[NOME_2]": "Joana Souza", "[NOME_3]": "Joana Lima"}
    result = redact("Maria ligou; Joana também.", mapping=mapping)
    # One known Maria: same person. Two known Joanas: a new placeholder.
    assert result.text == "[NOME_1] ligou; [NOME_4] também."
    assert result.mapping["[NOME_4]"] == "Joana"


def test_it_does_not_modify_the_mapping_it_is_given():
    mapping = {"[CPF_1]": "111.444.777-35"}
    result = redact("CPF 529.982.247-25", mapping=mapping)
    assert mapping == {"[CPF_1]": "111.444.777-35"}
    assert result.mapping == {"[CPF_1]": "111.444.777-35", "[CPF_2]": "529.982.247-25"}


def test_it_continues_numbering_after_the_highest_placeholder_of_the_session():
    result = redact("CPF 529.982.247-25", mapping={"[CPF_3]": "111.444.777-35"})
    assert result.text == "CPF [CPF_4]"


def test_it_leaves_text_without_pii_unchanged():
    text = "Aplicado 2,5 mg; retorno em 15 dias; valor R$ 1.500,00; lote 23A145."
    result = redact(text, mapping={"[NOME_1]": "Ana Souza"})
    assert result.text == text
    assert result.counts == {}
    assert result.mapping == {"[NOME_1]": "Ana Souza"}


def test_it_reidentifies_known_placeholders_and_keeps_unknown_ones():
    mapping = {"[NOME_1]": "Maria da Silva", "[CPF_1]": "111.444.777-35"}
    answer = "Olá! [NOME_1] (CPF [CPF_1]) pode repetir em 4 meses. [NOME_9] não existe."
    assert reidentify(answer, mapping) == (
        "Olá! Maria da Silva (CPF 111.444.777-35) pode repetir em 4 meses. [NOME_9] não existe."
    )
    assert reidentify(answer, {}) == answer


def test_it_round_trips_redaction_and_reidentification():
    result = redact(MESSAGE)
    assert reidentify(result.text, result.mapping) == MESSAGE


def test_it_fails_closed_when_a_detector_raises(exploding_scrubber):
    with pytest.raises(RedactionError) as caught:
        redact(MESSAGE)
    error = caught.value
    assert "Maria" not in str(error) and "111.444" not in str(error)
    # Nothing chained: a traceback of the cause could quote the text.
    assert error.__cause__ is None and error.__context__ is None


def test_it_fails_closed_on_input_that_is_not_text():
    with pytest.raises(RedactionError):
        redact(b"CPF 111.444.777-35")  # type: ignore[arg-type]


def test_it_redacts_log_lines_with_type_tags():
    line = redact_for_log(MESSAGE)
    assert line.startswith(
        "Paciente [NOME], CPF [CPF], tel [TELEFONE], e-mail [EMAIL], mora na [ENDERECO]"
    )
    for secret in (
        "Maria",
        "111.444.777-35",
        "98765-4321",
        "maria.silva@gmail.com",
        "Augusta",
        "01310-100",
    ):
        assert secret not in line
    assert "R$ 1.500,00" in line


def test_log_lines_keep_the_capitalised_words_of_english_prose_and_lose_names():
    # The name model reads clinical Portuguese; log lines are the developers' English.
    assert (redact_for_log("Timeout talking to Anthropic after 30 s")
            == "Timeout talking to Anthropic after 30 s")
    assert (redact_for_log("Redis connection refused; PgBouncer down")
            == "Redis connection refused; PgBouncer down")
    assert redact_for_log("Paciente Kauane Zambon ligou") == "Paciente [NOME] ligou"
    # The chat's redaction still uses the model on the same words.
    assert "[NOME_1] talking to" in redact("Timeout talking to Anthropic after 30 s").text


def test_it_withholds_the_whole_log_line_when_detection_fails(exploding_scrubber):
    assert redact_for_log(MESSAGE) == "[REDACTED]"


def test_it_accepts_anything_in_the_log_redactor():
    assert redact_for_log(None) == "None"  # type: ignore[arg-type]
    assert redact_for_log("") == ""
    assert redact_for_log({"cpf": "111.444.777-35"}) == "{'cpf': '[CPF]'}"  # type: ignore[arg-type]


def test_it_uses_only_brazilian_detectors():
    names = set(engine.get_scrubber()._detectors)
    assert names and all(name.startswith("br_") for name in names)


def test_it_is_the_only_code_that_imports_scrubadub():
    pattern = re.compile(r"^\s*(?:import|from)\s+scrubadub\b", re.MULTILINE)
    offenders = []
    for path in REPO.rglob("*.py"):
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith((".venv/", "var/", "node_modules/", "compliance/redaction/")):
            continue
        if pattern.search(path.read_text(encoding="utf-8", errors="ignore")):
            offenders.append(relative)
    assert offenders == []


def test_it_detects_with_a_custom_detector_through_scrubadub():
    class LotDetector(BrazilianDetector):
        name = "br_test_lot"
        filth_cls = engine._detectors.ProntuarioFilth

        def candidates(self, text):
            start = text.find("23A145")
            if start >= 0:
                yield Candidate(start, start + 6, 1)

    scrubber = engine.BrazilianScrubber(detector_list=[LotDetector()])
    assert [(f.entity, f.text) for f in scrubber.find("lote 23A145")] == [("PRONTUARIO", "23A145")]


def test_it_leaves_no_placeholder_nlp_modules_behind():
    import sys

    for name in ("nltk", "textblob"):
        module = sys.modules.get(name)
        assert module is None or getattr(module, "__file__", None), name


def test_it_merges_overlapping_spans_of_one_type_instead_of_leaking_the_rest():
    # "Ribeiro" is a name known in the session (higher priority than a new name);
    # alone it would win and "Camila" would go out in clear.
    result = redact("Paciente Camila Ribeiro.", mapping={"[NOME_1]": "Beatriz Ribeiro"})
    assert result.text == "Paciente [NOME_2]."
    assert result.mapping["[NOME_2]"] == "Camila Ribeiro"
