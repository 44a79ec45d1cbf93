"""The chat benchmark harness runs end to end: simulator, database, daphne, WebSocket
clients, the direct-SDK baseline, a phase during the retention purge, and a JSON
report with nothing lost.

No timing is asserted: this proves the harness works, BENCHMARKS.md holds the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "benchmarks" / "chat_bench.py"
REPORT_KEYS = {"preset", "config", "messages", "errors", "accepted", "stored", "lost", "app",
               "baseline", "overhead_ms", "throughput_ratio", "database", "targets"}
PHASE_KEYS = {"messages", "errors", "errors_by_code", "throughput_msg_s", "ttft_ms", "total_ms"}


def test_it_runs_the_smoke_preset_and_loses_nothing(bench_database_url, tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("the benchmark needs REDIS_URL (a Redis db it may flush)")
    output = tmp_path / "smoke.json"
    result = subprocess.run(
        [sys.executable, str(HARNESS), "--preset", "smoke", "--output", str(output),
         "--database-url", bench_database_url, "--purge-messages", "2000",
         # This run's own Redis db: the harness flushes it before starting.
         "--redis-url", settings.REDIS_URL],
        cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(output.read_text())
    assert REPORT_KEYS <= report.keys()
    assert PHASE_KEYS <= report["app"].keys()
    assert PHASE_KEYS <= report["baseline"].keys()
    assert report["messages"] > 0
    assert report["baseline"]["messages"] > 0
    assert report["errors"] == 0, report["app"]["errors_by_code"]
    assert report["lost"] == 0
    assert report["accepted"] == report["stored"] >= report["messages"]
    assert report["app"]["ttft_ms"]["n"] == report["messages"]
    assert report["overhead_ms"]["ttft"]["p50"] is not None
    assert "chat_bench preset=smoke" in result.stdout
    # The purge deleted exactly the messages past retention while the chat went on,
    # and no live message (all counted in accepted == stored above) was touched.
    during = report["during_purge"]
    assert during["purge"]["expected_messages"] == during["purge"]["messages"] == 1800
    assert during["app"]["messages"] > 0 and during["app"]["errors"] == 0
    assert during["ratio_to_idle"]["ttft"]["p95"] is not None
