"""Redaction latency: p50/p95 of `redact` on realistic clinical messages.

Messages of about 200, 1,000 and 8,000 characters mix clean clinical text
(doses, prices, procedure dates, lot numbers, products) with some personal
data (names, CPF, phones, e-mails, addresses). Each size is measured on many
different messages so caches of repeated text do not flatter the figures.

    python benchmarks/redaction_bench.py [--runs 400]

Target: p95 <= 2 ms per 1,000 characters.
"""

from __future__ import annotations

import argparse
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


def measure(messages: list[str]) -> tuple[float, float]:
    timings = []
    for message in messages:
        start = time.perf_counter()
        redact(message)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[min(len(timings) - 1, int(round(0.95 * len(timings))) - 1)]
    return p50, p95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="messages per size")
    args = parser.parse_args()
    rng = random.Random(7)
    positives, negatives = _sentences()
    # Warm-up: regex compilation and the word-classification cache.
    for _ in range(50):
        redact(make_message(rng, 1_000, positives, negatives))
    ok = True
    print(f"{'size':>6} {'p50 ms':>8} {'p95 ms':>8} {'p95 ms/1000 chars':>18}")
    for size in SIZES:
        runs = args.runs if size < 8_000 else max(50, args.runs // 4)
        messages = [make_message(rng, size, positives, negatives) for _ in range(runs)]
        p50, p95 = measure(messages)
        per_k = p95 / (size / 1000)
        ok = ok and per_k <= TARGET_MS_PER_1000
        print(f"{size:>6} {p50:>8.3f} {p95:>8.3f} {per_k:>18.3f}")
    print(f"target p95 <= {TARGET_MS_PER_1000} ms per 1,000 characters: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
