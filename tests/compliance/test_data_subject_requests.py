"""Data-subject requests: export of everything held (and nothing of anyone else),
erasure that leaves no readable text, the API and the officers' admin actions."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.utils import timezone

from chat.models import ChatMessage, ChatSession
from compliance import dsr
from compliance.audit import Event
from compliance.encryption import decrypt_text
from compliance.models import AuditEvent, ConsentRecord, DataSubjectRequest
from tests.chat.helpers import api_client

ADMIN_DSR = "/admin/compliance/datasubjectrequest/"


def _as_text(document) -> str:
    return json.dumps(document, ensure_ascii=False)


@pytest.fixture
def two_subjects(make_user, make_session, django_capture_on_commit_callbacks):
    """Subject A and B in the same clinic, each with sessions, consents, requests, events."""
    with django_capture_on_commit_callbacks(execute=True):
        a = make_user(username="ana-subject")
        b = make_user(username="bruno-other")
        a_sessions = [make_session(a, text="Ana pergunta sobre Joana", failover=True),
                      make_session(a, text="Ana segunda sessão", exchanges=1)]
        b_sessions = [make_session(b, text="Bruno pergunta sobre Carla Mendes")]
        dsr.dsr_create(user=a, request_type="access", details="Quero meus dados")
        dsr.dsr_create(user=b, request_type="deletion", details="Apaguem tudo do Bruno")
    return a, b, a_sessions, b_sessions


@pytest.mark.django_db
def test_the_export_holds_every_record_of_the_subject_and_nothing_of_anyone_else(
        two_subjects):
    a, b, a_sessions, b_sessions = two_subjects
    document = dsr.dsr_export_subject(user=a)

    assert document["format"] == "neonpro.subject-export.v1"
    assert document["subject"]["id"] == a.pk and document["subject"]["username"] == a.username
    assert [m["clinic_id"] for m in document["clinic_memberships"]] == [
        a.clinic_membership.clinic_id]
    assert {c["id"] for c in document["consents"]} == set(
        ConsentRecord.objects.filter(user=a).values_list("id", flat=True))
    assert {s["id"] for s in document["sessions"]} == {str(s.id) for s in a_sessions}
    exported_messages = {m["id"]: m for s in document["sessions"] for m in s["messages"]}
    assert set(exported_messages) == {
        str(i) for i in ChatMessage.objects.filter(session__user=a).values_list("id", flat=True)}
    first_question = ChatMessage.objects.filter(session=a_sessions[0], role="user").first()
    exported = exported_messages[str(first_question.id)]
    assert exported["content"] == first_question.content  # decrypted
    assert exported["sent_to_provider"] == first_question.redacted_content
    answers = [m for m in exported_messages.values() if m["role"] == "assistant"]
    providers = [[a["provider"] for a in m["provider_attempts"]] for m in answers]
    assert ["openai", "anthropic"] in providers  # which AI providers received text
    assert all(a["started_at"] for m in answers for a in m["provider_attempts"])
    assert {r["request_type"] for r in document["data_subject_requests"]} == {"access"}
    assert {e["event_type"] for e in document["audit_events"]} >= {
        Event.CONSENT_GRANTED, Event.DSR_CREATED}
    assert all(e["id"] in set(AuditEvent.objects.filter(subject_user_id=a.pk)
                              .values_list("id", flat=True)) for e in document["audit_events"])
    assert any(entry["object_type"] == "consentrecord" for entry in document["change_log"])

    text = _as_text(document)
    for foreign in ["bruno-other", "Carla Mendes", "Apaguem tudo", str(b_sessions[0].id),
                    *(str(i) for i in ChatMessage.objects.filter(session__user=b)
                      .values_list("id", flat=True))]:
        assert foreign not in text
    assert f'"subject_user_id": {b.pk}' not in text


@pytest.mark.django_db
def test_the_export_is_audited_with_counts_only(two_subjects):
    a, *_ = two_subjects
    document = dsr.dsr_export_subject(user=a)
    event = AuditEvent.objects.filter(event_type=Event.DATA_EXPORTED).get()
    assert (event.subject_user_id, event.actor_id) == (a.pk, a.pk)
    assert event.metadata["sessions"] == 2 and event.metadata["messages"] == 6
    assert "Ana" not in _as_text(event.metadata)
    assert document["subject"]["id"] == a.pk


@pytest.mark.django_db
def test_my_data_returns_the_users_own_export(two_subjects):
    a, b, *_ = two_subjects
    response = api_client(a).get("/api/v1/compliance/my-data/")
    assert response.status_code == 200
    body = response.json()
    assert body["subject"]["id"] == a.pk and len(body["sessions"]) == 2
    assert "Carla Mendes" not in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert api_client().get("/api/v1/compliance/my-data/").status_code == 401


@pytest.mark.django_db
def test_erasure_leaves_no_readable_message_text(two_subjects):
    a, b, a_sessions, b_sessions = two_subjects
    officer_like = b  # any actor id; the event keeps only ids
    counts = dsr.dsr_erase_subject(user=a, actor=officer_like)
    assert counts == {"sessions": 2, "messages": 6, "sessions_on_legal_hold": 0,
                      "consents_revoked": 1}

    with connection.cursor() as cursor:  # what is really stored, bypassing the ORM
        cursor.execute("SELECT m.content, m.redacted_content FROM chat_chatmessage m "
                       "JOIN chat_chatsession s ON s.id = m.session_id WHERE s.user_id = %s",
                       [a.pk])
        rows = cursor.fetchall()
        cursor.execute("SELECT title, pii_mapping FROM chat_chatsession WHERE user_id = %s",
                       [a.pk])
        sessions = cursor.fetchall()
    assert len(rows) == 6 and all(content == "" and sent == "" for content, sent in rows)
    assert all(title == "" and json.loads(decrypt_text(mapping)) == {}
               for title, mapping in sessions)

    a.refresh_from_db()
    assert not a.is_active and not a.has_usable_password()
    assert (a.username, a.email, a.first_name) == (f"erased-{a.pk}", "", "")
    assert not ConsentRecord.objects.filter(user=a, revoked_at__isnull=True).exists()
    assert not ConsentRecord.objects.filter(user=a).exclude(ip_address=None).exists()
    assert DataSubjectRequest.objects.get(user=a).details == ""
    # Nothing of the subject's name or text in the change log or the audit trail.
    for entry in LogEntry.objects.all():
        blob = _as_text([entry.object_repr, entry.changes, entry.changes_text])
        assert "ana-subject" not in blob and "Joana" not in blob
    assert "ana-subject" not in _as_text(list(AuditEvent.objects.values_list("metadata",
                                                                            flat=True)))
    erased = AuditEvent.objects.get(event_type=Event.DATA_ERASED)
    assert (erased.subject_user_id, erased.actor_id) == (a.pk, b.pk)

    # The other subject is untouched.
    untouched = ChatMessage.objects.filter(session=b_sessions[0], role="user").first()
    assert untouched.content.startswith("Bruno pergunta")
    assert api_client(a).get("/api/v1/compliance/my-data/").status_code == 401


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_answer_streaming_during_the_erasure_is_not_stored_afterwards(
        clinician, ai_settings, simulator):
    from channels.db import database_sync_to_async

    from chat.pipeline import accept, answer, sessions

    session = await database_sync_to_async(sessions.session_create)(user=clinician)
    prepared = await accept.message_accept(
        user=clinician, session_id=session.id, content="Paciente Joana Prado, retorno.")
    frames = answer.answer_stream(prepared)
    assert (await anext(frames))["type"] == "ack"
    assert (await anext(frames))["type"] == "token"  # the provider is answering
    await database_sync_to_async(dsr.dsr_erase_subject)(user=clinician, actor=None)
    rest = [frame async for frame in frames]
    assert rest[-1]["type"] == "done"  # the clinician's screen still gets its ending

    stored = await database_sync_to_async(ChatMessage.objects.get)(
        id=prepared.assistant_message.id)
    assert (stored.content, stored.redacted_content) == ("", "")
    assert stored.status == ChatMessage.Status.STREAMING  # never finished as an answer
    question = await database_sync_to_async(ChatMessage.objects.get)(
        id=prepared.user_message.id)
    assert question.content == ""


@pytest.mark.django_db
def test_erasure_keeps_sessions_under_legal_hold(make_user, make_session):
    user = make_user()
    held = make_session(user, legal_hold=True, text="Caso judicial")
    free = make_session(user)
    counts = dsr.dsr_erase_subject(user=user, actor=None)
    assert counts["sessions"] == 1 and counts["sessions_on_legal_hold"] == 1
    assert ChatMessage.objects.filter(session=held, role="user").first().content \
        .startswith("Caso judicial")
    assert set(ChatMessage.objects.filter(session=free).values_list("content", flat=True)) \
        == {""}


@pytest.mark.django_db
def test_users_file_and_list_their_own_requests_due_in_15_days(make_user):
    user, other = make_user(), make_user()
    client = api_client(user)
    filed = client.post("/api/v1/compliance/requests/",
                        {"request_type": "correction", "details": "Meu sobrenome mudou"},
                        format="json")
    assert filed.status_code == 201
    body = filed.json()
    assert body["status"] == "received" and body["overdue"] is False
    request = DataSubjectRequest.objects.get(id=body["id"])
    assert request.due_at - request.received_at == timedelta(days=15)
    api_client(other).post("/api/v1/compliance/requests/", {"request_type": "access"},
                           format="json")
    listed = client.get("/api/v1/compliance/requests/").json()
    assert [r["id"] for r in listed] == [body["id"]]
    invalid = client.post("/api/v1/compliance/requests/", {"request_type": "everything"},
                          format="json")
    assert invalid.status_code == 400 and invalid.json()["code"] == "invalid"


@pytest.mark.django_db
def test_a_consent_revocation_request_is_applied_at_once(make_user, make_session):
    user = make_user()
    session = make_session(user, status=ChatSession.Status.ACTIVE)
    body = api_client(user).post("/api/v1/compliance/requests/",
                                 {"request_type": "consent_revocation"}, format="json").json()
    assert body["status"] == "completed"
    assert not ConsentRecord.objects.filter(user=user, revoked_at__isnull=True).exists()
    session.refresh_from_db()
    assert session.status == "closed"


# --- Officers in the admin --------------------------------------------------------------


@pytest.mark.django_db
def test_officers_download_an_export_and_the_request_is_completed(client, officer,
                                                                  two_subjects):
    a, *_ = two_subjects
    request = DataSubjectRequest.objects.get(user=a)
    client.force_login(officer)
    response = client.post(ADMIN_DSR, {"action": "export_subject_data",
                                       "_selected_action": [request.pk]})
    assert response.status_code == 200
    assert response["Content-Disposition"] == \
        f'attachment; filename="subject-{a.pk}-export.json"'
    assert json.loads(response.content)["subject"]["id"] == a.pk
    request.refresh_from_db()
    assert request.status == "completed" and request.handled_by == officer
    event = AuditEvent.objects.get(event_type=Event.DATA_EXPORTED)
    assert (event.actor_id, event.metadata["request_id"]) == (officer.pk, request.pk)


@pytest.mark.django_db
def test_officers_erase_only_through_open_deletion_requests(client, officer, two_subjects):
    a, b, *_ = two_subjects
    access = DataSubjectRequest.objects.get(user=a)
    deletion = DataSubjectRequest.objects.get(user=b)
    client.force_login(officer)
    # Irreversible (issue 19): a confirmation page first, and nothing happens until confirmed.
    selection = {"action": "erase_subject_data", "_selected_action": [access.pk, deletion.pk]}
    confirmation = client.post(ADMIN_DSR, selection)
    assert confirmation.status_code == 200 and 'name="confirmed"' in confirmation.content.decode()
    b.refresh_from_db()
    assert b.is_active
    response = client.post(ADMIN_DSR, {**selection, "confirmed": "yes"}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "1 request(s) processed" in page and "1 request(s) skipped" in page
    b.refresh_from_db()
    a.refresh_from_db()
    assert not b.is_active and a.is_active
    deletion.refresh_from_db()
    assert deletion.status == "completed" and "4 messages erased" in deletion.resolution_note
    assert AuditEvent.objects.get(event_type=Event.DATA_ERASED).actor_id == officer.pk


@pytest.mark.django_db
def test_the_admin_list_highlights_overdue_requests(client, officer, make_user):
    user = make_user()
    late = dsr.dsr_create(user=user, request_type="access",
                          received_at=timezone.now() - timedelta(days=20))
    on_time = dsr.dsr_create(user=user, request_type="correction")
    client.force_login(officer)
    page = client.get(ADMIN_DSR).content.decode()
    assert "OVERDUE by 5 day(s)" in page and "15 day(s) left" in page
    overdue_only = client.get(ADMIN_DSR + "?deadline=overdue").content.decode()
    assert f"/{late.pk}/change/" in overdue_only and f"/{on_time.pk}/change/" not in overdue_only
    assert list(dsr.dsr_list_overdue()) == [late]


@pytest.mark.django_db
def test_officers_file_a_request_for_a_subject_in_the_admin(client, officer, make_user):
    user = make_user()
    client.force_login(officer)
    response = client.post(ADMIN_DSR + "add/", {
        "user": user.pk, "request_type": "sharing_info", "details": "Por e-mail",
        "received_at_0": timezone.localdate().isoformat(), "received_at_1": "09:00:00",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    request = DataSubjectRequest.objects.get(user=user)
    assert request.request_type == "sharing_info"
    assert request.due_at - request.received_at == timedelta(days=15)


@pytest.mark.django_db
@pytest.mark.parametrize("action, request_type", [
    ("erase_subject_data", "deletion"),
    ("apply_consent_revocation", "consent_revocation"),
])
def test_an_admin_action_that_cannot_be_audited_changes_nothing_and_says_so(
        client, officer, make_user, make_session, action, request_type):
    user = make_user()
    session = make_session(user, status=ChatSession.Status.ACTIVE)
    request = dsr.dsr_create(user=user, request_type=request_type)
    client.force_login(officer)
    with connection.cursor() as cursor:  # every audit insert now fails, for real
        cursor.execute("ALTER TABLE compliance_auditevent "
                       "ADD CONSTRAINT refuse_inserts CHECK (false) NOT VALID")
    response = client.post(ADMIN_DSR, {"action": action, "_selected_action": [request.pk],
                                       "confirmed": "yes"}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Request #{request.pk}: the" in page and "could not be audited" in page
    assert "0 request(s) processed" in page
    request.refresh_from_db()
    user.refresh_from_db()
    session.refresh_from_db()
    assert request.is_open and user.is_active
    assert session.status == ChatSession.Status.ACTIVE
    assert ConsentRecord.objects.filter(user=user, revoked_at__isnull=True).exists()
