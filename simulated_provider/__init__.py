"""Simulated AI provider: a loopback server speaking the OpenAI and Anthropic APIs.

Used by the run command when no API keys are configured, and by the tests and
benchmarks through the real SDKs over real HTTP. It answers deterministically in
Brazilian Portuguese, echoing the last user message, records every request it
receives and can be told to misbehave.

Provider endpoints
    OpenAI (``base_url=<url>/v1``): ``POST /v1/chat/completions`` (streaming and
    not, ``stream_options.include_usage``), ``POST /v1/moderations``,
    ``GET /v1/models``. Anthropic (``base_url=<url>``): ``POST /v1/messages``
    (streaming and not), ``GET /v1/models``. ``GET /v1/models`` is the free
    probe; it answers in Anthropic's shape when the request carries the
    ``anthropic-version`` or ``x-api-key`` header. Any non-empty key is
    accepted except ``bad_key`` (default ``invalid-key``), which gets a 401.

Control API
    ``GET|DELETE /_sim/requests`` (``?provider=``, ``?path=`` filter; the
    newest ``record_limit`` requests are kept), ``GET /_sim/stats`` (counts),
    ``GET|POST|DELETE /_sim/faults`` (``DELETE ?provider=`` clears one provider),
    ``GET|POST /_sim/config`` (settings; rate-limit keys with an optional
    ``provider``), ``POST /_sim/reset`` (``{"config": true}`` also restores the
    start-up settings).

Fault fields (``POST /_sim/faults``)
    ``provider`` (required), ``paths`` (default: the completion endpoint; ``"*"``
    or a list of paths), ``status`` (HTTP error, e.g. 429/500/529/401/400),
    ``type``/``code``/``message`` (error body overrides, e.g. ``code:
    "context_length_exceeded"``), ``retry_after`` (seconds), ``delay_before_ms``,
    ``stall_after_chunks`` + ``stall_ms``, ``drop_after_chunks``,
    ``malformed_after_chunks``, ``error_after_chunks`` (an error event inside a
    200 stream), ``no_terminator``, ``no_usage`` (openai only), ``times``.
"""

from __future__ import annotations

from .control import (
    SimulatedProviderControl,
    SimulatedProviderHandle,
    SimulatorControlError,
    start_in_thread,
)
from .server import SimulatorConfig, build_app, start_server

__all__ = [
    "SimulatedProviderControl",
    "SimulatedProviderHandle",
    "SimulatorConfig",
    "SimulatorControlError",
    "build_app",
    "start_in_thread",
    "start_server",
]
