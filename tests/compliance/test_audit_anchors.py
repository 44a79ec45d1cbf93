"""Deleting the newest audit events or emptying the tables is noticed: TRUNCATE is
refused, the change log is append-only, and signed anchors outside the database
catch what a superuser can still do past the triggers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from compliance import anchors, audit, dsr, retention, tasks
from compliance.audit import Event
from compliance.models import AuditEvent
from tests.compliance.conftest import ANCHOR_KEY

ROOT = Path(__file__).resolve().parents[2]


def _append(n: int) -> list[AuditEvent]:
    return [audit.record_event(event_type=Event.DATA_EXPORTED, subject_user_id=7,
                               metadata={"n": i}) for i in range(n)]


def _sql(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def _verify_fails() -> str:
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit_chain")
    assert caught.value.returncode == 1
    return str(caught.value)


def _anchor_failures() -> float:
    return REGISTRY.get_sample_value("ai_chat_audit_anchor_failures_total") or 0.0


def _lines(anchor_dir) -> list[str]:
    return [line for path in sorted(anchor_dir.iterdir())
            for line in path.read_text().splitlines()]


# --- Triggers ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_database_refuses_truncate_of_audit_events():
    _append(2)
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"), \
            transaction.atomic():
        _sql("TRUNCATE compliance_auditevent")
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db
def test_the_change_log_refuses_update_delete_and_truncate(make_user):
    make_user()
    entry = LogEntry.objects.first()
    for statement in (f"UPDATE auditlog_logentry SET changes_text = 'x' WHERE id = {entry.pk}",
                      f"UPDATE auditlog_logentry SET actor_email = NULL WHERE id = {entry.pk}",
                      f"DELETE FROM auditlog_logentry WHERE id = {entry.pk}",
                      "TRUNCATE auditlog_logentry"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            # Deferred foreign-key checks first: TRUNCATE refuses pending trigger events.
            _sql("SET CONSTRAINTS ALL IMMEDIATE", statement)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).delete()
    assert LogEntry.objects.filter(pk=entry.pk).exists()


@pytest.mark.django_db
def test_the_erasure_licence_only_clears_identifiers_of_the_change_log(make_user):
    make_user()
    entry = LogEntry.objects.first()
    with transaction.atomic(), audit.changelog_scrub_allowed():
        LogEntry.objects.filter(pk=entry.pk).update(object_repr="user 1", remote_addr=None)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with audit.changelog_scrub_allowed():
            LogEntry.objects.filter(pk=entry.pk).update(changes_text="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with audit.changelog_scrub_allowed():
            LogEntry.objects.filter(pk=entry.pk).update(remote_addr="10.0.0.9")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with audit.changelog_scrub_allowed():
            LogEntry.objects.filter(pk=entry.pk).delete()
    # The licence ends with its block, even inside the same transaction.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with audit.changelog_scrub_allowed():
            pass
        LogEntry.objects.filter(pk=entry.pk).update(object_repr="again")
    assert LogEntry.objects.get(pk=entry.pk).object_repr == "user 1"


@pytest.mark.django_db
def test_erasure_scrubs_the_change_log_and_records_how_many_entries(make_user):
    user = make_user()
    dsr.dsr_erase_subject(user=user, actor=None)
    event = AuditEvent.objects.filter(event_type=Event.DATA_ERASED).get()
    assert event.metadata["change_log_entries_scrubbed"] >= 1
    assert all(e.object_repr == f"user {user.pk}" for e in LogEntry.objects.filter(
        content_type__model="user", object_pk=str(user.pk)))


# --- Anchoring ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_appends_a_signed_anchor_to_the_directory_and_the_json_log(anchor_dir, caplog):
    events = _append(3)
    with caplog.at_level(logging.INFO, logger="compliance.audit"):
        call_command("anchor_audit_chain")
    (line,) = _lines(anchor_dir)
    record = json.loads(line)
    assert (record["last_id"], record["last_hash"], record["event_count"]) == (
        3, events[-1].hash, 3)
    assert record["key_id"] == anchors.key_id(ANCHOR_KEY.encode())
    assert len(record["signature"]) == 64
    logged = [r for r in caplog.records if getattr(r, "event", None) == "audit_anchor"]
    assert logged and logged[0].metadata["signature"] == record["signature"]
    assert REGISTRY.get_sample_value("ai_chat_audit_anchor_last_timestamp_seconds") == \
        pytest.approx(datetime.fromisoformat(record["anchored_at"]).timestamp())


@pytest.mark.django_db
def test_anchors_only_ever_append(anchor_dir):
    _append(1)
    audit.audit_chain_anchor()
    first = _lines(anchor_dir)
    _append(2)
    audit.audit_chain_anchor()
    lines = _lines(anchor_dir)
    assert len(list(anchor_dir.iterdir())) == 1
    assert lines[:1] == first and json.loads(lines[1])["last_id"] == 3


@pytest.mark.django_db
def test_the_beat_task_and_the_purge_task_anchor(anchor_dir):
    _append(2)
    assert tasks.anchor_audit_chain.apply().get() == 2
    tasks.purge_expired_data.apply().get()
    assert [json.loads(line)["last_id"] for line in _lines(anchor_dir)] == [2, 2]


def test_the_beat_schedule_anchors_every_five_minutes():
    from neonpro.celery import app

    entry = app.conf.beat_schedule["anchor-audit-chain"]
    assert entry["task"] == "compliance.tasks.anchor_audit_chain" and entry["schedule"] == 300


@pytest.mark.django_db
def test_anchoring_refuses_a_chain_cut_short_and_counts_it(anchor_dir):
    _append(5)
    audit.audit_chain_anchor()
    _sql("SET session_replication_role = replica",
         "DELETE FROM compliance_auditevent WHERE id >= 4",
         "SET session_replication_role = origin")
    _append(2)  # the writer carries on from id 3: the new event 5 is not the anchored one
    before = _anchor_failures()
    with pytest.raises(CommandError, match="refusing to anchor") as caught:
        call_command("anchor_audit_chain")
    assert caught.value.returncode == 1
    assert "no longer has the hash anchored" in str(caught.value)
    assert _anchor_failures() == before + 1
    assert len(_lines(anchor_dir)) == 1


@pytest.mark.django_db
def test_anchoring_without_a_key_fails_clearly(settings):
    settings.AUDIT_ANCHOR_KEYS = []
    before = _anchor_failures()
    with pytest.raises(CommandError, match="AUDIT_ANCHOR_KEY is not set"):
        call_command("anchor_audit_chain")
    assert _anchor_failures() == before + 1


@pytest.mark.django_db
def test_anchoring_to_an_unwritable_directory_fails_clearly(settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.AUDIT_ANCHOR_DIR = blocker / "anchors"
    with pytest.raises(CommandError, match="audit anchor could not be written"):
        call_command("anchor_audit_chain")


# --- Verification against the anchors ----------------------------------------------------


@pytest.mark.django_db
def test_verify_catches_the_newest_events_deleted_past_the_trigger():
    _append(6)
    audit.audit_chain_anchor()
    _sql("SET session_replication_role = replica",  # as a superuser: triggers do not fire
         "DELETE FROM compliance_auditevent WHERE id >= 5",
         "SET session_replication_role = origin")
    assert audit.audit_chain_verify().ok  # what is left still links up
    message = _verify_fails()
    assert "the audit chain ends at id 4 but 1 anchor(s) recorded events up to id 6" in message
    assert "deleted from the end" in message


@pytest.mark.django_db
def test_verify_catches_a_truncated_table():
    _append(4)
    audit.audit_chain_anchor()
    _sql("ALTER TABLE compliance_auditevent DISABLE TRIGGER ALL",
         "TRUNCATE compliance_auditevent",
         "ALTER TABLE compliance_auditevent ENABLE TRIGGER ALL")
    message = _verify_fails()
    assert "the audit chain is empty but 1 anchor(s) recorded events up to id 4" in message


@pytest.mark.django_db
def test_verify_catches_a_tail_rewritten_with_fresh_hashes():
    events = _append(4)
    audit.audit_chain_anchor()
    # Rewrite events 3 and 4 and recompute their hashes and links: the chain alone holds.
    prev = events[1].hash
    _sql("ALTER TABLE compliance_auditevent DISABLE TRIGGER ALL")
    for event in events[2:]:
        event.metadata, event.prev_hash = {"n": 99}, prev
        event.hash = prev = audit.event_hash(event)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE compliance_auditevent SET metadata = %s, prev_hash = %s, "
                           "hash = %s WHERE id = %s",
                           ['{"n": 99}', event.prev_hash, event.hash, event.id])
    _sql("ALTER TABLE compliance_auditevent ENABLE TRIGGER ALL")
    assert audit.audit_chain_verify().ok
    assert "event id=4 no longer has the hash anchored" in _verify_fails()


@pytest.mark.django_db
def test_verify_refuses_a_forged_anchor(anchor_dir):
    _append(3)
    audit.audit_chain_anchor()
    (path,) = anchor_dir.iterdir()
    record = json.loads(path.read_text())
    record["last_id"] = 2  # pretend the chain was shorter, keeping the old signature
    with path.open("a") as out:
        out.write(json.dumps(record) + "\n")
    message = _verify_fails()
    assert f"anchor {path.name}:2: signature does not match: forged or altered anchor" in message


@pytest.mark.django_db
def test_verify_refuses_an_anchor_signed_with_an_unknown_key(anchor_dir, settings):
    _append(1)
    settings.AUDIT_ANCHOR_KEYS = ["someone-else's-key-" + "x" * 30]
    audit.audit_chain_anchor()
    settings.AUDIT_ANCHOR_KEYS = [ANCHOR_KEY]
    assert "signed with a key that is not in AUDIT_ANCHOR_KEY" in _verify_fails()


@pytest.mark.django_db
def test_verify_refuses_a_line_that_is_not_an_anchor(anchor_dir):
    _append(1)
    audit.audit_chain_anchor()
    (path,) = anchor_dir.iterdir()
    with path.open("a") as out:
        out.write("{not json\n")
    assert f"anchor {path.name}:2: not a valid audit anchor record" in _verify_fails()


@pytest.mark.django_db
def test_verify_without_a_key_fails_clearly(settings):
    _append(1)
    audit.audit_chain_anchor()
    settings.AUDIT_ANCHOR_KEYS = []
    assert "AUDIT_ANCHOR_KEY is not set" in _verify_fails()
    settings.DEBUG = False  # production never skips the anchors, even with none written
    for path in settings.AUDIT_ANCHOR_DIR.iterdir():
        path.unlink()
    assert "AUDIT_ANCHOR_KEY is not set" in _verify_fails()


@pytest.mark.django_db
def test_a_development_database_without_key_or_anchors_verifies_its_links(settings, capsys):
    _append(2)
    settings.AUDIT_ANCHOR_KEYS, settings.DEBUG = [], True
    result = audit.verify_chain()
    assert result.ok and result.anchors_skipped and result.chain.checked == 2
    call_command("verify_audit_chain")
    assert "anchors not checked: AUDIT_ANCHOR_KEY is not set (DEBUG)" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_rotated_key_still_verifies_older_anchors(anchor_dir, settings):
    _append(2)
    audit.audit_chain_anchor()
    new_key = "the-next-audit-anchor-key-" + "n" * 30
    settings.AUDIT_ANCHOR_KEYS = [new_key, ANCHOR_KEY]  # the first signs, all verify
    _append(1)
    audit.audit_chain_anchor()
    assert json.loads(_lines(anchor_dir)[1])["key_id"] == anchors.key_id(new_key.encode())
    result = audit.verify_chain()
    assert result.ok and result.anchors_checked == 2 and result.last_anchored_id == 3


@pytest.mark.django_db
def test_verify_chain_reports_counts_and_the_last_anchor(capsys):
    _append(3)
    audit.audit_chain_anchor()
    _append(2)
    record = audit.audit_chain_anchor()
    result = audit.verify_chain(chunk_size=1)  # anchors and events in batches of one
    assert result.ok and result.problems == ()
    assert (result.chain.checked, result.anchors_checked, result.last_anchored_id) == (5, 2, 5)
    assert result.last_anchor_at.isoformat() == record["anchored_at"]
    call_command("verify_audit_chain")
    assert "audit chain OK: 5 events verified (ids 1..5); 2 anchors hold" in \
        capsys.readouterr().out


@pytest.mark.django_db
def test_anchored_events_removed_by_the_retention_purge_still_verify(settings):
    _append(4)
    audit.audit_chain_anchor()
    settings.AUDIT_RETENTION_DAYS = 30
    assert retention.audit_purge_expired(now=timezone.now() + timedelta(days=31)) == 4
    audit.audit_chain_anchor(trigger="purge")
    result = audit.verify_chain()
    assert result.ok, result.problems
    assert result.anchors_purged == 1 and result.anchors_checked == 2


def test_anchoring_and_verifying_work_on_the_embedded_sqlite_default(tmp_path):
    """`make run`'s default: SQLite, and the key generated into var/audit-anchor.key."""
    (tmp_path / "audit-anchor.key").write_text("generated-for-make-run-" + "g" * 40 + "\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "TEST_DATABASE_NAME", "AUDIT_ANCHOR_KEY",
                        "AUDIT_ANCHOR_KEY_FILE", "AUDIT_ANCHOR_DIR")
           and not k.startswith("DJANGO_")}
    env.update(DEBUG="true", NEONPRO_VAR_DIR=str(tmp_path), NEONPRO_ENV_FILE=os.devnull,
               LOG_LEVEL="warning")

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)

    for command in (["migrate", "--noinput"], ["seed_demo"], ["anchor_audit_chain"]):
        result = manage(*command)
        assert result.returncode == 0, result.stdout + result.stderr
    verified = manage("verify_audit_chain")
    assert verified.returncode == 0, verified.stderr
    assert "1 anchors hold" in verified.stdout
    assert len(list((tmp_path / "audit-anchors").iterdir())) == 1
