"""System checks of the compliance wiring (run by `manage.py check`)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

ACTOR_MIDDLEWARE = "compliance.middleware.AuditActorMiddleware"


@checks.register(checks.Tags.security)
def check_audit_actor_middleware(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Changes made through the API must be attributed to the user who made them."""
    if ACTOR_MIDDLEWARE in settings.MIDDLEWARE:
        return []
    return [checks.Warning(
        "Changes made through the JWT-authenticated API are logged without their actor.",
        hint=f"Use '{ACTOR_MIDDLEWARE}' in MIDDLEWARE instead of "
             "'auditlog.middleware.AuditlogMiddleware'.",
        id="compliance.W001",
    )]
