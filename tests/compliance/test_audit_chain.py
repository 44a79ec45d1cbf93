"""The audit-event trail: hash chain, append-only in PostgreSQL, verification,
concurrent writers, and what happens when a write fails."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from compliance import audit, retention
from compliance.audit import Event
from compliance.models import AuditEvent, ConsentRecord
from compliance.services import consent_grant, consent_revoke
from tests.compliance.conftest import ANCHOR_KEY

ROOT = Path(__file__).resolve().parents[2]
TRIGGER = "compliance_auditevent_append_only"


def _failures() -> float:
    return REGISTRY.get_sample_value("ai_chat_audit_failures_total") or 0.0


def _append(n: int, **fields) -> list[AuditEvent]:
    # Required events are written at once, inside the test's transaction.
    return [audit.record_event(event_type=Event.DATA_EXPORTED, subject_user_id=7,
                               metadata={"n": i, **fields}) for i in range(n)]


def _tamper(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE compliance_auditevent DISABLE TRIGGER {TRIGGER}")
        cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE compliance_auditevent ENABLE TRIGGER {TRIGGER}")


@pytest.mark.django_db
def test_it_links_each_event_to_the_hash_of_the_previous_one():
    first, second, third = _append(3)
    assert first.id == 1 and first.prev_hash == audit.GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert all(audit.event_hash(e) == e.hash for e in AuditEvent.objects.all())
    report = audit.audit_chain_verify()
    assert report.ok and report.checked == 3 and (report.first_id, report.last_id) == (1, 3)


@pytest.mark.django_db
def test_it_hashes_a_canonical_sorted_keys_serialisation():
    event = _append(1, b=2, a=1)[0]
    stored = AuditEvent.objects.get(id=event.id)  # jsonb gives the keys back in its own order
    assert audit.event_hash(stored) == event.hash
    body = audit.canonical_bytes(
        id=stored.id, created_at=stored.created_at, event_type=stored.event_type,
        actor_id=None, subject_user_id=7, clinic_id=None, session_id=None,
        metadata=stored.metadata, prev_hash=stored.prev_hash,
    ).decode()
    assert body.startswith('{"actor_id":null,"clinic_id":null,"created_at":')
    assert '"metadata":{"a":1,"b":2,"n":0}' in body


@pytest.mark.django_db
def test_the_database_refuses_update_and_delete_of_audit_events():
    event = _append(1)[0]
    for statement in ("UPDATE compliance_auditevent SET metadata = '{}' WHERE id = %s",
                      "DELETE FROM compliance_auditevent WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement, [event.id])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(id=event.id).update(event_type="session_created")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(id=event.id).delete()
    assert AuditEvent.objects.get(id=event.id).hash == event.hash


@pytest.mark.django_db
def test_verify_audit_chain_names_the_tampered_event():
    events = _append(5)
    _tamper("UPDATE compliance_auditevent SET metadata = %s WHERE id = %s",
            ['{"n": 99}', events[2].id])
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit_chain")
    assert caught.value.returncode == 1
    assert f"id={events[2].id}" in str(caught.value)
    assert "does not match its hash" in str(caught.value)


@pytest.mark.django_db
def test_verify_audit_chain_catches_a_deleted_event():
    events = _append(4)
    _tamper("DELETE FROM compliance_auditevent WHERE id = %s", [events[1].id])
    report = audit.audit_chain_verify()
    assert report.broken.event_id == events[2].id and "missing" in report.broken.reason


@pytest.mark.django_db
def test_verify_audit_chain_catches_an_event_rewritten_with_a_fresh_hash():
    events = _append(3)
    events[1].metadata = {"n": 42}
    _tamper("UPDATE compliance_auditevent SET metadata = %s, hash = %s WHERE id = %s",
            ['{"n": 42}', audit.event_hash(events[1]), events[1].id])
    report = audit.audit_chain_verify()
    # The rewritten event is self-consistent, but the next one still points at the old hash.
    assert report.broken.event_id == events[2].id and "prev_hash" in report.broken.reason


@pytest.mark.django_db
def test_verify_audit_chain_reports_ok(capsys):
    _append(3)
    call_command("verify_audit_chain")
    assert "audit chain OK: 3 events verified" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_verify_audit_chain_exits_non_zero_from_the_command_line(anchor_dir):
    events = _append(3)
    env = {**os.environ, "DEBUG": "true",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
           "AUDIT_ANCHOR_KEY": ANCHOR_KEY, "AUDIT_ANCHOR_DIR": str(anchor_dir)}
    command = [sys.executable, "manage.py", "verify_audit_chain"]
    ok = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    try:
        _tamper("UPDATE compliance_auditevent SET event_type = %s WHERE id = %s",
                ["consent_granted", events[1].id])
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE compliance_auditevent ENABLE TRIGGER {TRIGGER}")
    broken = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert broken.returncode == 1
    assert f"id={events[1].id}" in broken.stderr


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_valid_chain():
    writers, per_writer = 8, 25
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            start.wait()
            for i in range(per_writer):
                audit.record_event(event_type=Event.SESSION_CREATED, subject_user_id=worker,
                                   metadata={"i": i})
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()  # each thread had its own connection

    failures_before = _failures()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert _failures() == failures_before
    assert AuditEvent.objects.count() == writers * per_writer
    report = audit.audit_chain_verify(chunk_size=37)
    assert report.ok and report.checked == writers * per_writer
    subjects = AuditEvent.objects.order_by().values_list("subject_user_id", flat=True)
    assert sorted(subjects.distinct()) == list(range(writers))


@pytest.mark.django_db
def test_a_failed_required_write_fails_the_consent_and_is_counted(make_user):
    user = make_user(consent=False)
    with connection.cursor() as cursor:  # every insert now fails, for real, in PostgreSQL
        cursor.execute("ALTER TABLE compliance_auditevent "
                       "ADD CONSTRAINT refuse_inserts CHECK (false) NOT VALID")
    before = _failures()
    with pytest.raises(audit.AuditWriteError):
        consent_grant(user=user, purpose="ai_chat", ip_address=None, user_agent="t")
    assert ConsentRecord.objects.filter(user=user).count() == 0
    assert _failures() == before + 1


@pytest.mark.django_db
def test_a_failed_required_write_leaves_the_consent_unrevoked(make_user, make_session):
    user = make_user()
    session = make_session(user, status="active")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_auditevent "
                       "ADD CONSTRAINT refuse_inserts CHECK (false) NOT VALID")
    before = _failures()
    with pytest.raises(audit.AuditWriteError):
        consent_revoke(user=user, purpose="ai_chat")
    assert ConsentRecord.objects.get(user=user).revoked_at is None
    session.refresh_from_db()
    assert session.status == "active"
    assert _failures() == before + 1


@pytest.mark.django_db
def test_the_consent_api_answers_503_when_consent_cannot_be_audited(make_user, client):
    user = make_user(consent=False)
    client.force_login(user)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_auditevent "
                       "ADD CONSTRAINT refuse_inserts CHECK (false) NOT VALID")
    response = client.post("/api/v1/compliance/consents/",
                           {"purpose": "ai_chat", "accepted": True},
                           content_type="application/json")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert not ConsentRecord.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_a_failed_optional_write_is_counted_and_the_action_goes_on(
        django_capture_on_commit_callbacks):
    before = _failures()
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            result = audit.record_event(event_type=Event.SESSION_CREATED,
                                        metadata={"note": "x" * 500})  # free text is refused
    assert result is None
    assert _failures() == before + 1
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_required_events_refuse_free_text_metadata():
    with pytest.raises(audit.AuditWriteError):
        audit.record_event(event_type=Event.DATA_ERASED, metadata={"name": "Joana " * 40})


@pytest.mark.django_db
def test_optional_events_wait_for_the_commit_and_vanish_on_rollback(
        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            audit.record_event(event_type=Event.SESSION_CLOSED, metadata={"reason": "idle"})
            assert not AuditEvent.objects.exists()
    assert len(callbacks) == 1
    assert AuditEvent.objects.get().event_type == Event.SESSION_CLOSED

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            audit.record_event(event_type=Event.SESSION_CLOSED, metadata={})
            raise RuntimeError("the business action failed")
    assert callbacks == []
    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
def test_disabling_audit_logging_skips_only_optional_events(settings, make_user,
                                                            django_capture_on_commit_callbacks):
    settings.AUDIT_LOGGING_ENABLED = False
    with django_capture_on_commit_callbacks(execute=True):
        audit.record_event(event_type=Event.SESSION_CREATED)
        audit.record_event(event_type=Event.MESSAGE_PROCESSED)
    assert not AuditEvent.objects.exists()
    user = make_user()  # grants consent: a required event
    assert list(AuditEvent.objects.values_list("event_type", "subject_user_id")) == [
        (Event.CONSENT_GRANTED, user.pk)]


@pytest.mark.django_db
def test_the_audit_retention_purge_removes_only_old_events_and_keeps_the_chain_verifiable(
        settings):
    _append(7)
    settings.AUDIT_RETENTION_DAYS = 30
    later = timezone.now() + timedelta(days=31)
    assert retention.audit_purge_expired(now=later, dry_run=True) == 7
    assert AuditEvent.objects.count() == 7
    assert retention.audit_purge_expired(now=later, batch_size=3) == 7
    remaining = list(AuditEvent.objects.order_by("id"))
    # Three batches, each leaving a chained anchor event; the last anchors are kept.
    assert [e.event_type for e in remaining] == [Event.RETENTION_PURGE] * 3
    assert [e.metadata["up_to_id"] for e in remaining] == [3, 6, 7]
    assert audit.audit_chain_verify().ok
    # Outside the purge the table is still append-only.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert retention.audit_purge_expired() == 0


@pytest.mark.django_db
def test_a_gap_at_the_start_without_an_anchor_is_reported():
    _append(3)
    _tamper("DELETE FROM compliance_auditevent WHERE id = %s", [1])
    report = audit.audit_chain_verify()
    assert not report.ok and report.broken.event_id == 2
