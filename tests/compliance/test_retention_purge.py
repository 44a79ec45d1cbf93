"""Retention purge: exactly what is past DATA_RETENTION_DAYS, in batches, never
legal holds; dry run deletes nothing; a second or concurrent run deletes nothing more."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from chat import retention as chat_retention
from chat.models import ChatMessage, ChatSession, ProviderAttempt
from compliance import audit, retention, tasks
from compliance.audit import Event
from compliance.models import AuditEvent


@pytest.fixture
def aged(make_user, make_session, settings):
    """Sessions either side of a 30-day retention, one old one under legal hold."""
    settings.DATA_RETENTION_DAYS = 30
    user = make_user()
    now = timezone.now()
    old = [make_session(user, last_activity=now - timedelta(days=31 + i)) for i in range(5)]
    held = make_session(user, last_activity=now - timedelta(days=400), legal_hold=True)
    recent = [make_session(user, last_activity=now - timedelta(days=29)),
              make_session(user, last_activity=now)]
    # Created long ago but active yesterday: retention counts from the last activity.
    revived = make_session(user, last_activity=now - timedelta(days=1))
    ChatSession.objects.filter(id=revived.id).update(created_at=now - timedelta(days=90))
    return {"old": old, "held": held, "kept": [held, *recent, revived]}


def _assert_no_orphans():
    # The relations that point at messages have no database constraint (the purge's
    # speed): nothing may be left pointing at a deleted message.
    messages = ChatMessage.objects.values("id")
    assert not ProviderAttempt.objects.exclude(message_id__in=messages).exists()
    assert not (ChatMessage.objects.filter(reply_to__isnull=False)
                .exclude(reply_to_id__in=messages).exists())


@pytest.mark.django_db
def test_deleting_a_session_through_the_orm_still_takes_its_messages_and_attempts(
        make_user, make_session):
    user = make_user()
    session, kept = make_session(user), make_session(user)
    session.delete()
    assert ChatMessage.objects.filter(session=kept).count() == 4
    assert ProviderAttempt.objects.count() == 2
    _assert_no_orphans()


def _purge_events():
    return list(AuditEvent.objects.filter(event_type=Event.RETENTION_PURGE).order_by("id"))


@pytest.mark.django_db
def test_it_deletes_exactly_the_expired_sessions_in_batches_and_skips_legal_hold(aged):
    result = retention.purge_expired_data(batch_size=2)
    assert (result.sessions, result.messages, result.provider_attempts) == (5, 20, 10)
    assert result.batches == 3 and result.legal_hold_skipped == 1
    assert set(ChatSession.objects.values_list("id", flat=True)) == {s.id for s in aged["kept"]}
    assert not ChatMessage.objects.filter(session_id__in=[s.id for s in aged["old"]]).exists()
    assert ChatMessage.objects.count() == 4 * 4
    assert ProviderAttempt.objects.count() == 4 * 2
    _assert_no_orphans()

    events = _purge_events()
    assert [e.metadata["sessions"] for e in events] == [2, 2, 1]
    assert sum(e.metadata["messages"] for e in events) == 20
    assert {e.metadata["scope"] for e in events} == {"chat"}
    assert len({e.metadata["run_id"] for e in events}) == 1
    assert audit.audit_chain_verify().ok


@pytest.mark.django_db
def test_a_dry_run_deletes_and_records_nothing(aged):
    result = retention.purge_expired_data(dry_run=True)
    assert (result.sessions, result.messages, result.provider_attempts) == (5, 20, 10)
    assert result.dry_run and result.legal_hold_skipped == 1
    assert ChatSession.objects.count() == 9
    assert _purge_events() == []


@pytest.mark.django_db
def test_a_second_run_deletes_nothing_more(aged):
    retention.purge_expired_data()
    again = retention.purge_expired_data()
    assert (again.sessions, again.messages, again.batches) == (0, 0, 0)
    assert ChatSession.objects.count() == 4


@pytest.mark.django_db
def test_releasing_a_legal_hold_lets_the_next_run_delete_it(aged):
    retention.purge_expired_data()
    ChatSession.objects.filter(id=aged["held"].id).update(legal_hold=False)
    assert retention.purge_expired_data().sessions == 1


@pytest.mark.django_db
def test_the_command_supports_dry_run(aged, capsys):
    call_command("purge_expired_data", "--dry-run")
    out = capsys.readouterr().out
    assert "would delete: 5 sessions, 20 messages, 10 provider attempts" in out
    assert ChatSession.objects.count() == 9
    call_command("purge_expired_data", "--batch-size", "4")
    out = capsys.readouterr().out
    assert "deleted: 5 sessions, 20 messages" in out and "(in 2 batches)" in out
    assert "1 expired sessions kept under legal hold" in out
    assert ChatSession.objects.count() == 4


@pytest.mark.django_db
def test_the_celery_task_purges_and_reports_counts(aged):
    outcome = tasks.purge_expired_data.apply().get()
    assert outcome["sessions"] == 5 and outcome["audit_events"] == 0
    assert ChatSession.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_share_the_work_without_colliding(make_user, make_session, settings):
    settings.DATA_RETENTION_DAYS = 30
    user = make_user()
    old = timezone.now() - timedelta(days=60)
    for _ in range(40):
        make_session(user, last_activity=old, exchanges=1)
    results, errors = [], []
    start = threading.Barrier(3)

    def run() -> None:
        try:
            start.wait()
            results.append(retention.purge_expired_data(batch_size=3))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sum(r.sessions for r in results) == 40
    assert sum(r.messages for r in results) == 80
    assert not ChatSession.objects.exists() and not ChatMessage.objects.exists()
    events = _purge_events()
    assert sum(e.metadata["sessions"] for e in events) == 40
    assert audit.audit_chain_verify().ok


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["set_based", "collector"])
def test_both_deletion_paths_delete_the_same_rows(path, aged, monkeypatch):
    # A relation the purge does not know about switches it to Django's collector.
    assert chat_retention._only_known_relations()
    if path == "collector":
        monkeypatch.setattr(chat_retention, "_KNOWN_RELATIONS", set())
        assert not chat_retention._only_known_relations()
    result = retention.purge_expired_data(batch_size=2)
    assert (result.sessions, result.messages, result.provider_attempts) == (5, 20, 10)
    assert set(ChatSession.objects.values_list("id", flat=True)) == {s.id for s in aged["kept"]}
