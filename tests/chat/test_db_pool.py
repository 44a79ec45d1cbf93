"""The blocking-code pool: kept connections are pinged only after sitting idle."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from neonpro import blocking

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kept_connections(monkeypatch):
    """One pool thread whose connection is kept between steps as in production (the
    suite closes connections by default), with every health-check ping counted."""
    single_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blocking-test")
    monkeypatch.setattr(blocking, "_executor", single_thread)
    wrapper = connections["default"]  # every thread's wrapper shares this settings dict
    monkeypatch.setitem(wrapper.settings_dict, "CONN_MAX_AGE", 60)
    pings = []
    wrapper_class = type(wrapper)
    real_is_usable = wrapper_class.is_usable

    def counted_is_usable(self):
        pings.append(self)
        return real_is_usable(self)

    monkeypatch.setattr(wrapper_class, "is_usable", counted_is_usable)
    yield pings
    single_thread.submit(connections.close_all).result()
    single_thread.shutdown()


def _query() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 41 + 1")
        return cursor.fetchone()[0]


def _failing_query() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")


def _steps(*functions) -> list:
    async def run() -> list:
        results = []
        for function in functions:
            try:
                results.append(await blocking.run_blocking(function))
            except Exception as exc:  # noqa: BLE001 - the test looks at what was raised
                results.append(exc)
        return results

    return asyncio.run(run())


def test_a_connection_used_moments_ago_is_not_pinged_again(kept_connections, monkeypatch):
    results = _steps(*[_query] * 30)
    assert results == [42] * 30
    # The thread opened its connection once; no step pinged it again.
    assert kept_connections == []


def test_a_connection_idle_past_the_window_is_pinged_before_use(kept_connections, monkeypatch):
    assert _steps(_query) == [42]
    monkeypatch.setattr(blocking, "RECENTLY_VERIFIED_S", 0.0)
    assert _steps(_query, _query) == [42, 42]
    assert len(kept_connections) == 2


def test_after_a_database_error_the_connection_is_checked_and_kept_only_if_it_works(
        kept_connections):
    results = _steps(_query, _failing_query, _query)
    assert results[0] == 42 and results[2] == 42
    assert "no_such_table" in str(results[1])
    # Django checks a connection that saw an error at the end of the failing step.
    assert len(kept_connections) == 1
