"""The post-deployment smoke test against a real deployment on loopback: daphne with
production settings (DEBUG off), PostgreSQL through PgBouncer, Redis, and the simulated
provider reached by the real SDKs."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import httpx
import pytest
from django.core.management import call_command

from monitoring import smoke
from tests.deploy import support
from tests.deploy.support import MONITORING_TOKEN, SMOKE_PASSWORD, SMOKE_USERNAME

COMPLETIONS = ("/v1/chat/completions", "/v1/messages")
HEALTH_CHECKS = ["health_live", "health_ready", "health_system", "health_ai_chat", "database",
                 "ai_providers", "auth_token", "auth_refresh"]
CHAT_CHECKS = ["chat_consent", "chat_session", "chat_message", "chat_history", "chat_close"]


def _config(deployment, **overrides) -> smoke.SmokeConfig:
    options = {"url": deployment.url, "monitoring_token": MONITORING_TOKEN,
               "username": SMOKE_USERNAME, "password": SMOKE_PASSWORD, "timeout": 20.0,
               "chat_timeout": 30.0, **overrides}
    return smoke.SmokeConfig(**options)


def _statuses(report: smoke.SmokeReport) -> dict[str, str]:
    return {result.name: result.status for result in report.results}


def _completions(simulator) -> list[dict]:
    return [r for path in COMPLETIONS for r in simulator.requests(path=path)]


def _revoke_consent(deployment) -> None:
    with httpx.Client(base_url=deployment.url, timeout=20) as http:
        tokens = http.post("/api/v1/auth/token/",
                           json={"username": SMOKE_USERNAME, "password": SMOKE_PASSWORD})
        assert tokens.status_code == 200, tokens.text
        auth = {"Authorization": f"Bearer {tokens.json()['access']}"}
        revoked = http.delete("/api/v1/compliance/consents/ai_chat/", headers=auth)
        assert revoked.status_code in (204, 404), revoked.text


def test_it_passes_every_check_of_a_healthy_deployment(deployment, simulator):
    _revoke_consent(deployment)  # the smoke test must grant it again on its own

    report = smoke.run(_config(deployment))

    assert report.ok, report.render()
    assert list(_statuses(report)) == HEALTH_CHECKS + CHAT_CHECKS
    assert set(_statuses(report).values()) == {"PASS"}, report.render()
    assert report.result("chat_consent").reason.startswith("consent granted now")
    assert "database" in report.render() and "smoke test PASSED" in report.render()
    # Exactly one completion left the system: the sample chat's question, and nothing else.
    completions = _completions(simulator)
    assert len(completions) == 1
    assert smoke.DEFAULT_MESSAGE in str(completions[0]["body"])
    rows = support.query(
        deployment.database,
        "SELECT s.status, count(m.id) FROM chat_chatsession s JOIN auth_user u ON u.id = s.user_id "
        "LEFT JOIN chat_chatmessage m ON m.session_id = s.id WHERE u.username = %s "
        "GROUP BY s.id, s.status", [SMOKE_USERNAME])
    assert ("closed", 2) in rows


def test_it_probes_providers_without_a_paid_completion_when_the_chat_is_skipped(
        deployment, simulator):
    report = smoke.run(_config(deployment, skip_chat=True))

    assert report.ok, report.render()
    assert _statuses(report)["chat"] == "SKIP"
    assert not any(name.startswith("chat_") for name in _statuses(report))
    assert _completions(simulator) == []
    probed = {r["provider"] for r in simulator.requests() if r["path"].endswith("/models")}
    assert probed == {"openai", "anthropic"}
    assert "openai healthy" in report.result("ai_providers").reason


def test_it_fails_the_database_check_without_the_monitoring_token(deployment):
    report = smoke.run(_config(deployment, monitoring_token="", skip_chat=True))

    assert not report.ok
    assert _statuses(report)["health_system"] == "PASS"  # the summary is public
    database = report.result("database")
    assert database.status == "FAIL" and "--monitoring-token" in database.reason
    assert report.result("ai_providers").status == "FAIL"


def test_it_fails_when_a_provider_rejects_our_credentials(deployment, simulator):
    simulator.set_fault("anthropic", paths=["*"], status=401)

    report = smoke.run(_config(deployment, skip_chat=True))

    assert not report.ok
    providers = report.result("ai_providers")
    assert providers.status == "FAIL"
    assert "anthropic failed the light probe" in providers.reason
    assert "openai healthy" in providers.reason
    assert [r.name for r in report.failed] == ["ai_providers"]
    # What the rollback trigger AIChatRollbackProviderAuthFailure watches.
    metrics = httpx.get(f"{deployment.url}/api/metrics", timeout=20,
                        headers={"Authorization": f"Bearer {MONITORING_TOKEN}"}).text
    counted = re.search(r'^ai_chat_provider_auth_failures_total\{provider="anthropic"\} (\S+)$',
                        metrics, re.MULTILINE)
    assert counted and float(counted.group(1)) >= 1


def test_it_fails_the_chat_and_still_closes_the_session_when_no_provider_answers(
        deployment, simulator):
    for provider in ("openai", "anthropic"):
        simulator.set_fault(provider, status=500)  # completions only: the probes still pass

    report = smoke.run(_config(deployment))

    statuses = _statuses(report)
    assert statuses["ai_providers"] == "PASS"
    assert statuses["chat_message"] == "FAIL"
    assert "provider_unavailable" in report.result("chat_message").reason
    assert statuses["chat_history"] == "SKIP"
    assert statuses["chat_close"] == "PASS"
    assert "smoke test FAILED: 1 of" in report.render()


def test_it_fails_authentication_with_a_wrong_password(deployment):
    report = smoke.run(_config(deployment, password="not-the-password"))

    statuses = _statuses(report)
    assert statuses["auth_token"] == "FAIL"
    assert "HTTP 401" in report.result("auth_token").reason
    assert statuses["auth_refresh"] == "SKIP"
    assert {statuses[name] for name in CHAT_CHECKS} == {"SKIP"}
    assert "not-the-password" not in report.render() + report.as_json()


def test_it_reports_an_unreachable_instance_quickly():
    url = f"http://127.0.0.1:{support.free_port()}"

    report = smoke.run(smoke.SmokeConfig(url=url, username="u", password="p", timeout=5))

    assert not report.ok
    assert report.result("health_live").status == "FAIL"
    assert "cannot connect" in report.result("health_live").reason
    assert sum(r.duration_ms for r in report.results) < 30_000


def test_it_runs_from_manage_py_with_the_environment_and_exits_non_zero_on_failure(deployment):
    env = support.subprocess_env(
        DEBUG="true", MONITORING_TOKEN=MONITORING_TOKEN, SMOKE_TEST_USERNAME=SMOKE_USERNAME,
        SMOKE_TEST_PASSWORD=SMOKE_PASSWORD,
    )
    passed = support.manage("smoke_test", "--url", deployment.url, "--skip-chat", env=env,
                            check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    lines = passed.stdout.splitlines()
    assert any(line.startswith("PASS  database") for line in lines), passed.stdout
    assert any(line.startswith("SKIP  chat") for line in lines), passed.stdout
    assert lines[-1].startswith("smoke test PASSED")

    # The plain module needs no Django: the same checks with `python -m monitoring.smoke`.
    failed = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "monitoring.smoke", "--url", deployment.url, "--skip-chat",
         "--password", "wrong-password"],
        cwd=support.ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert any(line.startswith("FAIL  auth_token") and " ms  " in line
               for line in failed.stdout.splitlines()), failed.stdout


@pytest.mark.django_db
def test_it_seeds_the_smoke_account_idempotently(monkeypatch):
    from django.contrib.auth import get_user_model

    from clinics.models import ClinicMembership
    from compliance.models import AuditEvent, ConsentRecord

    for name in ("SMOKE_TEST_USERNAME", "SMOKE_TEST_PASSWORD", "SMOKE_TEST_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    first, second, third = io.StringIO(), io.StringIO(), io.StringIO()

    call_command("seed_smoke_account", stdout=first)
    call_command("seed_smoke_account", stdout=second)
    call_command("seed_smoke_account", "--password", "a-new-smoke-password-42", stdout=third)

    user = get_user_model().objects.get(username="smoke-test")
    assert "password" in first.getvalue() and "password" not in second.getvalue()
    assert user.check_password("a-new-smoke-password-42")
    assert not user.is_staff and not user.is_superuser
    membership = ClinicMembership.objects.get(user=user)
    assert membership.clinic.name == "NeonPro Smoke Test" and membership.role == "clinician"
    assert ConsentRecord.objects.filter(user=user, revoked_at__isnull=True).count() == 1
    granted = AuditEvent.objects.filter(event_type="consent_granted", subject_user_id=user.pk)
    assert granted.count() == 1
