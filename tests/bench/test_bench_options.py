"""The harness's own option parsing (no services needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import chat_bench  # noqa: E402


def test_it_passes_app_settings_to_the_web_processes():
    assert chat_bench.app_settings(["AI_DB_THREADS=4", "GIL_SWITCH_INTERVAL_MS=1.5",
                                    "AI_SYSTEM_PROMPT=a=b"]) == {
        "AI_DB_THREADS": "4", "GIL_SWITCH_INTERVAL_MS": "1.5", "AI_SYSTEM_PROMPT": "a=b"}


@pytest.mark.parametrize("pair", ["AI_DB_THREADS", "ai_db_threads=4", "=4", "AI DB=4"])
def test_it_refuses_a_malformed_app_setting(pair):
    with pytest.raises(chat_bench.SetupError, match="NAME=VALUE"):
        chat_bench.app_settings([pair])


def test_it_runs_up_to_four_web_processes():
    args = chat_bench.parse_args(["--preset", "capacity", "--web-processes", "4"])
    assert args.web_processes == 4
    with pytest.raises(SystemExit):
        chat_bench.parse_args(["--preset", "capacity", "--web-processes", "5"])


def test_it_measures_the_litellm_peer_when_asked():
    args = chat_bench.parse_args(["--preset", "light", "--peer", "litellm"])
    assert args.peer == "litellm"
    assert args.peer_workers == 2
    assert Path(args.peer_venv) == chat_bench.peer_gateway.DEFAULT_VENV
    assert chat_bench.parse_args(["--preset", "light"]).peer is None


@pytest.mark.parametrize("argv", [
    ["--peer", "kong"],
    ["--peer", "litellm", "--skip-baseline"],
    ["--peer", "litellm", "--peer-workers", "0"],
])
def test_it_refuses_a_peer_it_cannot_measure(argv, capsys):
    with pytest.raises(SystemExit):
        chat_bench.parse_args(["--preset", "light", *argv])
    assert "--peer" in capsys.readouterr().err


def test_it_has_a_5000_session_capacity_preset():
    args = chat_bench.parse_args(["--preset", "capacity-5000"])
    assert (args.sessions, args.mode, args.rate, args.duration) == (5000, "open", 84.0, 60.0)
    assert args.token_delay_ms == 20.0
    assert args.web_processes == 3
    # A smoke run of the same shape, smaller.
    small = chat_bench.parse_args(["--preset", "capacity-5000", "--sessions", "200",
                                   "--duration", "10"])
    assert (small.sessions, small.rate, small.duration) == (200, 84.0, 10.0)


def _capacity_result(*, errors=0, lost=0, ttft_p95=30.0, rss=900.0, opened=5000, failed=None):
    return {
        "errors": errors, "lost": lost, "config": {"sessions": 5000},
        "overhead_ms": {"ttft": {"p95": ttft_p95}, "total": {"p95": 80.0}},
        "app": {"server": {"peak_rss_mib": rss},
                "connections": {"opened": opened, "failed": failed or {}}},
    }


def test_it_judges_the_5000_session_targets():
    targets = chat_bench.evaluate_targets("capacity-5000", _capacity_result())
    assert [t["target"] for t in targets] == [
        "errors == 0", "lost == 0", "ttft overhead p95 <= 50 ms", "server RSS <= 1024 MiB",
        "all 5000 connections opened"]
    assert all(t["met"] for t in targets)


@pytest.mark.parametrize(("changes", "missed"), [
    ({"ttft_p95": 50.5}, "ttft overhead p95 <= 50 ms"),
    ({"rss": 1100.0}, "server RSS <= 1024 MiB"),
    ({"opened": 4990, "failed": {"TimeoutError": 10}}, "all 5000 connections opened"),
    ({"opened": 4990}, "all 5000 connections opened"),
    ({"lost": 1}, "lost == 0"),
])
def test_it_reports_a_missed_5000_session_target(changes, missed):
    targets = chat_bench.evaluate_targets("capacity-5000", _capacity_result(**changes))
    assert [t["target"] for t in targets if not t["met"]] == [missed]


def _limits(sessions=5000, web=3, pooler="pgbouncer", open_files=20000, pg_free=90,
            redis_free=9000, ports=28232, threads=8):
    args = chat_bench.parse_args(["--preset", "capacity-5000", "--sessions", str(sessions),
                                  "--web-processes", str(web), "--db-pooler", pooler])
    return chat_bench.check_connection_limits(
        args, open_files=open_files, db_threads=threads,
        postgres={"max_connections": 100, "in_use": 7, "free": pg_free},
        redis_clients={"maxclients": 10000, "in_use": 3, "free": redis_free},
        port_range=ports)


def test_it_checks_what_5000_websockets_need_from_the_machine():
    limits = _limits()
    assert limits["open_files"]["harness_needs"] == 2 * 5000 + 256
    assert limits["postgres_connections"]["needed"] == 25 + 4  # PgBouncer's pool + harness
    assert limits["postgres_connections"]["db_threads_per_process"] == 8
    # Without the pooler each web process's database threads connect directly.
    assert _limits(pooler="none")["postgres_connections"]["needed"] == 3 * (8 + 2) + 4


@pytest.mark.parametrize(("changes", "message"), [
    ({"open_files": 4096}, "open-files limit 4096 is too low for 5000 sessions"),
    ({"pooler": "none", "pg_free": 20}, "PostgreSQL has 20 connections free"),
    ({"pg_free": 10}, "raise max_connections"),
    ({"threads": 400}, "exceed PgBouncer's max_client_conn"),
    ({"redis_free": 5}, "Redis has 5 clients free"),
    ({"ports": 8000}, "ephemeral port range holds 8000 ports"),
])
def test_it_refuses_to_start_when_a_limit_is_too_low(changes, message):
    with pytest.raises(chat_bench.SetupError, match=message):
        _limits(**changes)
