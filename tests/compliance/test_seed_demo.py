"""seed_demo: the demo clinic and one user per role, idempotent; staff groups; and the
compliance migrations on the embedded SQLite default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from clinics.models import ClinicMembership
from compliance.models import ConsentRecord
from compliance.roles import (
    COMPLIANCE_OFFICERS,
    GROUP_PERMISSIONS,
    OPERATIONS,
    VIEW_MESSAGE_CONTENT_PERM,
)

ROOT = Path(__file__).resolve().parents[2]

# seed_demo, consent, a chat exchange past retention, export, purge, erasure and the
# chain check, on SQLite.
SQLITE_SCENARIO = """
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from chat.models import ChatMessage, ChatSession, ProviderAttempt
from compliance import dsr, retention, services
call_command("seed_demo")
user = get_user_model().objects.get(username="clinician")
services.consent_grant(user=user, purpose="ai_chat", ip_address=None, user_agent="")
old = timezone.now() - timedelta(days=400)
session = ChatSession.objects.create(user=user, clinic=user.clinic_membership.clinic,
    last_activity_at=old, expires_at=old)
question = ChatMessage.objects.create(session=session, role="user", content="Olá")
answer = ChatMessage.objects.create(session=session, role="assistant", reply_to=question,
    content="Oi")
ProviderAttempt.objects.create(message=answer, provider="openai", model="m", outcome="success")
assert len(dsr.dsr_export_subject(user=user)["sessions"]) == 1
result = retention.purge_expired_data()
assert (result.sessions, result.messages, result.provider_attempts) == (1, 2, 1), result
dsr.dsr_erase_subject(user=user, actor=None)
call_command("verify_audit_chain")
call_command("purge_expired_data", "--dry-run")
"""


@pytest.mark.django_db
def test_it_creates_the_demo_clinic_and_users_with_random_passwords_shown_once(
        capsys, monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    call_command("seed_demo")
    first = capsys.readouterr().out
    users = {u.username: u for u in get_user_model().objects.filter(
        username__in=["clinician", "officer", "ops"])}
    assert set(users) == {"clinician", "officer", "ops"}
    for name, user in users.items():
        line = next(line for line in first.splitlines() if line.strip().startswith(f"{name}:"))
        assert user.check_password(line.split("password ")[1].split()[0])

    clinician, officer, ops = users["clinician"], users["officer"], users["ops"]
    membership = ClinicMembership.objects.get(user=clinician)
    assert membership.clinic.name == "Clínica Demo" and membership.role == "clinician"
    assert not clinician.is_staff and not ConsentRecord.objects.filter(user=clinician).exists()
    assert officer.is_staff and officer.groups.filter(name=COMPLIANCE_OFFICERS).exists()
    assert officer.has_perm(VIEW_MESSAGE_CONTENT_PERM)
    assert ops.is_staff and ops.groups.filter(name=OPERATIONS).exists()
    assert not ops.has_perm(VIEW_MESSAGE_CONTENT_PERM)

    call_command("seed_demo")
    second = capsys.readouterr().out
    assert "password" not in second
    assert get_user_model().objects.filter(username__in=list(users)).count() == 3
    assert ClinicMembership.objects.filter(clinic__name="Clínica Demo").count() == 1
    assert all(u.password == get_user_model().objects.get(pk=u.pk).password
               for u in users.values())


@pytest.mark.django_db
def test_it_uses_demo_password_when_set(capsys, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-for-tests")
    call_command("seed_demo")
    assert "demo-password-for-tests" not in capsys.readouterr().out
    for name in ("clinician", "officer", "ops"):
        assert get_user_model().objects.get(username=name).check_password(
            "demo-password-for-tests")


@pytest.mark.django_db
def test_the_groups_hold_exactly_their_permissions():
    from compliance.roles import roles_ensure_groups

    groups = roles_ensure_groups()
    for name, expected in GROUP_PERMISSIONS.items():
        held = {f"{p.content_type.app_label}.{p.codename}"
                for p in groups[name].permissions.select_related("content_type")}
        assert held == set(expected)
    operations = set(GROUP_PERMISSIONS[OPERATIONS])
    assert not any(p.startswith(("compliance.", "auditlog.")) for p in operations)
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_"))
                   for p in operations)


def test_migrations_seed_and_verify_work_on_the_embedded_sqlite_default(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_NAME")}
    env.update(DEBUG="true", NEONPRO_VAR_DIR=str(tmp_path), DEMO_PASSWORD="sqlite-demo-pass",
               NEONPRO_ENV_FILE=str(tmp_path / "no.env"))  # no local .env either
    for command in (["migrate", "--noinput"], ["shell", "-c", SQLITE_SCENARIO]):
        done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stderr[-2000:])
    assert (tmp_path / "neonpro.sqlite3").exists()
