"""WebSocket authentication and origin checks.

Browsers authenticate with the Django session cookie; API clients send
`Authorization: Bearer <jwt>` (tokens in query strings would end up in access
logs, so they are not accepted).
"""

from __future__ import annotations

from urllib.parse import urlparse

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken


@database_sync_to_async
def _user_from_jwt(raw_token: str):
    try:
        token = AccessToken(raw_token)
        user_id = token[jwt_settings.USER_ID_CLAIM]
    except (TokenError, KeyError):
        return None
    user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
    return user if user is not None and user.is_active else None


class JWTAuthMiddleware(BaseMiddleware):
    """Sets scope["user"] from a Bearer token, when one is sent."""

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if authorization.lower().startswith("bearer "):
            user = await _user_from_jwt(authorization[7:].strip())
            scope = dict(scope, user=user or AnonymousUser(), auth_method="jwt")
        return await super().__call__(scope, receive, send)


def allowed_origins() -> list[str]:
    """Origins allowed to open WebSockets: ALLOWED_HOSTS plus CORS_ORIGIN."""
    origins = list(settings.ALLOWED_HOSTS)
    for origin in settings.CORS_ALLOWED_ORIGINS:
        parsed = urlparse(origin)
        origins.append(f"{parsed.scheme}://{parsed.netloc}" if parsed.scheme else origin)
    return origins


class ChatOriginValidator(OriginValidator):
    """Like Channels' AllowedHostsOriginValidator, also accepting CORS_ORIGIN.

    Clients that send no Origin header (server-to-server API clients) are not
    browsers and cannot be abused through cross-site requests; they still need
    a valid token.
    """

    def __init__(self, application):
        super().__init__(application, allowed_origins())

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def chat_auth_stack(inner):
    return ChatOriginValidator(AuthMiddlewareStack(JWTAuthMiddleware(inner)))
