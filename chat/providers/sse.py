"""A small incremental Server-Sent Events parser for the provider streams.

The SDKs' own stream iterators build a model object per chunk and hide whether
the stream ended with its terminator (`[DONE]` / `message_stop`), which is how a
truncated stream is told apart from a finished one. The adapters therefore read
the raw body of the SDK's streaming response and parse it here: bytes in,
`(event, data)` pairs out, no per-chunk allocation beyond the pairs themselves.
"""

from __future__ import annotations


class SSEParser:
    """Feed raw body chunks; get back the complete events they finish."""

    __slots__ = ("_tail", "_event", "_data")

    def __init__(self) -> None:
        self._tail = b""
        self._event: bytes | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        """Parse `chunk`; return the events completed by it, in order."""
        if (chunk[:6] == b"data: " and chunk[-2:] == b"\n\n" and not self._tail
                and not self._data and self._event is None
                and chunk.find(b"\n") == len(chunk) - 2 and chunk[-3:-2] != b"\r"):
            # A chunk that is exactly one single-line `data:` event (what a token
            # streamed at a human pace arrives as): the same pair, without the
            # line-by-line walk below.
            return [(None, chunk[6:-2])]
        buffer = self._tail + chunk if self._tail else chunk
        lines = buffer.split(b"\n")
        self._tail = lines.pop()
        events: list[tuple[bytes | None, bytes]] = []
        for line in lines:
            self._line(line, events)
        return events

    def flush(self) -> list[tuple[bytes | None, bytes]]:
        """At end of body: an event the server did not close with a blank line still counts."""
        events: list[tuple[bytes | None, bytes]] = []
        if self._tail:
            tail, self._tail = self._tail, b""
            self._line(tail, events)
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[tuple[bytes | None, bytes]]) -> None:
        if line[-1:] == b"\r":
            line = line[:-1]
        if not line:
            if self._data:
                data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                events.append((self._event, data))
                self._data = []
            self._event = None
        elif line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value[:1] == b" " else value)
        elif line.startswith(b"event:"):
            value = line[6:]
            self._event = value[1:] if value[:1] == b" " else value
        # Comments (":...") and the id/retry fields mean nothing to us.
