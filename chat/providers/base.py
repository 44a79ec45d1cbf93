"""Types shared by the provider layer and the chat pipeline that calls it.

The pipeline sees only these types: failover and error handling decide on
`ProviderError` (our type), never on SDK exception classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# Error codes a ProviderError may carry (ProvidersUnavailable adds "provider_unavailable").
ERROR_CODES = frozenset(
    {
        "timeout",
        "connection",
        "rate_limited",
        "server_error",
        "overloaded",
        "auth",
        "bad_request",
        "context_length",
        "malformed_stream",
        "truncated_stream",
    }
)


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One earlier message of the conversation, already redacted."""

    role: str  # "user" | "assistant"
    content: str


class ProviderError(Exception):
    """A provider attempt failed.

    `retryable` says whether another provider (or a later try) may succeed:
    false only for requests we built wrongly, which must surface as bugs.
    Messages never carry prompt text or provider response bodies.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        code: str,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.code = code
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, code={self.code!r}, "
            f"status={self.status!r}, retryable={self.retryable!r})"
        )


class ProvidersUnavailable(ProviderError):
    """No configured provider could answer; raised after every AttemptEvent was yielded."""

    def __init__(
        self,
        message: str = "No AI provider could answer.",
        *,
        provider: str = "none",
        code: str = "provider_unavailable",
        retryable: bool = True,
        status: int | None = None,
        retry_after: float | None = None,
        last_error_code: str | None = None,
    ) -> None:
        super().__init__(
            message,
            provider=provider,
            code=code,
            retryable=retryable,
            status=status,
            retry_after=retry_after,
        )
        self.last_error_code = last_error_code


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """A piece of answer text, to relay as it comes."""

    delta: str


@dataclass(frozen=True, slots=True)
class ResetEvent:
    """The answer restarts on another provider: discard tokens already relayed."""

    reason: str = "failover"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What one provider attempt did, for persistence and dashboards.

    `latency_ms` and `first_token_ms` are measured from the start of this attempt.
    """

    provider: str
    model: str
    outcome: str  # "success" | "error" | "cancelled" | "skipped_open_circuit"
    error_code: str | None
    latency_ms: int
    first_token_ms: int | None
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost_usd: Decimal
    started_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """Emitted after every attempt, successful or not, so the caller can persist it."""

    attempt: AttemptRecord


@dataclass(frozen=True, slots=True)
class DoneEvent:
    """The answer is complete.

    `latency_ms` and `first_token_ms` are measured from the call to
    `stream_answer`; `first_token_ms` is the first token of the answer that
    completed (after any reset).
    """

    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    first_token_ms: int | None
    latency_ms: int
    # The answering attempt's shared-state record (the live provider figures), left
    # for the consumer to write in a blocking step it makes anyway (`DeferredWrite`).
    deferred: DeferredWrite | None = field(default=None, compare=False, repr=False)


class DeferredWrite:
    """A blocking write a consumer may take over (`claim`) to run it in its own
    blocking step; one left unclaimed is run by whoever offered it."""

    __slots__ = ("_write", "claimed")

    def __init__(self, write: Callable[[], None]) -> None:
        self._write = write
        self.claimed = False

    def claim(self) -> Callable[[], None]:
        """Take the write over: the caller now runs it (blocking code, once)."""
        self.claimed = True
        return self._write


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Outcome of the light health probe (GET models; never a paid completion)."""

    provider: str
    status: str  # "healthy" | "degraded" | "unhealthy" | "not_configured"
    response_time_ms: int | None
    checked_at: datetime | None
    error_code: str | None = None
    cached: bool = False
