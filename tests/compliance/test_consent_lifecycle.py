"""Consent lifecycle: terms versions, fresh consent, revocation with evidence kept,
and a live WebSocket closed the moment consent is revoked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from chat.models import ChatSession
from chat.pipeline import sessions
from compliance import services
from compliance.audit import Event
from compliance.models import AuditEvent, ConsentRecord, TermsVersion
from neonpro.asgi import application
from tests.chat.helpers import api_client, ws_headers


@pytest.mark.django_db
def test_the_current_terms_fall_back_to_the_setting(settings):
    settings.CONSENT_TERMS_VERSION = "2026-fallback"
    assert services.current_terms_version() == "2026-fallback"


@pytest.mark.django_db
def test_the_latest_published_terms_are_current_and_future_ones_are_not_yet(settings):
    now = timezone.now()
    TermsVersion.objects.create(version="v1", published_at=now - timedelta(days=30))
    TermsVersion.objects.create(version="v2", published_at=now - timedelta(days=1))
    TermsVersion.objects.create(version="v3", published_at=now + timedelta(days=7))
    assert services.current_terms_version() == "v2"


@pytest.mark.django_db
def test_new_terms_require_fresh_consent_and_keep_the_old_record(
        make_user, django_capture_on_commit_callbacks):
    user = make_user()  # consented under the fallback version
    old = ConsentRecord.objects.get(user=user)
    assert services.consent_is_valid(user=user)

    with django_capture_on_commit_callbacks(execute=True):
        services.terms_version_publish(version="2027-01", summary="New provider list")
    assert not services.consent_is_valid(user=user)

    fresh = services.consent_grant(user=user, purpose="ai_chat", ip_address="10.0.0.1",
                                   user_agent="browser")
    assert fresh.pk != old.pk and fresh.terms_version == "2027-01"
    assert services.consent_is_valid(user=user)
    assert ConsentRecord.objects.filter(user=user).count() == 2
    assert AuditEvent.objects.filter(event_type=Event.TERMS_PUBLISHED).count() == 1


@pytest.mark.django_db
def test_a_valid_consent_is_answered_from_the_cache_until_it_is_revoked(
        make_user, django_assert_num_queries, django_capture_on_commit_callbacks):
    user = make_user()
    assert services.consent_is_valid(user=user)
    with django_assert_num_queries(0):  # every chat message asks; the answer is cached
        assert services.consent_is_valid(user=user)

    with django_capture_on_commit_callbacks(execute=True):
        services.consent_revoke(user=user, purpose="ai_chat")
    assert not services.consent_is_valid(user=user)
    with django_assert_num_queries(1):  # a missing consent is never cached
        assert not services.consent_is_valid(user=user)


@pytest.mark.django_db
def test_cached_consents_lapse_when_new_terms_are_published(
        make_user, django_capture_on_commit_callbacks):
    user = make_user()
    assert services.consent_is_valid(user=user)  # cached under the fallback version
    with django_capture_on_commit_callbacks(execute=True):
        services.terms_version_publish(version="2027-02")
    assert not services.consent_is_valid(user=user)


@pytest.mark.django_db
def test_granting_twice_under_the_same_terms_is_idempotent(make_user):
    user = make_user()
    again = services.consent_grant(user=user, purpose="ai_chat", ip_address=None,
                                   user_agent="")
    assert ConsentRecord.objects.filter(user=user).count() == 1
    assert again == ConsentRecord.objects.get(user=user)
    assert AuditEvent.objects.filter(event_type=Event.CONSENT_GRANTED,
                                     subject_user_id=user.pk).count() == 1


@pytest.mark.django_db
def test_revocation_keeps_the_history_closes_sessions_and_is_audited(make_user, make_session):
    user = make_user()
    active = make_session(user, status=ChatSession.Status.ACTIVE)
    closed = make_session(user, status=ChatSession.Status.CLOSED)
    assert services.consent_revoke(user=user, purpose="ai_chat") == 1

    record = ConsentRecord.objects.get(user=user)  # kept as evidence, not deleted
    assert record.revoked_at is not None and record.terms_version and record.granted_at
    active.refresh_from_db()
    assert (active.status, active.close_reason) == ("closed", "consent_revoked")
    closed.refresh_from_db()
    assert closed.close_reason != "consent_revoked"
    assert not services.consent_is_valid(user=user)
    event = AuditEvent.objects.get(event_type=Event.CONSENT_REVOKED)
    assert (event.subject_user_id, event.actor_id) == (user.pk, user.pk)
    assert event.metadata == {"purpose": "ai_chat", "records": 1, "sessions_closed": 1}
    assert services.consent_revoke(user=user, purpose="ai_chat") == 0


@pytest.mark.django_db
def test_the_consent_api_grants_lists_and_revokes(make_user):
    user = make_user(consent=False)
    client = api_client(user)
    assert client.get("/api/v1/compliance/consents/").json()["consent_required"] is True
    granted = client.post("/api/v1/compliance/consents/",
                          {"purpose": "ai_chat", "accepted": True}, format="json")
    assert granted.status_code == 201
    assert client.get("/api/v1/compliance/consents/").json()["consent_required"] is False
    assert client.delete("/api/v1/compliance/consents/ai_chat/").status_code == 204
    body = client.get("/api/v1/compliance/consents/").json()
    assert body["consent_required"] is True and body["records"][0]["active"] is False
    assert client.delete("/api/v1/compliance/consents/ai_chat/").status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_revoking_consent_closes_a_live_websocket_with_4403(make_user):
    user = await database_sync_to_async(make_user)()
    session = await database_sync_to_async(sessions.session_create)(user=user, title="")
    socket = WebsocketCommunicator(application, f"/ws/ai-chat/{session.id}/",
                                   headers=ws_headers(user))
    connected, _ = await socket.connect(timeout=5)
    assert connected
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}

    revoked = await database_sync_to_async(services.consent_revoke)(user=user,
                                                                     purpose="ai_chat")
    assert revoked == 1
    frame = await socket.receive_json_from(timeout=5)
    assert frame["type"] == "error" and frame["code"] == "consent_required"
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
    stored = await ChatSession.objects.aget(id=session.id)
    assert (stored.status, stored.close_reason) == ("closed", "consent_revoked")
    await socket.disconnect()
