"""Redaction latency: p50/p95 of `redact` on realistic clinical messages.

Messages of about 200, 1,000 and 8,000 characters mix clean clinical text
(doses, prices, procedure dates, lot numbers, products) with some personal
data (names, CPF, phones, e-mails, addresses). Each size is measured on many
different messages so caches of repeated text do not flatter the figures.

    python benchmarks/redaction_bench.py [--runs 400]

Target: p95 <= 2 ms per 1,000 characters. Both wall-clock and CPU time of the
redacting thread are reported: on a loaded machine wall time mostly measures
the wait for a CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compliance.redaction import redact  # noqa: E402
from compliance.redaction.corpus import build_corpus  # noqa: E402

SIZES = (200, 1_000, 8_000)
TARGET_MS_PER_1000 = 2.0


def _sentences() -> tuple[list[str], list[str]]:
    records = build_corpus()
    positives = [r["text"] for r in records if r["kind"] == "positive"]
    negatives = [r["text"] for r in records if r["kind"] == "negative"]
    return positives, negatives


def make_message(rng: random.Random, size: int, positives: list[str], negatives: list[str]) -> str:
    """About `size` characters: roughly one sentence in four carries personal data."""
    parts: list[str] = []
    length = 0
    while length < size:
        sentence = rng.choice(positives if rng.random() < 0.25 else negatives)
        parts.append(sentence)
        length += len(sentence) + 1
    return " ".join(parts)[:size]


def _percentiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    p95 = values[min(len(values) - 1, max(0, int(round(0.95 * len(values))) - 1))]
    return statistics.median(values), p95


def measure(messages: list[str]) -> tuple[tuple[float, float], tuple[float, float]]:
    """(p50, p95) in ms of wall-clock time and of this thread's CPU time."""
    wall, cpu = [], []
    for message in messages:
        start_wall, start_cpu = time.perf_counter(), time.thread_time()
        redact(message)
        cpu.append((time.thread_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start_wall) * 1000)
    return _percentiles(wall), _percentiles(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="messages per size")
    args = parser.parse_args()
    rng = random.Random(7)
    positives, negatives = _sentences()
    # Warm-up: regex compilation and the word-classification cache.
    for _ in range(50):
        redact(make_message(rng, 1_000, positives, negatives))
    cpu_ok = wall_ok = True
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f}")
    print(
        f"{'size':>6} {'wall p50':>9} {'wall p95':>9} {'cpu p50':>8} {'cpu p95':>8}"
        f" {'wall p95/1000':>14} {'cpu p95/1000':>13}   (ms)"
    )
    for size in SIZES:
        runs = args.runs if size < 8_000 else max(50, args.runs // 4)
        messages = [make_message(rng, size, positives, negatives) for _ in range(runs)]
        (w50, w95), (c50, c95) = measure(messages)
        wall_k, cpu_k = w95 / (size / 1000), c95 / (size / 1000)
        wall_ok = wall_ok and wall_k <= TARGET_MS_PER_1000
        cpu_ok = cpu_ok and cpu_k <= TARGET_MS_PER_1000
        print(
            f"{size:>6} {w50:>9.3f} {w95:>9.3f} {c50:>8.3f} {c95:>8.3f} {wall_k:>14.3f}"
            f" {cpu_k:>13.3f}"
        )
    # Wall time includes waiting for a CPU: on a shared machine under load it
    # measures the neighbours. CPU time of the redacting thread is what the
    # engine costs; both are reported, the verdict is on the engine.
    print(f"target p95 <= {TARGET_MS_PER_1000} ms per 1,000 characters:")
    print(f"  engine (CPU time): {'met' if cpu_ok else 'MISSED'}")
    print(f"  wall clock:        {'met' if wall_ok else 'missed'} (load average {load:.2f})")
    ok = cpu_ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
