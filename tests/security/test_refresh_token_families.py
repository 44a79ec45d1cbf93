"""A rotated refresh token used again revokes its whole family, over real HTTP against
daphne with production settings: the thief's and the victim's tokens stop working, other
sign-ins of the same user keep theirs, and the reuse is in the audit trail."""

from __future__ import annotations

import threading

import httpx
import pytest

from compliance.models import AuditEvent
from tests.security.conftest import server_env
from tests.support import subprocess_database_url as database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]

PASSWORD = "correct-horse-battery-staple"
TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"


@pytest.fixture
def server(own_redis, start_server, simulator):
    return start_server(server_env(database=database_url(), redis=own_redis.url,
                                   simulator_url=simulator.url))


def _sign_in(http: httpx.Client, username: str) -> dict:
    response = http.post(TOKEN, json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


def _refresh(http: httpx.Client, token: str) -> httpx.Response:
    return http.post(REFRESH, json={"refresh": token})


def test_reusing_a_rotated_refresh_token_revokes_its_family_and_is_audited(server, make_user):
    user = make_user(username="dra-familia")
    with httpx.Client(base_url=server.url, timeout=15) as http:
        stolen = _sign_in(http, "dra-familia")["refresh"]
        other_device = _sign_in(http, "dra-familia")["refresh"]  # another family
        first = _refresh(http, stolen)
        assert first.status_code == 200, first.text
        issued = first.json()["refresh"]
        second = _refresh(http, issued)  # the legitimate client keeps rotating
        assert second.status_code == 200
        latest = second.json()["refresh"]

        replay = _refresh(http, stolen)
        assert replay.status_code == 401
        assert replay.json()["code"] == "not_authenticated"
        # Every token of the family is dead now, the newest included ...
        for token in (issued, latest):
            refused = _refresh(http, token)
            assert refused.status_code == 401, refused.text
        # ... while the user's other sign-in keeps working.
        assert _refresh(http, other_device).status_code == 200

    # Every replay is audited; the first revoked `latest` (the others were rotated).
    events = list(AuditEvent.objects.filter(event_type="refresh_token_reused").order_by("id"))
    assert [event.metadata for event in events] == [{"revoked_tokens": 1},
                                                    {"revoked_tokens": 0},
                                                    {"revoked_tokens": 0}]
    assert {(event.actor_id, event.subject_user_id) for event in events} == {(user.pk, user.pk)}


def test_two_concurrent_uses_of_one_refresh_token_never_both_succeed(server, make_user):
    make_user(username="dra-corrida")
    with httpx.Client(base_url=server.url, timeout=15) as http:
        token = _sign_in(http, "dra-corrida")["refresh"]
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def use() -> None:
        with httpx.Client(base_url=server.url, timeout=15) as client:
            barrier.wait()
            statuses.append(_refresh(client, token).status_code)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 401, 401, 401], statuses
