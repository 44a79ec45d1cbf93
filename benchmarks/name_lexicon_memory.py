"""Memory and load time the name lexicons add to a process.

    python benchmarks/name_lexicon_memory.py

Loads the lexicons the way a web process does on its first redaction
(`lexicon.tables()`) and prints the Python heap they hold (tracemalloc) and
the growth of the resident set (RSS, from /proc/self/statm), plus the load
time. Run it in a fresh interpreter: nothing else is imported first.
"""

from __future__ import annotations

import gc
import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    from compliance.redaction import lexicon

    gc.collect()
    rss_before = _rss_bytes()
    tracemalloc.start()
    started = time.perf_counter()
    census, exact, folded, places = lexicon.tables()
    elapsed = time.perf_counter() - started
    gc.collect()
    heap, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = _rss_bytes()
    # A second measurement without tracemalloc's own bookkeeping in the RSS figure.
    print(f"entries: census {len(census):,}, hand lists {len(exact):,}, places {len(places):,}")
    print(f"load time: {elapsed * 1000:.0f} ms (with tracemalloc on)")
    print(f"Python heap held: {heap / 2**20:.1f} MiB")
    print(f"RSS growth: {(rss_after - rss_before) / 2**20:.1f} MiB (includes tracemalloc overhead)")


def main_rss_only() -> None:
    from compliance.redaction import lexicon

    gc.collect()
    before = _rss_bytes()
    started = time.perf_counter()
    lexicon.tables()
    elapsed = time.perf_counter() - started
    gc.collect()
    print(
        f"RSS growth without tracemalloc: {(_rss_bytes() - before) / 2**20:.1f} MiB, "
        f"load time {elapsed * 1000:.0f} ms"
    )


if __name__ == "__main__":
    if "--rss-only" in sys.argv:
        main_rss_only()
    else:
        main()
