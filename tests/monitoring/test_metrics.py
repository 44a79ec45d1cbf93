"""/api/metrics: access rule, every ai_chat_* family, figures that move with real chats, and
multiprocess aggregation across real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.chat.helpers import api_client
from tests.support import subprocess_database_url

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SESSIONS = "/api/v1/ai-chat/sessions/"
# Sessions are signed in with the password backend (the first backend only refuses).

# The names the alert rules and dashboards expect from the scrape-time collector.
SCRAPE_TIME_FAMILIES = {
    "ai_chat_sessions_total", "ai_chat_session_utilization", "ai_chat_circuit_state",
    "ai_chat_provider_quota_remaining", "ai_chat_process_memory_usage_percent", "ai_chat_db_up",
}


def scrape(client: Client | None = None, **headers) -> str:
    response = (client or Client()).get("/api/metrics", headers=headers or AUTH)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def sample_names(text: str) -> set[str]:
    return {name for name, _ in samples(text)}


@pytest.fixture
def monitoring(ai_settings):
    ai_settings.MONITORING_TOKEN = TOKEN
    ai_settings.MONITORING_ENABLED = True
    return ai_settings


def chat(user, text="Qual o intervalo entre sessões de laser?", *, expect=201):
    client = api_client(user)
    session = client.post(SESSIONS, {}, format="json")
    assert session.status_code == 201, session.content
    answer = client.post(f"{SESSIONS}{session.json()['id']}/messages/", {"content": text},
                         format="json")
    assert answer.status_code == expect, answer.content
    return session.json()


# --- access ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_refuses_metrics_without_the_token_or_a_staff_session(monitoring, make_user):
    anonymous = Client().get("/api/metrics")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/api/metrics",
                        headers={"Authorization": "Bearer nope"}).status_code == 401
    clinician = Client()
    clinician.force_login(make_user(username="metrics-clinician"))
    assert clinician.get("/api/metrics").status_code == 401
    staff_user = make_user(username="metrics-staff")
    staff_user.is_staff = True
    staff_user.save()
    staff = Client()
    staff.force_login(staff_user)
    assert "ai_chat_db_up" in scrape(staff, Accept="text/plain")
    assert "ai_chat_db_up" in scrape()


@pytest.mark.django_db(transaction=True)
def test_without_a_token_metrics_stay_closed_to_anonymous_clients_even_in_debug(monitoring):
    monitoring.MONITORING_TOKEN = ""
    for debug in (False, True):
        monitoring.DEBUG = debug
        assert Client().get("/api/metrics").status_code == 401, debug


@pytest.mark.django_db(transaction=True)
def test_it_turns_metrics_off_when_monitoring_is_disabled(monitoring):
    monitoring.MONITORING_ENABLED = False
    assert Client().get("/api/metrics", headers=AUTH).status_code == 404


# --- families ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_exports_django_prometheus_and_every_ai_chat_family(monitoring, make_user):
    chat(make_user())
    text = scrape()
    names = sample_names(text)
    assert {"django_http_requests_total_by_method_total",
            "django_http_responses_total_by_status_total"} <= names
    for expected in (
        "ai_chat_sessions_created_total", "ai_chat_messages_total",
        "ai_chat_messages_response_time_seconds_bucket", "ai_chat_messages_tokens_total",
        "ai_chat_cost_usd_total", "ai_chat_pii_redaction_failures_total",
        "ai_chat_audit_failures_total", "ai_chat_db_connections_failed_total",
        "ai_chat_provider_auth_failures_total", *SCRAPE_TIME_FAMILIES,
    ):
        assert expected in names, expected
    # Each scrape-time family is exposed once (the collector is registered once).
    assert text.count("# TYPE ai_chat_db_up gauge") == 1
    assert value(text, "ai_chat_db_up") == 1
    assert value(text, "ai_chat_circuit_state", provider="openai") == 0
    assert value(text, "ai_chat_circuit_state", provider="anthropic") == 0
    assert value(text, "ai_chat_provider_quota_remaining", provider="openai", kind="tokens") > 0
    assert value(text, "ai_chat_provider_quota_remaining", provider="openai",
                 kind="requests") > 0
    assert 0 < value(text, "ai_chat_process_memory_usage_percent") <= 100


@pytest.mark.django_db(transaction=True)
def test_it_moves_the_chat_figures_after_a_chat(monitoring, make_user):
    monitoring.AI_SESSION_CAPACITY = 10
    user = make_user()
    before = scrape()
    chat(user)
    after = scrape()

    def delta(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta("ai_chat_sessions_created_total") == 1
    assert delta("ai_chat_messages_total", role="user") == 1
    assert delta("ai_chat_messages_total", role="assistant") == 1
    assert delta("ai_chat_messages_response_time_seconds_count", provider="openai") == 1
    assert delta("ai_chat_provider_requests_total", provider="openai", outcome="success") == 1
    assert delta("ai_chat_messages_tokens_total", provider="openai", model="gpt-4o-mini",
                 direction="output") > 0
    assert value(after, "ai_chat_sessions_total", status="active") == 1
    assert value(after, "ai_chat_sessions_total", status="closed") == 0
    assert value(after, "ai_chat_session_utilization") == 10.0


@pytest.mark.django_db(transaction=True)
def test_it_counts_sessions_past_their_idle_timeout_as_expired(monitoring, make_user):
    from django.utils import timezone

    from chat.models import ChatSession

    session = chat(make_user())
    ChatSession.objects.filter(id=session["id"]).update(expires_at=timezone.now())
    text = scrape()
    assert value(text, "ai_chat_sessions_total", status="active") == 0
    assert value(text, "ai_chat_sessions_total", status="expired") == 1
    assert value(text, "ai_chat_session_utilization") == 0


@pytest.mark.django_db(transaction=True)
def test_it_counts_provider_auth_failures_and_shows_the_open_circuit(
        monitoring, make_user, simulator):
    monitoring.ANTHROPIC_API_KEY = "invalid-key"  # the simulator answers 401 to it
    before = scrape()
    simulator.set_fault("openai", status=500, times=1)
    chat(make_user(), expect=503)
    after = scrape()
    assert (value(after, "ai_chat_provider_auth_failures_total", provider="anthropic")
            - value(before, "ai_chat_provider_auth_failures_total", provider="anthropic")) == 1
    # A refused key opens the circuit at once, for every process (shared through the cache).
    assert value(after, "ai_chat_circuit_state", provider="anthropic") == 2


@pytest.mark.django_db(transaction=True)
def test_it_keeps_answering_with_db_up_zero_when_the_database_is_unreachable(monitoring):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings_dict = connections.settings["default"]
    original = settings_dict["PORT"]
    settings_dict["PORT"] = str(port)
    try:
        text = scrape()
    finally:
        settings_dict["PORT"] = original
    assert value(text, "ai_chat_db_up") == 0
    assert "ai_chat_sessions_total" not in sample_names(text)
    assert "ai_chat_messages_total" in sample_names(text)


# --- several processes ----------------------------------------------------------------------------

_INCREMENT = """
import os, sys, django
django.setup()
from monitoring import metrics
metrics.MESSAGES.labels(role="user").inc(int(sys.argv[1]))
metrics.WEBSOCKET_CONNECTIONS.inc()
"""
_SCRAPE = """
import django
django.setup()
from prometheus_client import generate_latest
from monitoring import collectors
print(generate_latest(collectors.scrape_registry()).decode())
"""


@pytest.mark.django_db(transaction=True)
def test_it_sums_counters_of_several_processes_in_multiprocess_mode(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "neonpro.settings", "LOG_LEVEL": "warning",
           "DATABASE_URL": subprocess_database_url()}
    env.pop("TEST_DATABASE_NAME", None)

    def run(script: str, *args: str) -> str:
        result = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    run(_INCREMENT, "2")
    run(_INCREMENT, "3")
    text = run(_SCRAPE)
    assert value(text, "ai_chat_messages_total", role="user") == 5
    # Both writers exited: a live gauge no longer counts them.
    assert value(text, "ai_chat_websocket_connections") in (None, 0)
    assert text.count("# TYPE ai_chat_db_up gauge") == 1
    assert value(text, "ai_chat_db_up") == 1

