"""Turning what the SDKs and the network raise into our `ProviderError`.

Messages are built from the status and our code only: provider error bodies
can quote the prompt, and prompts can hold personal data.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import anthropic
import anyio
import httpx2
import openai

from .base import ProviderError

_TIMEOUTS = (
    openai.APITimeoutError,
    anthropic.APITimeoutError,
    TimeoutError,
    httpx2.TimeoutException,
)
_SDK_CONNECTION = (openai.APIConnectionError, anthropic.APIConnectionError)
_SDK_STATUS = (openai.APIStatusError, anthropic.APIStatusError)
_SDK_OTHER = (openai.APIError, anthropic.APIError)
# What reading a response body can raise when the connection breaks.
TRANSPORT_ERRORS = (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream, ConnectionError)

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "maximum context",
)
_MAX_RETRY_AFTER_S = 3600.0


def timeout_error(provider: str, phase: str) -> ProviderError:
    """The attempt ran out of time (`phase`: first_token, idle or total)."""
    return ProviderError(
        f"{provider}: timed out ({phase})", provider=provider, code="timeout", retryable=True
    )


def stream_error(provider: str, code: str, detail: str) -> ProviderError:
    """A 200 stream that broke its protocol (malformed or truncated)."""
    return ProviderError(f"{provider}: {detail}", provider=provider, code=code, retryable=True)


def _aiohttp_cause(exc: BaseException) -> aiohttp.ClientError | None:
    """The aiohttp error behind an SDK/transport exception, if the transport raised one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiohttp.ClientError):
            return seen
        seen = seen.__cause__
    return None


def from_exception(provider: str, exc: BaseException) -> ProviderError | None:
    """Our error for an SDK/network exception, or None when `exc` is not one of those."""
    if isinstance(exc, ProviderError):
        return exc
    cause = _aiohttp_cause(exc)
    if cause is not None and not isinstance(cause, TimeoutError):
        # The aiohttp transport reports a refused or dropped connection as a connect
        # *timeout*; what happened is told by the aiohttp error it wraps.
        return ProviderError(
            f"{provider}: connection failed", provider=provider, code="connection", retryable=True
        )
    if isinstance(exc, _TIMEOUTS):
        return timeout_error(provider, "transport")
    if isinstance(exc, _SDK_STATUS):
        return from_status(provider, exc.status_code, exc.response.headers, exc.body)
    if isinstance(exc, _SDK_CONNECTION + TRANSPORT_ERRORS):
        return ProviderError(
            f"{provider}: connection failed", provider=provider, code="connection", retryable=True
        )
    if isinstance(exc, _SDK_OTHER):
        # e.g. a response that does not match the API schema: the server misbehaved.
        return ProviderError(
            f"{provider}: unexpected response",
            provider=provider,
            code="server_error",
            retryable=True,
        )
    return None


def from_status(
    provider: str, status: int, headers: Mapping[str, str] | None, body: object
) -> ProviderError:
    """Our error for an HTTP error status (and its error body, used only to classify)."""
    retry_after = parse_retry_after(headers)

    def error(code: str, retryable: bool = True) -> ProviderError:
        return ProviderError(
            f"{provider}: HTTP {status} ({code})",
            provider=provider,
            code=code,
            retryable=retryable,
            status=status,
            retry_after=retry_after,
        )

    if status == 429:
        return error("rate_limited")
    if status in (401, 403):
        # A key problem on this provider; the other one may well answer.
        return error("auth")
    if status == 529:
        return error("overloaded")
    if status in (408, 504):
        return error("timeout")
    if status >= 500:
        return error("server_error")
    if status == 413 or (status in (400, 422) and _mentions_context_length(body)):
        # Too long for this model; another provider's window may be larger.
        return error("context_length")
    # Anything else is a request we built wrongly: a bug to surface, not to hide.
    return error("bad_request", retryable=False)


def from_stream_error_payload(provider: str, payload: Any) -> ProviderError:
    """Our error for an error event inside a 200 stream."""
    error = payload.get("error") if isinstance(payload, dict) else None
    kind = ""
    if isinstance(error, dict):
        kind = f"{error.get('type') or ''} {error.get('code') or ''}".lower()
    if "overloaded" in kind:
        code = "overloaded"
    elif "rate_limit" in kind or "tokens" in kind.split():
        code = "rate_limited"
    else:
        code = "server_error"
    return ProviderError(
        f"{provider}: error event in stream ({code})",
        provider=provider,
        code=code,
        retryable=True,
    )


def _mentions_context_length(body: object) -> bool:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            text = " ".join(str(inner.get(k) or "") for k in ("code", "type", "message"))
        else:
            text = str(inner)
    else:
        text = str(body or "")
    text = text.lower()
    return any(marker in text for marker in _CONTEXT_MARKERS)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or HTTP date)."""
    if not headers:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return _bounded(float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return _bounded(float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return _bounded(when.timestamp() - time.time())


def _bounded(seconds: float) -> float | None:
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return min(seconds, _MAX_RETRY_AFTER_S)


_QUOTA_HEADERS = {
    "openai": (
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-limit-requests",
    ),
    "anthropic": (
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-requests-limit",
    ),
}


def quota_from_headers(provider: str, headers: Mapping[str, str] | None) -> dict[str, int] | None:
    """The rate-limit figures a response carries, or None when it carries none."""
    if not headers:
        return None
    names = _QUOTA_HEADERS.get(provider)
    if names is None:
        return None
    quota: dict[str, int] = {}
    for key, header in zip(
        ("tokens_remaining", "requests_remaining", "tokens_limit", "requests_limit"),
        names,
        strict=True,
    ):
        raw = headers.get(header)
        if raw:
            try:
                quota[key] = int(float(raw))
            except ValueError:
                continue
    return quota or None
