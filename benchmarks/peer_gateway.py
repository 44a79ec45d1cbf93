"""The peer in the chat benchmark: LiteLLM's proxy in front of the same simulated provider.

The most used open-source LLM gateway, measured the way a team would deploy it
without this project: `litellm[proxy]` at a pinned version, no database, a
master key, two workers, one OpenAI-compatible model pointing at the simulator.
It runs in a virtualenv of its own under `var/peer-litellm/` (created on first
use, reused after; never among the project's dependencies: its pins would fight
ours), and is driven by the harness's naive SDK loop, so that its figures sit
beside the direct baseline and the app's in the same run.

No database and no cache: the proxy then authenticates the master key only and
keeps no spend records, which is its lightest configuration (what it adds is
routing, the request and response translation, and its callbacks).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = ROOT / "var" / "peer-litellm"
# The release line the issue compares against (1.108). 1.108.7 is the newest 1.108
# release whose dependencies all resolve from the package index: 1.108.8 and later
# pin litellm-proxy-extras releases that the index does not serve.
LITELLM_VERSION = "1.108.7"
LITELLM_WORKERS = 2
# pip fetches a hundred-odd packages on first use; a cached venv is reused after.
INSTALL_TIMEOUT_S = 1800.0
READY_TIMEOUT_S = 180.0
_MARKER = ".neonpro-peer-installed"
# pip's notes about configured indexes that do not exist on this machine: noise.
_PIP_NOISE = re.compile(r"^WARNING: Location '.*' is ignored")


class PeerError(RuntimeError):
    """The peer could not be installed or started; the message says why."""


def _tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.splitlines() if line.strip() and not _PIP_NOISE.match(line)]
    return "\n".join(kept[-lines:])


def _installed_spec(venv: Path) -> str | None:
    marker = venv / _MARKER
    return marker.read_text().strip() if marker.exists() else None


def ensure_litellm(*, venv: Path = DEFAULT_VENV, version: str = LITELLM_VERSION,
                   python: str = sys.executable,
                   timeout: float = INSTALL_TIMEOUT_S) -> Path:
    """The `litellm` command of a virtualenv holding `litellm[proxy]==version`.

    Creates the virtualenv and installs on first use; reuses it when the marker
    written after a complete install names the same version (an interrupted
    install leaves no marker and is redone). Raises PeerError with pip's last
    lines when it fails.
    """
    spec = f"litellm[proxy]=={version}"
    executable = venv / "bin" / "litellm"
    if _installed_spec(venv) == spec and executable.exists():
        return executable
    steps: list[list[str]] = []
    if not (venv / "bin" / "python").exists():
        steps.append([python, "-m", "venv", str(venv)])
    steps.append([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                  "--disable-pip-version-check", spec])
    try:
        (venv / _MARKER).unlink(missing_ok=True)
    except OSError as exc:
        raise PeerError(f"installing {spec}: {venv} is not usable: {exc.strerror}") from exc
    for argv in steps:
        try:
            done = subprocess.run(argv, capture_output=True, text=True,  # noqa: S603
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PeerError(f"installing {spec} took over {timeout:.0f} s") from exc
        except OSError as exc:
            raise PeerError(f"installing {spec}: {exc}") from exc
        if done.returncode != 0:
            raise PeerError(f"installing {spec} failed (exit {done.returncode}):\n"
                            + _tail(done.stdout + done.stderr))
    if not executable.exists():
        raise PeerError(f"installing {spec} left no {executable.name} command in {venv}")
    try:
        (venv / _MARKER).write_text(spec + "\n")
    except OSError as exc:
        raise PeerError(f"installing {spec}: {venv} is not writable: {exc.strerror}") from exc
    return executable


def litellm_config(*, provider_url: str, model: str, api_key: str,
                   master_key: str) -> dict[str, Any]:
    """One OpenAI-compatible model in front of the simulator; a master key, no database."""
    return {
        "model_list": [{
            "model_name": model,
            "litellm_params": {"model": f"openai/{model}", "api_base": f"{provider_url}/v1",
                               "api_key": api_key},
        }],
        # No retries: the SDK loops on both sides of the comparison retry nothing either.
        "litellm_settings": {"num_retries": 0, "request_timeout": 60},
        "general_settings": {"master_key": master_key},
    }


def litellm_env(base: dict[str, str]) -> dict[str, str]:
    """The proxy's environment: the caller's minus anything that would give it a
    database, a cache or a provider account of its own."""
    dropped = ("DATABASE_", "DIRECT_URL", "REDIS_", "LITELLM_", "OPENAI_", "ANTHROPIC_",
               "AZURE_", "STORE_MODEL_IN_DB", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in base.items() if not k.startswith(dropped)}
    env.update(
        PYTHONUNBUFFERED="1",
        # The model cost map ships with the package; fetching it needs the internet.
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_LOG="ERROR",
        # No database (the configuration), so none of its migrations either.
        DISABLE_SCHEMA_UPDATE="true",
    )
    return env


def litellm_argv(*, executable: Path, config: Path, log_config: Path, port: int,
                 workers: int = LITELLM_WORKERS) -> list[str]:
    """The proxy's command line: uvicorn (its default server) with `workers` processes."""
    return [str(executable), "--config", str(config), "--host", "127.0.0.1",
            "--port", str(port), "--num_workers", str(workers), "--log_config", str(log_config),
            # uvicorn gives a worker 5 s to answer its supervisor's first health check,
            # and importing litellm takes longer than that on a busy machine: the worker
            # is killed and replaced, again and again.
            "--timeout_worker_healthcheck", str(int(READY_TIMEOUT_S))]


# uvicorn's own start-up lines (one "Application startup complete." per worker) but no
# access log: daphne writes none in the app phase either, and a line per request costs CPU.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain",
                            "stream": "ext://sys.stderr"}},
    "loggers": {
        "uvicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "uvicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
    },
}
STARTED_LINE = "Application startup complete."


def write_config(directory: Path, config: dict[str, Any]) -> tuple[Path, Path]:
    """The proxy's configuration and uvicorn's logging configuration, in `directory`."""
    # JSON is YAML: the proxy reads it with yaml.safe_load, and no YAML writer is needed.
    path = directory / "litellm-config.yaml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    log_path = directory / "litellm-logging.json"  # uvicorn reads .json with json.load
    log_path.write_text(json.dumps(LOG_CONFIG, indent=2) + "\n")
    return path, log_path


def process_tree(pid: int) -> list[Any]:
    """The process and all its descendants (the proxy's workers), as psutil processes."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def wait_ready(*, url: str, process: subprocess.Popen, workers: int, log: Path,
               timeout: float = READY_TIMEOUT_S) -> float:
    """Wait until every worker has started and the proxy answers its liveness check;
    returns the seconds it took. Raises PeerError when it exits or is not ready in time."""
    import httpx

    def log_tail() -> str:
        return _tail(log.read_text(errors="replace")) if log.exists() else ""

    started = time.monotonic()
    deadline = started + timeout
    while True:
        if process.poll() is not None:
            raise PeerError(f"the litellm proxy exited with status {process.returncode}:\n"
                            + log_tail())
        # One answer proves one worker; another may still be importing, and a request
        # it accepted then would be timed from the middle of its start-up.
        text = log.read_text(errors="replace") if log.exists() else ""
        if text.count(STARTED_LINE) >= workers:
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=5).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
        if time.monotonic() > deadline:
            raise PeerError(f"the litellm proxy was not ready within {timeout:.0f} s:\n"
                            + log_tail())
        time.sleep(0.5)


def stop_tree(processes: list[Any], timeout: float = 15.0) -> None:
    """Stop what is left of the proxy's process tree after its parent has been stopped."""
    import psutil

    alive = [p for p in processes if p.is_running()]
    for process in alive:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            continue
    _gone, alive = psutil.wait_procs(alive, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue


def venv_label(venv: Path) -> str:
    """The virtualenv's path relative to the clone when it is inside it (for reports)."""
    try:
        return str(venv.resolve().relative_to(ROOT))
    except ValueError:
        return os.path.basename(venv)
