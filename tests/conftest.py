"""Shared test fixtures: the simulated provider on loopback, users, a network guard."""

from __future__ import annotations

import ipaddress
import socket
import uuid

import pytest
from django.core.cache import cache
from django.db.backends.postgresql.operations import (
    DatabaseOperations as PostgreSQLOperations,
)

from simulated_provider.control import start_in_thread

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address) -> bool:
    if not isinstance(address, tuple):  # unix sockets
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_connect(self, address):
    if not _is_loopback(address):
        raise RuntimeError(f"tests may only reach loopback addresses, not {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if not _is_loopback(address):
        raise RuntimeError(f"tests may only reach loopback addresses, not {address!r}")
    return _real_connect_ex(self, address)


# The audit tables refuse TRUNCATE (compliance migration 0004), and pytest-django
# empties the database after each transactional test with one TRUNCATE of every
# table. The test database's owner lifts those statement triggers for that
# TRUNCATE only, inside the same transaction (DDL is transactional in
# PostgreSQL), so the row triggers the tests exercise stay in place.
_TRUNCATE_TRIGGERS = {
    "compliance_auditevent": "compliance_auditevent_refuse_truncate",
    "auditlog_logentry": "auditlog_logentry_refuse_truncate",
}
_sql_flush = PostgreSQLOperations.sql_flush


def _sql_flush_past_truncate_triggers(self, style, tables, **kwargs):
    statements = _sql_flush(self, style, tables, **kwargs)
    guarded = [(table, trigger) for table, trigger in _TRUNCATE_TRIGGERS.items()
               if table in tables]
    if not statements or not guarded:
        return statements
    return ([f"ALTER TABLE {t} DISABLE TRIGGER {g};" for t, g in guarded] + statements
            + [f"ALTER TABLE {t} ENABLE TRIGGER {g};" for t, g in guarded])


PostgreSQLOperations.sql_flush = _sql_flush_past_truncate_triggers


@pytest.fixture(autouse=True, scope="session")
def _network_guard():
    """Any connection outside 127.0.0.0/8 and ::1 fails loudly."""
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex


@pytest.fixture(autouse=True, scope="session")
def _release_pool_connections(django_db_setup):
    """The chat's database pool keeps connections (CONN_MAX_AGE): close them before the
    test database is dropped (this fixture is torn down before django_db_setup)."""
    yield
    from neonpro.blocking import close_pool_connections

    close_pool_connections()


@pytest.fixture(scope="session")
def simulator():
    handle = start_in_thread(host="127.0.0.1", port=0, token_delay_ms=0)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh_state(request):
    """Each test starts with an empty cache (rate limits, breakers) and a clean simulator."""
    cache.clear()
    if "simulator" in request.fixturenames:
        sim = request.getfixturevalue("simulator")
        sim.reset(config=True)  # faults, recordings and any configure() of an earlier test
    yield
    cache.clear()


@pytest.fixture
def ai_settings(settings, simulator):
    """Point both providers at the simulated provider, as real SDK clients over HTTP."""
    settings.OPENAI_API_KEY = "test-openai-key"
    settings.ANTHROPIC_API_KEY = "test-anthropic-key"
    settings.OPENAI_BASE_URL = f"{simulator.url}/v1"
    settings.ANTHROPIC_BASE_URL = simulator.url
    settings.AI_PRIMARY_PROVIDER = "openai"
    settings.AI_SECONDARY_PROVIDER = "anthropic"
    settings.AI_PROVIDER_TIMEOUT = 5000
    settings.RATE_LIMIT_MAX = 1000
    return settings


@pytest.fixture
def clinic(db):
    from clinics.models import Clinic

    return Clinic.objects.create(name=f"Clínica {uuid.uuid4().hex[:6]}")


@pytest.fixture
def make_user(db, clinic):
    """Creates a clinician of `clinic` (or another clinic) with consent by default."""
    from django.contrib.auth import get_user_model

    from clinics.models import ClinicMembership
    from compliance.services import consent_grant

    def make(*, username: str | None = None, consent: bool = True, member_of=clinic,
             password: str = "correct-horse-battery-staple"):
        user = get_user_model().objects.create_user(
            username=username or f"user-{uuid.uuid4().hex[:8]}", password=password
        )
        if member_of is not None:
            ClinicMembership.objects.create(user=user, clinic=member_of)
        if consent:
            consent_grant(user=user, purpose="ai_chat", ip_address="127.0.0.1",
                          user_agent="pytest")
        return user

    return make


@pytest.fixture
def clinician(make_user):
    return make_user(username="clinician-a")
