"""PII_POLICY per entity type: parsing, surrogate values and their reversal (whole and
streamed, split at every position), and the block verdict."""

from __future__ import annotations

import itertools
import re

import pytest

from compliance.redaction import (
    ENTITY_TYPES,
    StreamReidentifier,
    checksums,
    redact,
    reidentify,
)
from compliance.redaction.detectors import _VALID_DDD
from compliance.redaction.policy import PolicyError, parse_policy
from compliance.redaction.surrogates import FEMALE_NAMES, MALE_NAMES, name_gender

CPF = "529.982.247-25"
ALL_SURROGATE = parse_policy("*:surrogate", ENTITY_TYPES)


# --- parsing ----------------------------------------------------------------------
def test_it_tags_every_type_by_default():
    assert dict(parse_policy("", ENTITY_TYPES)) == dict.fromkeys(ENTITY_TYPES, "tag")


def test_it_reads_a_policy_per_type_and_a_default():
    policy = parse_policy(" nome:Surrogate , CPF:block,*:surrogate ", ENTITY_TYPES)
    assert policy["NOME"] == "surrogate" and policy["CPF"] == "block"
    assert policy["EMAIL"] == "surrogate"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("PASSAPORTE:tag", "unknown entity type 'PASSAPORTE'"),
        ("CPF:hide", "unknown policy 'hide'"),
        ("CPF", "is not TYPE:policy"),
        ("CPF:tag,CPF:block", "two policies"),
    ],
)
def test_it_refuses_a_malformed_policy_loudly(value, message):
    with pytest.raises(PolicyError, match=re.escape(message)):
        parse_policy(value, ENTITY_TYPES)


# --- surrogates ---------------------------------------------------------------------
MESSAGE = (f"Paciente Maria Aparecida Souza, CPF {CPF}, tel (11) 98765-4321, e-mail "
           "maria.souza@gmail.com, CEP 01310-100, cartão 4111 1111 1111 1111.")


def _surrogate(result, placeholder: str) -> str:
    return result.mapping["~" + placeholder]


def test_it_replaces_values_by_realistic_fakes_of_the_same_type():
    result = redact(MESSAGE, policy=ALL_SURROGATE)
    assert "[" not in result.text
    for secret in ("Maria", "Aparecida", "Souza", CPF, "98765-4321", "maria.souza",
                   "01310-100", "4111"):
        # Whole words: a surrogate "Mariana" is a different name from the real "Maria".
        assert not re.search(rf"(?<!\w){re.escape(secret)}(?!\w)", result.text), secret
    cpf = _surrogate(result, "[CPF_1]")
    assert re.fullmatch(r"\d{3}\.\d{3}\.\d{3}-\d{2}", cpf)
    assert checksums.cpf_is_valid(re.sub(r"\D", "", cpf))
    phone = re.sub(r"\D", "", _surrogate(result, "[TELEFONE_1]"))
    assert len(phone) == 11 and int(phone[:2]) in _VALID_DDD and phone[2] == "9"
    assert re.fullmatch(r"[a-z.]+\d*@[a-z.]+", _surrogate(result, "[EMAIL_1]"))
    assert re.fullmatch(r"\d{5}-\d{3}", _surrogate(result, "[CEP_1]"))
    assert checksums.luhn_is_valid(re.sub(r"\D", "", _surrogate(result, "[CARTAO_1]")))
    name = _surrogate(result, "[NOME_1]")
    assert name.split()[0] in FEMALE_NAMES and len(name.split()) == 3
    assert reidentify(result.text, result.mapping) == MESSAGE


@pytest.mark.parametrize(("name", "gender"), [("João Pedro", "M"), ("Ana", "F"),
                                              ("Beatriz Lima", "F"), ("Kaique", None)])
def test_it_guesses_the_gender_of_a_given_name_when_it_can(name, gender):
    assert name_gender(name) == gender


def test_it_keeps_a_male_name_male_and_capitals_as_typed():
    result = redact("Paciente JOÃO PEDRO ALMEIDA retornou.", policy=ALL_SURROGATE)
    fake = _surrogate(result, "[NOME_1]")
    assert fake.isupper() and fake.split()[0].title() in {n.upper().title() for n in MALE_NAMES}


def test_it_keeps_surrogates_stable_within_a_session():
    first = redact(f"CPF {CPF} da paciente Maria Souza.", policy=ALL_SURROGATE)
    second = redact(f"Confirme o CPF {CPF.replace('.', '')} e Maria Souza.",
                    mapping=first.mapping, policy=ALL_SURROGATE)
    assert _surrogate(second, "[CPF_1]") == _surrogate(first, "[CPF_1]")
    assert _surrogate(first, "[NOME_1]") in second.text
    assert "[CPF_2]" not in second.mapping


def test_it_never_gives_a_surrogate_equal_to_a_real_value_of_the_session():
    # Every surrogate name the generator can draw for a woman is also a real patient's
    # first name in the session, except one: that one must be chosen.
    real = [f"Paciente {n} Ribeiro." for n in FEMALE_NAMES[1:]]
    mapping: dict[str, str] = {}
    for text in real:
        mapping = redact(text, mapping=mapping).mapping
    result = redact("Paciente Ana Lima voltou.", mapping=mapping, policy=ALL_SURROGATE)
    placeholder = next(k for k, v in result.mapping.items() if v == "Ana Lima")
    fake = result.mapping["~" + placeholder]
    assert fake.split()[0] == FEMALE_NAMES[0]
    assert "Ribeiro" not in fake


def test_it_tags_a_message_it_blocks_and_names_the_blocked_types():
    policy = parse_policy("CPF:block,NOME:surrogate", ENTITY_TYPES)
    result = redact(f"Paciente Maria Souza, CPF {CPF}.", policy=policy)
    assert result.blocked == ("CPF",)
    assert result.text == "Paciente [NOME_1], CPF [CPF_1]."  # no surrogate for a refusal
    assert redact("Sem dados pessoais.", policy=policy).blocked == ()


# --- reversal in answers ---------------------------------------------------------------
SESSION = {
    "[NOME_1]": "Maria da Silva",
    "~[NOME_1]": "Joana Ribeiro",
    "[NOME_2]": "Pedro",
    "~[NOME_2]": "Caio",
    "[CPF_1]": CPF,
    "~[CPF_1]": "111.444.777-35",
    "[TELEFONE_1]": "(11) 98765-4321",
}
ANSWER = ("Joana Ribeiro, CPF 111.444.777-35 (11144477735), e Caio: a Joana deve voltar; "
          "Sra. Ribeiro, ligue [TELEFONE_1]. Joanas e Caios não mudam.")
EXPECTED = (f"Maria da Silva, CPF {CPF} ({CPF}), e Pedro: a Maria deve voltar; "
            "Sra. Silva, ligue (11) 98765-4321. Joanas e Caios não mudam.")


def run(chunks: list[str]) -> str:
    stream = StreamReidentifier(SESSION)
    return "".join(stream.feed(chunk) for chunk in chunks) + stream.flush()


def test_it_reverses_surrogates_in_a_whole_answer():
    assert reidentify(ANSWER, SESSION) == EXPECTED


def test_it_reverses_surrogates_split_into_two_chunks_at_every_position():
    for cut in range(len(ANSWER) + 1):
        assert run([ANSWER[:cut], ANSWER[cut:]]) == EXPECTED, cut


def test_it_reverses_a_surrogate_split_into_three_chunks_anywhere():
    text = "Olá Joana Ribeiro!"
    for a, b in itertools.combinations(range(len(text) + 1), 2):
        assert run([text[:a], text[a:b], text[b:]]) == "Olá Maria da Silva!", (a, b)


def test_it_reverses_a_stream_of_single_characters():
    assert run(list(ANSWER)) == EXPECTED


def test_it_never_shows_part_of_a_surrogate():
    stream = StreamReidentifier(SESSION)
    shown = [stream.feed(c) for c in "Joana Ribeiro e 111.444.777-35 ok"] + [stream.flush()]
    assert not any(piece and ("Joa" in piece or "111" in piece) for piece in shown)
    assert "".join(shown) == f"Maria da Silva e {CPF} ok"


def test_it_waits_for_the_next_character_before_replacing_a_word_at_a_chunk_end():
    stream = StreamReidentifier(SESSION)
    assert stream.feed("com o Caio") == "com o "
    assert stream.feed("s de sempre") == "Caios de sempre"
    assert stream.feed(" e Caio") == " e "
    assert stream.flush() == "Pedro"
