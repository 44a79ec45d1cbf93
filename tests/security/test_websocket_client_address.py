"""The WebSocket's per-address connection limit keys on the client's address as
neonpro.client_address settles it: forged X-Forwarded-For entries count for nothing,
behind a trusted proxy the right-most untrusted address is the client."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat.pipeline import sessions

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

PROXY = ("127.0.0.1", 50000)


def _attempt(application, session_id, *, forwarded: str, client=PROXY):
    communicator = WebsocketCommunicator(
        application, f"/ws/ai-chat/{session_id}/",
        headers=[(b"origin", b"http://localhost"), (b"x-forwarded-for", forwarded.encode())])
    communicator.scope["client"] = client  # read when the application first runs
    return communicator


async def _close_code(communicator) -> int:
    await communicator.connect(timeout=5)
    while True:
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output["code"]


async def test_forged_addresses_do_not_multiply_the_per_address_limit(settings, clinician,
                                                                      ai_settings):
    from neonpro.asgi import application

    settings.WS_CONNECT_RATE_PER_IP = 3
    settings.TRUSTED_PROXIES = []
    session = await database_sync_to_async(sessions.session_create)(user=clinician, title="")
    codes = [await _close_code(_attempt(application, session.id, forwarded=f"203.0.113.{n}",
                                        client=("198.51.100.30", 40000)))
             for n in range(1, 5)]
    assert codes == [4401, 4401, 4401, 4429]  # anonymous: refused, then rate limited


async def test_behind_a_trusted_proxy_the_right_most_untrusted_address_is_limited(
        settings, clinician, ai_settings):
    from neonpro.asgi import application

    settings.WS_CONNECT_RATE_PER_IP = 3
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    session = await database_sync_to_async(sessions.session_create)(user=clinician, title="")
    codes = [await _close_code(_attempt(application, session.id,
                                        forwarded=f"203.0.113.{n}, 198.51.100.40"))
             for n in range(1, 5)]
    other_client = await _close_code(_attempt(application, session.id,
                                              forwarded="198.51.100.40, 198.51.100.41"))

    assert codes == [4401, 4401, 4401, 4429]
    assert other_client == 4401  # a new client: not limited, only unauthenticated
