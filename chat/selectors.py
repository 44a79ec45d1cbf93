"""Reads of chat data, always scoped to the requesting user."""

from __future__ import annotations

import uuid

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from chat.errors import ChatError
from chat.models import ChatMessage, ChatSession


def _parse_uuid(value) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise ChatError("not_found", "Session not found.") from None


def _get_for_user(queryset: QuerySet[ChatSession], *, user, session_id) -> ChatSession:
    """The user's own session; another user's id is indistinguishable from a missing one."""
    try:
        return queryset.get(id=_parse_uuid(session_id), user=user)
    except ChatSession.DoesNotExist:
        raise ChatError("not_found", "Session not found.") from None


def session_get_for_user(*, user, session_id, for_update: bool = False) -> ChatSession:
    """The user's own session; another user's id is indistinguishable from a missing one."""
    queryset = ChatSession.objects.all()
    if for_update:
        queryset = queryset.select_for_update()
    return _get_for_user(queryset, user=user, session_id=session_id)


def session_lock_for_message(*, user, session_id, client_id: uuid.UUID | None) -> ChatSession:
    """The user's session, row-locked, for accepting a message, in one statement.

    `known_message_id` is the id of the user message already stored with
    `client_id` in this session (the client is resending it), else None.
    """
    queryset = ChatSession.objects.select_for_update()
    if client_id is not None:
        queryset = queryset.annotate(known_message_id=Subquery(
            ChatMessage.objects.filter(session=OuterRef("pk"), client_id=client_id,
                                       role=ChatMessage.Role.USER).values("id")[:1]))
    session = _get_for_user(queryset, user=user, session_id=session_id)
    if client_id is None:
        session.known_message_id = None
    return session


def session_list_for_user(*, user) -> QuerySet[ChatSession]:
    return ChatSession.objects.filter(user=user).order_by("-created_at")


def active_session_count() -> int:
    """Sessions counting against AI_SESSION_CAPACITY: active and not idle-expired."""
    return ChatSession.objects.filter(
        status=ChatSession.Status.ACTIVE, expires_at__gt=timezone.now()
    ).count()


def message_list_for_display(*, user, session_id) -> list[ChatMessage]:
    """The session's messages as the clinician sees them (answers re-identified)."""
    session = session_get_for_user(user=user, session_id=session_id)
    return list(session.messages.order_by("created_at"))
