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

from clinics.models import ClinicMembership
from compliance import audit, registry
from compliance.models import AuditEvent, ConsentRecord, DataSubjectRequest
from compliance.services import consent_revoke
from neonpro.errors import NeonProError

EXPORT_FORMAT = "neonpro.subject-export.v1"


class DSRError(NeonProError):
    """A request the officer's action cannot apply (wrong type or status)."""


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
        (ClinicMembership,
         ClinicMembership.objects.filter(user=user).values_list("pk", flat=True)),
        (DataSubjectRequest,
         DataSubjectRequest.objects.filter(user=user).values_list("pk", flat=True)),
        *(record for handler in registry.subject_data_handlers()
          for record in handler.own_records(user)),
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


def _build_export(user) -> tuple[dict[str, Any], dict[str, int]]:
    """The export document, and the counts of the apps' parts for the audit event."""
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "generated_at": _iso(timezone.now()),
        "subject": _profile(user),
        "clinic_memberships": _memberships(user),
        "consents": _consents(user),
        "data_subject_requests": _requests(user),
    }
    counts: dict[str, int] = {}
    for handler in registry.subject_data_handlers():  # the chat's sessions and messages
        part = handler.export(user=user)
        document.update(part.sections)
        counts.update(part.counts)
    document["audit_events"] = _audit_events(user)
    document["change_log"] = _change_log(user)
    return document, counts


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
        document, counts = _build_export(user)
        audit.record_event(
            event_type=audit.Event.DATA_EXPORTED, actor_id=(actor or user).pk,
            subject_user_id=user.pk,
            metadata={
                "request_id": request.pk if request is not None else None,
                **counts,
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
    with transaction.atomic():
        # The apps' content first (the chat locks the subject's sessions): every path
        # takes session locks before the audit append lock, so this order cannot
        # deadlock with the chat or the purge.
        counts: dict[str, int] = {}
        for handler in registry.subject_data_handlers():
            counts.update(handler.erase(user=user))
        revoked = sum(
            consent_revoke(user=user, purpose=purpose, actor=actor)
            for purpose in ConsentRecord.Purpose.values
        )
        ConsentRecord.objects.filter(user=user).update(ip_address=None, user_agent="")
        DataSubjectRequest.objects.filter(user=user).update(details="")
        _anonymise_user(user)
        scrubbed = _scrub_change_log(user)
        counts["consents_revoked"] = revoked
        audit.record_event(
            event_type=audit.Event.DATA_ERASED, actor_id=getattr(actor, "pk", None),
            subject_user_id=user.pk,
            metadata={"request_id": request.pk if request is not None else None, **counts,
                      "change_log_entries_scrubbed": scrubbed},
        )
    return counts


def dsr_revoke_consent(*, request: DataSubjectRequest, actor) -> int:
    """Apply a consent-revocation request: revoke every purpose, close sessions."""
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
