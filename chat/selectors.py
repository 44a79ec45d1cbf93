"""Reads of chat data, always scoped to the requesting user."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils import timezone

from chat import search
from chat.errors import ChatError
from chat.models import ChatMessage, ChatSession


def parse_uuid(value) -> uuid.UUID:
    """`value` as a UUID; anything else is a row that does not exist (ChatError not_found)."""
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
        return queryset.get(id=parse_uuid(session_id), user=user)
    except ChatSession.DoesNotExist:
        raise ChatError("not_found", "Session not found.") from None


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
            id=parse_uuid(message_id), session__user=user, role=ChatMessage.Role.ASSISTANT)
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
