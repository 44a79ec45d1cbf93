"""The simulated provider's HTTP server (aiohttp, no Django).

It speaks enough of the OpenAI Chat Completions API and of the Anthropic
Messages API for the official SDKs to work against it unchanged, streaming and
not, and adds a control API under ``/_sim/`` for recording and fault injection.
Work per request is kept small (answers are built from byte templates and, with
no token delay, written in one go) because benchmarks run thousands of
concurrent streams against one process.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .answer import (
    DEFAULT_ANSWER_TOKENS,
    answer_text,
    content_text,
    estimate_tokens,
    last_user_text,
    messages_text,
    split_tokens,
)
from .faults import PROVIDERS, Fault, FaultBook

try:
    import orjson

    def dumps(value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON."""
        return orjson.dumps(value)

    loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a project dependency
    import json

    def dumps(value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON."""
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    loads = json.loads


AUTH_HEADERS = ("authorization", "x-api-key", "api-key")
REDACTED = "[redacted]"
RATE_WINDOW_S = 60.0
OPENAI_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "neonpro-simulated")
ANTHROPIC_MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6", "neonpro-simulated")
EPOCH_CREATED = 1_700_000_000


@dataclass
class SimulatorConfig:
    """Settings of a running simulator; all can be changed at runtime (``POST /_sim/config``)."""

    token_delay_ms: float = 15.0
    answer_tokens: int = DEFAULT_ANSWER_TOKENS
    echo_max_chars: int = 2000
    bad_key: str = "invalid-key"
    flagged_term: str = "FLAGGED_TEST_TERM"
    # Bodies are kept in memory; the oldest are forgotten past this many.
    record_limit: int = 20_000


@dataclass
class RateLimits:
    """What a provider reports in its rate-limit headers (per minute).

    ``remaining_*`` left ``None`` are computed from the traffic of the current
    minute; a number pins the header, e.g. to show a nearly spent quota.
    """

    limit_tokens: int = 10_000_000
    limit_requests: int = 100_000
    remaining_tokens: int | None = None
    remaining_requests: int | None = None


@dataclass
class _Window:
    start: float = field(default_factory=time.monotonic)
    tokens: int = 0
    requests: int = 0

    def charge(self, tokens: int, requests: int) -> None:
        now = time.monotonic()
        if now - self.start >= RATE_WINDOW_S:
            self.start, self.tokens, self.requests = now, 0, 0
        self.tokens += tokens
        self.requests += requests

    def reset_in(self) -> float:
        return max(0.0, RATE_WINDOW_S - (time.monotonic() - self.start))


@dataclass
class _Call:
    """A request that passed authentication and fault injection."""

    provider: str
    body: Any
    record: dict[str, Any]
    request_id: str
    fault: Fault | None


_CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "token_delay_ms": (int, float),
    "answer_tokens": (int,),
    "echo_max_chars": (int,),
    "bad_key": (str,),
    "flagged_term": (str,),
    "record_limit": (int,),
}
_RATE_KEYS = {f.name for f in fields(RateLimits)}


class SimulatorState:
    """Everything a running simulator remembers: settings, faults, recorded requests."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._initial_config = replace(self.config)
        # Counted apart from the recordings, which forget the oldest past the limit.
        self.received = dict.fromkeys(PROVIDERS, 0)
        self.faults = FaultBook()
        self.records: deque[dict[str, Any]] = deque(maxlen=self.config.record_limit)
        self.rate_limits = {provider: RateLimits() for provider in PROVIDERS}
        self._windows = {provider: _Window() for provider in PROVIDERS}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def charge(self, provider: str, *, tokens: int, requests: int) -> None:
        self._windows[provider].charge(tokens, requests)

    def rate_snapshot(self, provider: str) -> dict[str, float]:
        limits = self.rate_limits[provider]
        window = self._windows[provider]
        remaining_tokens = limits.remaining_tokens
        if remaining_tokens is None:
            remaining_tokens = max(0, limits.limit_tokens - window.tokens)
        remaining_requests = limits.remaining_requests
        if remaining_requests is None:
            remaining_requests = max(0, limits.limit_requests - window.requests)
        return {
            "limit_tokens": limits.limit_tokens,
            "limit_requests": limits.limit_requests,
            "remaining_tokens": remaining_tokens,
            "remaining_requests": remaining_requests,
            "reset_in": window.reset_in(),
        }

    def update_config(self, data: Any) -> dict[str, Any]:
        """Apply settings from the control API; ``ValueError`` names what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("config is a JSON object")
        provider = data.get("provider")
        if provider is not None and provider not in PROVIDERS:
            raise ValueError("provider must be 'openai' or 'anthropic'")
        unknown = sorted(set(data) - set(_CONFIG_TYPES) - _RATE_KEYS - {"provider"})
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        for key, value in data.items():
            if key in _CONFIG_TYPES:
                self._set_setting(key, value)
            elif key in _RATE_KEYS:
                self._set_rate_limit(provider, key, value)
        return self.config_dict()

    def _set_setting(self, key: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, _CONFIG_TYPES[key]):
            raise ValueError(f"{key} has the wrong type")
        if isinstance(value, int | float) and value < 0 and key != "echo_max_chars":
            raise ValueError(f"{key} must not be negative")
        setattr(self.config, key, value)
        if key == "record_limit":
            self.records = deque(self.records, maxlen=value)

    def _set_rate_limit(self, provider: str | None, key: str, value: Any) -> None:
        nullable = key.startswith("remaining_")
        valid_int = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if not (valid_int or (nullable and value is None)):
            raise ValueError(f"{key} must be a non-negative integer")
        for name in [provider] if provider else PROVIDERS:
            setattr(self.rate_limits[name], key, value)

    def config_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.config),
            "rate_limits": {name: asdict(limits) for name, limits in self.rate_limits.items()},
        }

    def reset(self, *, config: bool = False) -> None:
        """Forget faults, recordings and rate-limit traffic; with ``config``, the settings too."""
        self.faults.clear()
        self.records.clear()
        self.received = dict.fromkeys(PROVIDERS, 0)
        self._windows = {provider: _Window() for provider in PROVIDERS}
        if config:
            self.config = replace(self._initial_config)
            self.records = deque(maxlen=self.config.record_limit)
            self.rate_limits = {provider: RateLimits() for provider in PROVIDERS}


STATE_KEY = web.AppKey("simulator_state", SimulatorState)


# -- error bodies -----------------------------------------------------------

_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: (
        "tokens",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again later.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_OPENAI_CODE_MESSAGES = {
    "context_length_exceeded": (
        "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 130000 tokens. Please reduce the length of the messages."
    ),
    "insufficient_quota": "You exceeded your current quota, please check your plan and billing.",
}
_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}
_ANTHROPIC_CODE_MESSAGES = {
    "context_length_exceeded": "prompt is too long: 250000 tokens > 200000 maximum",
}
_MID_STREAM_STATUS = {"overloaded_error": 529, "rate_limit_error": 429, "tokens": 429}


def openai_error(
    status: int, *, type_: str | None = None, code: str | None = None, message: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body for ``status``, with optional overrides."""
    default_type, default_code, default_message = _OPENAI_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
    )
    code = code or default_code
    message = message or _OPENAI_CODE_MESSAGES.get(code or "", default_message)
    param = "messages" if code == "context_length_exceeded" else None
    return {
        "error": {"message": message, "type": type_ or default_type, "param": param, "code": code}
    }


def anthropic_error(
    status: int, *, type_: str | None = None, code: str | None = None, message: str | None = None
) -> dict[str, Any]:
    """Anthropic's error body for ``status``, with optional overrides."""
    default_type, default_message = _ANTHROPIC_ERRORS.get(
        status, ("api_error" if status >= 500 else "invalid_request_error", "Error.")
    )
    message = message or _ANTHROPIC_CODE_MESSAGES.get(code or "", default_message)
    return {"type": "error", "error": {"type": type_ or default_type, "message": message}}


# -- the simulator ----------------------------------------------------------


class Simulator:
    """Request handlers of both provider APIs and of the control API."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    # shared steps -----------------------------------------------------------

    async def _begin(self, request: web.Request, provider: str) -> _Call | web.Response:
        raw = await request.read()
        body: Any = None
        parsed = True
        if raw:
            try:
                body = loads(raw)
            except ValueError:
                parsed = False
                body = raw.decode("utf-8", "replace")
        record = self._record(request, provider, body)
        request_id = f"req_sim{self.state.next_id():012d}"
        key = _api_key(request, provider)
        if not key or key == self.state.config.bad_key:
            return self._error(provider, 401, request_id, record)
        fault = self.state.faults.take(provider, request.path)
        if fault is not None:
            record["fault_id"] = fault.id
            if fault.delay_before_ms:
                await asyncio.sleep(fault.delay_before_ms / 1000)
            if fault.status is not None:
                return self._error(provider, fault.status, request_id, record, fault)
        if not parsed or (request.method == "POST" and not isinstance(body, dict)):
            return self._error(
                provider, 400, request_id, record, message="The request body is not valid JSON."
            )
        return _Call(provider, body, record, request_id, fault)

    def _record(self, request: web.Request, provider: str, body: Any) -> dict[str, Any]:
        headers = {
            name.lower(): (REDACTED if name.lower() in AUTH_HEADERS else value)
            for name, value in request.headers.items()
        }
        record = {
            "id": self.state.next_id(),
            "received_at": time.time(),
            "provider": provider,
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": headers,
            "body": body,
            "status": None,
            "fault_id": None,
        }
        self.state.records.append(record)
        self.state.received[provider] += 1
        return record

    def _headers(
        self, provider: str, request_id: str, *, exhausted: bool = False
    ) -> dict[str, str]:
        snap = self.state.rate_snapshot(provider)
        remaining_tokens = 0 if exhausted else snap["remaining_tokens"]
        remaining_requests = 0 if exhausted else snap["remaining_requests"]
        reset_in = snap["reset_in"]
        if provider == "openai":
            return {
                "x-request-id": request_id,
                "openai-processing-ms": "1",
                "openai-version": "2020-10-01",
                "x-ratelimit-limit-requests": str(snap["limit_requests"]),
                "x-ratelimit-limit-tokens": str(snap["limit_tokens"]),
                "x-ratelimit-remaining-requests": str(remaining_requests),
                "x-ratelimit-remaining-tokens": str(remaining_tokens),
                "x-ratelimit-reset-requests": f"{reset_in:.3f}s",
                "x-ratelimit-reset-tokens": f"{reset_in:.3f}s",
            }
        reset_at = datetime.fromtimestamp(time.time() + reset_in, tz=UTC)
        reset = reset_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "request-id": request_id,
            "anthropic-ratelimit-requests-limit": str(snap["limit_requests"]),
            "anthropic-ratelimit-requests-remaining": str(remaining_requests),
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-tokens-limit": str(snap["limit_tokens"]),
            "anthropic-ratelimit-tokens-remaining": str(remaining_tokens),
            "anthropic-ratelimit-tokens-reset": reset,
        }

    def _error(
        self,
        provider: str,
        status: int,
        request_id: str,
        record: dict[str, Any],
        fault: Fault | None = None,
        *,
        message: str | None = None,
    ) -> web.Response:
        type_ = fault.type if fault else None
        code = fault.code if fault else None
        message = (fault.message if fault else None) or message
        if provider == "openai":
            body = openai_error(status, type_=type_, code=code, message=message)
        else:
            body = anthropic_error(status, type_=type_, code=code, message=message)
            body["request_id"] = request_id
        headers = self._headers(provider, request_id, exhausted=status == 429)
        if provider == "anthropic" and status == 401:
            # A request refused for its key tells nothing about the quota.
            headers = {"request-id": request_id}
        if fault is not None and fault.retry_after is not None:
            headers["retry-after"] = str(math.ceil(fault.retry_after))
        if provider == "anthropic":
            retryable = status in (408, 409, 429) or status >= 500
            headers["x-should-retry"] = "true" if retryable else "false"
        record["status"] = status
        return web.Response(
            status=status, body=dumps(body), headers=headers, content_type="application/json"
        )

    def _json(
        self, provider: str, call: _Call, payload: Any, *, headers: dict[str, str] | None = None
    ) -> web.Response:
        call.record["status"] = 200
        return web.Response(
            body=dumps(payload),
            headers=headers or self._headers(provider, call.request_id),
            content_type="application/json",
        )

    def _answer_tokens(self, messages: list[Any], max_tokens: Any) -> tuple[list[str], bool]:
        config = self.state.config
        text = answer_text(
            last_user_text(messages),
            answer_tokens=config.answer_tokens,
            echo_max_chars=config.echo_max_chars,
        )
        tokens = split_tokens(text)
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and 0 < max_tokens:
            if len(tokens) > max_tokens:
                return tokens[:max_tokens], True
        return tokens, False

    # OpenAI -----------------------------------------------------------------

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        # Alike in `messages` on purpose: each validates its own API's body as that
        # service does; what both share (faults, recording, streaming) is `_begin`,
        # `_answer_tokens`, `_error` and `_stream`.
        call = await self._begin(request, "openai")
        if not isinstance(call, _Call):
            return call
        body = call.body
        messages = body.get("messages")
        model = body.get("model")
        if not isinstance(messages, list) or not messages:
            return self._error(
                "openai",
                400,
                call.request_id,
                call.record,
                message="'messages' must be a non-empty array.",
            )
        if not isinstance(model, str) or not model:
            return self._error(
                "openai",
                400,
                call.request_id,
                call.record,
                message="You must provide a model parameter.",
            )
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        tokens, truncated = self._answer_tokens(messages, max_tokens)
        finish_reason = "length" if truncated else "stop"
        input_tokens = estimate_tokens(*messages_text(messages))
        usage = {
            "prompt_tokens": input_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": input_tokens + len(tokens),
        }
        self.state.charge("openai", tokens=usage["total_tokens"], requests=1)
        headers = self._headers("openai", call.request_id)
        fault = call.fault
        no_usage = fault is not None and fault.no_usage
        completion_id = f"chatcmpl-sim{self.state.next_id():010d}"
        created = int(time.time())
        if not body.get("stream"):
            return await self._openai_whole(
                call,
                headers,
                completion_id,
                created,
                model,
                tokens,
                finish_reason,
                None if no_usage else usage,
            )
        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, dict) and bool(
            stream_options.get("include_usage")
        )
        head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_neonpro_sim",
        }
        role_chunk = {
            **head,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": "", "refusal": None},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
        # Every content chunk is the same JSON with another string in it: encode
        # the frame once and splice each token in.
        prefix = b"data: " + dumps(head)[:-1] + b',"choices":[{"index":0,"delta":{"content":'
        suffix = b'},"logprobs":null,"finish_reason":null}]}\n\n'
        events = [prefix + dumps(token) + suffix for token in tokens]
        finish_chunk = {
            **head,
            "choices": [
                {"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        epilogue = [_sse_data(finish_chunk)]
        if include_usage and not no_usage:
            epilogue.append(_sse_data({**head, "choices": [], "usage": usage}))
        if not (fault is not None and fault.no_terminator):
            epilogue.append(b"data: [DONE]\n\n")
        mid_stream_error = openai_error(
            500, type_=(fault.type if fault else None), message=(fault.message if fault else None)
        )
        return await self._stream(
            request,
            call,
            headers,
            preamble=_sse_data(role_chunk),
            events=events,
            epilogue=b"".join(epilogue),
            malformed=b'data: {"id": "' + completion_id.encode() + b'", "choices": [{"delta\n\n',
            error_event=_sse_data(mid_stream_error),
        )

    async def _openai_whole(
        self,
        call: _Call,
        headers: dict[str, str],
        completion_id: str,
        created: int,
        model: str,
        tokens: list[str],
        finish_reason: str,
        usage: dict[str, int] | None,
    ) -> web.Response:
        payload: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_neonpro_sim",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(tokens), "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
        }
        if usage is not None:
            payload["usage"] = usage
        return await self._whole(call, headers, payload, len(tokens))

    async def moderations(self, request: web.Request) -> web.StreamResponse:
        call = await self._begin(request, "openai")
        if not isinstance(call, _Call):
            return call
        raw_input = call.body.get("input")
        items = raw_input if isinstance(raw_input, list) else [raw_input]
        flagged_term = self.state.config.flagged_term.lower()
        results = []
        for item in items:
            text = content_text([item]) if not isinstance(item, str) else item
            flagged = bool(flagged_term) and flagged_term in text.lower()
            results.append(_moderation_result(flagged))
        payload = {
            "id": f"modr-sim{self.state.next_id():010d}",
            "model": call.body.get("model") or "omni-moderation-latest",
            "results": results,
        }
        return self._json("openai", call, payload)

    # Anthropic --------------------------------------------------------------

    async def messages(self, request: web.Request) -> web.StreamResponse:
        call = await self._begin(request, "anthropic")
        if not isinstance(call, _Call):
            return call
        body = call.body
        messages = body.get("messages")
        model = body.get("model")
        max_tokens = body.get("max_tokens")
        problem = None
        if not isinstance(model, str) or not model:
            problem = "model: Field required"
        elif not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            problem = "max_tokens: Field required"
        elif not isinstance(messages, list) or not messages:
            problem = "messages: at least one message is required"
        if problem:
            return self._error("anthropic", 400, call.request_id, call.record, message=problem)
        tokens, truncated = self._answer_tokens(messages, max_tokens)
        stop_reason = "max_tokens" if truncated else "end_turn"
        input_tokens = estimate_tokens(content_text(body.get("system")), *messages_text(messages))
        self.state.charge("anthropic", tokens=input_tokens + len(tokens), requests=1)
        headers = self._headers("anthropic", call.request_id)
        message_id = f"msg_sim{self.state.next_id():012d}"
        fault = call.fault
        message = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        }
        if not body.get("stream"):
            message["content"] = [{"type": "text", "text": "".join(tokens)}]
            message["stop_reason"] = stop_reason
            message["usage"] = {"input_tokens": input_tokens, "output_tokens": len(tokens)}
            return await self._whole(call, headers, message, len(tokens))
        preamble = b"".join(
            [
                _sse_event("message_start", {"type": "message_start", "message": message}),
                _sse_event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                ),
                _sse_event("ping", {"type": "ping"}),
            ]
        )
        prefix = (
            b"event: content_block_delta\ndata: "
            b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
        )
        events = [prefix + dumps(token) + b"}}\n\n" for token in tokens]
        epilogue = [
            _sse_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": len(tokens)},
                },
            ),
        ]
        if not (fault is not None and fault.no_terminator):
            epilogue.append(_sse_event("message_stop", {"type": "message_stop"}))
        error = anthropic_error(
            529,
            type_=(fault.type if fault else None),
            message=(fault.message if fault else None),
        )
        return await self._stream(
            request,
            call,
            headers,
            preamble=preamble,
            events=events,
            epilogue=b"".join(epilogue),
            malformed=(
                b"event: content_block_delta\ndata: "
                b'{"type":"content_block_delta","index":0,"delta":{"type\n\n'
            ),
            error_event=_sse_event("error", error),
        )

    # both -------------------------------------------------------------------

    async def models(self, request: web.Request) -> web.StreamResponse:
        provider = _provider_of_shared_path(request)
        call = await self._begin(request, provider)
        if not isinstance(call, _Call):
            return call
        model_id = request.match_info.get("model_id")
        names = OPENAI_MODELS if provider == "openai" else ANTHROPIC_MODELS
        if provider == "openai":
            entries = [
                {"id": name, "object": "model", "created": EPOCH_CREATED, "owned_by": "neonpro"}
                for name in ([model_id] if model_id else names)
            ]
            payload: Any = entries[0] if model_id else {"object": "list", "data": entries}
        else:
            entries = [
                {
                    "type": "model",
                    "id": name,
                    "display_name": name,
                    "created_at": "2024-10-22T00:00:00Z",
                }
                for name in ([model_id] if model_id else names)
            ]
            payload = (
                entries[0]
                if model_id
                else {
                    "data": entries,
                    "has_more": False,
                    "first_id": entries[0]["id"],
                    "last_id": entries[-1]["id"],
                }
            )
        # The probe is free: it reports the quota but does not spend it.
        return self._json(provider, call, payload)

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        provider = _provider_of_shared_path(request)
        record = self._record(request, provider, None)
        request_id = f"req_sim{self.state.next_id():012d}"
        return self._error(
            provider, 404, request_id, record, message=f"Unknown path {request.path}"
        )

    async def _whole(
        self, call: _Call, headers: dict[str, str], payload: dict[str, Any], chunks: int
    ) -> web.Response:
        """A non-streamed answer, taking as long as streaming it would."""
        fault = call.fault
        seconds = chunks * self.state.config.token_delay_ms / 1000
        if fault is not None and fault.stall_after_chunks is not None:
            seconds += fault.stall_ms / 1000
        if seconds:
            await asyncio.sleep(seconds)
        if fault is not None and fault.error_after_chunks is not None:
            status = _MID_STREAM_STATUS.get(fault.type or "", 500)
            if call.provider == "anthropic" and not fault.type:
                status = 529
            return self._error(call.provider, status, call.request_id, call.record, fault)
        body = dumps(payload)
        if fault is not None and fault.malformed_after_chunks is not None:
            call.record["status"] = 200
            return web.Response(
                body=body[: len(body) // 2], headers=headers, content_type="application/json"
            )
        if fault is not None and fault.drop_after_chunks is not None:
            call.record["status"] = 200
            raise _DropConnection(headers, body)
        return self._json(call.provider, call, payload, headers=headers)

    async def _stream(
        self,
        request: web.Request,
        call: _Call,
        headers: dict[str, str],
        *,
        preamble: bytes,
        events: list[bytes],
        epilogue: bytes,
        malformed: bytes,
        error_event: bytes,
    ) -> web.StreamResponse:
        """Write an SSE answer, pacing tokens and applying the stream faults."""
        call.record["status"] = 200
        response = web.StreamResponse(
            status=200,
            headers={
                **headers,
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            },
        )
        await response.prepare(request)
        fault = call.fault
        delay = self.state.config.token_delay_ms / 1000
        loop = asyncio.get_running_loop()
        pending = [preamble]
        start = loop.time()
        try:
            for index in range(len(events) + 1):
                if fault is not None:
                    if fault.drop_after_chunks == index:
                        await _flush(response, pending)
                        _close_abruptly(request)
                        return response
                    if fault.error_after_chunks == index:
                        pending.append(error_event)
                        break
                    if fault.malformed_after_chunks == index:
                        pending.append(malformed)
                    if fault.stall_after_chunks == index:
                        await _flush(response, pending)
                        await asyncio.sleep(fault.stall_ms / 1000)
                        start = loop.time() - index * delay
                if index == len(events):
                    pending.append(epilogue)
                    break
                if delay:
                    # Tokens are due on a fixed schedule; a loop that falls behind
                    # sends the overdue ones together instead of waking per token.
                    wait = start + index * delay - loop.time()
                    if wait > 0:
                        await _flush(response, pending)
                        await asyncio.sleep(wait)
                pending.append(events[index])
            await _flush(response, pending)
            await response.write_eof()
        except ConnectionError:
            # The client went away (or timed out); there is nobody left to answer.
            pass
        return response


class _DropConnection(Exception):
    """Raised to make the server cut a non-streamed answer short."""

    def __init__(self, headers: dict[str, str], body: bytes) -> None:
        super().__init__("connection dropped on purpose")
        self.headers = headers
        self.body = body


async def _flush(response: web.StreamResponse, pending: list[bytes]) -> None:
    if pending:
        data = b"".join(pending)
        pending.clear()
        await response.write(data)


def _close_abruptly(request: web.Request) -> None:
    # Closing the socket before the last (empty) chunk of the chunked body is
    # what a client sees when a provider's connection breaks mid-answer.
    transport = request.transport
    if transport is not None:
        transport.close()


def _sse_data(payload: Any) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


def _sse_event(name: str, payload: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(payload) + b"\n\n"


def _api_key(request: web.Request, provider: str) -> str:
    headers = request.headers
    if provider == "anthropic" and headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return token.strip()
    return ""


def _provider_of_shared_path(request: web.Request) -> str:
    # Both SDKs call GET /v1/models; only Anthropic's sends these headers.
    headers = request.headers
    if "anthropic-version" in headers or "x-api-key" in headers:
        return "anthropic"
    return "openai"


_MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def _moderation_result(flagged: bool) -> dict[str, Any]:
    return {
        "flagged": flagged,
        "categories": {name: flagged and name == "violence" for name in _MODERATION_CATEGORIES},
        "category_scores": {
            name: (0.99 if flagged and name == "violence" else 0.0001)
            for name in _MODERATION_CATEGORIES
        },
        "category_applied_input_types": {name: ["text"] for name in _MODERATION_CATEGORIES},
    }


# -- control API ------------------------------------------------------------


class Control:
    """Handlers of ``/_sim/``: recordings, faults and settings."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    async def list_requests(self, request: web.Request) -> web.Response:
        provider = request.query.get("provider")
        path = request.query.get("path")
        records = [
            record
            for record in self.state.records
            if (provider is None or record["provider"] == provider)
            and (path is None or record["path"] == path)
        ]
        return _control_json({"requests": records, "count": len(records)})

    async def clear_requests(self, request: web.Request) -> web.Response:
        self.state.records.clear()
        self.state.received = dict.fromkeys(PROVIDERS, 0)
        return _control_json({"requests": [], "count": 0})

    async def stats(self, request: web.Request) -> web.Response:
        received = self.state.received
        return _control_json(
            {
                "received": sum(received.values()),
                "received_by_provider": received,
                "recorded": len(self.state.records),
            }
        )

    async def list_faults(self, request: web.Request) -> web.Response:
        return _control_json({"faults": self.state.faults.as_list()})

    async def add_fault(self, request: web.Request) -> web.Response:
        try:
            fault = self.state.faults.add(await _control_body(request))
        except ValueError as exc:
            return _control_json({"error": str(exc)}, status=400)
        return _control_json({"fault": fault.as_dict()}, status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        provider = request.query.get("provider")
        if provider is not None and provider not in PROVIDERS:
            return _control_json({"error": "provider must be 'openai' or 'anthropic'"}, status=400)
        self.state.faults.clear(provider)
        return _control_json({"faults": self.state.faults.as_list()})

    async def get_config(self, request: web.Request) -> web.Response:
        return _control_json(self.state.config_dict())

    async def set_config(self, request: web.Request) -> web.Response:
        try:
            config = self.state.update_config(await _control_body(request))
        except ValueError as exc:
            return _control_json({"error": str(exc)}, status=400)
        return _control_json(config)

    async def reset(self, request: web.Request) -> web.Response:
        try:
            body = await _control_body(request)
        except ValueError as exc:
            return _control_json({"error": str(exc)}, status=400)
        self.state.reset(config=bool(isinstance(body, dict) and body.get("config")))
        return _control_json({"reset": True})


async def _control_body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return loads(raw) if raw else {}
    except ValueError as exc:
        raise ValueError("the body is not valid JSON") from exc


def _control_json(payload: Any, *, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dumps(payload), content_type="application/json")


@web.middleware
async def _drop_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except _DropConnection as drop:
        # A non-streamed answer cut short: announce the full length, send half,
        # then close, as a connection breaking during the body would.
        response = web.StreamResponse(status=200, headers=drop.headers)
        response.content_type = "application/json"
        response.content_length = len(drop.body)
        await response.prepare(request)
        try:
            await response.write(drop.body[: len(drop.body) // 2])
        except ConnectionError:
            return response
        _close_abruptly(request)
        return response


def build_app(config: SimulatorConfig | None = None) -> web.Application:
    """The simulator as an aiohttp application (state in ``app[STATE_KEY]``)."""
    state = SimulatorState(config)
    simulator = Simulator(state)
    control = Control(state)
    # Conversations with history can be long; the default 1 MiB body cap is not
    # a limit the real providers have.
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[_drop_middleware])
    app[STATE_KEY] = state
    app.router.add_post("/v1/chat/completions", simulator.chat_completions)
    app.router.add_post("/v1/moderations", simulator.moderations)
    app.router.add_post("/v1/messages", simulator.messages)
    app.router.add_get("/v1/models", simulator.models)
    app.router.add_get("/v1/models/{model_id}", simulator.models)
    app.router.add_route("*", "/v1/{tail:.*}", simulator.not_found)
    app.router.add_get("/_sim/requests", control.list_requests)
    app.router.add_delete("/_sim/requests", control.clear_requests)
    app.router.add_get("/_sim/stats", control.stats)
    app.router.add_get("/_sim/faults", control.list_faults)
    app.router.add_post("/_sim/faults", control.add_fault)
    app.router.add_delete("/_sim/faults", control.clear_faults)
    app.router.add_get("/_sim/config", control.get_config)
    app.router.add_post("/_sim/config", control.set_config)
    app.router.add_post("/_sim/reset", control.reset)
    return app


async def start_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    config: SimulatorConfig | None = None,
    shutdown_timeout: float = 2.0,
) -> tuple[web.AppRunner, int]:
    """Start the simulator on the running loop; returns the runner and the bound port."""
    # handler_cancellation: a client that hangs up (stop button, timeout) frees
    # its stream at once instead of leaving a paced writer running.
    runner = web.AppRunner(
        build_app(config),
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        handler_cancellation=True,
    )
    await runner.setup()
    # A deep accept queue: benchmarks open thousands of connections at once.
    site = web.TCPSite(runner, host, port, backlog=4096)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    return runner, bound_port
