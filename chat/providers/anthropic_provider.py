"""Anthropic Messages: our one entry point.

The request goes through the official async SDK; the SSE body is read raw from
the SDK's streaming response so `message_stop` is seen and no model object is
built per event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anthropic
import orjson

from neonpro.tracing import outgoing_headers

from . import sdk_request, streaming
from .base import ChatTurn
from .clients import get_client
from .config import ProviderConfig
from .errors import from_exception, from_stream_error_payload, quota_from_headers, stream_error
from .streaming import AttemptState

NAME = "anthropic"


def _request_params(
    cfg: ProviderConfig, system_prompt: str, history: Sequence[ChatTurn]
) -> dict[str, Any]:
    """Keyword arguments for `messages.create`; the turns travel untransformed in
    `extra_body` (see the OpenAI adapter)."""
    body: dict[str, Any] = {
        "messages": [{"role": turn.role, "content": turn.content} for turn in history],
    }
    if system_prompt:
        body["system"] = system_prompt
    return {
        "model": cfg.model,
        "max_tokens": cfg.max_tokens,
        "messages": [],
        "stream": True,
        "extra_body": body,
    }


def stream_text(
    cfg: ProviderConfig,
    *,
    system_prompt: str,
    history: Sequence[ChatTurn],
    state: AttemptState,
) -> AsyncIterator[str]:
    """Yield the answer's text deltas; raise ProviderError on any failure.

    Alike in `openai_provider` on purpose: each adapter names its own SDK call and
    end-of-answer event; the loop both share is `streaming.stream_text`.
    """
    client = get_client(cfg)
    params = _request_params(cfg, system_prompt, history)
    # The JSON the SDK sends for these arguments: its fields with `extra_body` merged in.
    body = {"model": params["model"], "max_tokens": params["max_tokens"], "stream": True,
            **params["extra_body"]}
    manager = sdk_request.StreamingRequest(
        client, anthropic, kind="messages", body=orjson.dumps(body),
        # How the SDK makes this request; it builds the client's template once.
        sdk_call=lambda sdk_client: sdk_client.messages.with_streaming_response.create(**params),
        # The clinician's trace continues at the provider (W3C traceparent).
        headers=outgoing_headers(),
    )
    return streaming.stream_text(manager, state, read_event=_text, terminator="message_stop")


def _text(data: bytes, state: AttemptState) -> str | None:
    """The text of one event ("" when it carries none); None at `message_stop`."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise stream_error(NAME, "malformed_stream", "event is not JSON") from None
    try:
        kind = event["type"]
        if kind == "content_block_delta":
            delta = event["delta"]
            if delta.get("type") != "text_delta":
                return ""
            return delta.get("text") or ""
        if kind == "message_start":
            usage = event["message"].get("usage")
            if usage:
                state.input_tokens = usage.get("input_tokens")
                state.output_tokens = usage.get("output_tokens")
            return ""
        if kind == "message_delta":
            usage = event.get("usage")
            if usage and usage.get("output_tokens") is not None:
                state.output_tokens = usage["output_tokens"]
            reason = (event.get("delta") or {}).get("stop_reason")
            if reason:
                state.finish_reason = reason
            return ""
        if kind == "message_stop":
            return None
        if kind == "error":
            raise from_stream_error_payload(NAME, event)
        return ""  # ping, content_block_start/stop, and event types added later
    except (AttributeError, TypeError, KeyError):
        raise stream_error(NAME, "malformed_stream", "event has an unexpected shape") from None


async def probe(cfg: ProviderConfig, *, timeout_s: float) -> dict[str, int] | None:
    """The free health probe: list models. Returns quota figures if the response has them."""
    client = get_client(cfg)
    try:
        response = await client.models.with_raw_response.list(limit=1, timeout=timeout_s)
    except Exception as exc:
        error = from_exception(NAME, exc)
        if error is None:
            raise
        raise error from None
    return quota_from_headers(NAME, response.headers)
