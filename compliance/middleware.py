"""Change-log actor for every request, including API calls authenticated by JWT.

auditlog's middleware reads `request.user` before the view runs; DRF
authenticates bearer tokens inside the view, so an API change would be logged
without its actor. This subclass hands auditlog an actor that is looked up when
the first log entry of the request is written, after DRF has set the user.
"""

from __future__ import annotations

from auditlog.middleware import AuditlogMiddleware
from django.contrib.auth import get_user_model
from django.utils.functional import SimpleLazyObject


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
