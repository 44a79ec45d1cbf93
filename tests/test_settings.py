"""Production settings: refuse unsafe configuration, pass `check --deploy` cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "-production-secret-for-tests-" + "z" * 20,
    "JWT_SECRET": "jwt-secret-for-tests-" + "j" * 40,
    "ENCRYPTION_KEY": "encryption-key-for-tests-" + "e" * 40,
    "AUDIT_ANCHOR_KEY": "audit-anchor-key-for-tests-" + "a" * 40,
    "ALLOWED_HOSTS": "neonpro.com.br",
    "CORS_ORIGIN": "https://neonpro.com.br",
    "MONITORING_TOKEN": "monitoring-token-for-tests",
}


def _manage(*args: str, env_overrides: dict[str, str], drop: tuple[str, ...] = ()):
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("DJANGO_")}
    env.update(env_overrides)
    env["DJANGO_SETTINGS_MODULE"] = "neonpro.settings"
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_it_passes_check_deploy_without_warnings_in_production():
    result = _manage("check", "--deploy", "--fail-level", "WARNING",
                     env_overrides=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "JWT_SECRET", "ENCRYPTION_KEY",
                                     "ALLOWED_HOSTS", "AUDIT_ANCHOR_KEY"])
def test_it_refuses_to_start_in_production_without_a_secret(missing):
    env = dict(PRODUCTION_ENV)
    env.pop(missing)
    result = _manage("check", env_overrides=env, drop=(missing,))
    assert result.returncode != 0
    assert missing in result.stderr


def test_it_refuses_a_short_audit_anchor_key_in_production():
    result = _manage("check", env_overrides={**PRODUCTION_ENV, "AUDIT_ANCHOR_KEY": "short"})
    assert result.returncode != 0
    assert "AUDIT_ANCHOR_KEY must be a random value" in result.stderr


def test_it_refuses_disabled_pii_redaction_in_production():
    result = _manage("check", env_overrides={**PRODUCTION_ENV, "PII_REDACTION_ENABLED": "false"})
    assert result.returncode != 0
    assert "PII_REDACTION_ENABLED" in result.stderr


@pytest.mark.parametrize(("value", "named"), [("PASSAPORTE:tag", "PASSAPORTE"),
                                               ("CPF:esconder", "esconder")])
def test_it_refuses_to_start_with_an_unknown_pii_policy(value, named):
    result = _manage("check", env_overrides={**PRODUCTION_ENV, "PII_POLICY": value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr


def test_it_starts_with_a_valid_pii_policy():
    result = _manage("check", env_overrides={**PRODUCTION_ENV,
                                             "PII_POLICY": "NOME:surrogate,CPF:block"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_reads_secrets_from_files(tmp_path):
    secret_file = tmp_path / "secret_key"
    secret_file.write_text("f" * 60 + "\n")
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    env["SECRET_KEY_FILE"] = str(secret_file)
    script = "from django.conf import settings; print(len(settings.SECRET_KEY))"
    result = _manage("shell", "-c", script,
                     env_overrides=env, drop=("SECRET_KEY",))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("60")


def _asgi_switch_interval(value: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.pop("GIL_SWITCH_INTERVAL_MS", None)
    if value is not None:
        env["GIL_SWITCH_INTERVAL_MS"] = value
    env.update(DEBUG="true", DJANGO_SETTINGS_MODULE="neonpro.settings")
    return subprocess.run(
        [sys.executable, "-c", "import sys, neonpro.asgi; print(sys.getswitchinterval())"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("value", "seconds"), [(None, 0.0005), ("0.25", 0.00025)])
def test_the_web_process_takes_its_gil_switch_interval_from_the_environment(value, seconds):
    result = _asgi_switch_interval(value)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.strip().splitlines()[-1]) == pytest.approx(seconds)


def test_it_refuses_a_switch_interval_that_is_not_positive():
    result = _asgi_switch_interval("0")
    assert result.returncode != 0
    assert "GIL_SWITCH_INTERVAL_MS" in result.stderr
