"""Request-wide compliance rules: the change-log actor and private responses.

Change-log actor for every request, including API calls authenticated by JWT.

auditlog's middleware reads `request.user` before the view runs; DRF
authenticates bearer tokens inside the view, so an API change would be logged
without its actor. This subclass hands auditlog an actor that is looked up when
the first log entry of the request is written, after DRF has set the user.
"""

from __future__ import annotations

from auditlog.middleware import AuditlogMiddleware
from django.contrib.auth import get_user_model
from django.utils.functional import SimpleLazyObject, empty

from neonpro.middleware import HybridMiddleware


def _authenticated_user(request):
    user = getattr(request, "user", None)
    if isinstance(user, get_user_model()) and user.is_authenticated:
        return user
    return None


class AuditActorMiddleware(AuditlogMiddleware):
    """AuditlogMiddleware whose actor also covers users authenticated in DRF views."""

    @staticmethod
    def _get_actor(request):
        # Resolved on first use: auditlog checks isinstance(actor, User) when it writes
        # an entry, and an anonymous request resolves to None (no actor recorded).
        return SimpleLazyObject(lambda: _authenticated_user(request))


class PrivateResponseMiddleware(HybridMiddleware):
    """`Cache-Control: no-store` on every response to a signed-in user.

    What a signed-in user receives (message lists, session details, the chat page,
    exports, SSE streams, the admin) can carry personal data, and no browser cache,
    shared proxy or CDN may keep it (LGPD: data kept only where and as long as we
    decide). One rule here rather than one decorator per view, so a new endpoint
    cannot forget it. The user is read after the view ran: DRF authenticates bearer
    tokens inside the view and sets `request.user` there.
    """

    def finish(self, request, response, started):
        if _signed_in_user_seen(request) and \
                "no-store" not in response.get("Cache-Control", ""):
            # Replaces weaker directives (no-cache, max-age): no-store is the one that
            # keeps the body out of every cache.
            response["Cache-Control"] = "no-store"
        return response


def _signed_in_user_seen(request) -> bool:
    """Did the view serve a signed-in user? Only a user already looked up counts: a view
    that never asked who is signed in served nothing personal, and looking the user up
    here would cost a query (and, during a database outage, turn the clean 503 the
    view produced into a 500)."""
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject):
        user = None if user._wrapped is empty else user._wrapped
    if user is None:  # async views ask through request.auser(), which caches here
        user = getattr(request, "_acached_user", None)
    return isinstance(user, get_user_model()) and user.is_authenticated
