"""The statements every chat message runs, written as SQL, in one place.

Why SQL: building a statement through the ORM took about half of the CPU of a
message's database work (2 ms for the session's locked read alone, 0.45 ms as
SQL; BENCHMARKS.md). The helpers of `neonpro.db` keep Django's own field
conversions (encryption, JSON, UUIDs, dates) for what goes in and comes out.
Everything else the pipeline reads or writes goes through the ORM.

The audit chain's append, the other statement every answer runs, is
compliance's (`compliance.audit`): the chain is its table, and compliance
imports nothing from the chat.
"""

from __future__ import annotations

import uuid

from django.db import DEFAULT_DB_ALIAS, connections

from chat import search
from chat.errors import ChatError
from chat.models import ChatMessage, ChatSession
from chat.pipeline.sessions import ERASED_CLOSE_REASON, new_expiry
from chat.selectors import parse_uuid
from neonpro.db import db_value, instance_from_row, python_value

# The session fields the accept step reads (and `sessions.finish_session` writes); their
# columns carry the same names.
_LOCKED_SESSION_FIELDS = ("id", "user_id", "clinic_id", "status", "created_at", "expires_at",
                          "pii_mapping")
_LOCK_SESSION_SQL = f"""
    SELECT {", ".join(f"s.{name}" for name in _LOCKED_SESSION_FIELDS)},
           (SELECT m.id FROM chat_chatmessage m
             WHERE m.session_id = s.id AND m.client_id = %s AND m.role = 'user' LIMIT 1)
      FROM chat_chatsession s
     WHERE s.id = %s AND s.user_id = %s"""  # noqa: S608  # nosec B608: names from this module
_HISTORY_SQL = """
    SELECT role, redacted_content FROM chat_chatmessage
     WHERE session_id = %s AND created_at < %s AND status <> 'failed' AND redacted_content <> ''
     ORDER BY created_at DESC LIMIT %s"""


def session_lock_for_message(*, user, session_id, client_id: uuid.UUID | None) -> ChatSession:
    """The user's session, row-locked, for accepting a message, in one statement.

    `known_message_id` is the id of the user message already stored with
    `client_id` in this session (the client is resending it), else None. Fields
    other than `_LOCKED_SESSION_FIELDS` are deferred. Written as SQL: through the
    ORM, building this statement cost four times what running it did (neonpro.db).
    """
    session_uuid = parse_uuid(session_id)
    connection = connections[DEFAULT_DB_ALIAS]
    lock = " FOR UPDATE OF s" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SESSION_SQL + lock, [
            db_value(ChatMessage, "client_id", client_id),
            db_value(ChatSession, "id", session_uuid), user.pk])
        row = cursor.fetchone()
    if row is None:
        raise ChatError("not_found", "Session not found.")
    session = instance_from_row(ChatSession, _LOCKED_SESSION_FIELDS, row[:-1])
    known = row[-1]
    session.known_message_id = None if known is None else python_value(ChatMessage, "id", known)
    return session


def session_history_for_provider(*, session_id: uuid.UUID, before, limit: int
                                 ) -> list[tuple[str, str]]:
    """(role, redacted text) of the session's last `limit` turns before `before`, oldest
    first: what the provider saw of them. Failed and empty messages are left out."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_HISTORY_SQL, [db_value(ChatMessage, "session_id", session_id),
                                      db_value(ChatMessage, "created_at", before), limit])
        rows = cursor.fetchall()
    return [(role, python_value(ChatMessage, "redacted_content", text))
            for role, text in reversed(rows)]



_TOUCH_SESSION_SQL = """
    UPDATE chat_chatsession SET pii_mapping = %s, last_activity_at = %s, expires_at = %s
     WHERE id = %s"""


def session_touch(*, session_id: uuid.UUID, mapping: dict[str, str], now) -> None:
    """The session's placeholder mapping and idle clock after a message.

    Not save(): activity bookkeeping on every message is not a change worth a
    change-log entry (and the mapping must never reach one); the audit trail
    records the message itself. SQL, as every per-message statement (neonpro.db).
    """
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_TOUCH_SESSION_SQL, [
            db_value(ChatSession, "pii_mapping", mapping),
            db_value(ChatSession, "last_activity_at", now),
            db_value(ChatSession, "expires_at", new_expiry(now)),
            db_value(ChatSession, "id", session_id)])


_TITLE_SQL = "UPDATE chat_chatsession SET title = %s WHERE id = %s AND title = ''"
_SEARCH_TOKENS_SQL = "SELECT search_tokens FROM chat_chatsession WHERE id = %s"
_SET_SEARCH_TOKENS_SQL = "UPDATE chat_chatsession SET search_tokens = %s WHERE id = %s"


def session_title_if_untitled(*, session_id: uuid.UUID, title: str) -> None:
    """Give the session `title` unless it has one already (no read, one statement)."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_TITLE_SQL, [db_value(ChatSession, "title", title),
                                    db_value(ChatSession, "id", session_id)])


def session_add_search_tokens(*, session_id: uuid.UUID, user_id: int, texts: list[str]) -> None:
    """Make the session findable by the words of `texts` (redacted text only)."""
    tokens = search.tokens_for_texts(user_id=user_id, texts=texts)
    if not tokens:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    session_key = db_value(ChatSession, "id", session_id)
    with connection.cursor() as cursor:
        # Row-locked read, then write: two answers of one session never lose a word.
        cursor.execute(_SEARCH_TOKENS_SQL + lock, [session_key])
        row = cursor.fetchone()
        if row is None:
            return
        known = search.unpack(row[0])
        if known.issuperset(tokens):
            return
        cursor.execute(_SET_SEARCH_TOKENS_SQL, [search.pack(known.union(tokens)), session_key])


# What the streaming step fills in on the answer stored empty by the accept step; their
# columns carry the same names.
_ANSWER_FIELDS = ("content", "redacted_content", "status", "error_code", "latency_ms",
                  "first_token_ms", "provider", "model", "input_tokens", "output_tokens",
                  "tokens_estimated", "updated_at")
_STORE_ANSWER_SQL = f"""
    UPDATE chat_chatmessage SET {", ".join(f"{name} = %s" for name in _ANSWER_FIELDS)}
     WHERE id = %s AND session_id IN
           (SELECT id FROM chat_chatsession WHERE id = %s AND close_reason <> %s)
"""  # noqa: S608  # nosec B608: column names from this module, values are parameters


def answer_store(message: ChatMessage) -> None:
    """Write the streamed answer over its empty placeholder.

    Not save(): it would insert the row again if it were gone. An answer whose
    subject was erased while it streamed is left alone: its text must not come
    back after the erasure.
    """
    params = [db_value(ChatMessage, name, getattr(message, name)) for name in _ANSWER_FIELDS]
    params += [db_value(ChatMessage, "id", message.id),
               db_value(ChatSession, "id", message.session_id), ERASED_CLOSE_REASON]
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_STORE_ANSWER_SQL, params)
