"""WebSocket guards through the whole ASGI stack: origin check, connection-attempt
limits per address and per user, frame limits."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from chat.pipeline import sessions
from chat.routing import websocket_urlpatterns
from chat.ws_auth import chat_auth_stack
from tests.chat.helpers import bearer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _communicator(app, session_id, *, origin: str | None, user=None, client=None,
                  extra_headers=()):
    headers = [] if origin is None else [(b"origin", origin.encode())]
    headers += [(name.encode(), value.encode()) for name, value in extra_headers]
    if user is not None:
        headers.append((b"authorization", bearer(user).encode()))
    communicator = WebsocketCommunicator(app, f"/ws/ai-chat/{session_id}/", headers=headers)
    if client is not None:
        # The scope is read when the application first runs, after this line.
        communicator.scope["client"] = client
    return communicator


async def _session(user):
    return await database_sync_to_async(sessions.session_create)(user=user, title="")


async def _opens(communicator) -> bool:
    connected, _ = await communicator.connect(timeout=5)
    if not connected:
        return False
    await communicator.send_json_to({"type": "ping"})
    answer = await communicator.receive_output(timeout=5)
    await communicator.disconnect()
    return answer.get("type") == "websocket.send"


async def test_it_accepts_only_allowed_origins(settings, clinician, ai_settings):
    settings.ALLOWED_HOSTS = ["neonpro.com.br"]
    # Configured with its default port: compared normalised.
    settings.CORS_ALLOWED_ORIGINS = ["https://app.neonpro.com.br:443"]
    app = chat_auth_stack(URLRouter(websocket_urlpatterns))
    session = await _session(clinician)
    # The site as the TLS-terminating proxy forwards it.
    proxied = [("host", "neonpro.com.br"), ("x-forwarded-proto", "https")]
    for origin, allowed in [
        ("https://neonpro.com.br", True),
        ("https://neonpro.com.br:443", True),
        ("https://app.neonpro.com.br", True),
        ("HTTPS://App.NeonPro.com.br/", True),
        (None, True),  # API clients send no Origin; they still need a token
        ("https://evil.example", False),
        ("https://neonpro.com.br.evil.example", False),
        ("null", False),  # sandboxed frames and file:// pages
        ("http://app.neonpro.com.br:8443", False),
        ("http://neonpro.com.br", False),  # a plain-HTTP page of the TLS site
        ("https://neonpro.com.br:8443", False),
        ("http://app.neonpro.com.br", False),
        ("https://user@neonpro.com.br", False),
        ("chrome-extension://neonpro.com.br", False),
    ]:
        opened = await _opens(_communicator(app, session.id, origin=origin, user=clinician,
                                            extra_headers=proxied))
        assert opened is allowed, origin


@pytest.mark.parametrize(("host", "origin", "scheme", "allowed"), [
    ("127.0.0.1:8000", "http://127.0.0.1:8000", "ws", True),
    ("localhost:8000", "http://localhost:8000", "ws", True),
    ("localhost:8000", "http://localhost:1", "ws", False),
    ("localhost:8000", "http://localhost", "ws", False),
    ("127.0.0.1:8000", "https://127.0.0.1", "ws", False),
    ("127.0.0.1:8000", "https://127.0.0.1:8000", "ws", False),
    ("127.0.0.1", "http://127.0.0.1:80", "ws", True),  # the default port, normalised
    ("127.0.0.1", "https://127.0.0.1", "wss", True),
    ("127.0.0.1", "http://127.0.0.1", "wss", False),
])
async def test_it_compares_the_origins_scheme_host_and_port(settings, clinician, ai_settings,
                                                            host, origin, scheme, allowed):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.CORS_ALLOWED_ORIGINS = []
    app = chat_auth_stack(URLRouter(websocket_urlpatterns))
    session = await _session(clinician)
    communicator = _communicator(app, session.id, origin=origin, user=clinician,
                                 extra_headers=[("host", host)])
    communicator.scope["scheme"] = scheme
    assert await _opens(communicator) is allowed


async def test_it_limits_connection_attempts_per_user_with_4429(settings, clinician, ai_settings):
    from neonpro.asgi import application

    settings.WS_CONNECT_RATE_PER_USER = 3
    session = await _session(clinician)
    for _ in range(3):
        assert await _opens(_communicator(application, session.id, origin="http://localhost",
                                          user=clinician))
    refused = _communicator(application, session.id, origin="http://localhost", user=clinician)
    connected, _ = await refused.connect(timeout=5)
    assert connected
    frame = await refused.receive_json_from(timeout=5)
    assert frame["code"] == "rate_limited" and frame["retry_after"] > 0
    assert (await refused.receive_output(timeout=5))["code"] == 4429


async def test_it_limits_connection_attempts_per_address_before_authentication(
        settings, clinician, make_user, ai_settings):
    from neonpro.asgi import application

    settings.WS_CONNECT_RATE_PER_IP = 4
    session = await _session(clinician)
    address = ("198.51.100.20", 40000)
    for _ in range(4):  # anonymous attempts count too: floods never reach the database
        attempt = _communicator(application, session.id, origin="http://localhost",
                                client=address)
        await attempt.connect(timeout=5)
        assert (await attempt.receive_output(timeout=5))["code"] == 4401
    refused = _communicator(application, session.id, origin="http://localhost",
                            user=clinician, client=address)
    await refused.connect(timeout=5)
    assert (await refused.receive_json_from(timeout=5))["code"] == "rate_limited"
    assert (await refused.receive_output(timeout=5))["code"] == 4429
    # Another address is not affected.
    assert await _opens(_communicator(application, session.id, origin="http://localhost",
                                      user=clinician, client=("198.51.100.21", 40000)))


async def test_it_refuses_frames_over_the_byte_limit_and_keeps_the_socket(
        settings, clinician, ai_settings):
    from neonpro.asgi import application

    settings.AI_MAX_FRAME_BYTES = 2048
    session = await _session(clinician)
    ws = _communicator(application, session.id, origin="http://localhost", user=clinician)
    assert (await ws.connect(timeout=5))[0]
    await ws.send_to(text_data='{"type":"message","content":"' + "é" * 3000 + '"}')
    assert (await ws.receive_json_from(timeout=5))["code"] == "message_too_long"
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()
