"""Refresh-token families: reusing a rotated refresh token revokes its whole family.

Refresh tokens are single-use (rotated and blacklisted on use). A rotated token
presented again means two parties hold the same lineage: the legitimate client
and whoever copied a token. Refusing only the replayed token would leave the
copier (or the victim) with a working token, so every refresh token descending
from the same sign-in is blacklisted, and the event is audited.

The family is a claim set at sign-in (`fam`), kept through every rotation, and
is also the prefix of each token's `jti`, so the family's outstanding tokens are
found by one indexed query in simplejwt's blacklist tables (no store of our
own). Access tokens carry the claim too but stay stateless: they expire within
JWT_ACCESS_MINUTES. A refresh is checked and rotated under a row lock on the
presented token, so two concurrent uses of one token cannot both succeed.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import (
    TokenObtainPairSerializer,
    TokenRefreshSerializer,
)
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken

from compliance import audit

logger = logging.getLogger(__name__)

FAMILY_CLAIM = "fam"
# Audit event type of a replayed refresh token (next to `login_locked_out`).
REFRESH_REUSED_EVENT = "refresh_token_reused"


class FamilyRefreshToken(RefreshToken):
    """A refresh token whose `jti` is `<family>.<random>`; the family survives rotation."""

    def set_jti(self) -> None:
        family = self.payload.get(FAMILY_CLAIM)
        if not isinstance(family, str) or not family:
            family = self.payload[FAMILY_CLAIM] = uuid.uuid4().hex
        self.payload[api_settings.JTI_CLAIM] = f"{family}.{uuid.uuid4().hex}"


def refresh_token_family_revoke(*, family: str | None, user_id: Any) -> int:
    """Blacklist every outstanding, unexpired refresh token of `family` (of the user's
    tokens: all of them for tokens minted before families existed); returns how many."""
    tokens = OutstandingToken.objects.filter(expires_at__gt=timezone.now(),
                                             blacklistedtoken__isnull=True)
    if family:
        tokens = tokens.filter(jti__startswith=f"{family}.")
    else:
        tokens = tokens.filter(user_id=user_id)
    revoked = [BlacklistedToken(token=token) for token in tokens]
    BlacklistedToken.objects.bulk_create(revoked, ignore_conflicts=True)
    return len(revoked)


def _signed_refresh_payload(raw: str) -> dict[str, Any] | None:
    """The claims of a refresh token whose signature and expiry hold, else None."""
    try:
        payload = UntypedToken(raw).payload  # signature and expiry, no blacklist check
    except TokenError:
        return None
    if payload.get(api_settings.TOKEN_TYPE_CLAIM) != "refresh":
        return None
    return payload


def _refresh_reused(payload: dict[str, Any]) -> int:
    """The replay of a rotated token: revoke its family, audit and log it (counts only)."""
    user_id = payload.get(api_settings.USER_ID_CLAIM)
    revoked = refresh_token_family_revoke(family=payload.get(FAMILY_CLAIM), user_id=user_id)
    subject = int(user_id) if str(user_id).isdigit() else None
    audit.record_event(event_type=REFRESH_REUSED_EVENT, actor_id=subject,
                       subject_user_id=subject, metadata={"revoked_tokens": revoked})
    logger.warning("rotated refresh token reused; its family was revoked",
                   extra={"event": REFRESH_REUSED_EVENT,
                          "metadata": {"revokedTokens": revoked}})
    return revoked


class FamilyTokenObtainPairSerializer(TokenObtainPairSerializer):
    token_class = FamilyRefreshToken


class FamilyTokenRefreshSerializer(TokenRefreshSerializer):
    """simplejwt's rotation, checked for reuse under a lock on the presented token."""

    token_class = FamilyRefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        payload = _signed_refresh_payload(attrs["refresh"])
        if payload is None:
            return super().validate(attrs)  # simplejwt's own refusal, unchanged
        reused = False
        with transaction.atomic():
            presented = OutstandingToken.objects.select_for_update().filter(
                jti=payload[api_settings.JTI_CLAIM]).first()
            if presented is not None and \
                    BlacklistedToken.objects.filter(token=presented).exists():
                _refresh_reused(payload)
                reused = True
            else:
                data = super().validate(attrs)
        if reused:  # raised after the revocation committed
            raise InvalidToken("Token is blacklisted")
        return data


def refresh_tokens_flush_expired(*, now=None) -> int:
    """Delete refresh tokens past their expiry, with their blacklist rows; returns how many.

    An expired token is refused on its expiry alone, so its row proves nothing any more,
    while it still ties a user to a sign-in time: kept, the table would grow with every
    sign-in and refresh for as long as the system runs (what simplejwt's
    `flushexpiredtokens` does, run here by Celery beat).
    """
    _, by_model = OutstandingToken.objects.filter(
        expires_at__lte=now or timezone.now()).delete()
    return by_model.get(OutstandingToken._meta.label, 0)
