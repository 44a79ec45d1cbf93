"""/api/health, /api/v1/ai-chat/health and the orchestrator probes, against real PostgreSQL,
Redis and the simulated provider; outages are real closed or silent ports on loopback."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import Group
from django.db import connections
from django.test import Client

from chat.providers import circuit
from compliance.redaction import ENTITY_TYPES
from tests.chat.helpers import api_client

TOKEN = "monitoring-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SESSIONS = "/api/v1/ai-chat/sessions/"
# Sessions are signed in with the password backend (the first backend only refuses).

SYSTEM_KEYS = {"status", "timestamp", "version", "environment", "services", "metrics"}
CHAT_KEYS = {"status", "sessionCapacity", "providerStatus", "compliance", "performance"}
SUMMARY_KEYS = {"status", "timestamp", "version"}


# --- helpers ------------------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def silent_server():
    """A TCP server on loopback that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def redis_cache_at(port: int, *, socket_timeout: float = 30) -> dict:
    return {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{port}/0",
        "OPTIONS": {"socket_connect_timeout": socket_timeout, "socket_timeout": socket_timeout},
    }}


@contextmanager
def database_at(port: int):
    """New connections (every thread) go to `port`; the test's own connection stays."""
    settings_dict = connections.settings["default"]
    original = settings_dict["PORT"]
    settings_dict["PORT"] = str(port)
    try:
        yield
    finally:
        settings_dict["PORT"] = original


@pytest.fixture
def monitoring(ai_settings):
    ai_settings.MONITORING_TOKEN = TOKEN
    ai_settings.AI_SESSION_CAPACITY = 2500
    return ai_settings


@pytest.fixture
def cache_outage_cleanup():
    """The breaker steps aside for a few seconds after a cache error; later tests need it back."""
    yield
    circuit._cache_down_until = 0.0


def get(path: str, **headers):
    return Client().get(path, headers=headers)


def chat(user, text: str = "Quais cuidados após o peeling?") -> dict:
    client = api_client(user)
    session = client.post(SESSIONS, {"title": "Consulta"}, format="json")
    assert session.status_code == 201, session.content
    answer = client.post(f"{SESSIONS}{session.json()['id']}/messages/", {"content": text},
                         format="json")
    return {"session": session.json(), "status": answer.status_code, "body": answer.json()}


# --- shapes with everything up -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_reports_the_documented_system_shape_with_live_figures(monitoring):
    response = get("/api/health", **AUTH)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"].startswith("max-age=0")
    body = response.json()
    assert set(body) == SYSTEM_KEYS
    assert body["status"] == "healthy", body
    assert body["version"] == monitoring.APP_VERSION
    assert body["environment"] == monitoring.ENVIRONMENT
    assert body["timestamp"].endswith("Z")
    assert set(body["services"]) == {"database", "aiProviders", "cache"}

    database = body["services"]["database"]
    assert set(database) == {"status", "responseTime", "connections"}
    assert database["status"] == "healthy"
    assert 0 <= database["responseTime"] < 500
    connections_ = database["connections"]
    assert set(connections_) == {"active", "idle", "total"}
    # The check's own query is an active client connection of this database.
    assert connections_["active"] >= 1
    assert connections_["total"] >= connections_["active"] + connections_["idle"]

    providers = body["services"]["aiProviders"]
    assert set(providers) == {"openai", "anthropic"}
    for figures in providers.values():
        assert set(figures) == {"status", "responseTime", "quotaRemaining"}
        assert figures["status"] == "healthy"
        assert figures["responseTime"] >= 0
        # The simulated provider sends rate-limit headers with its model list too.
        assert isinstance(figures["quotaRemaining"], int) and figures["quotaRemaining"] > 0

    cache = body["services"]["cache"]
    assert set(cache) == {"status", "hitRate", "memoryUsage"}
    assert cache["status"] == "healthy"
    assert 0 <= cache["hitRate"] <= 1  # the round trip itself was a hit
    assert re.fullmatch(r"\d+(\.\d+)?[KMGTP]?B", cache["memoryUsage"]), cache["memoryUsage"]

    assert body["metrics"] == {"activeSessions": 0, "requestsPerMinute": 0,
                               "averageResponseTime": None, "errorRate": None}
    assert "activeeSessions" not in body["metrics"]


@pytest.mark.django_db(transaction=True)
def test_it_reports_the_documented_ai_chat_shape(monitoring):
    response = get("/api/v1/ai-chat/health", **AUTH)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == CHAT_KEYS
    assert body["status"] == "operational"
    assert body["sessionCapacity"] == {"current": 0, "maximum": 2500, "utilizationPercent": 0.0}
    assert body["providerStatus"] == {"primary": "openai", "secondary": "anthropic",
                                      "failoverReady": True}
    assert body["compliance"] == {"piiRedactionActive": True, "auditLoggingActive": True,
                                  "consentValidationActive": True,
                                  "piiPolicy": dict.fromkeys(ENTITY_TYPES, "tag")}
    assert body["performance"] == {"averageResponseTime": None, "streamingLatency": None,
                                   "successRate": None}


@pytest.mark.django_db(transaction=True)
def test_it_shows_the_pii_policy_in_force_under_compliance(monitoring, settings):
    settings.PII_POLICY = "NOME:surrogate,CPF:block"
    body = get("/api/v1/ai-chat/health", **AUTH).json()
    assert body["compliance"]["piiPolicy"] == {**dict.fromkeys(ENTITY_TYPES, "tag"),
                                               "NOME": "surrogate", "CPF": "block"}
    assert "piiPolicy" not in json.dumps(get("/api/v1/ai-chat/health").json())


@pytest.mark.django_db(transaction=True)
def test_it_measures_sessions_traffic_latency_and_errors_from_stored_messages(
        monitoring, make_user, simulator):
    monitoring.AI_SESSION_CAPACITY = 8
    user = make_user()
    for _ in range(2):
        assert chat(user)["status"] == 201
    simulator.set_fault("openai", status=500)
    simulator.set_fault("anthropic", status=500)
    failed = chat(user)
    assert failed["status"] == 503 and failed["body"]["code"] == "provider_unavailable"
    simulator.clear_faults()

    body = get("/api/health", **AUTH).json()
    metrics = body["metrics"]
    assert metrics["activeSessions"] == 3
    assert metrics["requestsPerMinute"] == 3
    assert metrics["averageResponseTime"] > 0
    assert metrics["errorRate"] == pytest.approx(1 / 3, abs=1e-4)
    # One answer in three failed: far above 5 %.
    assert body["status"] == "degraded"

    chat_body = get("/api/v1/ai-chat/health", **AUTH).json()
    assert chat_body["sessionCapacity"] == {"current": 3, "maximum": 8,
                                            "utilizationPercent": 37.5}
    performance = chat_body["performance"]
    assert performance["successRate"] == pytest.approx(66.67, abs=0.01)
    assert performance["averageResponseTime"] == metrics["averageResponseTime"]
    assert 0 < performance["streamingLatency"] <= performance["averageResponseTime"]
    assert chat_body["status"] == "degraded"


@pytest.mark.django_db(transaction=True)
def test_it_reports_degraded_at_high_session_utilization(monitoring, make_user):
    monitoring.AI_SESSION_CAPACITY = 1
    client = api_client(make_user())
    assert client.post(SESSIONS, {}, format="json").status_code == 201
    body = get("/api/v1/ai-chat/health", **AUTH).json()
    assert body["sessionCapacity"]["utilizationPercent"] == 100.0
    assert body["status"] == "degraded"


# --- providers down -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_degrades_when_one_provider_is_down_and_failover_still_works(monitoring, simulator):
    simulator.set_fault("openai", status=500, paths="*")
    system = get("/api/health", **AUTH)
    assert system.status_code == 200
    providers = system.json()["services"]["aiProviders"]
    assert providers["openai"]["status"] == "unhealthy"
    assert providers["anthropic"]["status"] == "healthy"
    assert system.json()["status"] == "degraded"

    chat_health = get("/api/v1/ai-chat/health", **AUTH)
    assert chat_health.status_code == 200
    assert chat_health.json()["status"] == "degraded"
    assert chat_health.json()["providerStatus"]["failoverReady"] is True


@pytest.mark.django_db(transaction=True)
def test_it_is_unavailable_for_chat_but_only_degraded_for_the_system_when_both_providers_fail(
        monitoring, simulator):
    monitoring.ANTHROPIC_BASE_URL = f"http://127.0.0.1:{closed_port()}"
    simulator.set_fault("openai", status=503, paths="*")
    system = get("/api/health", **AUTH)
    assert system.status_code == 200
    assert system.json()["status"] == "degraded"
    assert {p["status"] for p in system.json()["services"]["aiProviders"].values()} == {
        "unhealthy"}

    chat_health = get("/api/v1/ai-chat/health", **AUTH)
    assert chat_health.status_code == 503
    assert chat_health.json()["status"] == "unavailable"
    # Nothing to fail over to: the secondary is down too.
    assert chat_health.json()["providerStatus"]["failoverReady"] is False


@pytest.mark.django_db(transaction=True)
def test_it_reports_failover_not_ready_when_only_the_secondary_is_down(monitoring, simulator):
    simulator.set_fault("anthropic", status=503, paths="*")
    body = get("/api/v1/ai-chat/health", **AUTH).json()
    assert body["status"] == "degraded"
    assert body["providerStatus"]["failoverReady"] is False


@pytest.mark.django_db(transaction=True)
def test_it_reports_failover_not_ready_when_the_secondary_circuit_is_open(
        monitoring, make_user, simulator):
    monitoring.ANTHROPIC_API_KEY = "invalid-key"  # the simulator answers 401 to it
    simulator.set_fault("openai", status=500, times=1)
    # The primary fails once, the secondary rejects our key: its circuit opens at once.
    assert chat(make_user())["status"] == 503
    body = get("/api/v1/ai-chat/health", **AUTH).json()
    assert body["providerStatus"]["failoverReady"] is False
    system = get("/api/health", **AUTH).json()
    assert system["services"]["aiProviders"]["anthropic"]["status"] == "unhealthy"


# --- database and Redis down ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_is_unhealthy_with_503_when_the_database_is_unreachable(monitoring):
    with database_at(closed_port()):
        system = get("/api/health", **AUTH)
        chat_health = get("/api/v1/ai-chat/health", **AUTH)
        ready = get("/api/health/ready")
        live = get("/api/health/live")
    assert system.status_code == 503
    body = system.json()
    assert body["status"] == "unhealthy"
    assert body["services"]["database"] == {
        "status": "unhealthy", "responseTime": None,
        "connections": {"active": None, "idle": None, "total": None}}
    assert body["metrics"]["activeSessions"] is None
    assert chat_health.status_code == 503 and chat_health.json()["status"] == "unavailable"
    assert ready.status_code == 503 and ready.json()["checks"]["database"] == "failed"
    assert live.status_code == 200 and live.json()["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_it_is_unhealthy_when_redis_is_unreachable(monitoring, cache_outage_cleanup):
    port = closed_port()
    monitoring.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    monitoring.CACHES = redis_cache_at(port)
    system = get("/api/health", **AUTH)
    assert system.status_code == 503
    assert system.json()["status"] == "unhealthy"
    assert system.json()["services"]["cache"] == {"status": "unhealthy", "hitRate": None,
                                                  "memoryUsage": None}
    assert system.json()["services"]["database"]["status"] == "healthy"
    chat_health = get("/api/v1/ai-chat/health", **AUTH)
    assert chat_health.status_code == 503 and chat_health.json()["status"] == "unavailable"
    ready = get("/api/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "cache": "failed"}


@pytest.mark.django_db(transaction=True)
def test_it_reports_local_memory_cache_figures_as_null(monitoring):
    monitoring.REDIS_URL = ""
    monitoring.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    body = get("/api/health", **AUTH).json()
    assert body["services"]["cache"] == {"status": "healthy", "hitRate": None,
                                         "memoryUsage": None}
    assert get("/api/health/ready").json()["checks"] == {"database": "ok", "cache": "ok"}


# --- a dependency that hangs ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_answers_within_its_bound_when_redis_hangs(monitoring, cache_outage_cleanup):
    with silent_server() as port:
        monitoring.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        monitoring.CACHES = redis_cache_at(port, socket_timeout=10)
        for path in ("/api/health", "/api/v1/ai-chat/health", "/api/health/ready"):
            started = time.monotonic()
            response = get(path, **AUTH)
            elapsed = time.monotonic() - started
            # The checks wait 2 s; the cache client would wait 10 s for each command.
            assert elapsed < 4.0, (path, elapsed)
            assert response.status_code == 503, path
        assert get("/api/health", **AUTH).json()["services"]["cache"]["status"] == "unhealthy"


@pytest.mark.django_db(transaction=True)
def test_it_answers_within_its_bound_when_the_database_hangs(monitoring):
    with silent_server() as port, database_at(port):
        started = time.monotonic()
        response = get("/api/health", **AUTH)
        elapsed = time.monotonic() - started
    assert elapsed < 4.0, elapsed
    assert response.status_code == 503
    assert response.json()["services"]["database"]["status"] == "unhealthy"


# --- who sees details ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_shows_only_the_summary_without_the_token(monitoring):
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}):
        for path in ("/api/health", "/api/v1/ai-chat/health"):
            response = get(path, **headers)
            assert response.status_code == 200
            assert set(response.json()) == SUMMARY_KEYS, (path, headers)
    assert set(get("/api/health", **AUTH).json()) == SYSTEM_KEYS
    assert set(get("/api/v1/ai-chat/health", **AUTH).json()) == CHAT_KEYS


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_503_in_the_summary(monitoring):
    with database_at(closed_port()):
        response = get("/api/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert set(response.json()) == SUMMARY_KEYS


@pytest.mark.django_db(transaction=True)
def test_it_shows_details_to_staff_and_operations_sessions(monitoring, make_user):
    staff = make_user(username="ops-staff")
    staff.is_staff = True
    staff.save()
    operator = make_user(username="ops-member")
    operator.groups.add(Group.objects.get_or_create(name="Operations")[0])
    clinician = make_user(username="plain-clinician")
    for user, keys in ((staff, SYSTEM_KEYS), (operator, SYSTEM_KEYS),
                       (clinician, SUMMARY_KEYS)):
        client = Client()
        client.force_login(user)
        assert set(client.get("/api/health").json()) == keys, user.username


@pytest.mark.django_db(transaction=True)
def test_without_a_token_only_staff_sessions_see_details_even_in_debug(monitoring, make_user):
    monitoring.MONITORING_TOKEN = ""
    staff = make_user(username="staff-without-token")
    staff.is_staff = True
    staff.save()
    client = Client()
    client.force_login(staff)
    for debug in (False, True):
        monitoring.DEBUG = debug
        assert set(get("/api/health").json()) == SUMMARY_KEYS, debug
        assert set(get("/api/v1/ai-chat/health").json()) == {"status", "timestamp",
                                                             "version"}, debug
        assert set(client.get("/api/v1/ai-chat/health").json()) == CHAT_KEYS, debug


@pytest.mark.django_db(transaction=True)
def test_it_serves_liveness_without_credentials_or_dependencies(monitoring):
    response = get("/api/health/live")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    ready = get("/api/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"] == {"database": "ok", "cache": "ok"}
