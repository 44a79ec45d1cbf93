"""The chat pipeline, shared by the WebSocket consumer, the REST view and SSE.

authorise → consent → rate limit → capacity (at session creation) → persist the
user message (redacted in the same step) → stream from the provider → relay
re-identified tokens → persist the answer. Every user message is stored before
a provider is called, so nothing the clinician sent is lost when a provider,
the network or the client fails.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from chat import search, selectors, shutdown
from chat.db import run_db
from chat.errors import ChatError
from chat.models import ChatMessage, ChatSession, ProviderAttempt
from chat.providers import router
from chat.providers.base import (
    AttemptEvent,
    ChatTurn,
    DoneEvent,
    ProviderError,
    ResetEvent,
    TokenEvent,
)
from chat.providers.content_filter import (
    ContentBlocked,
    check_content,
    check_local_rules,
    moderation_enabled,
)
from clinics.models import ClinicMembership
from compliance import audit, redaction
from compliance import services as compliance_services
from monitoring import metrics
from neonpro.db import db_value, insert_rows
from neonpro.ratelimit import rate_limit_hit

logger = logging.getLogger(__name__)

# Why the sessions of an erased data subject were closed (compliance.dsr).
ERASED_CLOSE_REASON = "subject_erased"

# An answer still marked "streaming" after this long was orphaned by a crashed
# process: a resend of the same client_id regenerates it instead of waiting.
_STALE_STREAM_GRACE = timedelta(seconds=15)


def _db(function):
    """`await _db(fn)(**kwargs)`: run a database step on the pool (see chat.db)."""
    return functools.partial(run_db, function)
_REPLAY_POLL_SECONDS = 0.25


# --- Sessions -------------------------------------------------------------------------


def _new_expiry(now=None):
    return (now or timezone.now()) + timedelta(seconds=settings.AI_SESSION_IDLE_TIMEOUT)


def _require_chat_access(*, user) -> ClinicMembership:
    if not compliance_services.consent_is_valid(user=user):
        raise ChatError("consent_required", "Consent for the AI chat is required first.")
    membership = ClinicMembership.objects.filter(user=user).select_related("clinic").first()
    if membership is None:
        raise ChatError("no_clinic", "Your account is not a member of any clinic.")
    return membership


def _enforce_rate_limit(*, user) -> None:
    retry_after = rate_limit_hit(scope="chat", key=str(user.pk))
    if retry_after is not None:
        raise ChatError(
            "rate_limited",
            f"Too many requests; try again in {retry_after} s.",
            retry_after=retry_after,
        )


def session_create(*, user, title: str = "") -> ChatSession:
    """Open a chat session for `user` in their clinic (consent, rate limit, capacity)."""
    if not isinstance(title, str) or len(title) > 200:
        raise ChatError("invalid", "title must be a string of at most 200 characters.")
    membership = _require_chat_access(user=user)
    _enforce_rate_limit(user=user)
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
        expires_at=_new_expiry(now),
    )
    metrics.SESSIONS_CREATED.inc()
    audit.record_event(event_type=audit.Event.SESSION_CREATED, actor_id=user.pk,
                       subject_user_id=user.pk, clinic_id=session.clinic_id, session_id=session.id)
    logger.info("chat session created", extra={"event": "session_created",
                                               "sessionId": str(session.id)})
    return session


def _finish_session(session: ChatSession, *, status: str, reason: str, now) -> None:
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
            _finish_session(session, status=ChatSession.Status.CLOSED, reason=reason,
                            now=timezone.now())
    _notify_session_closed(session_ids=[session.id], reason=reason)
    return session


def session_close_all_for_user(*, user, reason: str) -> list[uuid.UUID]:
    """Close every active session of `user` and tell their open WebSockets."""
    now = timezone.now()
    closed = []
    with transaction.atomic():
        for session in ChatSession.objects.select_for_update().filter(
            user=user, status=ChatSession.Status.ACTIVE
        ):
            _finish_session(session, status=ChatSession.Status.CLOSED, reason=reason, now=now)
            closed.append(session.id)
    _notify_session_closed(session_ids=closed, reason=reason)
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
            redacted_title = _redact(title, dict(session.pii_mapping)).text if title else ""
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
            _finish_session(session, status=ChatSession.Status.CLOSED,
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
        _notify_session_closed(session_ids=[session_uuid], reason="deleted_by_user")
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
            _finish_session(session, status=ChatSession.Status.EXPIRED, reason="idle", now=now)
            expired_ids.append(session.id)
    _notify_session_closed(session_ids=expired_ids, reason="idle")
    return len(expired_ids)


def session_group_name(session_id) -> str:
    return f"chat-session-{session_id}"


def _notify_session_closed(*, session_ids, reason: str) -> None:
    """Tell open WebSockets of these sessions to close (any web process, via the layer)."""
    if not session_ids:
        return
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return

    def send_all() -> None:
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


# --- Messages -------------------------------------------------------------------------


@dataclass
class _Prepared:
    """What the accept step hands to the streaming step."""

    session_id: uuid.UUID
    user_id: int
    clinic_id: int
    user_message: ChatMessage
    assistant_message: ChatMessage
    history: list[ChatTurn]
    mapping: dict[str, str]
    pii_counts: dict[str, int]
    replay: bool = False
    # The policy each detected type was handled under (tag/surrogate), for the audit.
    pii_policy: dict[str, str] | None = None
    # The question was stored by this request (not a resend): its pii_detected event is due.
    new_question: bool = False


def message_content_validate(*, content: Any) -> str:
    """The one rule for a clinician message's text, whichever door it came through
    (REST, SSE, WebSocket): a non-empty string without NUL characters (PostgreSQL's
    text type cannot store them), at most AI_MAX_INPUT_CHARS long."""
    if not isinstance(content, str) or not content.strip():
        raise ChatError("invalid", "content must be a non-empty string.")
    if "\x00" in content:
        raise ChatError("invalid", "content must not contain NUL characters.")
    if len(content) > settings.AI_MAX_INPUT_CHARS:
        raise ChatError(
            "message_too_long",
            f"Messages are limited to {settings.AI_MAX_INPUT_CHARS} characters.",
        )
    return content


def _validate_client_id(client_id: Any) -> uuid.UUID | None:
    if client_id in (None, ""):
        return None
    try:
        return uuid.UUID(str(client_id))
    except (ValueError, TypeError, AttributeError):
        raise ChatError("invalid", "client_id must be a UUID.") from None


def _expire_if_idle(session: ChatSession) -> None:
    """Mark the (locked) session expired if it has been idle too long."""
    now = timezone.now()
    if session.status == ChatSession.Status.ACTIVE and session.expires_at <= now:
        _finish_session(session, status=ChatSession.Status.EXPIRED, reason="idle", now=now)


def _session_ended(session: ChatSession) -> ChatError:
    if session.status == ChatSession.Status.EXPIRED:
        return ChatError("session_expired", "This session expired; start a new one.")
    return ChatError("session_expired", "This session is closed; start a new one.")


def _check_consent(*, user) -> None:
    if not compliance_services.consent_is_valid(user=user):
        raise ChatError("consent_required", "Consent for the AI chat is required first.")


def _check_accepting(*, session: ChatSession, user) -> None:
    """Refuse messages to ended sessions or without consent (no writes)."""
    if session.status != ChatSession.Status.ACTIVE:
        raise _session_ended(session)
    _check_consent(user=user)


def _existing_exchange(*, session: ChatSession):
    """The exchange a resend refers to (found by the locked session read), else None."""
    # Almost every client_id is new: the lock's read names the id alone, and the
    # exchange is loaded only when there is one.
    if session.known_message_id is None:
        return None
    return ChatMessage.objects.select_related("reply").get(id=session.known_message_id)


def _history(*, session: ChatSession, before: ChatMessage) -> list[ChatTurn]:
    """The last AI_HISTORY_MESSAGES turns as the provider saw them (redacted)."""
    turns = [ChatTurn(role=role, content=content)
             for role, content in selectors.session_history_for_provider(
                 session_id=session.id, before=before.created_at,
                 limit=settings.AI_HISTORY_MESSAGES)]
    turns.append(ChatTurn(role="user", content=before.redacted_content))
    return turns


class PiiBlocked(ChatError):
    """The message holds personal data whose type the PII_POLICY blocks; it is not sent."""

    def __init__(self, result: redaction.RedactionResult) -> None:
        types = list(result.blocked)
        super().__init__(
            "pii_blocked",
            "The clinic's policy does not allow this personal data to be sent to the "
            f"assistant ({', '.join(types)}); the message was not sent.",
            types=types,
        )
        self.counts = dict(result.counts)


def _redact(text: str, mapping: dict[str, str]) -> redaction.RedactionResult:
    """The one place text is made safe to leave for a provider. Fails closed.

    Each type found is tagged or replaced by a surrogate as PII_POLICY says; a type
    under `block` refuses the whole message (`PiiBlocked`) before anything is
    stored or sent, the moderation call included.
    """
    if not settings.PII_REDACTION_ENABLED:
        return redaction.RedactionResult(text=text, mapping=dict(mapping), counts={})
    try:
        result = redaction.redact(text, mapping=mapping, policy=redaction.active_policy())
    except redaction.RedactionError:
        metrics.PII_REDACTION_FAILURES.inc()
        logger.error("PII redaction failed; message not sent",
                     extra={"event": "pii_redaction_failed"})
        raise
    if result.blocked:
        raise PiiBlocked(result)
    return result


def _policy_applied(counts: dict[str, int]) -> dict[str, str]:
    """The policy each detected type was handled under (for the audit trail)."""
    if not counts:
        return {}
    policy = redaction.active_policy()
    return {entity: policy[entity] for entity in counts}


def _record_blocked(*, user, session_id, counts: dict[str, int]) -> None:
    """Audit and count a message refused by the policy (its text is kept nowhere)."""
    session = selectors.session_get_for_user(user=user, session_id=session_id)
    for entity_type, count in counts.items():
        metrics.PII_DETECTIONS.labels(type=entity_type).inc(count)
    audit.record_event(
        event_type=audit.Event.PII_DETECTED, subject_user_id=session.user_id,
        clinic_id=session.clinic_id, session_id=session.id,
        metadata={"message_id": None, "types": dict(counts),
                  "policy": _policy_applied(counts), "outcome": "blocked"})
    logger.info("message refused by the PII policy", extra={
        "event": "pii_blocked", "sessionId": str(session.id),
        "metadata": {"types": sorted(counts)}})


@dataclass
class _Screened:
    """A message redacted ahead of the accept step and passed by the moderation endpoint."""

    base_mapping: dict[str, str]
    preview: redaction.RedactionResult


def _redact_for_screening(*, user, session_id, content: str) -> _Screened:
    """Redact with the session's current mapping, no lock held, for the moderation call
    (`_accept_user_message` re-redacts under the lock if the mapping changed meanwhile)."""
    session = selectors.session_get_for_user(user=user, session_id=session_id)
    base_mapping = dict(session.pii_mapping or {})
    return _Screened(base_mapping=base_mapping, preview=_redact(content, base_mapping))


def _store_redaction_failure(*, session: ChatSession, content: str,
                             client_id: uuid.UUID | None) -> ChatError:
    """Keep the refused message (encrypted) as evidence; it never reaches a provider."""
    message = ChatMessage.objects.create(
        session=session, role=ChatMessage.Role.USER, content=content, client_id=client_id,
        status=ChatMessage.Status.FAILED, error_code="pii_redaction_failed",
    )
    return ChatError(
        "pii_redaction_failed",
        "The message could not be checked for personal data, so it was not sent.",
        message_id=str(message.id),
    )


def _accept_user_message(*, user, session_id, content: str, client_id: uuid.UUID | None,
                         screened: _Screened | None) -> _Prepared:
    """Check one user message and persist it, redacted, with an empty answer.

    One transaction under the session's row lock: a resend of a known client_id,
    a consent revoked (which closes the session under the same lock) and the
    session's placeholder mapping are all seen consistently, and the message
    costs one round of statements. Refusals that must leave a record (an idle
    session expired, a redaction failure kept as evidence) are raised after
    their record commits.
    """
    refusal: ChatError | None = None
    # Not in pipeline mode: at saturation it cost more CPU than its saved round trips
    # gave back (BENCHMARKS.md); only the audit append, under its global lock, uses it.
    with transaction.atomic():
        session = selectors.session_lock_for_message(user=user, session_id=session_id,
                                                     client_id=client_id)
        existing = _existing_exchange(session=session)
        if existing is not None:
            return _prepare_existing(user=user, session=session, user_message=existing)
        _expire_if_idle(session)
        if session.status != ChatSession.Status.ACTIVE:
            refusal = _session_ended(session)
        else:
            _check_consent(user=user)
            _enforce_rate_limit(user=user)
            mapping = dict(session.pii_mapping or {})
            try:
                if screened is not None and screened.base_mapping == mapping:
                    result = screened.preview
                else:
                    # Redacted here, under the lock, so one value never gets two placeholders.
                    result = _redact(content, mapping)
            except redaction.RedactionError:
                refusal = _store_redaction_failure(session=session, content=content,
                                                   client_id=client_id)
            else:
                if screened is None:  # the filter sees only redacted text
                    _check_local_content_rules(result.text)
                prepared = _store_exchange(session=session, content=content,
                                           client_id=client_id, result=result)
    if refusal is not None:
        raise refusal
    metrics.MESSAGES.labels(role="user").inc()
    for entity_type, count in result.counts.items():
        metrics.PII_DETECTIONS.labels(type=entity_type).inc(count)
    # Its pii_detected audit event is appended with the answer's (see _finish_answer).
    return prepared


def _content_filtered() -> ChatError:
    return ChatError("content_filtered", "This message was blocked by the clinic's content policy.")


def _check_local_content_rules(text: str) -> None:
    try:
        check_local_rules(text)
    except ContentBlocked:
        raise _content_filtered() from None


def _store_exchange(*, session: ChatSession, content: str, client_id: uuid.UUID | None,
                    result: redaction.RedactionResult) -> _Prepared:
    """Insert the user message and its empty answer (one statement), bump the session."""
    now = timezone.now()
    user_message = ChatMessage(
        session=session, role=ChatMessage.Role.USER, content=content,
        redacted_content=result.text, client_id=client_id,
        pii_counts=result.counts, created_at=now,
    )
    assistant_message = ChatMessage(
        session=session, role=ChatMessage.Role.ASSISTANT, reply_to=user_message,
        status=ChatMessage.Status.STREAMING, created_at=now + timedelta(microseconds=1),
    )
    insert_rows([user_message, assistant_message])
    _touch_session(session_id=session.id, mapping=result.mapping, now=now)
    history = _history(session=session, before=user_message)
    if len(history) == 1:  # nothing before it: the session's first question
        _title_from_first_question(session_id=session.id, redacted_text=result.text)
    return _Prepared(
        session_id=session.id,
        user_id=session.user_id,
        clinic_id=session.clinic_id,
        user_message=user_message,
        assistant_message=assistant_message,
        history=history,
        mapping=result.mapping,
        pii_counts=result.counts,
        new_question=True,
        pii_policy=_policy_applied(result.counts),
    )


_TOUCH_SESSION_SQL = """
    UPDATE chat_chatsession SET pii_mapping = %s, last_activity_at = %s, expires_at = %s
     WHERE id = %s"""


def _touch_session(*, session_id: uuid.UUID, mapping: dict[str, str], now) -> None:
    """The session's placeholder mapping and idle clock after a message.

    Not save(): activity bookkeeping on every message is not a change worth a
    change-log entry (and the mapping must never reach one); the audit trail
    records the message itself. SQL, as every per-message statement (neonpro.db).
    """
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_TOUCH_SESSION_SQL, [
            db_value(ChatSession, "pii_mapping", mapping),
            db_value(ChatSession, "last_activity_at", now),
            db_value(ChatSession, "expires_at", _new_expiry(now)),
            db_value(ChatSession, "id", session_id)])


TITLE_MAX_CHARS = 60
_TITLE_SQL = "UPDATE chat_chatsession SET title = %s WHERE id = %s AND title = ''"
_SEARCH_TOKENS_SQL = "SELECT search_tokens FROM chat_chatsession WHERE id = %s"
_SET_SEARCH_TOKENS_SQL = "UPDATE chat_chatsession SET search_tokens = %s WHERE id = %s"


# Markdown marks a title does without ("_" stays: placeholders such as [NOME_1] use it).
_MARKDOWN_MARKS = str.maketrans(dict.fromkeys("#*`|>~", " "))


def title_from_text(text: str) -> str:
    """A one-line title from (redacted) text: Markdown marks, bullets and table rules
    dropped, whitespace collapsed, cut at a word."""
    words = text.translate(_MARKDOWN_MARKS).split()
    line = " ".join(word for word in words if word.strip("-:+"))
    if len(line) <= TITLE_MAX_CHARS:
        return line
    cut = line[:TITLE_MAX_CHARS].rsplit(" ", 1)[0] or line[:TITLE_MAX_CHARS]
    return cut.rstrip(" ,.;:") + "…"


def _title_from_first_question(*, session_id: uuid.UUID, redacted_text: str) -> None:
    """Name an untitled session after its first question as the provider saw it:
    the redacted text, so a title never carries a name or a CPF."""
    title = title_from_text(redacted_text)
    if not title:
        return
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_TITLE_SQL, [db_value(ChatSession, "title", title),
                                    db_value(ChatSession, "id", session_id)])


def _add_search_tokens(*, session_id: uuid.UUID, user_id: int, texts: list[str]) -> None:
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


def _prepare_existing(*, user, session: ChatSession, user_message: ChatMessage) -> _Prepared:
    """A resend of a known client_id: replay the stored answer, or regenerate a lost one."""
    if user_message.status == ChatMessage.Status.FAILED and not user_message.redacted_content:
        raise ChatError(
            "pii_redaction_failed",
            "The message could not be checked for personal data, so it was not sent.",
            message_id=str(user_message.id),
        )
    reply = getattr(user_message, "reply", None)
    mapping = dict(session.pii_mapping or {})
    replayable = reply is not None and (
        reply.status in (ChatMessage.Status.COMPLETE, ChatMessage.Status.STOPPED)
        or (reply.status == ChatMessage.Status.STREAMING
            and reply.updated_at > timezone.now() - _STALE_STREAM_GRACE)
    )
    if not replayable:
        # The answer failed or was orphaned: generate it again for the same user message.
        _check_accepting(session=session, user=user)
        _enforce_rate_limit(user=user)
        if reply is None:
            reply = ChatMessage.objects.create(
                session=session, role=ChatMessage.Role.ASSISTANT, reply_to=user_message,
                status=ChatMessage.Status.STREAMING,
                created_at=user_message.created_at + timedelta(microseconds=1),
            )
        else:
            reply.status = ChatMessage.Status.STREAMING
            reply.content = reply.redacted_content = ""
            reply.error_code = ""
            reply.updated_at = timezone.now()
            # One UPDATE, nothing read back (no change-log entry for a regeneration).
            ChatMessage.objects.filter(id=reply.id).update(
                status=reply.status, content="", redacted_content="", error_code="",
                updated_at=reply.updated_at)
    return _Prepared(
        session_id=session.id,
        user_id=session.user_id,
        clinic_id=session.clinic_id,
        user_message=user_message,
        assistant_message=reply,
        history=[] if replayable else _history(session=session, before=user_message),
        mapping=mapping,
        pii_counts=dict(user_message.pii_counts or {}),
        replay=replayable,
    )


def _ack_frame(prepared: _Prepared) -> dict[str, Any]:
    client_id = prepared.user_message.client_id
    return {
        "type": "ack",
        "message_id": str(prepared.user_message.id),
        "client_id": str(client_id) if client_id else None,
        "pii": prepared.pii_counts,
    }


def _done_frame(message: ChatMessage) -> dict[str, Any]:
    frame = {
        "type": "done",
        "message_id": str(message.id),
        "provider": message.provider,
        "model": message.model,
        "usage": {"input_tokens": message.input_tokens, "output_tokens": message.output_tokens},
        "latency_ms": message.latency_ms,
        "first_token_ms": message.first_token_ms,
    }
    if message.status == ChatMessage.Status.STOPPED:
        frame["stopped"] = True
    return frame


def _reload_message(*, message_id: uuid.UUID) -> ChatMessage:
    return ChatMessage.objects.get(id=message_id)


async def _replay(prepared: _Prepared) -> AsyncIterator[dict[str, Any]]:
    """Replay a stored answer; if another connection is still streaming it, wait for it."""
    message = prepared.assistant_message
    deadline = time.monotonic() + settings.AI_PROVIDER_TIMEOUT / 1000 * 2 + 5
    while message.status == ChatMessage.Status.STREAMING and time.monotonic() < deadline:
        await asyncio.sleep(_REPLAY_POLL_SECONDS)
        message = await _db(_reload_message)(message_id=message.id)
    yield _ack_frame(prepared)
    if message.status == ChatMessage.Status.STREAMING:
        yield ChatError("in_progress", "The answer is still being generated; retry shortly.",
                        message_id=str(prepared.user_message.id)).as_frame()
        return
    if message.status == ChatMessage.Status.FAILED:
        yield ChatError(message.error_code or "provider_unavailable",
                        "The assistant could not answer this message.",
                        message_id=str(prepared.user_message.id)).as_frame()
        return
    if message.content:
        yield {"type": "token", "delta": message.content}
    yield _done_frame(message)


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


def _store_answer(message: ChatMessage) -> None:
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


def _finish_answer(
    *, prepared: _Prepared, display_text: str, provider_text: str, status: str,
    attempts: list, done: DoneEvent | None, error_code: str = "",
    first_token_ms: int | None, latency_ms: int,
) -> ChatMessage:
    """Persist the answer and its provider attempts in one transaction."""
    message = prepared.assistant_message
    message.content = display_text
    message.redacted_content = provider_text
    message.status = status
    message.error_code = error_code
    message.latency_ms = latency_ms
    message.first_token_ms = first_token_ms
    if done is not None:
        message.provider, message.model = done.provider, done.model
        message.input_tokens, message.output_tokens = done.input_tokens, done.output_tokens
        message.tokens_estimated = done.tokens_estimated
    elif attempts:
        # The stored text's author: the last attempt that produced text (a failover that
        # never answered left the previous provider's partial text in place, and a reset
        # before the next provider's first token discarded it); with no text at all, the
        # last provider tried.
        source = next((a for a in reversed(attempts) if a.first_token_ms is not None),
                      attempts[-1]) if display_text or provider_text else attempts[-1]
        message.provider, message.model = source.provider, source.model
    message.updated_at = timezone.now()
    with transaction.atomic():
        # The session row first, then the message: the order the accept step locks in.
        _add_search_tokens(session_id=prepared.session_id, user_id=prepared.user_id,
                           texts=[prepared.user_message.redacted_content, provider_text])
        _store_answer(message)
        insert_rows([
            ProviderAttempt(
                message=message, provider=a.provider, model=a.model, outcome=a.outcome,
                error_code=a.error_code or "", started_at=a.started_at,
                latency_ms=a.latency_ms, first_token_ms=a.first_token_ms,
                input_tokens=a.input_tokens, output_tokens=a.output_tokens,
                tokens_estimated=a.tokens_estimated, cost_usd=a.cost_usd,
            )
            for a in attempts
        ])
    # The session's idle clock runs from the clinician's messages (set on accept).
    metrics.MESSAGES.labels(role="assistant").inc()
    audit.record_message_processed(message=message, session_id=prepared.session_id,
                                   subject_user_id=prepared.user_id,
                                   clinic_id=prepared.clinic_id,
                                   pii_counts=prepared.pii_counts, attempts=attempts,
                                   pii_detected_in=(str(prepared.user_message.id)
                                                    if prepared.new_question else None),
                                   pii_policy=prepared.pii_policy)
    return message


async def _generate(prepared: _Prepared, *, trace_id: str | None) -> AsyncIterator[dict]:
    started = time.monotonic()
    reidentifier = redaction.StreamReidentifier(prepared.mapping)
    provider_parts: list[str] = []
    display_parts: list[str] = []
    attempts: list = []
    first_token_ms: int | None = None
    done: DoneEvent | None = None
    # Tokens arriving faster than this share one frame; the first is never delayed.
    coalesce_s = settings.AI_STREAM_COALESCE_MS / 1000
    pending: list[str] = []
    last_frame_at = 0.0

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    def take_pending(*, final: bool = False) -> dict | None:
        if final:  # whatever the re-identifier still holds back is plain text now
            tail = reidentifier.flush()
            display_parts.append(tail)
            pending.append(tail)
        delta = "".join(pending)
        pending.clear()
        return {"type": "token", "delta": delta} if delta else None

    async def persist(status: str, error_code: str = "") -> ChatMessage:
        # Shielded: a cancellation arriving now must not leave a half-written answer.
        return await asyncio.shield(_db(_finish_answer)(
            prepared=prepared, display_text="".join(display_parts),
            provider_text="".join(provider_parts), status=status, attempts=attempts,
            done=done, error_code=error_code, first_token_ms=first_token_ms,
            latency_ms=elapsed_ms(),
        ))

    try:
        async for event in router.stream_answer(
            system_prompt=settings.AI_SYSTEM_PROMPT, history=prepared.history,
            trace_id=trace_id, on_cancelled=attempts.append,
        ):
            if isinstance(event, TokenEvent):
                provider_parts.append(event.delta)
                visible = reidentifier.feed(event.delta)
                if not visible:
                    continue
                display_parts.append(visible)
                pending.append(visible)
                now = time.monotonic()
                if first_token_ms is None:
                    first_token_ms = int((now - started) * 1000)
                if now - last_frame_at >= coalesce_s:
                    last_frame_at = now
                    yield take_pending()
            elif isinstance(event, ResetEvent):
                provider_parts.clear()
                display_parts.clear()
                pending.clear()
                reidentifier = redaction.StreamReidentifier(prepared.mapping)
                yield {"type": "reset", "reason": event.reason}
            elif isinstance(event, AttemptEvent):
                attempts.append(event.attempt)
            elif isinstance(event, DoneEvent):
                done = event
    except asyncio.CancelledError:
        # `stop` from the clinician (or shutdown): keep what was generated, marked stopped.
        tail = take_pending(final=True)
        message = await persist(ChatMessage.Status.STOPPED)
        if tail:
            yield tail
        yield _done_frame(message)
        return
    except ProviderError as exc:
        code = "provider_unavailable" if exc.retryable or exc.code == "provider_unavailable" \
            else "provider_error"
        await persist(ChatMessage.Status.FAILED, error_code=code)
        metrics.ERRORS.labels(type=code).inc()
        logger.warning("no provider could answer", extra={
            "event": "provider_unavailable", "sessionId": str(prepared.session_id),
            "metadata": {"error": exc.code}})
        detail = ("The AI providers are unavailable right now; your message was kept, "
                  "you can retry it.") if code == "provider_unavailable" else \
            "The AI provider rejected the request; the team has been notified."
        yield ChatError(code, detail, message_id=str(prepared.user_message.id)).as_frame()
        return
    if first_token_ms is None:
        first_token_ms = elapsed_ms()
    tail = take_pending(final=True)
    if tail:
        yield tail
    message = await persist(ChatMessage.Status.COMPLETE)
    provider = message.provider or "unknown"
    metrics.RESPONSE_TIME.labels(provider=provider).observe(message.latency_ms / 1000)
    metrics.FIRST_TOKEN_TIME.labels(provider=provider).observe(first_token_ms / 1000)
    logger.info("AI message processed", extra={
        "event": "message_processed", "sessionId": str(prepared.session_id),
        "metadata": {"provider": provider, "responseTime": message.latency_ms,
                     "tokenCount": message.input_tokens + message.output_tokens,
                     "piiDetected": bool(prepared.pii_counts)}})
    yield _done_frame(message)


async def message_accept_async(*, user, session_id, content: Any,
                               client_id: Any = None) -> _Prepared:
    """Check and store one clinician message (the first half of every chat path).

    Raises ChatError with the code the client sees. A resend of a known
    `client_id` returns the stored exchange instead of storing a second message.
    Database steps run in a thread pool, not on one shared thread, so concurrent
    sessions don't queue behind each other's inserts.
    """
    try:
        content = message_content_validate(content=content)
        client_uuid = _validate_client_id(client_id)
        screened = None
        if moderation_enabled():
            # The moderation call leaves the system like any provider call, so it sees
            # redacted text, and it is awaited before anything is stored.
            try:
                screened = await _db(_redact_for_screening)(user=user, session_id=session_id,
                                                            content=content)
                await check_content(screened.preview.text)
            except ContentBlocked:
                raise _content_filtered() from None
            except redaction.RedactionError:
                screened = None  # redacted again under the lock; a failure is stored there
        return await _db(_accept_user_message)(
            user=user, session_id=session_id, content=content, client_id=client_uuid,
            screened=screened,
        )
    except PiiBlocked as exc:
        metrics.ERRORS.labels(type=exc.code).inc()
        await _db(_record_blocked)(user=user, session_id=session_id, counts=exc.counts)
        raise
    except ChatError as exc:
        metrics.ERRORS.labels(type=exc.code).inc()
        raise


def message_accept(*, user, session_id, content: Any, client_id: Any = None) -> _Prepared:
    """The synchronous door to `message_accept_async` (REST views)."""
    return async_to_sync(message_accept_async)(user=user, session_id=session_id,
                                               content=content, client_id=client_id)


async def answer_stream(prepared: _Prepared, *, trace_id: str | None = None
                        ) -> AsyncIterator[dict[str, Any]]:
    """The frames of an accepted message: ack, token…, (reset, token…), done or error."""
    # Registered as in flight: a stopping web process lets it finish or stores it stopped.
    with shutdown.tracking_current_task():
        if prepared.replay:
            async for frame in _replay(prepared):
                yield frame
            return
        yield _ack_frame(prepared)
        async for frame in _generate(prepared, trace_id=trace_id):
            yield frame


# Answers whose reader went away, kept referenced until they are stored (the event loop
# holds tasks only weakly).
_DETACHED_ANSWERS: set[asyncio.Task] = set()


async def answer_outliving_reader(frames: AsyncIterator[dict[str, Any]]
                                  ) -> AsyncIterator[dict[str, Any]]:
    """Relay `frames`, but let the answer run to its end if the reader goes away.

    The rule for every door: a client that goes away (closed tab, lost network, a
    proxy timeout) does not stop the answer; only an explicit stop does. The
    answer is generated to its end and stored, and the client that reconnects and
    resends the same client_id gets it replayed without a second provider call
    (and without losing what the assistant said). The WebSocket consumer runs each
    answer in its own task for the same reason; SSE, whose response generator is
    cancelled when the client disconnects, goes through here.
    """
    queue: asyncio.Queue = asyncio.Queue()
    done = object()
    failure: list[BaseException] = []
    reader_gone = False

    async def produce() -> None:
        try:
            async for frame in frames:
                queue.put_nowait(frame)
        except Exception as exc:
            if reader_gone:
                logger.exception("answer failed after its reader left",
                                 extra={"event": "relay_failed"})
            failure.append(exc)
        finally:
            queue.put_nowait(done)

    task = asyncio.ensure_future(produce())
    _DETACHED_ANSWERS.add(task)
    task.add_done_callback(_DETACHED_ANSWERS.discard)
    try:
        while (frame := await queue.get()) is not done:
            yield frame
    finally:
        reader_gone = True
    if failure:
        raise failure[0]


async def message_stream(
    *, user, session_id, content: Any, client_id: Any = None, trace_id: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Accept one clinician message and yield the protocol frames of its answer.

    A refused message yields a single error frame.
    """
    accepting = asyncio.ensure_future(message_accept_async(
        user=user, session_id=session_id, content=content, client_id=client_id
    ))
    stopped_early = False
    try:
        try:
            # Shielded: storing the message runs on a pool thread that a cancellation
            # cannot interrupt, so a `stop` now waits for it and then ends the answer.
            prepared = await asyncio.shield(accepting)
        except asyncio.CancelledError:
            stopped_early = True
            prepared = await accepting
    except ChatError as exc:
        yield exc.as_frame()
        return
    if stopped_early and not prepared.replay:
        yield _ack_frame(prepared)
        message = await _db(_finish_answer)(
            prepared=prepared, display_text="", provider_text="",
            status=ChatMessage.Status.STOPPED, attempts=[], done=None,
            first_token_ms=None, latency_ms=0,
        )
        yield _done_frame(message)
        return
    async for frame in answer_stream(prepared, trace_id=trace_id):
        yield frame
