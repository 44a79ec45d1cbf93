"""The providers' SSE parser: the same events however the body is cut into chunks."""

from __future__ import annotations

import random

import pytest

from chat.providers.sse import SSEParser

BODIES = {
    "openai": (b'data: {"choices":[{"delta":{"content":"Ol\xc3\xa1"}}]}\n\n'
               b'data: {"choices":[{"delta":{"content":" mundo"}}]}\n\n'
               b"data: [DONE]\n\n"),
    "anthropic": (b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
                  b"event: content_block_delta\ndata: {\"delta\":{\"text\":\"Ol\xc3\xa1\"}}\n\n"
                  b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
    "crlf and comments": (b": keep-alive\r\n\r\ndata: one\r\n\r\n"
                          b"id: 7\r\nretry: 10\r\ndata: two\r\n\r\n"),
    "multi-line data": b"data: first\ndata: second\n\ndata:no space\n\n",
    "carriage return before the blank line": b"data: x\r\n\n",
    "empty data": b"data: \n\ndata:\n\n",
}

EXPECTED = {
    "openai": [(None, b'{"choices":[{"delta":{"content":"Ol\xc3\xa1"}}]}'),
               (None, b'{"choices":[{"delta":{"content":" mundo"}}]}'),
               (None, b"[DONE]")],
    "anthropic": [(b"message_start", b'{"type":"message_start"}'),
                  (b"content_block_delta", b'{"delta":{"text":"Ol\xc3\xa1"}}'),
                  (b"message_stop", b'{"type":"message_stop"}')],
    "crlf and comments": [(None, b"one"), (None, b"two")],
    "multi-line data": [(None, b"first\nsecond"), (None, b"no space")],
    "carriage return before the blank line": [(None, b"x")],
    "empty data": [(None, b""), (None, b"")],
}


def _parse(chunks: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    parser = SSEParser()
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.flush())
    return events


def _events(body: bytes) -> list[bytes]:
    """The body cut after each event's blank line: one event per chunk."""
    parts = body.replace(b"\n\n", b"\n\n\x00").split(b"\x00")
    return [part for part in parts if part]


@pytest.mark.parametrize("name", sorted(BODIES))
def test_it_reads_the_same_events_whole_one_per_chunk_and_byte_by_byte(name):
    body = BODIES[name]
    assert _parse([body]) == EXPECTED[name]
    assert _parse(_events(body)) == EXPECTED[name]
    assert _parse([body[i:i + 1] for i in range(len(body))]) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(BODIES))
def test_it_reads_the_same_events_at_any_cut(name):
    body = BODIES[name]
    rng = random.Random(name)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(body)), rng.randint(1, 6)))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        assert _parse(chunks) == EXPECTED[name], chunks


def test_an_event_the_server_did_not_close_still_counts_at_the_end():
    assert _parse([b"data: last"]) == [(None, b"last")]
    assert _parse([b"event: ping\ndata: x\n"]) == [(b"ping", b"x")]


def test_a_whole_event_after_a_partial_line_is_joined_to_it():
    parser = SSEParser()
    assert parser.feed(b"data: {\"a\":") == []
    assert parser.feed(b"data: 1}\n\n") == [(None, b"{\"a\":data: 1}")]
