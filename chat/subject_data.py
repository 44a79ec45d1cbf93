"""The chat's part of a data subject's rights (LGPD Art. 18) and of consent revocation.

Compliance runs exports, erasures and consent revocations without knowing the
chat (compliance.registry); these handlers, registered from ChatConfig.ready(),
do the chat's share inside compliance's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chat.models import ChatMessage, ChatSession
from compliance.models import ConsentRecord
from compliance.registry import SubjectDataHandler, SubjectExport

CONSENT_REVOKED_CLOSE_REASON = "consent_revoked"


def _close_all_sessions(*, user, erased: bool) -> list:
    # Imported on first use: the chat pipeline loads the provider SDKs (~1 s), and this
    # module is loaded at start-up in every process (ChatConfig.ready()), most of which
    # never erase anyone or see a consent revoked.
    from chat.pipeline.sessions import ERASED_CLOSE_REASON, session_close_all_for_user

    reason = ERASED_CLOSE_REASON if erased else CONSENT_REVOKED_CLOSE_REASON
    return session_close_all_for_user(user=user, reason=reason)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _message(message: ChatMessage) -> dict[str, Any]:
    return {
        "id": str(message.id), "role": message.role, "content": message.content,
        # Exactly what left for (or came back from) the AI provider: placeholders only.
        "sent_to_provider": message.redacted_content,
        "status": message.status, "error_code": message.error_code,
        "created_at": _iso(message.created_at), "pii_detected": message.pii_counts,
        "provider": message.provider, "model": message.model,
        "input_tokens": message.input_tokens, "output_tokens": message.output_tokens,
        "provider_attempts": [
            {"provider": a.provider, "model": a.model, "outcome": a.outcome,
             "error_code": a.error_code, "started_at": _iso(a.started_at),
             "input_tokens": a.input_tokens, "output_tokens": a.output_tokens}
            for a in message.attempts.all()
        ],
    }


def _sessions(user) -> list[dict[str, Any]]:
    messages_by_session: dict[Any, list] = {}
    for message in (ChatMessage.objects.filter(session__user=user)
                    .order_by("created_at").prefetch_related("attempts")):
        messages_by_session.setdefault(message.session_id, []).append(_message(message))
    return [
        {"id": str(s.id), "clinic_id": s.clinic_id, "title": s.title, "status": s.status,
         "created_at": _iso(s.created_at), "last_activity_at": _iso(s.last_activity_at),
         "closed_at": _iso(s.closed_at), "close_reason": s.close_reason,
         "legal_hold": s.legal_hold, "messages": messages_by_session.get(s.id, [])}
        for s in ChatSession.objects.filter(user=user).order_by("created_at")
    ]


def subject_export(*, user) -> SubjectExport:
    """The subject's sessions with their messages decrypted, the redacted text that went
    to each AI provider and every provider attempt."""
    sessions = _sessions(user)
    return SubjectExport(
        sections={"sessions": sessions},
        counts={"sessions": len(sessions),
                "messages": sum(len(s["messages"]) for s in sessions)},
    )


def subject_erase(*, user) -> dict[str, int]:
    """Close the subject's sessions and wipe their text, titles and PII mappings.

    Sessions under legal hold keep their content (LGPD Art. 16 I) and are counted.
    The sessions are locked first: every path takes session locks before the audit
    append lock, so this order cannot deadlock with the chat or the purge.
    """
    sessions = dict(ChatSession.objects.select_for_update().filter(user=user)
                    .values_list("id", "legal_hold"))
    _close_all_sessions(user=user, erased=True)
    erasable = [sid for sid, held in sessions.items() if not held]
    messages = ChatMessage.objects.filter(session_id__in=erasable).update(
        content="", redacted_content="", feedback_comment=""
    )
    ChatSession.objects.filter(id__in=erasable).update(title="", pii_mapping={},
                                                       search_tokens="")
    return {
        "sessions": len(erasable),
        "messages": messages,
        "sessions_on_legal_hold": len(sessions) - len(erasable),
    }


def consent_revoked(*, user, purpose: str) -> int:
    """Without the AI-chat consent, the user's active sessions close; how many closed."""
    if purpose != ConsentRecord.Purpose.AI_CHAT:
        return 0
    return len(_close_all_sessions(user=user, erased=False))


def own_records(user) -> list[tuple[type[ChatSession], Any]]:
    """The subject's sessions, for the change log (messages are not in it)."""
    return [(ChatSession, ChatSession.objects.filter(user=user).values_list("pk", flat=True))]


HANDLER = SubjectDataHandler(export=subject_export, erase=subject_erase,
                             consent_revoked=consent_revoked, own_records=own_records)
