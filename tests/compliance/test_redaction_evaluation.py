"""The labelled corpus and the redaction targets of the product contract."""

from __future__ import annotations

import json
import unicodedata
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from compliance.redaction import checksums
from compliance.redaction.corpus import build_corpus, load_corpus
from compliance.redaction.evaluation import (
    MAX_CLEAN_ALTERED,
    RECALL_TARGETS,
    evaluate,
    evaluate_records,
)

VALIDATORS = {
    "CPF": checksums.cpf_is_valid,
    "CNPJ": checksums.cnpj_is_valid,
    "CNS": checksums.cns_is_valid,
    "PIS": checksums.pis_is_valid,
    "TITULO": checksums.titulo_is_valid,
    "CNH": checksums.cnh_is_valid,
    "CARTAO": checksums.luhn_is_valid,
}


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def report():
    return evaluate()


def test_it_ships_the_corpus_the_generator_builds(corpus):
    assert corpus == build_corpus()


def test_it_has_enough_labelled_entities_and_clean_sentences(corpus):
    positives = sum(len(r["entities"]) for r in corpus if r["kind"] == "positive")
    negatives = sum(1 for r in corpus if r["kind"] == "negative")
    assert positives >= 300 and negatives >= 200
    assert {e["type"] for r in corpus for e in r["entities"]} == set(
        [
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
        ]
    )


def test_it_labels_spans_and_check_digits_correctly(corpus):
    for record in corpus:
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["value"], record["id"]
            validator = VALIDATORS.get(entity["type"])
            # A "typo" identifier has a wrong check digit on purpose (see corpus.py).
            if validator and entity.get("obfuscation") != "typo":
                plain = unicodedata.normalize("NFKC", entity["value"])  # full-width digits
                raw = "".join(c for c in plain if c.isalnum())
                assert validator(raw.upper()), (record["id"], entity["value"])


def test_it_meets_the_recall_targets(report):
    for entity, target in RECALL_TARGETS.items():
        assert report.scores[entity].recall >= target, (entity, report.scores[entity].recall)
    assert report.failures == []


def test_it_alters_fewer_than_two_percent_of_clean_sentences(report):
    assert report.clean_total >= 200
    assert report.clean_altered_share < MAX_CLEAN_ALTERED


def test_it_reports_missed_targets():
    # A name the engine cannot find: lower case, no list holds it and no context word
    # comes before it (after "paciente" it would be read as a name).
    records = [
        {
            "id": "miss",
            "kind": "positive",
            "text": "o ambiente xyz abc",
            "entities": [{"type": "NOME", "start": 12, "end": 18, "value": "xyz abc"}],
        },
        {"id": "fp", "kind": "negative", "text": "CPF 111.444.777-35", "entities": []},
    ]
    result = evaluate_records(records)
    assert result.scores["NOME"].recall == 0.0
    assert result.clean_altered == 1
    assert any(failure.startswith("NOME") for failure in result.failures)
    assert any("clean sentences" in failure for failure in result.failures)


def test_it_prints_the_report_from_the_management_command():
    out = StringIO()
    call_command("evaluate_redaction", stdout=out)
    text = out.getvalue()
    assert "NOME" in text and "precision" in text and "clean sentences" in text
    assert "all redaction targets met" in text


def test_it_fails_the_management_command_when_targets_are_missed(tmp_path):
    corpus_file = tmp_path / "corpus.jsonl"
    corpus_file.write_text(
        json.dumps(
            {
                "id": "miss",
                "kind": "positive",
                "text": "o ambiente xyz abc",
                "entities": [{"type": "NOME", "start": 12, "end": 18, "value": "xyz abc"}],
            }
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="NOME"):
        call_command("evaluate_redaction", corpus=corpus_file, stdout=StringIO())
