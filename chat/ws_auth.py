"""WebSocket authentication, origin checks, connection limits and outage handling.

Browsers authenticate with the Django session cookie; API clients send
`Authorization: Bearer <jwt>` (tokens in query strings would end up in access
logs, so they are not accepted).

The stack, outermost first (`chat_auth_stack`):

- `ServiceGuard`: a database or Redis outage anywhere inside ends the socket
  with an `error` frame `service_unavailable` and close code 4503 (never a bare
  1011 or a failed handshake); while the process is stopping, new sockets are
  refused and open ones get the same frame and code once their answer is
  settled (daphne sends only 1000 or 3000-4999, so not RFC 6455's 1012);
- `ChatOriginValidator`: the Origin must be one of CORS_ORIGIN or the site itself
  (a host of ALLOWED_HOSTS, same scheme and port as the socket);
- connection attempts per client address (WS_CONNECT_RATE_PER_IP per minute),
  counted before authentication so floods never reach the database;
- authentication (session cookie, then Bearer JWT);
- connection attempts per user (WS_CONNECT_RATE_PER_USER per minute).

Refusals are sent as an `error` frame (`rate_limited` with `retry_after`) and a
close code (4429), since daphne does not pass close reasons on to clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any
from urllib.parse import urlparse

import orjson
from channels.auth import AuthMiddleware
from channels.middleware import BaseMiddleware
from channels.security.websocket import WebsocketDenier
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken

from chat import shutdown
from chat.errors import ChatError
from neonpro.api_errors import outage_dependency, outage_error
from neonpro.blocking import run_blocking
from neonpro.client_address import scope_client_ip
from neonpro.ratelimit import rate_limit_hit

CLOSE_RATE_LIMITED = 4429
CLOSE_SERVICE_UNAVAILABLE = 4503


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
            user = await run_blocking(_user_from_jwt, authorization[7:].strip())
            scope = dict(scope, user=user or AnonymousUser(), auth_method="jwt")
        return await super().__call__(scope, receive, send)


# An origin is compared as (scheme, host, port), with the scheme's default port filled in.
_DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(value: str) -> Origin | None:
    """(scheme, host, port) of an Origin header value or a configured origin, else None
    (`null`, a path, credentials, a non-web scheme or a bad port are not origins)."""
    parsed = urlparse(value.strip().lower())
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.hostname:
        return None
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment or parsed.username \
            or parsed.password is not None:
        return None
    try:
        port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    except ValueError:
        return None
    return parsed.scheme, parsed.hostname, port


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return ""


def _connection_is_secure(scope) -> bool:
    """TLS to the client, directly or (like Django's request.is_secure()) as the reverse
    proxy reports it through SECURE_PROXY_SSL_HEADER."""
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not proxy_header:
        return False
    name, expected = proxy_header
    header = name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
    return _header(scope, header).split(",")[0].strip() == expected


def _connection_scheme_and_port(scope) -> tuple[str, int]:
    """The web scheme and port the client connected to (a ws:// socket on port 8000
    belongs to the http://…:8000 page)."""
    scheme = "https" if _connection_is_secure(scope) else "http"
    _, port = split_domain_port(_header(scope, b"host"))
    if port:
        return scheme, int(port)
    if not _header(scope, b"host") and scope.get("server"):
        return scheme, int(scope["server"][1])
    return scheme, _DEFAULT_PORTS[scheme]


def allowed_cors_origins() -> set[Origin]:
    """The origins of CORS_ORIGIN, normalised (default ports filled in)."""
    return {origin for value in settings.CORS_ALLOWED_ORIGINS
            if (origin := parse_origin(value)) is not None}


def origin_allowed(*, origin: str | None, scope) -> bool:
    """May a page of `origin` open this WebSocket?

    No Origin header: a server-to-server API client, not a browser, so it cannot
    be abused through cross-site requests (it still needs a valid token). A
    browser's Origin must be exactly one of CORS_ORIGIN, or the site itself: a
    host of ALLOWED_HOSTS with the scheme and port this socket was opened on.
    Scheme and port count: `http://localhost:1` is another site than the one
    served on `http://localhost:8000`, and a plain-HTTP page must not talk to
    the HTTPS site's sockets.
    """
    if origin is None:
        return True
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    if parsed in allowed_cors_origins():
        return True
    scheme, host, port = parsed
    return validate_host(host, settings.ALLOWED_HOSTS) and \
        (scheme, port) == _connection_scheme_and_port(scope)


class ChatOriginValidator:
    """Refuses (HTTP 403 at the handshake) a WebSocket whose Origin is not allowed."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        raw = next((value for key, value in scope.get("headers") or [] if key == b"origin"),
                   None)
        origin = None if raw is None else raw.decode("latin-1")
        if origin_allowed(origin=origin, scope=scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)


# --- Refusing a socket ------------------------------------------------------------------


async def refuse(send, *, error: ChatError, code: int) -> None:
    """Accept, send one `error` frame, close with `code` (the client learns why)."""
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": orjson.dumps(error.as_frame()).decode()})
    await send({"type": "websocket.close", "code": code, "reason": error.code})


def _rate_limited(retry_after: int) -> ChatError:
    return ChatError("rate_limited",
                     f"Too many connection attempts; try again in {retry_after} s.",
                     retry_after=retry_after)


def _client_key(scope) -> str | None:
    ip = scope_client_ip(scope)  # behind trusted proxies only (neonpro.client_address)
    if ip is None:
        return None
    return hashlib.sha256(f"ws-ip:{ip}".encode()).hexdigest()[:32]


class ConnectionRateLimitMiddleware(BaseMiddleware):
    """Limits connection attempts per client address or per authenticated user."""

    def __init__(self, inner, *, per: str) -> None:
        super().__init__(inner)
        self.per = per

    def _key(self, scope) -> tuple[str | None, int]:
        if self.per == "ip":
            return _client_key(scope), settings.WS_CONNECT_RATE_PER_IP
        user = scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            return None, 0  # the consumer refuses it (4401) without further cost
        return str(user.pk), settings.WS_CONNECT_RATE_PER_USER

    async def __call__(self, scope, receive, send):
        key, limit = self._key(scope)
        if key is not None and limit > 0:
            retry_after = await run_blocking(rate_limit_hit, scope=f"ws-connect-{self.per}",
                                             key=key, limit=limit, window_ms=60_000)
            if retry_after is not None:
                await refuse(send, error=_rate_limited(retry_after), code=CLOSE_RATE_LIMITED)
                return None
        return await super().__call__(scope, receive, send)


class _SendState:
    """Wraps `send` to know whether the socket was accepted or closed.

    Nothing is sent once the socket is closed, and a second accept is dropped. The
    guard may accept and close a socket for a stopping process while its consumer
    is still connecting; the consumer's own accept then came second, and daphne
    would raise on it (no handshake left to complete), logging an application
    error for a socket that closed as it should.
    """

    def __init__(self, send) -> None:
        self._send = send
        self.accepted = False
        self.closed = False

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.closed:
            return  # nothing reaches a closed socket
        if message["type"] == "websocket.accept":
            if self.accepted:
                return
            self.accepted = True
        elif message["type"] == "websocket.close":
            self.closed = True
        await self._send(message)

    async def finish(self, *, error: ChatError, code: int) -> None:
        """End the socket with `error` and `code`, however far it got."""
        if self.closed:
            return
        with contextlib.suppress(Exception):  # the client may be gone already
            if not self.accepted:
                await self({"type": "websocket.accept"})
            await self({"type": "websocket.send",
                        "text": orjson.dumps(error.as_frame()).decode()})
            await self({"type": "websocket.close", "code": code, "reason": error.code})


def _restarting() -> ChatError:
    return ChatError("service_unavailable",
                     "The server is restarting; reconnect to continue. Nothing was lost.",
                     retry_after=1)


class ServiceGuard:
    """Outages end a socket cleanly; a stopping process closes its sockets with a reason."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "websocket":
            return await self.app(scope, receive, send)
        state = _SendState(send)
        if shutdown.is_shutting_down():
            await state.finish(error=_restarting(), code=CLOSE_SERVICE_UNAVAILABLE)
            return None
        consumer_gone = False
        disconnected = asyncio.Event()

        async def watched_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                disconnected.set()
            return message

        async def close_for_shutdown() -> None:
            await state.finish(error=_restarting(), code=CLOSE_SERVICE_UNAVAILABLE)
            # Wait for the client's close reply, so the reactor does not drop the
            # connection before the frames are out (the caller bounds the wait).
            with contextlib.suppress(Exception):
                while consumer_gone and not disconnected.is_set():
                    await watched_receive()  # nobody else reads any more
                await disconnected.wait()

        # When the process stops, once answers in flight are settled, this socket is
        # told why it closes (and to reconnect), whatever became of its consumer.
        registration = shutdown.register_socket(close_for_shutdown)
        try:
            return await self.app(scope, watched_receive, state)
        except asyncio.CancelledError:
            # daphne cancels every connection's consumer when it stops; the socket
            # itself stays open until the graceful stop closes it.
            consumer_gone = True
            raise
        except Exception as exc:
            if not outage_dependency(exc):
                raise
            await state.finish(error=outage_error(exc), code=CLOSE_SERVICE_UNAVAILABLE)
            return None
        finally:
            if not (consumer_gone and shutdown.is_shutting_down()):
                shutdown.unregister_socket(registration)


class WebSocketSessionMiddleware(SessionMiddleware):
    """Channels' session middleware without its wrapper around every frame sent.

    Channels wraps `send` to save the session and set its cookie on an
    `http.response.start`, the only message type it acts on; a WebSocket never
    sends one, yet every frame of every answer went through the wrapper, which read
    the session's state each time (a sixth of the cost of sending a frame). The
    session is still loaded from the cookie into the scope, as Channels does.
    """

    async def __call__(self, scope, receive, send):
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


def chat_auth_stack(inner):
    """The WebSocket stack around the chat routes (see the module docstring)."""
    # Channels' AuthMiddlewareStack, with the session middleware above.
    authenticated = CookieMiddleware(WebSocketSessionMiddleware(AuthMiddleware(
        JWTAuthMiddleware(ConnectionRateLimitMiddleware(inner, per="user"))
    )))
    return ServiceGuard(ChatOriginValidator(
        ConnectionRateLimitMiddleware(authenticated, per="ip")
    ))
