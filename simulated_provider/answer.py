"""Deterministic answers of the simulated provider.

The answer echoes the last user message so a test can see exactly what left the
system (for instance the placeholders ``[NOME_1]`` or ``[CPF_1]`` put in by the
redaction step) come back in the answer, and then adds fixed filler words so a
benchmark can choose how long an answer is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

ANSWER_PREFIX = "Resposta simulada sobre: "
FILLER_TEXT = (
    "Esta é uma resposta gerada pelo provedor simulado do NeonPro, sem modelo de linguagem "
    "real. Consulte sempre um profissional de saúde habilitado antes de qualquer decisão "
    "clínica."
)
_FILLER_WORDS = FILLER_TEXT.split(" ")
DEFAULT_ANSWER_TOKENS = len(_FILLER_WORDS)

# Every character is either whitespace or not, so consecutive matches cover the
# whole text and joining the tokens gives the text back unchanged.
_TOKEN_RE = re.compile(r"\s*\S+\s*|\s+")


def split_tokens(text: str) -> list[str]:
    """Split ``text`` into word-sized tokens that keep their whitespace attached."""
    return _TOKEN_RE.findall(text)


def filler(count: int) -> str:
    """Return ``count`` filler words, repeating the fixed sentences when needed."""
    words = [_FILLER_WORDS[i % len(_FILLER_WORDS)] for i in range(max(0, count))]
    return " ".join(words)


def answer_text(last_user_message: str, *, answer_tokens: int, echo_max_chars: int) -> str:
    """Build the answer: the echo of the last user message followed by filler words."""
    echo = last_user_message.strip()
    if echo_max_chars >= 0 and len(echo) > echo_max_chars:
        echo = echo[:echo_max_chars].rstrip() + "…"
    head = ANSWER_PREFIX + echo
    if not echo.endswith((".", "!", "?", "…")):
        head += "."
    tail = filler(answer_tokens)
    return f"{head} {tail}" if tail else head


def content_text(content: Any) -> str:
    """Text of a message ``content`` in either API's shape (string or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return ""


def last_user_text(messages: Iterable[Any]) -> str:
    """Text of the last message with role ``user``; empty when there is none."""
    last = ""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            last = content_text(message.get("content"))
    return last


def estimate_tokens(*texts: str) -> int:
    """Rough token count (four characters a token), at least one."""
    return max(1, sum(len(text) for text in texts) // 4)


def messages_text(messages: Iterable[Any]) -> list[str]:
    """All message texts of a request, for the input token estimate."""
    return [
        content_text(message.get("content")) for message in messages if isinstance(message, dict)
    ]
