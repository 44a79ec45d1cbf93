"""How long failover takes, per fault type, against the simulated provider.

For each fault injected into the primary provider, measures the time from the
call to `stream_answer` to the first token of the answer that completes (the
secondary's, after any reset), through the real SDKs over loopback HTTP.
Timeout-driven faults are bounded by the configured budgets by design; the
others show the provider layer's own failover cost.

    python benchmarks/failover_bench.py [--runs 30] [--token-delay-ms 10]

Uses the Django cache of the environment (Redis when REDIS_URL is set); only
the provider layer's own keys are touched.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neonpro.settings")
os.environ.setdefault("DEBUG", "true")
# Failover logs a warning per failed attempt; a benchmark wants the table only.
os.environ.setdefault("LOG_LEVEL", "critical")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402

from chat.providers import router  # noqa: E402
from chat.providers.base import (  # noqa: E402
    AttemptEvent,
    ChatTurn,
    ProviderError,
    ResetEvent,
    TokenEvent,
)
from simulated_provider import start_in_thread  # noqa: E402

TIMEOUT_MS = 2000
IDLE_TIMEOUT_MS = 500
STALL_MS = 10_000
HISTORY = [ChatTurn(role="user", content="Qual o intervalo entre sessões de peeling químico?")]


@dataclass
class Case:
    label: str
    primary: str
    fault: dict[str, Any] | None = None
    setup: Callable[[Any], None] | None = None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_REFUSED_PORT = _closed_port()


def _refused(sim: Any) -> None:
    # The same closed port every run: a changed base URL would build a new SDK
    # client each time, which production never does.
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{_REFUSED_PORT}/v1"


def _open_circuit(sim: Any) -> None:
    # An open circuit: the primary is skipped without a request.
    now = time.time()
    cache.set("ai:circuit:openai:open", {"until": now + 60, "opened_at": now, "code": "bench"})


CASES = [
    Case("no fault (primary answers)", "openai"),
    Case("429 + retry-after", "openai", {"status": 429, "retry_after": 1}),
    Case("500", "openai", {"status": 500}),
    Case("502", "openai", {"status": 502}),
    Case("503", "openai", {"status": 503}),
    Case("529 (anthropic primary)", "anthropic", {"status": 529}),
    Case("401", "openai", {"status": 401}),
    Case("403", "openai", {"status": 403}),
    Case("400 context length", "openai", {"status": 400, "code": "context_length_exceeded"}),
    Case("connection refused", "openai", setup=_refused),
    Case("drop mid-stream (5 chunks)", "openai", {"drop_after_chunks": 5}),
    Case("malformed chunk (5 chunks)", "openai", {"malformed_after_chunks": 5}),
    Case("no [DONE] terminator", "openai", {"no_terminator": True}),
    Case("error event in stream", "openai", {"error_after_chunks": 5}),
    Case("stall before first byte", "openai", {"delay_before_ms": STALL_MS}),
    Case("stall mid-stream (5 chunks)", "openai", {"stall_after_chunks": 5, "stall_ms": STALL_MS}),
    Case("circuit open (skip)", "openai", setup=_open_circuit),
]


def _reset_state() -> None:
    keys = [
        f"ai:circuit:{name}:{part}"
        for name in ("openai", "anthropic")
        for part in ("open", "failures", "failures_since", "probe")
    ]
    cache.delete_many(keys)


def _configure(sim: Any, primary: str) -> None:
    settings.OPENAI_API_KEY = settings.ANTHROPIC_API_KEY = "bench-key"
    settings.OPENAI_BASE_URL = sim.openai_base_url
    settings.ANTHROPIC_BASE_URL = sim.anthropic_base_url
    settings.AI_PRIMARY_PROVIDER = primary
    settings.AI_SECONDARY_PROVIDER = "anthropic" if primary == "openai" else "openai"
    settings.AI_PROVIDER_TIMEOUT = TIMEOUT_MS
    settings.AI_PROVIDER_IDLE_TIMEOUT = IDLE_TIMEOUT_MS
    settings.AI_CIRCUIT_FAILURE_THRESHOLD = 1_000_000


async def _one(case: Case, sim: Any) -> tuple[float | None, str]:
    """(ms to the first token of the completing answer, error code of the primary)."""
    _reset_state()
    _configure(sim, case.primary)
    sim.clear_faults()
    if case.fault:
        sim.set_fault(case.primary, times=1, **case.fault)
    if case.setup:
        case.setup(sim)
    started = time.perf_counter()
    first: float | None = None
    code = "-"
    try:
        async for event in router.stream_answer(system_prompt="Assistente.", history=HISTORY):
            if isinstance(event, TokenEvent) and first is None:
                first = time.perf_counter()
            elif isinstance(event, ResetEvent):
                first = None  # the answer restarts: count to the secondary's first token
            elif isinstance(event, AttemptEvent) and event.attempt.provider == case.primary:
                code = event.attempt.error_code or event.attempt.outcome
    except ProviderError as error:
        return None, f"raised {error.code}"
    return (None if first is None else (first - started) * 1000), code


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def main(runs: int, token_delay_ms: float) -> None:
    sim = start_in_thread(token_delay_ms=token_delay_ms)
    try:
        for _ in range(3):  # warm up: clients, connection pools, imports
            await _one(CASES[0], sim)
        print(
            f"failover time = call to first token of the answer that completes; "
            f"runs={runs}, token_delay={token_delay_ms} ms, AI_PROVIDER_TIMEOUT={TIMEOUT_MS} ms, "
            f"idle timeout={IDLE_TIMEOUT_MS} ms, cache={settings.CACHES['default']['BACKEND']}"
        )
        header = (
            f"{'fault on primary':32} {'primary outcome':18} {'median':>8} {'p95':>8} {'max':>8}"
        )
        print(header)
        print("-" * len(header))
        for case in CASES:
            runs_for_case = runs if "stall" not in case.label else max(3, runs // 10)
            samples: list[float] = []
            codes: set[str] = set()
            for _ in range(runs_for_case):
                ms, code = await _one(case, sim)
                codes.add(code)
                if ms is not None:
                    samples.append(ms)
            if samples:
                print(
                    f"{case.label:32} {','.join(sorted(codes)):18} "
                    f"{statistics.median(samples):8.1f} {_percentile(samples, 0.95):8.1f} "
                    f"{max(samples):8.1f}"
                )
            else:
                print(f"{case.label:32} {','.join(sorted(codes)):18} {'no answer':>8}")
    finally:
        sim.clear_faults()
        _reset_state()
        sim.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--token-delay-ms", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.token_delay_ms))
