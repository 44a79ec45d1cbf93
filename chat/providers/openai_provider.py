"""OpenAI Chat Completions (and any OpenAI-compatible server): our one entry point.

The request goes through the official async SDK (auth, base URL, error
classes); the SSE body is read raw from the SDK's streaming response so the
`[DONE]` terminator is seen and no model object is built per chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai
import orjson

from neonpro.tracing import outgoing_headers

from . import sdk_request, streaming
from .base import ChatTurn
from .clients import get_client
from .config import ProviderConfig
from .errors import from_exception, from_stream_error_payload, quota_from_headers, stream_error
from .streaming import AttemptState

NAME = "openai"
_DONE = b"[DONE]"


def _is_official_api(base_url: str | None) -> bool:
    return base_url is None or "api.openai.com" in base_url


def _request_params(
    cfg: ProviderConfig, system_prompt: str, history: Sequence[ChatTurn]
) -> dict[str, Any]:
    """Keyword arguments for `chat.completions.create`.

    The message list travels in `extra_body`, which the SDK sends as given: its
    typed `messages` argument would be walked and transformed item by item on
    every request (a fifth of a web process's CPU at saturation), and our
    turns are plain role/content strings that need no transformation.
    """
    messages: list[dict[str, str]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.extend({"role": turn.role, "content": turn.content} for turn in history)
    # OpenAI's current models take max_completion_tokens only; the OpenAI-compatible
    # servers we support (vLLM, Ollama, the simulated provider) all know max_tokens.
    key = "max_completion_tokens" if _is_official_api(cfg.base_url) else "max_tokens"
    return {
        "model": cfg.model,
        "messages": [],
        "stream": True,
        "extra_body": {
            "messages": messages,
            "stream_options": {"include_usage": True},
            key: cfg.max_tokens,
        },
    }


def stream_text(
    cfg: ProviderConfig,
    *,
    system_prompt: str,
    history: Sequence[ChatTurn],
    state: AttemptState,
) -> AsyncIterator[str]:
    """Yield the answer's text deltas; raise ProviderError on any failure.

    Alike in `anthropic_provider` on purpose: each adapter names its own SDK call and
    end-of-answer event; the loop both share is `streaming.stream_text`.
    """
    client = get_client(cfg)
    params = _request_params(cfg, system_prompt, history)
    # The JSON the SDK sends for these arguments: its fields with `extra_body` merged in.
    body = {"model": params["model"], "stream": True, **params["extra_body"]}
    manager = sdk_request.StreamingRequest(
        client, openai, kind="chat.completions", body=orjson.dumps(body),
        # How the SDK makes this request; it builds the client's template once.
        sdk_call=lambda sdk_client: sdk_client.chat.completions.with_streaming_response.create(
            **params),
        # The clinician's trace continues at the provider (W3C traceparent).
        headers=outgoing_headers(),
    )
    return streaming.stream_text(manager, state, read_event=_text, terminator="[DONE]")


def _text(data: bytes, state: AttemptState) -> str | None:
    """The text of one chunk ("" when it has none), None at `[DONE]`; usage and finish
    reason go into `state`."""
    if data == _DONE:
        return None
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise stream_error(NAME, "malformed_stream", "chunk is not JSON") from None
    try:
        if "error" in chunk:
            raise from_stream_error_payload(NAME, chunk)
        usage = chunk.get("usage")
        if usage:
            state.input_tokens = usage.get("prompt_tokens")
            state.output_tokens = usage.get("completion_tokens")
        choices = chunk.get("choices")
        if not choices:
            return ""
        choice = choices[0]
        reason = choice.get("finish_reason")
        if reason:
            state.finish_reason = reason
        delta = choice.get("delta")
        return (delta.get("content") or "") if delta else ""
    except (AttributeError, TypeError, IndexError, KeyError):
        raise stream_error(NAME, "malformed_stream", "chunk has an unexpected shape") from None


async def probe(cfg: ProviderConfig, *, timeout_s: float) -> dict[str, int] | None:
    """The free health probe: list models. Returns quota figures if the response has them."""
    client = get_client(cfg)
    try:
        response = await client.models.with_raw_response.list(timeout=timeout_s)
    except Exception as exc:
        error = from_exception(NAME, exc)
        if error is None:
            raise
        raise error from None
    return quota_from_headers(NAME, response.headers)


async def moderate(cfg: ProviderConfig, text: str, *, model: str, timeout_s: float) -> bool:
    """Whether OpenAI's moderation endpoint flags `text`."""
    client = get_client(cfg)
    try:
        result = await client.moderations.create(input=text, model=model, timeout=timeout_s)
    except Exception as exc:
        error = from_exception(NAME, exc)
        if error is None:
            raise
        raise error from None
    return any(item.flagged for item in result.results)
