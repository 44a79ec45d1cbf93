"""PostgreSQL pipeline mode for the per-message transactions (neonpro.db)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction

from clinics.models import Clinic
from neonpro import db

pytestmark = pytest.mark.django_db(transaction=True)

MARKED = datetime(2020, 1, 1, tzinfo=UTC)


def _write_and_read(*names: str) -> list[str]:
    Clinic.objects.bulk_create([Clinic(name=name) for name in names])
    Clinic.objects.filter(name__in=names).update(created_at=MARKED)
    return sorted(Clinic.objects.filter(name__in=names, created_at=MARKED)
                  .values_list("name", flat=True))


def _stored(*names: str) -> list[str]:
    return sorted(Clinic.objects.filter(name__in=names).values_list("name", flat=True))


def test_pipelined_writes_are_seen_by_the_read_that_follows_them():
    with transaction.atomic(), db.pipelined():
        seen = _write_and_read("Clínica Pipeline A", "Clínica Pipeline B")
    assert seen == ["Clínica Pipeline A", "Clínica Pipeline B"]


def test_a_failing_pipelined_write_raises_a_django_error_and_stores_nothing():
    Clinic.objects.create(name="Clínica Existente")
    with pytest.raises(IntegrityError), transaction.atomic(), db.pipelined():
        _write_and_read("Clínica Nova", "Clínica Existente")
    assert _stored("Clínica Nova") == []
    # The connection is usable afterwards.
    assert _stored("Clínica Existente") == ["Clínica Existente"]


def test_a_pipelined_transaction_commits_what_it_wrote():
    with db.pipelined_atomic():
        seen = _write_and_read("Clínica Atômica A", "Clínica Atômica B")
    assert seen == ["Clínica Atômica A", "Clínica Atômica B"]
    assert not connection.in_atomic_block
    # Committed: a new connection sees the rows.
    connection.close()
    assert _stored("Clínica Atômica A", "Clínica Atômica B") == seen


def test_a_write_failing_at_commit_rolls_back_the_whole_transaction():
    Clinic.objects.create(name="Clínica Existente")
    # No read follows the inserts: their error arrives with the COMMIT's reply.
    with pytest.raises(IntegrityError), db.pipelined_atomic():
        Clinic.objects.create(name="Clínica Antes")
        Clinic.objects.create(name="Clínica Existente")
    assert _stored("Clínica Antes") == []
    assert _stored("Clínica Existente") == ["Clínica Existente"]


def test_an_exception_in_the_block_rolls_back_and_the_connection_stays_usable():
    with pytest.raises(LookupError), db.pipelined_atomic():
        Clinic.objects.create(name="Clínica Desfeita")
        raise LookupError("refused after a write")
    assert _stored("Clínica Desfeita") == []
    with db.pipelined_atomic():
        Clinic.objects.create(name="Clínica Seguinte")
    assert _stored("Clínica Seguinte") == ["Clínica Seguinte"]


def test_a_pipelined_transaction_inside_another_is_a_savepoint():
    with transaction.atomic():
        Clinic.objects.create(name="Clínica Externa")
        with pytest.raises(IntegrityError), db.pipelined_atomic():
            Clinic.objects.create(name="Clínica Externa")  # duplicate: the savepoint rolls back
        Clinic.objects.create(name="Clínica Depois")
    assert _stored("Clínica Externa", "Clínica Depois") == ["Clínica Depois", "Clínica Externa"]


def test_a_kept_connection_is_health_checked_before_the_pipeline_starts():
    Clinic.objects.count()  # a connection, kept and due for its health check, as in a pool
    connection.health_check_enabled, connection.health_check_done = True, False
    with db.pipelined_atomic():
        Clinic.objects.create(name="Clínica Verificada")
    assert connection.health_check_done
    assert _stored("Clínica Verificada") == ["Clínica Verificada"]


# --- rows without the query compiler ----------------------------------------------------


def test_insert_rows_stores_what_save_would(make_user, clinic):
    from decimal import Decimal

    from chat.models import ChatMessage, ChatSession, ProviderAttempt

    user = make_user()
    session = ChatSession.objects.create(user=user, clinic=clinic, expires_at=MARKED,
                                         pii_mapping={"[CPF_1]": "529.982.247-25"})
    question = ChatMessage(session=session, role="user", content="Paciente Joana Prado",
                           redacted_content="Paciente [NOME_1]", pii_counts={"NOME": 1})
    with db.pipelined_atomic():
        db.insert_rows([question])
        db.insert_rows([ProviderAttempt(message_id=question.id, provider="openai",
                                        model="gpt-4o-mini", outcome="success",
                                        cost_usd=Decimal("0.000123"))])
    assert not question._state.adding

    stored = ChatMessage.objects.get(id=question.id)
    assert (stored.content, stored.redacted_content, stored.pii_counts) == (
        "Paciente Joana Prado", "Paciente [NOME_1]", {"NOME": 1})
    assert stored.updated_at is not None  # auto_now, as save() sets it
    attempt = ProviderAttempt.objects.get(message_id=question.id)
    assert attempt.id is not None and attempt.cost_usd == Decimal("0.000123")
    with connection.cursor() as cursor:  # encrypted at rest, as through the ORM
        cursor.execute("SELECT content FROM chat_chatmessage WHERE id = %s", [question.id])
        assert "Joana" not in cursor.fetchone()[0]


def test_insert_rows_of_nothing_sends_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        db.insert_rows([])


def test_instance_from_row_converts_like_the_orm_and_defers_the_rest(make_user, clinic):
    from chat.models import ChatSession

    user = make_user()
    session = ChatSession.objects.create(user=user, clinic=clinic, title="Retorno",
                                         expires_at=MARKED, pii_mapping={"[NOME_1]": "Joana"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, status, expires_at, pii_mapping FROM chat_chatsession"
                       " WHERE id = %s", [db.db_value(ChatSession, "id", session.id)])
        row = cursor.fetchone()
    loaded = db.instance_from_row(ChatSession, ("id", "pii_mapping", "status", "expires_at"),
                                  (row[0], row[3], row[1], row[2]))
    assert (loaded.id, loaded.status, loaded.expires_at, loaded.pii_mapping) == (
        session.id, "active", MARKED, {"[NOME_1]": "Joana"})
    assert loaded.get_deferred_fields() >= {"title", "user_id", "clinic_id"}
    assert loaded.title == "Retorno"  # a deferred field still loads on access
