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
