"""Data-subject requests (LGPD Art. 18): filing, export, erasure, resolution.

Officers run these from the admin; users export their own data and file
requests through the API. Export and erasure write their audit event in the
same transaction: if the event cannot be written, nothing is delivered or
erased.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone

from chat.models import ChatMessage, ChatSession, ClinicMembership
from compliance import audit
from compliance.models import AuditEvent, ConsentRecord, DataSubjectRequest

EXPORT_FORMAT = "neonpro.subject-export.v1"


class DSRError(Exception):
    """A request the officer's action cannot apply (wrong type or status)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


# --- Filing and status ------------------------------------------------------------------


def dsr_create(
    *, user, request_type: str, details: str = "", actor=None,
    received_at: datetime | None = None,
) -> DataSubjectRequest:
    """File a request for `user` (by the subject, or by an officer on their behalf)."""
    if request_type not in DataSubjectRequest.RequestType.values:
        raise DSRError("invalid", "Unknown request type.")
    request = DataSubjectRequest.objects.create(
        user=user, request_type=request_type, details=details or "",
        received_at=received_at or timezone.now(),
    )
    audit.record_event(
        event_type=audit.Event.DSR_CREATED, actor_id=(actor or user).pk,
        subject_user_id=user.pk,
        metadata={"request_id": request.pk, "request_type": request_type},
    )
    return request


def dsr_set_status(*, request: DataSubjectRequest, status: str, actor,
                   note: str = "") -> DataSubjectRequest:
    """Move a request to `status`; completing or rejecting stamps who and when."""
    if status not in DataSubjectRequest.Status.values:
        raise DSRError("invalid", "Unknown status.")
    previous = request.status
    request.status = status
    request.handled_by = actor
    if note:
        request.resolution_note = note
    request.completed_at = None if request.is_open else timezone.now()
    request.save(update_fields=["status", "handled_by", "resolution_note", "completed_at"])
    audit.record_event(
        event_type=audit.Event.DSR_STATUS_CHANGED, actor_id=getattr(actor, "pk", None),
        subject_user_id=request.user_id,
        metadata={"request_id": request.pk, "from": previous, "to": status},
    )
    return request


def dsr_list_overdue(*, now: datetime | None = None) -> QuerySet[DataSubjectRequest]:
    """Open requests past their legal due date."""
    return DataSubjectRequest.objects.filter(
        status__in=DataSubjectRequest.OPEN_STATUSES, due_at__lt=now or timezone.now()
    )


# --- Export (access / portability) ------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _profile(user) -> dict[str, Any]:
    return {
        "id": user.pk, "username": user.get_username(), "first_name": user.first_name,
        "last_name": user.last_name, "email": user.email, "is_active": user.is_active,
        "date_joined": _iso(user.date_joined), "last_login": _iso(user.last_login),
    }


def _memberships(user) -> list[dict[str, Any]]:
    return [
        {"clinic_id": m.clinic_id, "clinic_name": m.clinic.name, "role": m.role,
         "created_at": _iso(m.created_at)}
        for m in ClinicMembership.objects.filter(user=user).select_related("clinic")
    ]


def _consents(user) -> list[dict[str, Any]]:
    return [
        {"id": c.pk, "purpose": c.purpose, "terms_version": c.terms_version,
         "granted_at": _iso(c.granted_at), "revoked_at": _iso(c.revoked_at),
         "ip_address": c.ip_address, "user_agent": c.user_agent}
        for c in ConsentRecord.objects.filter(user=user).order_by("granted_at")
    ]


def _requests(user) -> list[dict[str, Any]]:
    return [
        {"id": r.pk, "request_type": r.request_type, "status": r.status,
         "details": r.details, "received_at": _iso(r.received_at), "due_at": _iso(r.due_at),
         "completed_at": _iso(r.completed_at), "resolution_note": r.resolution_note}
        for r in DataSubjectRequest.objects.filter(user=user).order_by("received_at")
    ]


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


def _audit_events(user) -> list[dict[str, Any]]:
    # Events about the subject, and the subject's own actions that concern nobody else.
    events = AuditEvent.objects.filter(
        Q(subject_user_id=user.pk) | Q(actor_id=user.pk, subject_user_id__isnull=True)
    ).order_by("id")
    return [
        {"id": e.id, "created_at": _iso(e.created_at), "event_type": e.event_type,
         "by_subject": e.actor_id == user.pk, "clinic_id": e.clinic_id,
         "session_id": str(e.session_id) if e.session_id else None, "metadata": e.metadata}
        for e in events
    ]


def _own_records(user) -> list[tuple[Any, Any]]:
    """(model, pks) of the records that are the subject's own, for the change log."""
    return [
        (get_user_model(), [user.pk]),
        (ConsentRecord, ConsentRecord.objects.filter(user=user).values_list("pk", flat=True)),
        (ChatSession, ChatSession.objects.filter(user=user).values_list("pk", flat=True)),
        (ClinicMembership,
         ClinicMembership.objects.filter(user=user).values_list("pk", flat=True)),
        (DataSubjectRequest,
         DataSubjectRequest.objects.filter(user=user).values_list("pk", flat=True)),
    ]


def _own_records_query(user) -> Q:
    query = Q(pk__in=[])
    for model, pks in _own_records(user):
        query |= Q(content_type=ContentType.objects.get_for_model(model),
                   object_pk__in=[str(pk) for pk in pks])
    return query


def _change_log(user) -> list[dict[str, Any]]:
    """auditlog entries about the subject's own records: what changed and when (no values)."""
    from auditlog.models import LogEntry

    query = _own_records_query(user)
    return [
        {"timestamp": _iso(entry.timestamp), "object_type": entry.content_type.model,
         "object_id": entry.object_pk, "action": entry.get_action_display(),
         "fields_changed": sorted((entry.changes or {}).keys())}
        for entry in LogEntry.objects.filter(query).select_related("content_type")
        .order_by("timestamp")
    ]


def _build_export(user) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "generated_at": _iso(timezone.now()),
        "subject": _profile(user),
        "clinic_memberships": _memberships(user),
        "consents": _consents(user),
        "data_subject_requests": _requests(user),
        "sessions": _sessions(user),
        "audit_events": _audit_events(user),
        "change_log": _change_log(user),
    }


def dsr_export_subject(*, user, actor=None, request: DataSubjectRequest | None = None
                       ) -> dict[str, Any]:
    """Everything held about `user`, as a JSON-ready document (LGPD Art. 18 II and V).

    Profile, clinic memberships, consents, requests, sessions with their
    messages decrypted (and the redacted text that went to each AI provider,
    with every provider attempt), audit events about the subject and the change
    log of their records. Records a data_exported event (`actor` is who asked:
    the subject when None); raises `audit.AuditWriteError` and delivers nothing
    when that event cannot be written.
    """
    with transaction.atomic():
        document = _build_export(user)
        audit.record_event(
            event_type=audit.Event.DATA_EXPORTED, actor_id=(actor or user).pk,
            subject_user_id=user.pk,
            metadata={
                "request_id": request.pk if request is not None else None,
                "sessions": len(document["sessions"]),
                "messages": sum(len(s["messages"]) for s in document["sessions"]),
                "consents": len(document["consents"]),
            },
        )
    return document


# --- Erasure (anonymisation / deletion) -------------------------------------------------


def _scrub_change_log(user) -> int:
    """Drop the subject's identifiers from the change log (object names, e-mail, IP).

    Object names of the subject's records read "Maria S. — ..." in the admin, so
    every entry about any of them is renamed to its type and id.
    """
    from auditlog.models import LogEntry

    with audit.changelog_scrub_allowed():  # the change log is otherwise append-only
        renamed = 0
        for model, pks in _own_records(user):
            renamed += LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(model),
                object_pk__in=[str(pk) for pk in pks],
            ).update(object_repr=Concat(Value(f"{model._meta.model_name} "), F("object_pk")))
        return renamed + LogEntry.objects.filter(actor_id=user.pk).update(
            actor_email=None, remote_addr=None, remote_port=None
        )


def _anonymise_user(user) -> None:
    user.username = f"erased-{user.pk}"
    user.first_name = user.last_name = user.email = ""
    user.is_active = user.is_staff = user.is_superuser = False
    user.set_unusable_password()
    user.save()
    user.groups.clear()
    user.user_permissions.clear()


def dsr_erase_subject(*, user, actor, request: DataSubjectRequest | None = None
                      ) -> dict[str, int]:
    """Anonymise `user` and erase the content they put into the system (LGPD Art. 18 IV, VI).

    Active sessions are closed; message text (as typed and as sent to the
    providers), session titles and PII mappings are wiped; consents are
    revoked and their IP/user-agent evidence cleared (the records, with dates
    and terms version, stay as proof of the legal basis); request details are
    cleared; the account is deactivated and its identifying fields replaced;
    the change log loses the subject's name, e-mail and addresses. Sessions
    under legal hold keep their content (LGPD Art. 16 I) and are counted.
    Audit events keep only ids and counts. Returns the counts; raises
    `audit.AuditWriteError` and changes nothing when the data_erased event
    cannot be written.
    """
    from chat.pipeline.sessions import ERASED_CLOSE_REASON, session_close_all_for_user
    from compliance.services import consent_revoke

    with transaction.atomic():
        # Lock the subject's sessions first: every path takes session locks before
        # the audit append lock, so this order cannot deadlock with the chat or the purge.
        sessions = dict(ChatSession.objects.select_for_update().filter(user=user)
                        .values_list("id", "legal_hold"))
        session_close_all_for_user(user=user, reason=ERASED_CLOSE_REASON)
        erasable = [sid for sid, held in sessions.items() if not held]
        messages = ChatMessage.objects.filter(session_id__in=erasable).update(
            content="", redacted_content="", feedback_comment=""
        )
        ChatSession.objects.filter(id__in=erasable).update(title="", pii_mapping={},
                                                           search_tokens="")
        revoked = sum(
            consent_revoke(user=user, purpose=purpose, actor=actor)
            for purpose in ConsentRecord.Purpose.values
        )
        ConsentRecord.objects.filter(user=user).update(ip_address=None, user_agent="")
        DataSubjectRequest.objects.filter(user=user).update(details="")
        _anonymise_user(user)
        scrubbed = _scrub_change_log(user)
        counts = {
            "sessions": len(erasable),
            "messages": messages,
            "sessions_on_legal_hold": len(sessions) - len(erasable),
            "consents_revoked": revoked,
        }
        audit.record_event(
            event_type=audit.Event.DATA_ERASED, actor_id=getattr(actor, "pk", None),
            subject_user_id=user.pk,
            metadata={"request_id": request.pk if request is not None else None, **counts,
                      "change_log_entries_scrubbed": scrubbed},
        )
    return counts


def dsr_revoke_consent(*, request: DataSubjectRequest, actor) -> int:
    """Apply a consent-revocation request: revoke every purpose, close sessions."""
    from compliance.services import consent_revoke

    if request.request_type != DataSubjectRequest.RequestType.CONSENT_REVOCATION:
        raise DSRError("wrong_type", "Only consent-revocation requests revoke consent.")
    with transaction.atomic():
        revoked = sum(
            consent_revoke(user=request.user, purpose=purpose, actor=actor)
            for purpose in ConsentRecord.Purpose.values
        )
        dsr_set_status(request=request, status=DataSubjectRequest.Status.COMPLETED,
                       actor=actor)
    return revoked
