"""StreamReidentifier: placeholders split across streamed deltas come out whole."""

from __future__ import annotations

import itertools

import pytest

from compliance.redaction import StreamReidentifier, reidentify

MAPPING = {
    "[NOME_1]": "Maria da Silva",
    "[NOME_12]": "Joana Souza",
    "[CPF_1]": "111.444.777-35",
    "[DATA_NASCIMENTO_1]": "12/03/1985",
}
ANSWER = "Olá, [NOME_1]! Seu CPF [CPF_1] e a DN [DATA_NASCIMENTO_1] conferem; [NOME_12] também."


def run(chunks: list[str], mapping: dict[str, str] = MAPPING) -> tuple[str, list[str]]:
    stream = StreamReidentifier(mapping)
    shown = [stream.feed(chunk) for chunk in chunks]
    shown.append(stream.flush())
    return "".join(shown), shown


@pytest.mark.parametrize("placeholder", sorted(MAPPING))
def test_it_reassembles_a_placeholder_split_at_every_position(placeholder):
    text = f"antes {placeholder} depois"
    start = text.index(placeholder)
    for cut in range(start, start + len(placeholder) + 1):
        out, _ = run([text[:cut], text[cut:]])
        assert out == f"antes {MAPPING[placeholder]} depois", cut


def test_it_reassembles_a_placeholder_split_into_three_pieces_anywhere():
    text = "x [DATA_NASCIMENTO_1] y"
    for a, b in itertools.combinations(range(len(text) + 1), 2):
        out, _ = run([text[:a], text[a:b], text[b:]])
        assert out == "x 12/03/1985 y", (a, b)


def test_it_handles_a_stream_of_single_characters():
    out, _ = run(list(ANSWER))
    assert out == reidentify(ANSWER, MAPPING)


def test_it_never_shows_a_partial_placeholder():
    _, shown = run(list(ANSWER))
    # Every "[" of the answer opens a known placeholder: none may reach the screen.
    assert not any("[" in piece or "]" in piece for piece in shown)
    assert "Maria da Silva" in shown and "111.444.777-35" in shown


def test_it_holds_back_only_what_could_still_be_a_placeholder():
    stream = StreamReidentifier(MAPPING)
    assert stream.feed("Dose [NO") == "Dose "
    assert stream.feed("TA: 2 U]") == "[NOTA: 2 U]"  # released as soon as it cannot match
    assert stream.feed("[1] ") == "[1] "  # never a prefix of a known placeholder
    assert stream.feed("a[") == "a"
    assert stream.flush() == "["


def test_it_waits_between_a_placeholder_and_a_longer_one():
    stream = StreamReidentifier(MAPPING)
    assert stream.feed("[NOME_1") == ""  # [NOME_1] or [NOME_12]?
    assert stream.feed("2]") == "Joana Souza"
    assert stream.feed("[NOME_1") == ""
    assert stream.feed("] ok") == "Maria da Silva ok"


def test_it_shows_an_unknown_placeholder_as_is_without_delay():
    stream = StreamReidentifier(MAPPING)
    assert stream.feed("[NOME_9") == "[NOME_9"  # no known placeholder starts like this
    assert stream.feed("] sim") == "] sim"
    assert stream.feed("[CPF_2]") == "[CPF_2]"


def test_it_passes_everything_through_without_a_mapping():
    out, shown = run(["[NO", "ME_1] ok"], mapping={})
    assert shown[:2] == ["[NO", "ME_1] ok"] and out == "[NOME_1] ok"


def test_it_flushes_a_dangling_prefix_at_the_end():
    out, shown = run(["fim [CPF"])
    assert shown == ["fim ", "[CPF"] and out == "fim [CPF"
