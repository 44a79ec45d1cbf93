"""Consent lifecycle and terms versions: grant, revoke, check, publish.

Writes go through these functions. Each consent change writes its audit event
in the same transaction, so a change that cannot be audited does not happen.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from compliance import audit
from compliance.models import ConsentRecord, TermsVersion
from monitoring import metrics

logger = logging.getLogger(__name__)


class ConsentError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


# The consent check runs on every chat message. Its answer is kept in the shared cache:
# the current terms version for a few seconds (a version published for a later time
# takes effect within that), and each user's consent while it stays valid. Revocation
# and publication clear what they change; a revocation also closes the user's sessions
# under their row locks, which the message path checks, so it takes effect at once.
_TERMS_CACHE_KEY = "consent:current-terms"
_TERMS_CACHE_S = 10
_CONSENT_CACHE_S = 60


def _consent_cache_key(user_id: int, purpose: str) -> str:
    return f"consent:{purpose}:{user_id}"


def current_terms_version() -> str:
    """The version users must have consented to: the latest published TermsVersion.

    Falls back to `CONSENT_TERMS_VERSION` while no version has been published.
    """
    version = (
        TermsVersion.objects.filter(published_at__lte=timezone.now())
        .order_by("-published_at", "-id")
        .values_list("version", flat=True)
        .first()
    )
    return version or settings.CONSENT_TERMS_VERSION


def consent_get_active(
    *, user, purpose: str = ConsentRecord.Purpose.AI_CHAT, terms_version: str | None = None
) -> ConsentRecord | None:
    """The user's consent for `purpose` under the current terms, if any."""
    return (
        ConsentRecord.objects.filter(
            user=user, purpose=purpose, revoked_at__isnull=True,
            terms_version=terms_version or current_terms_version(),
        )
        .order_by("-granted_at")
        .first()
    )


def _cache_get_many(keys: list[str]) -> dict:
    try:
        return cache.get_many(keys)
    except Exception:  # the cache is a shortcut: without it, the database answers
        logger.warning("consent cache unavailable", extra={"event": "consent_cache_error"})
        return {}


def _cache_call(method: str, *args) -> None:
    try:
        getattr(cache, method)(*args)
    except Exception:
        logger.warning("consent cache unavailable", extra={"event": "consent_cache_error"})


def _forget_consent(user_id: int, purpose: str) -> None:
    """Drop the cached answer now and again after commit (a check racing the change
    could otherwise put the old answer back)."""
    key = _consent_cache_key(user_id, purpose)
    _cache_call("delete", key)
    transaction.on_commit(lambda: _cache_call("delete", key))


def consent_is_valid(*, user, purpose: str = ConsentRecord.Purpose.AI_CHAT) -> bool:
    """Consent check used before chatting; counted by outcome."""
    if not settings.CONSENT_VALIDATION_ENABLED:
        metrics.CONSENT_VALIDATIONS.labels(outcome="skipped").inc()
        return True
    key = _consent_cache_key(user.pk, purpose)
    cached = _cache_get_many([_TERMS_CACHE_KEY, key])
    terms_version = cached.get(_TERMS_CACHE_KEY)
    if terms_version is None:
        terms_version = current_terms_version()
        _cache_call("set", _TERMS_CACHE_KEY, terms_version, _TERMS_CACHE_S)
    # The cached value is the terms version consented to: a newer version invalidates it.
    valid = cached.get(key) == terms_version
    if not valid:
        valid = consent_get_active(user=user, purpose=purpose,
                                   terms_version=terms_version) is not None
        if valid:
            _cache_call("set", key, terms_version, _CONSENT_CACHE_S)
    metrics.CONSENT_VALIDATIONS.labels(outcome="granted" if valid else "missing").inc()
    return valid


def _check_purpose(purpose: str) -> None:
    if purpose not in ConsentRecord.Purpose.values:
        raise ConsentError("invalid", "Unknown consent purpose.")


@transaction.atomic
def consent_grant(
    *, user, purpose: str, ip_address: str | None, user_agent: str
) -> ConsentRecord:
    """Record consent under the current terms version (idempotent while still active).

    Raises `audit.AuditWriteError` (and records nothing) when the consent_granted
    event cannot be written.
    """
    _check_purpose(purpose)
    existing = consent_get_active(user=user, purpose=purpose)
    if existing is not None:
        return existing
    record = ConsentRecord.objects.create(
        user=user,
        purpose=purpose,
        terms_version=current_terms_version(),
        ip_address=ip_address,
        user_agent=(user_agent or "")[:400],
    )
    audit.record_event(
        event_type=audit.Event.CONSENT_GRANTED, actor_id=user.pk, subject_user_id=user.pk,
        metadata={"consent_id": record.pk, "purpose": purpose,
                  "terms_version": record.terms_version},
    )
    return record


def consent_revoke(*, user, purpose: str, actor=None) -> int:
    """Revoke every active consent for `purpose` and close the user's active sessions.

    The records stay (evidence of what was agreed and when); only `revoked_at`
    is set. Open WebSockets of the closed sessions are told once the
    transaction commits. `actor` is who acted (the subject when None). Returns
    how many consent records were revoked (0 when none was active). Raises
    `audit.AuditWriteError` and changes nothing when the consent_revoked event
    cannot be written.
    """
    _check_purpose(purpose)
    from chat.pipeline.sessions import session_close_all_for_user

    with transaction.atomic():
        revoked = ConsentRecord.objects.filter(
            user=user, purpose=purpose, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if not revoked:
            return 0
        _forget_consent(user.pk, purpose)
        closed = []
        if purpose == ConsentRecord.Purpose.AI_CHAT:
            closed = session_close_all_for_user(user=user, reason="consent_revoked")
        audit.record_event(
            event_type=audit.Event.CONSENT_REVOKED,
            actor_id=(actor or user).pk, subject_user_id=user.pk,
            metadata={"purpose": purpose, "records": revoked, "sessions_closed": len(closed)},
        )
    return revoked


def terms_version_publish(
    *, version: str, summary: str = "", text: str = "", published_at: datetime | None = None,
    actor=None,
) -> TermsVersion:
    """Publish a new terms version; from `published_at` on, everyone must consent again."""
    terms = TermsVersion.objects.create(
        version=version, summary=summary, text=text,
        published_at=published_at or timezone.now(),
    )
    transaction.on_commit(lambda: _cache_call("delete", _TERMS_CACHE_KEY))
    audit.record_event(
        event_type=audit.Event.TERMS_PUBLISHED, actor_id=getattr(actor, "pk", None),
        metadata={"terms_id": terms.pk, "version": version},
    )
    return terms
