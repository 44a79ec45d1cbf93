"""Sign-in abuse and tokens: lock-out on every door, audited and counted without
personal data; short-lived access tokens and single-use refresh tokens."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from compliance.models import AuditEvent

PASSWORD = "correct-horse-battery-staple"
API = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Dozens of sign-ins per test: the production hasher's cost is not what is tested.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _failures(door: str, reason: str) -> float:
    return REGISTRY.get_sample_value("ai_chat_auth_login_failures_total",
                                     {"door": door, "reason": reason}) or 0.0


def _api_login(client: Client, username: str, password: str):
    return client.post(API, {"username": username, "password": password},
                       content_type="application/json")


def test_it_locks_a_username_out_of_the_api_after_five_failures(
        make_user, django_capture_on_commit_callbacks):
    user = make_user(username="dra-ana")
    client = Client()
    before = _failures("api", "invalid_credentials")
    with django_capture_on_commit_callbacks(execute=True):
        statuses = [_api_login(client, "dra-ana", "wrong").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    locked = _api_login(client, "dra-ana", PASSWORD)  # even the right password
    assert locked.status_code == 429
    assert locked.json()["code"] == "rate_limited"
    assert 800 < int(locked["Retry-After"]) <= 900
    assert "access" not in locked.json()
    assert _failures("api", "invalid_credentials") - before == 5
    event = AuditEvent.objects.get(event_type="login_locked_out")
    assert event.subject_user_id == user.pk
    assert event.metadata == {"scope": "username", "failures": 5, "door": "api",
                              "window_s": 900}


def test_it_locks_an_address_out_after_twenty_failures_across_usernames(make_user):
    make_user(username="dr-bruno")
    client = Client(REMOTE_ADDR="203.0.113.9")
    for index in range(20):
        _api_login(client, f"guess-{index}", "wrong")
    assert _api_login(client, "dr-bruno", PASSWORD).status_code == 429
    # Another address is not affected.
    assert _api_login(Client(REMOTE_ADDR="203.0.113.10"), "dr-bruno",
                      PASSWORD).status_code == 200


def test_it_locks_unknown_usernames_alike_so_lockouts_reveal_no_accounts(db):
    client = Client()
    statuses = [_api_login(client, "nobody-here", "wrong").status_code for _ in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]


def test_it_clears_a_usernames_failures_after_a_successful_sign_in(make_user):
    make_user(username="dra-carla")
    client = Client()
    for _ in range(4):
        assert _api_login(client, "dra-carla", "wrong").status_code == 401
    assert _api_login(client, "dra-carla", PASSWORD).status_code == 200
    for _ in range(4):
        assert _api_login(client, "dra-carla", "wrong").status_code == 401
    assert _api_login(client, "dra-carla", PASSWORD).status_code == 200


def test_it_shows_the_lockout_on_the_web_login_form(make_user):
    make_user(username="dr-davi")
    client = Client()
    for _ in range(5):
        client.post("/login/", {"username": "dr-davi", "password": "wrong"})
    before = _failures("web", "locked_out")
    response = client.post("/login/", {"username": "dr-davi", "password": PASSWORD})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    text = response.content.decode()
    assert re.search(r"(Too many failed sign-in attempts|Muitas tentativas)", text), text
    assert "_auth_user_id" not in client.session
    assert _failures("web", "locked_out") - before == 1


def test_it_shows_the_lockout_on_the_admin_login_form(make_user):
    officer = make_user(username="officer-eva", member_of=None, consent=False)
    officer.is_staff = True
    officer.save()
    client = Client()
    for _ in range(5):
        client.post("/admin/login/", {"username": "officer-eva", "password": "wrong"})
    response = client.post("/admin/login/?next=/admin/",
                           {"username": "officer-eva", "password": PASSWORD})
    assert response.status_code == 429
    assert re.search(r"(Too many failed sign-in attempts|Muitas tentativas)",
                     response.content.decode())
    assert "_auth_user_id" not in client.session


def test_it_keeps_usernames_out_of_metric_labels_and_audit_metadata(
        make_user, django_capture_on_commit_callbacks):
    make_user(username="dra-fernanda")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            _api_login(Client(REMOTE_ADDR="198.51.100.7"), "dra-fernanda", "wrong")
    from prometheus_client import generate_latest

    exposition = generate_latest(REGISTRY).decode()
    assert "dra-fernanda" not in exposition
    assert "198.51.100.7" not in exposition
    for event in AuditEvent.objects.filter(event_type="login_locked_out"):
        assert "dra-fernanda" not in str(event.metadata)
        assert "198.51.100.7" not in str(event.metadata)


def test_it_rate_limits_token_requests_per_address(settings, make_user):
    settings.AUTH_RATE_LIMIT_PER_IP = 3
    make_user(username="dr-gil")
    client = Client(REMOTE_ADDR="192.0.2.1")
    statuses = [_api_login(client, "dr-gil", PASSWORD).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refresh = client.post(REFRESH, {"refresh": "x"}, content_type="application/json")
    assert refresh.status_code == 429 and refresh["Retry-After"]


# --- Tokens ---------------------------------------------------------------------------


def test_it_issues_access_tokens_valid_for_fifteen_minutes(make_user):
    make_user(username="dra-helena")
    tokens = _api_login(Client(), "dra-helena", PASSWORD).json()
    access = AccessToken(tokens["access"])
    assert access["exp"] - access["iat"] == 15 * 60


def test_it_refuses_an_expired_access_token_with_401(make_user):
    user = make_user(username="dr-igor")
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    response = Client().get("/api/v1/ai-chat/sessions/",
                            HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    fresh = AccessToken.for_user(user)
    assert Client().get("/api/v1/ai-chat/sessions/",
                        HTTP_AUTHORIZATION=f"Bearer {fresh}").status_code == 200


def test_it_refuses_a_rotated_refresh_token_the_second_time(make_user):
    user = make_user(username="dra-julia")
    refresh = str(RefreshToken.for_user(user))  # minted before token families existed
    client = Client()
    first = client.post(REFRESH, {"refresh": refresh}, content_type="application/json")
    assert first.status_code == 200
    rotated = first.json()["refresh"]
    assert rotated != refresh
    reused = client.post(REFRESH, {"refresh": refresh}, content_type="application/json")
    assert reused.status_code == 401
    assert reused.json()["code"] == "not_authenticated"
    # The reuse revoked what the first use issued (a token without a family: all of the
    # user's refresh tokens); see tests/security/test_refresh_token_families.py.
    assert client.post(REFRESH, {"refresh": rotated},
                       content_type="application/json").status_code == 401


def test_it_refuses_refresh_tokens_as_access_tokens(make_user):
    user = make_user(username="dr-kleber")
    refresh = RefreshToken.for_user(user)
    response = Client().get("/api/v1/ai-chat/sessions/",
                            HTTP_AUTHORIZATION=f"Bearer {refresh}")
    assert response.status_code == 401


def test_beat_deletes_expired_refresh_tokens_and_keeps_live_ones(make_user):
    from rest_framework_simplejwt.token_blacklist.models import (
        BlacklistedToken,
        OutstandingToken,
    )

    from chat.tasks import flush_expired_refresh_tokens
    from neonpro.celery import app

    make_user(username="dra-lara")
    old = _api_login(Client(), "dra-lara", PASSWORD).json()["refresh"]
    live = _api_login(Client(), "dra-lara", PASSWORD).json()["refresh"]
    expired = OutstandingToken.objects.get(token=old)
    BlacklistedToken.objects.create(token=expired)
    OutstandingToken.objects.filter(pk=expired.pk).update(
        expires_at=expired.created_at - timedelta(seconds=1))

    assert flush_expired_refresh_tokens() == 1
    assert not OutstandingToken.objects.filter(token=old).exists()
    assert not BlacklistedToken.objects.filter(token_id=expired.pk).exists()
    refreshed = Client().post(REFRESH, {"refresh": live}, content_type="application/json")
    assert refreshed.status_code == 200
    assert app.conf.beat_schedule["flush-expired-refresh-tokens"]["task"] == \
        flush_expired_refresh_tokens.name
