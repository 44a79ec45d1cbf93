"""Reads of chat data, always scoped to the requesting user."""

from __future__ import annotations

import uuid

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.utils import timezone

from chat import search
from chat.errors import ChatError
from chat.models import ChatMessage, ChatSession
from neonpro.db import db_value, instance_from_row, python_value


def _parse_uuid(value) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise ChatError("not_found", "Session not found.") from None


def session_get_for_user(*, user, session_id, for_update: bool = False) -> ChatSession:
    """The user's own session; another user's id is indistinguishable from a missing one."""
    queryset = ChatSession.objects.all()
    if for_update:
        queryset = queryset.select_for_update()
    try:
        return queryset.get(id=_parse_uuid(session_id), user=user)
    except ChatSession.DoesNotExist:
        raise ChatError("not_found", "Session not found.") from None


# The session fields the accept step reads (and `_finish_session` writes); their
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
    session_uuid = _parse_uuid(session_id)
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


def session_list_for_user(*, user, query: str = "") -> QuerySet[ChatSession]:
    """The user's sessions, newest first; with `query`, only those whose title or
    messages contain every word of it (chat.search: nothing is decrypted to match)."""
    sessions = ChatSession.objects.filter(user=user).order_by("-created_at")
    if query:
        tokens = search.tokens_for_query(user_id=user.pk, query=query)
        if not tokens:
            return sessions.none()
        for token in tokens:
            sessions = sessions.filter(search_tokens__contains=f" {token} ")
    return sessions.defer("pii_mapping", "search_tokens")


def answer_get_for_user(*, user, message_id) -> ChatMessage:
    """One answer (assistant message) in one of the user's own sessions."""
    try:
        return ChatMessage.objects.select_related("session").get(
            id=_parse_uuid(message_id), session__user=user, role=ChatMessage.Role.ASSISTANT)
    except ChatMessage.DoesNotExist:
        raise ChatError("not_found", "Message not found.") from None


def active_session_count() -> int:
    """Sessions counting against AI_SESSION_CAPACITY: active and not idle-expired."""
    return ChatSession.objects.filter(
        status=ChatSession.Status.ACTIVE, expires_at__gt=timezone.now()
    ).count()


def message_list_for_display(*, user, session_id) -> list[ChatMessage]:
    """The session's messages as the clinician sees them (answers re-identified)."""
    session = session_get_for_user(user=user, session_id=session_id)
    return list(session.messages.order_by("created_at"))
