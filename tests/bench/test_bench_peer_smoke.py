"""The benchmark's peer phase end to end: LiteLLM's proxy, installed into its own
virtualenv under var/ (first run only: pip fetches about a hundred packages; later
runs reuse it), started in front of the simulator, driven by the naive SDK loop,
stopped with its whole process tree; and a peer that cannot be installed does not
stop the run but turns its exit status to 3.

No timing is asserted: this proves the phase works, BENCHMARKS.md holds the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "benchmarks" / "chat_bench.py"
sys.path.insert(0, str(ROOT))

from benchmarks import peer_gateway  # noqa: E402

pytestmark = pytest.mark.peer


@pytest.fixture
def litellm_venv():
    """The cached virtualenv with the pinned proxy; skipped where it cannot be installed."""
    try:
        peer_gateway.ensure_litellm()
    except peer_gateway.PeerError as exc:
        pytest.skip(f"LiteLLM's proxy cannot be installed here (no package index?): {exc}")
    return peer_gateway.DEFAULT_VENV


def _bench(*argv: str, output: Path, database_url: str) -> subprocess.CompletedProcess:
    if not settings.REDIS_URL:
        pytest.skip("the benchmark needs REDIS_URL (a Redis db it may flush)")
    return subprocess.run(
        [sys.executable, str(HARNESS), "--preset", "smoke", "--output", str(output),
         "--database-url", database_url, "--redis-url", settings.REDIS_URL, *argv],
        cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.timeout(2400)  # the first run installs the proxy
def test_it_measures_the_litellm_proxy_beside_the_app(litellm_venv, bench_database_url,
                                                      tmp_path):
    output = tmp_path / "peer.json"
    result = _bench("--peer", "litellm", "--messages", "12", output=output,
                    database_url=bench_database_url)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(output.read_text())
    peer = report["peer"]
    assert peer["error"] is None
    assert (peer["name"], peer["version"], peer["workers"]) == (
        "litellm", peer_gateway.LITELLM_VERSION, 2)
    assert peer["messages"] == 12 and peer["errors"] == 0
    assert peer["ttft_ms"]["n"] == 12
    assert peer["overhead_ms"]["ttft"]["p50"] is not None
    assert peer["overhead_ms"]["ttft"]["p95"] is not None
    assert peer["server_cpu_ms_per_message"] > 0
    assert peer["app_cpu_ratio"] > 0
    # Supervisor and two workers at least, all measured and all stopped afterwards.
    processes = peer["server"]["processes"]
    assert len(processes) >= 3
    assert sum(p["cpu_s"] for p in processes) > 0
    for process in processes:
        assert not psutil.pid_exists(process["pid"]) or "litellm" not in " ".join(
            psutil.Process(process["pid"]).cmdline())
    # The app and the baseline are measured as without the peer.
    assert report["errors"] == 0 and report["lost"] == 0
    assert report["baseline"]["messages"] == report["messages"] == 12
    assert f"litellm proxy {peer_gateway.LITELLM_VERSION}" in result.stdout
    assert "overhead (peer - SDK)" in result.stdout


@pytest.mark.timeout(600)
def test_it_runs_on_without_a_peer_it_cannot_install(bench_database_url, tmp_path):
    output = tmp_path / "no-peer.json"
    # A virtualenv that cannot be created: under a regular file.
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _bench("--peer", "litellm", "--peer-venv", str(blocker / "venv"),
                    output=output, database_url=bench_database_url)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    assert "the run goes on without the peer" in result.stderr
    report = json.loads(output.read_text())
    assert report["peer"]["error"].startswith("installing litellm[proxy]==")
    assert "messages" not in report["peer"]
    # Everything else was measured and passed.
    assert report["errors"] == 0 and report["lost"] == 0 and report["messages"] > 0
    assert report["baseline"]["messages"] > 0
