"""The checks every door applies to a clinician's message, shared by the pipeline's steps.

Consent and clinic membership, the per-user rate limit, the one rule for a
message's text, the clinic's content rules, and the one place text is made safe
to leave for a provider (`redact`, failing closed).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from chat.errors import ChatError
from chat.providers.content_filter import ContentBlocked, check_local_rules
from clinics.models import ClinicMembership
from compliance import redaction
from compliance import services as compliance_services
from monitoring import metrics
from neonpro.ratelimit import rate_limit_hit

logger = logging.getLogger(__name__)


def require_chat_access(*, user) -> ClinicMembership:
    check_consent(user=user)
    membership = ClinicMembership.objects.filter(user=user).select_related("clinic").first()
    if membership is None:
        raise ChatError("no_clinic", "Your account is not a member of any clinic.")
    return membership


def enforce_rate_limit(*, user) -> None:
    retry_after = rate_limit_hit(scope="chat", key=str(user.pk))
    if retry_after is not None:
        raise ChatError(
            "rate_limited",
            f"Too many requests; try again in {retry_after} s.",
            retry_after=retry_after,
        )


def check_consent(*, user) -> None:
    if not compliance_services.consent_is_valid(user=user):
        raise ChatError("consent_required", "Consent for the AI chat is required first.")


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


def redact(text: str, mapping: dict[str, str]) -> redaction.RedactionResult:
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


def policy_applied(counts: dict[str, int]) -> dict[str, str]:
    """The policy each detected type was handled under (for the audit trail)."""
    if not counts:
        return {}
    policy = redaction.active_policy()
    return {entity: policy[entity] for entity in counts}


def content_filtered() -> ChatError:
    return ChatError("content_filtered", "This message was blocked by the clinic's content policy.")


def check_local_content_rules(text: str) -> None:
    try:
        check_local_rules(text)
    except ContentBlocked:
        raise content_filtered() from None
