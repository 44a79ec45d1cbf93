"""Chat sessions: opening, closing, renaming, deleting, expiring; rating an answer.

Closing a session (by its owner, by expiry, by a consent revocation or an
erasure) tells its open WebSockets, in any web process, through the channel
layer once the transaction commits.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chat import search, selectors
from chat.errors import ChatError
from chat.models import ChatMessage, ChatSession
from chat.pipeline.checks import enforce_rate_limit, redact, require_chat_access
from compliance import audit, redaction
from monitoring import metrics

logger = logging.getLogger(__name__)

# Why the sessions of an erased data subject were closed (compliance.dsr).
ERASED_CLOSE_REASON = "subject_erased"


def new_expiry(now=None):
    return (now or timezone.now()) + timedelta(seconds=settings.AI_SESSION_IDLE_TIMEOUT)


def session_create(*, user, title: str = "") -> ChatSession:
    """Open a chat session for `user` in their clinic (consent, rate limit, capacity)."""
    if not isinstance(title, str) or len(title) > 200:
        raise ChatError("invalid", "title must be a string of at most 200 characters.")
    membership = require_chat_access(user=user)
    enforce_rate_limit(user=user)
    if selectors.active_session_count() >= settings.AI_SESSION_CAPACITY:
        raise ChatError(
            "capacity_exceeded", "The assistant is at capacity; try again shortly.", retry_after=30
        )
    now = timezone.now()
    session = ChatSession.objects.create(
        user=user,
        clinic=membership.clinic,
        title=title.strip(),
        created_at=now,
        last_activity_at=now,
        expires_at=new_expiry(now),
    )
    metrics.SESSIONS_CREATED.inc()
    audit.record_event(event_type=audit.Event.SESSION_CREATED, actor_id=user.pk,
                       subject_user_id=user.pk, clinic_id=session.clinic_id, session_id=session.id)
    logger.info("chat session created", extra={"event": "session_created",
                                               "sessionId": str(session.id)})
    return session


def finish_session(session: ChatSession, *, status: str, reason: str, now) -> None:
    session.status = status
    session.closed_at = now
    session.close_reason = reason
    # One UPDATE of the three fields, nothing read back.
    ChatSession.objects.filter(id=session.id).update(status=status, closed_at=now,
                                                     close_reason=reason)
    metrics.SESSION_DURATION.observe((now - session.created_at).total_seconds())
    audit.record_event(event_type=audit.Event.SESSION_CLOSED, subject_user_id=session.user_id,
                       clinic_id=session.clinic_id, session_id=session.id,
                       metadata={"status": status, "reason": reason})


def session_close(*, user, session_id, reason: str = "closed_by_user") -> ChatSession:
    """Close one of the user's sessions (idempotent)."""
    with transaction.atomic():
        session = selectors.session_get_for_user(user=user, session_id=session_id,
                                                 for_update=True)
        if session.status == ChatSession.Status.ACTIVE:
            finish_session(session, status=ChatSession.Status.CLOSED, reason=reason,
                            now=timezone.now())
    notify_session_closed(session_ids=[session.id], reason=reason)
    return session


def session_close_all_for_user(*, user, reason: str) -> list[uuid.UUID]:
    """Close every active session of `user` and tell their open WebSockets."""
    now = timezone.now()
    closed = []
    with transaction.atomic():
        for session in ChatSession.objects.select_for_update().filter(
            user=user, status=ChatSession.Status.ACTIVE
        ):
            finish_session(session, status=ChatSession.Status.CLOSED, reason=reason, now=now)
            closed.append(session.id)
    notify_session_closed(session_ids=closed, reason=reason)
    return closed


def session_rename(*, user, session_id, title: Any) -> ChatSession:
    """Give one of the user's sessions a title of their own (empty: the date label).

    The title is encrypted like messages; its words become searchable only after
    redaction, so a patient's name typed into a title is not put in the index.
    """
    if not isinstance(title, str) or len(title.strip()) > 200:
        raise ChatError("invalid", "title must be a string of at most 200 characters.")
    title = " ".join(title.split())
    with transaction.atomic():
        session = selectors.session_get_for_user(user=user, session_id=session_id,
                                                 for_update=True)
        session.title = title
        try:
            redacted_title = redact(title, dict(session.pii_mapping)).text if title else ""
        except redaction.RedactionError:
            redacted_title = ""  # fail closed: an unverified title is not indexed
        texts = [redacted_title, *ChatMessage.objects.filter(session=session)
                 .values_list("redacted_content", flat=True)]
        session.search_tokens = search.pack(search.tokens_for_texts(user_id=user.pk, texts=texts))
        session.save(update_fields=["title", "search_tokens"])
        audit.record_event(event_type=audit.Event.SESSION_RENAMED, actor_id=user.pk,
                           subject_user_id=user.pk, clinic_id=session.clinic_id,
                           session_id=session.id)
    return session


def session_delete(*, user, session_id) -> dict[str, int]:
    """Delete one of the user's sessions now, with its messages, attempts and feedback.

    This is what the retention purge would do once the session is past
    DATA_RETENTION_DAYS, brought forward by its owner: the rows are deleted, not
    kept blank. A session under legal hold must be kept (LGPD Art. 16 I) and is
    refused. The audit trail keeps a data_erased event with ids and counts only,
    written in the same transaction: if it cannot be written, nothing is deleted.
    """
    with transaction.atomic():
        session = selectors.session_get_for_user(user=user, session_id=session_id,
                                                 for_update=True)
        if session.legal_hold:
            raise ChatError("legal_hold",
                            "This session is under legal hold and cannot be deleted.")
        was_active = session.status == ChatSession.Status.ACTIVE
        if was_active:
            finish_session(session, status=ChatSession.Status.CLOSED,
                            reason="deleted_by_user", now=timezone.now())
        messages = ChatMessage.objects.filter(session=session).count()
        session_uuid, clinic_id = session.id, session.clinic_id
        session.delete()
        counts = {"sessions": 1, "messages": messages}
        audit.record_event(event_type=audit.Event.DATA_ERASED, actor_id=user.pk,
                           subject_user_id=user.pk, clinic_id=clinic_id,
                           session_id=session_uuid,
                           metadata={"scope": "session", "reason": "deleted_by_user",
                                     **counts})
    if was_active:
        notify_session_closed(session_ids=[session_uuid], reason="deleted_by_user")
    return counts


FEEDBACK_COMMENT_MAX_CHARS = 2000


def message_feedback_record(*, user, message_id, rating: Any, comment: Any = "") -> ChatMessage:
    """Store the clinician's rating (up/down) of one of their answers, with an optional
    comment; rating again replaces it. Audited and counted by rating only."""
    if rating not in ChatMessage.Rating.values:
        raise ChatError("invalid", "rating must be 'up' or 'down'.")
    if not isinstance(comment, str) or len(comment) > FEEDBACK_COMMENT_MAX_CHARS:
        raise ChatError("invalid", f"comment must be a string of at most "
                                   f"{FEEDBACK_COMMENT_MAX_CHARS} characters.")
    message = selectors.answer_get_for_user(user=user, message_id=message_id)
    message.feedback_rating = rating
    message.feedback_comment = comment.strip()
    message.feedback_at = timezone.now()
    with transaction.atomic():
        message.save(update_fields=["feedback_rating", "feedback_comment", "feedback_at",
                                    "updated_at"])
        audit.record_event(event_type=audit.Event.FEEDBACK_GIVEN, actor_id=user.pk,
                           subject_user_id=user.pk, clinic_id=message.session.clinic_id,
                           session_id=message.session_id,
                           metadata={"message_id": str(message.id), "rating": rating,
                                     "has_comment": bool(message.feedback_comment)})
    metrics.FEEDBACK.labels(rating=rating).inc()
    return message


def sessions_expire_idle(*, now=None) -> int:
    """Mark sessions idle past AI_SESSION_IDLE_TIMEOUT as expired; returns how many."""
    now = now or timezone.now()
    expired_ids = []
    with transaction.atomic():
        for session in ChatSession.objects.select_for_update(skip_locked=True).filter(
            status=ChatSession.Status.ACTIVE, expires_at__lte=now
        )[:1000]:
            finish_session(session, status=ChatSession.Status.EXPIRED, reason="idle", now=now)
            expired_ids.append(session.id)
    notify_session_closed(session_ids=expired_ids, reason="idle")
    return len(expired_ids)


def session_group_name(session_id) -> str:
    return f"chat-session-{session_id}"


def notify_session_closed(*, session_ids, reason: str) -> None:
    """Tell open WebSockets of these sessions to close (any web process, via the layer)."""
    if not session_ids:
        return
    layer = get_channel_layer()
    if layer is None:
        return

    def send_all() -> None:
        # Synchronous code calling the layer's async API: asgiref's async_to_sync is
        # the bridge for that direction (neonpro.blocking goes the other way).
        for session_id in session_ids:
            async_to_sync(layer.group_send)(
                session_group_name(session_id), {"type": "session.closed", "reason": reason}
            )

    def send_safely() -> None:
        try:
            send_all()
        except Exception:  # the layer being down must not undo a committed close
            logger.warning("could not notify open sockets of closed sessions",
                           extra={"event": "session_close_notify_failed"}, exc_info=True)

    transaction.on_commit(send_safely)
