"""Accepting a clinician's message: the first half of every chat path.

authorise → consent → rate limit → redact → store the message with an empty
answer, in one transaction under the session's row lock. Every user message is
stored before a provider is called, so nothing the clinician sent is lost when a
provider, the network or the client fails. A resend of a known `client_id`
returns the stored exchange instead of storing a second message.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chat import selectors
from chat.errors import ChatError
from chat.models import ChatMessage, ChatSession
from chat.pipeline import sql
from chat.pipeline.checks import (
    PiiBlocked,
    check_consent,
    check_local_content_rules,
    content_filtered,
    enforce_rate_limit,
    message_content_validate,
    policy_applied,
    redact,
)
from chat.pipeline.sessions import finish_session
from chat.providers.base import ChatTurn
from chat.providers.content_filter import ContentBlocked, check_content, moderation_enabled
from compliance import audit, redaction
from monitoring import metrics
from neonpro.blocking import run_blocking
from neonpro.db import insert_rows

logger = logging.getLogger(__name__)

# An answer still marked "streaming" after this long was orphaned by a crashed
# process: a resend of the same client_id regenerates it instead of waiting.
_STALE_STREAM_GRACE = timedelta(seconds=15)


@dataclass
class AcceptedMessage:
    """A stored clinician message and its answer to come: what the accept step hands to the
    answering step (`chat.pipeline.answer`)."""

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

    @classmethod
    def in_session(cls, session: ChatSession, **fields: Any) -> AcceptedMessage:
        return cls(session_id=session.id, user_id=session.user_id,
                   clinic_id=session.clinic_id, **fields)


async def message_accept(*, user, session_id, content: Any,
                         client_id: Any = None) -> AcceptedMessage:
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
                screened = await run_blocking(_redact_for_screening, user=user,
                                              session_id=session_id, content=content)
                await check_content(screened.preview.text)
            except ContentBlocked:
                raise content_filtered() from None
            except redaction.RedactionError:
                screened = None  # redacted again under the lock; a failure is stored there
        return await run_blocking(
            _accept_user_message, user=user, session_id=session_id, content=content,
            client_id=client_uuid, screened=screened,
        )
    except PiiBlocked as exc:
        metrics.ERRORS.labels(type=exc.code).inc()
        await run_blocking(_record_blocked, user=user, session_id=session_id, counts=exc.counts)
        raise
    except ChatError as exc:
        metrics.ERRORS.labels(type=exc.code).inc()
        raise


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
        finish_session(session, status=ChatSession.Status.EXPIRED, reason="idle", now=now)


def _session_ended(session: ChatSession) -> ChatError:
    if session.status == ChatSession.Status.EXPIRED:
        return ChatError("session_expired", "This session expired; start a new one.")
    return ChatError("session_expired", "This session is closed; start a new one.")


def _check_accepting(*, session: ChatSession, user) -> None:
    """Refuse messages to ended sessions or without consent (no writes)."""
    if session.status != ChatSession.Status.ACTIVE:
        raise _session_ended(session)
    check_consent(user=user)


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
             for role, content in sql.session_history_for_provider(
                 session_id=session.id, before=before.created_at,
                 limit=settings.AI_HISTORY_MESSAGES)]
    turns.append(ChatTurn(role="user", content=before.redacted_content))
    return turns


def _record_blocked(*, user, session_id, counts: dict[str, int]) -> None:
    """Audit and count a message refused by the policy (its text is kept nowhere)."""
    session = selectors.session_get_for_user(user=user, session_id=session_id)
    for entity_type, count in counts.items():
        metrics.PII_DETECTIONS.labels(type=entity_type).inc(count)
    audit.record_event(
        event_type=audit.Event.PII_DETECTED, subject_user_id=session.user_id,
        clinic_id=session.clinic_id, session_id=session.id,
        metadata={"message_id": None, "types": dict(counts),
                  "policy": policy_applied(counts), "outcome": "blocked"})
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
    return _Screened(base_mapping=base_mapping, preview=redact(content, base_mapping))


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
                         screened: _Screened | None) -> AcceptedMessage:
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
        session = sql.session_lock_for_message(user=user, session_id=session_id,
                                                     client_id=client_id)
        existing = _existing_exchange(session=session)
        if existing is not None:
            return _prepare_existing(user=user, session=session, user_message=existing)
        _expire_if_idle(session)
        if session.status != ChatSession.Status.ACTIVE:
            refusal = _session_ended(session)
        else:
            check_consent(user=user)
            enforce_rate_limit(user=user)
            mapping = dict(session.pii_mapping or {})
            try:
                if screened is not None and screened.base_mapping == mapping:
                    result = screened.preview
                else:
                    # Redacted here, under the lock, so one value never gets two placeholders.
                    result = redact(content, mapping)
            except redaction.RedactionError:
                refusal = _store_redaction_failure(session=session, content=content,
                                                   client_id=client_id)
            else:
                if screened is None:  # the filter sees only redacted text
                    check_local_content_rules(result.text)
                prepared = _store_exchange(session=session, content=content,
                                           client_id=client_id, result=result)
    if refusal is not None:
        raise refusal
    metrics.MESSAGES.labels(role="user").inc()
    for entity_type, count in result.counts.items():
        metrics.PII_DETECTIONS.labels(type=entity_type).inc(count)
    # Its pii_detected audit event is appended with the answer's (see chat.pipeline.answer).
    return prepared


def _store_exchange(*, session: ChatSession, content: str, client_id: uuid.UUID | None,
                    result: redaction.RedactionResult) -> AcceptedMessage:
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
    sql.session_touch(session_id=session.id, mapping=result.mapping, now=now)
    history = _history(session=session, before=user_message)
    if len(history) == 1:  # nothing before it: the session's first question
        _title_from_first_question(session_id=session.id, redacted_text=result.text)
    return AcceptedMessage.in_session(
        session,
        user_message=user_message,
        assistant_message=assistant_message,
        history=history,
        mapping=result.mapping,
        pii_counts=result.counts,
        new_question=True,
        pii_policy=policy_applied(result.counts),
    )


TITLE_MAX_CHARS = 60

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
    if title:
        sql.session_title_if_untitled(session_id=session_id, title=title)


def _prepare_existing(*, user, session: ChatSession, user_message: ChatMessage) -> AcceptedMessage:
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
        enforce_rate_limit(user=user)
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
    return AcceptedMessage.in_session(
        session,
        user_message=user_message,
        assistant_message=reply,
        history=[] if replayable else _history(session=session, before=user_message),
        mapping=mapping,
        pii_counts=dict(user_message.pii_counts or {}),
        replay=replayable,
    )
