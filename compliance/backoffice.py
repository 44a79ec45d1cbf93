"""The compliance officer's back-office actions that are not a model's own:
revealing personal data on a session's page, verifying the audit chain and
exporting the trail for an auditor.

Each action is itself a required audit event written in the same transaction
as the action: when the event cannot be written the action does not happen
(`audit.AuditWriteError` reaches the caller, who shows the officer why).
"""

from __future__ import annotations

import re

from django.utils.translation import gettext_lazy as _

from compliance import audit
from compliance.models import AuditEvent

# Why an officer may read a session's personal data in clear (LGPD Art. 6 III, necessity).
REVEAL_REASONS = {
    "dsr": _("answering a data-subject request"),
    "incident": _("investigating a security incident"),
    "authority": _("request from a court or the ANPD"),
    "audit": _("internal compliance audit"),
}
# A protocol or request number: letters, digits and . / # -, with at least one digit and
# no spaces, so that it cannot carry a name into the audit trail.
_REFERENCE = re.compile(r"^(?=.*\d)[A-Za-z0-9./#-]{1,40}$")


class BackofficeError(Exception):
    """An officer's input the action refuses; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def pii_reveal_record(*, actor, session, reason: str, reference: str) -> AuditEvent:
    """Record that `actor` reveals the personal data of `session`, and why.

    The event names who (actor), when (its time), which session and subject, and
    why (a reason code and the number of the request, incident or protocol).
    Raises `BackofficeError` for a reason or reference the form should not have
    let through and `audit.AuditWriteError` when the event cannot be written:
    in both cases nothing may be shown.
    """
    if reason not in REVEAL_REASONS:
        raise BackofficeError("reason", str(_("Choose one of the listed reasons.")))
    reference = reference.strip()
    if not _REFERENCE.match(reference):
        raise BackofficeError("reference", str(_(
            "Give the number of the request, incident or protocol (letters, digits and "
            ". / # -, no spaces, at least one digit).")))
    return audit.record_event(
        event_type=audit.Event.PII_REVEALED, actor_id=actor.pk,
        subject_user_id=session.user_id, clinic_id=session.clinic_id, session_id=session.id,
        metadata={"reason": reason, "reference": reference},
    )
