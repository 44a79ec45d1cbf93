"""The AI provider layer: the only code that talks to OpenAI and Anthropic.

- `base`: the types the chat pipeline sees (events, `ProviderError`).
- `router`: `stream_answer`, the failover between providers.
- `reporting`: `probe_provider`, `provider_status`, `failover_ready` for the
  health views and metrics.
- `streaming`: the stream loop both adapters share, with its deadlines.
- `content_filter`: `check_content`, `ContentBlocked`.
- `openai_provider`, `anthropic_provider`: one entry point per outside system.
- `circuit`, `status`: breaker state and live figures, shared through the cache.

Importing this package does not import the SDKs; `router` and `reporting` do.
"""

from __future__ import annotations

from .base import (
    AttemptEvent,
    AttemptRecord,
    ChatTurn,
    DoneEvent,
    ProbeResult,
    ProviderError,
    ProvidersUnavailable,
    ResetEvent,
    TokenEvent,
)

__all__ = [
    "AttemptEvent",
    "AttemptRecord",
    "ChatTurn",
    "DoneEvent",
    "ProbeResult",
    "ProviderError",
    "ProvidersUnavailable",
    "ResetEvent",
    "TokenEvent",
]
