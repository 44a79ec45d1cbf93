"""The peer's proxy: configuration, environment, install and start-up errors (no network)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import peer_gateway  # noqa: E402


def test_it_points_one_openai_model_at_the_simulator_with_a_master_key_and_no_database():
    config = peer_gateway.litellm_config(provider_url="http://127.0.0.1:9999", model="gpt-4o-mini",
                                         api_key="sim-key", master_key="sk-bench-1")
    (entry,) = config["model_list"]
    assert entry == {"model_name": "gpt-4o-mini", "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9999/v1",
        "api_key": "sim-key"}}
    assert config["general_settings"] == {"master_key": "sk-bench-1"}
    assert config["litellm_settings"]["num_retries"] == 0


def test_it_keeps_the_benchmarks_database_and_accounts_from_the_proxy():
    env = peer_gateway.litellm_env({
        "PATH": "/usr/bin", "DATABASE_URL": "postgres://x/neonpro_bench",
        "REDIS_URL": "redis://127.0.0.1:6379/9", "OPENAI_API_KEY": "k",
        "LITELLM_MASTER_KEY": "other", "STORE_MODEL_IN_DB": "True"})
    assert env["PATH"] == "/usr/bin"
    for name in ("DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "LITELLM_MASTER_KEY",
                 "STORE_MODEL_IN_DB"):
        assert name not in env
    # Offline: the cost map ships with the package.
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


def test_it_starts_the_proxy_with_two_workers_on_loopback(tmp_path):
    argv = peer_gateway.litellm_argv(executable=tmp_path / "litellm", config=tmp_path / "c",
                                     log_config=tmp_path / "l", port=4321)
    assert argv[argv.index("--num_workers") + 1] == "2"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "4321"
    config, log_config = peer_gateway.write_config(tmp_path, {"model_list": []})
    import json

    assert json.loads(config.read_text()) == {"model_list": []}  # JSON is YAML
    assert json.loads(log_config.read_text())["loggers"]["uvicorn.access"]["level"] == "WARNING"


def test_it_reuses_a_complete_install(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "litellm").write_text("")
    (venv / ".neonpro-peer-installed").write_text("litellm[proxy]==1.0.0\n")
    # No interpreter to run: reuse must not start one.
    assert peer_gateway.ensure_litellm(venv=venv, version="1.0.0",
                                       python="/nonexistent/python") == venv / "bin" / "litellm"


def test_it_says_why_the_install_failed(tmp_path):
    venv = tmp_path / "venv"
    with pytest.raises(peer_gateway.PeerError, match=r"installing litellm\[proxy\]==1\.0\.0"):
        peer_gateway.ensure_litellm(venv=venv, version="1.0.0", python="/nonexistent/python")
    # An install of another version is not reused: pip runs, and what it said is reported.
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "litellm").write_text("")
    (venv / ".neonpro-peer-installed").write_text("litellm[proxy]==0.9.0\n")
    pip = venv / "bin" / "python"
    pip.write_text("#!/bin/sh\necho 'ERROR: No matching distribution found' >&2\nexit 1\n")
    pip.chmod(0o755)
    with pytest.raises(peer_gateway.PeerError,
                       match=r"failed \(exit 1\):\nERROR: No matching distribution found"):
        peer_gateway.ensure_litellm(venv=venv, version="1.0.0")
    assert not (venv / ".neonpro-peer-installed").exists()


def test_it_says_when_the_virtualenv_cannot_be_where_it_was_asked(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(peer_gateway.PeerError,
                       match=r"installing litellm\[proxy\]==1\.0\.0: .* is not usable"):
        peer_gateway.ensure_litellm(venv=blocker / "venv", version="1.0.0")


def test_it_reports_a_proxy_that_exits_during_start_up(tmp_path):
    log = tmp_path / "peer.log"
    log.write_text("boom: the configuration is invalid\n")
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    process.wait(30)
    with pytest.raises(peer_gateway.PeerError, match=r"exited with status 3:\nboom"):
        peer_gateway.wait_ready(url="http://127.0.0.1:9", process=process, workers=2, log=log)


def test_it_gives_up_on_a_proxy_that_never_becomes_ready(tmp_path):
    log = tmp_path / "peer.log"
    log.write_text("Application startup complete.\n")  # one worker of two
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(peer_gateway.PeerError, match="not ready within 1 s"):
            peer_gateway.wait_ready(url="http://127.0.0.1:9", process=process, workers=2,
                                    log=log, timeout=1)
    finally:
        process.kill()
        process.wait(10)
