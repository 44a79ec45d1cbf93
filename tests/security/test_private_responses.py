"""Responses carrying personal data say `Cache-Control: no-store`, on every door:
the REST API (JWT and session), SSE streams, the chat pages, the user's own export
and the officers' data-subject export in the admin."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import Client

from compliance import dsr
from compliance.roles import COMPLIANCE_OFFICERS, roles_ensure_groups
from tests.chat.helpers import api_client

pytestmark = pytest.mark.django_db(transaction=True)

SESSIONS = "/api/v1/ai-chat/sessions/"


async def _read(stream) -> bytes:
    return b"".join([chunk async for chunk in stream])


def _no_store(response) -> bool:
    directives = {part.strip() for part in response.get("Cache-Control", "").split(",")}
    return "no-store" in directives


@pytest.fixture
def conversation(clinician, ai_settings):
    client = api_client(clinician)
    session_id = client.post(SESSIONS, {"title": "Consulta de Joana"}, format="json").json()["id"]
    sent = client.post(f"{SESSIONS}{session_id}/messages/",
                       {"content": "Paciente Joana Prado, retorno?"}, format="json")
    assert sent.status_code == 201, sent.content
    return client, session_id


def test_the_chat_api_sends_no_store_with_jwt(conversation):
    client, session_id = conversation
    for path in (SESSIONS, f"{SESSIONS}{session_id}/", f"{SESSIONS}{session_id}/messages/",
                 "/api/v1/compliance/my-data/", "/api/v1/compliance/consents/",
                 "/api/v1/compliance/requests/", "/api/schema/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert _no_store(response), (path, response.get("Cache-Control"))
    posted = client.post(f"{SESSIONS}{session_id}/messages/", {"content": "E o pós?"},
                         format="json")
    assert posted.status_code == 201 and _no_store(posted)


def test_an_sse_answer_is_sent_no_store(conversation):
    client, session_id = conversation
    response = client.post(f"{SESSIONS}{session_id}/messages/", {"content": "Em SSE?"},
                           format="json", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-store"
    assert b"event: done" in async_to_sync(_read)(response.streaming_content)


def test_the_chat_pages_are_sent_no_store(clinician, conversation):
    _, session_id = conversation
    browser = Client()
    browser.force_login(clinician)
    for path in ("/chat/", f"/chat/{session_id}/", "/chat/privacy/",
                 f"{SESSIONS}{session_id}/messages/"):  # the page's own API calls too
        response = browser.get(path)
        assert response.status_code == 200, path
        assert _no_store(response), (path, response.get("Cache-Control"))


def test_the_officers_subject_export_is_sent_no_store(clinician, conversation):
    groups = roles_ensure_groups()
    officer = get_user_model().objects.create_user(username="officer-nostore",
                                                   password="x-unused-9d1f", is_staff=True)
    officer.groups.add(groups[COMPLIANCE_OFFICERS])
    request = dsr.dsr_create(user=clinician, request_type="access", details="")
    browser = Client(headers={"accept-language": "en"})
    browser.force_login(officer)
    response = browser.post("/admin/compliance/datasubjectrequest/",
                            {"action": "export_subject_data", "_selected_action": [request.pk]})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert _no_store(response)


def test_anonymous_refusals_carry_no_personal_data_and_stay_cacheable_as_before():
    # Nothing personal in a 401: the rule is about signed-in users' responses only.
    response = api_client().get(SESSIONS)
    assert response.status_code == 401
    assert "no-store" not in response.get("Cache-Control", "")
