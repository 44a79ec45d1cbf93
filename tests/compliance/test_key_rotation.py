"""`manage.py rotate_encryption_keys`: re-encrypting stored data after a key rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import InvalidToken
from django.core.management import CommandError, call_command
from django.db import connection

from chat.models import ChatMessage, ChatSession
from compliance.encryption import _fernet_for
from compliance.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

OLD_KEY = "old-key-for-rotation-tests-0123456789abcdef"
NEW_KEY = "new-key-for-rotation-tests-fedcba9876543210"


def _stored_tokens() -> list[str]:
    """Every non-empty encrypted value as stored, read past the model fields."""
    tokens = []
    with connection.cursor() as cursor:
        for table, columns in (("chat_chatmessage", ("content", "redacted_content")),
                               ("chat_chatsession", ("title", "pii_mapping"))):
            for column in columns:
                cursor.execute(f"SELECT {column} FROM {table} WHERE {column} <> ''")
                tokens += [row[0] for row in cursor.fetchall()]
    return tokens


def _opens_with(key: str, token: str) -> bool:
    try:
        _fernet_for(key).decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


@pytest.fixture
def data_under_old_key(settings, make_session, clinician):
    settings.ENCRYPTION_KEYS = [OLD_KEY]
    session = make_session(clinician, exchanges=3, title="Retorno de Joana")
    tokens = _stored_tokens()
    assert tokens and all(_opens_with(OLD_KEY, t) for t in tokens)
    return session


def test_it_reencrypts_every_value_with_the_new_key_and_keeps_the_text(
        settings, data_under_old_key):
    settings.ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    call_command("rotate_encryption_keys", batch_size=2)

    tokens = _stored_tokens()
    assert len(tokens) == 3 * 2 * 2 + 2  # 6 messages × 2 columns, title and mapping
    assert all(_opens_with(NEW_KEY, t) and not _opens_with(OLD_KEY, t) for t in tokens)
    # The old key can go: the text reads back the same with the new key alone.
    settings.ENCRYPTION_KEYS = [NEW_KEY]
    session = ChatSession.objects.get(pk=data_under_old_key.pk)
    assert session.title == "Retorno de Joana"
    assert session.pii_mapping["[NOME_1]"] == "Joana Prado"
    questions = ChatMessage.objects.filter(session=session, role=ChatMessage.Role.USER)
    assert sorted(m.content for m in questions) == [
        f"Paciente Joana Prado, CPF 529.982.247-25 #{i}" for i in range(3)]


def test_it_is_audited_with_counts_only(settings, data_under_old_key):
    settings.ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    call_command("rotate_encryption_keys")

    event = AuditEvent.objects.get(event_type=AuditEvent.EventType.ENCRYPTION_KEYS_ROTATED)
    assert event.metadata["reencrypted"] == 14
    assert event.metadata["undecryptable"] == 0
    assert event.metadata["fields"]["chat.ChatMessage.content"] == {
        "scanned": 6, "reencrypted": 6, "undecryptable": 0}
    assert "Joana" not in str(event.metadata)


def test_a_second_run_finds_nothing_to_do(settings, data_under_old_key, capsys):
    settings.ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    call_command("rotate_encryption_keys")
    after_first = _stored_tokens()

    call_command("rotate_encryption_keys")

    assert _stored_tokens() == after_first
    assert capsys.readouterr().out.rstrip().endswith("re-encrypted 0 values")


def test_a_dry_run_counts_and_changes_nothing(settings, data_under_old_key, capsys):
    settings.ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    before = _stored_tokens()

    call_command("rotate_encryption_keys", dry_run=True)

    assert _stored_tokens() == before
    assert "would re-encrypt 14 values" in capsys.readouterr().out
    assert not AuditEvent.objects.filter(
        event_type=AuditEvent.EventType.ENCRYPTION_KEYS_ROTATED).exists()


def test_values_no_key_opens_are_reported_and_left_as_they_are(settings, data_under_old_key):
    # The old key was dropped before the rotation ran: nothing can open the old values.
    settings.ENCRYPTION_KEYS = [NEW_KEY]
    before = _stored_tokens()

    with pytest.raises(CommandError, match="14 stored values cannot be decrypted") as raised:
        call_command("rotate_encryption_keys")

    assert raised.value.returncode == 1
    assert _stored_tokens() == before


def test_it_refuses_a_batch_size_below_one():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("rotate_encryption_keys", batch_size=0)
