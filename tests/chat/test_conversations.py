"""Titles, rename, search, delete and feedback of a clinician's conversations, through
the REST API against real PostgreSQL and the simulated provider (real SDKs)."""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import search
from chat.models import ChatMessage, ChatSession
from chat.pipeline import accept
from compliance.models import AuditEvent
from monitoring import metrics
from tests.chat.helpers import api_client

pytestmark = pytest.mark.django_db(transaction=True)

SESSIONS = "/api/v1/ai-chat/sessions/"
CPF = "123.456.789-09"


def _session(client, title: str = "") -> dict:
    response = client.post(SESSIONS, {"title": title}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _send(client, session_id, content) -> dict:
    response = client.post(f"{SESSIONS}{session_id}/messages/", {"content": content},
                           format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_it_titles_a_session_from_the_redacted_first_question(clinician, ai_settings):
    client = api_client(clinician)
    session = _session(client)
    _send(client, session["id"],
          f"A paciente Maria Aparecida da Silva, CPF {CPF}, pode fazer peeling químico?")
    _send(client, session["id"], "E depois de quantos dias pode tomar sol?")

    title = client.get(f"{SESSIONS}{session['id']}/").json()["title"]
    assert title and len(title) <= accept.TITLE_MAX_CHARS + 1
    assert CPF not in title and "123" not in title
    assert "Maria" not in title and "Aparecida" not in title
    assert title.startswith("A paciente [")
    # The second question does not rename it.
    assert "sol" not in title


def test_it_keeps_a_title_the_clinician_gave(clinician, ai_settings):
    client = api_client(clinician)
    session = _session(client, title="Pós-operatório")
    _send(client, session["id"], "Quanto tempo de repouso?")
    assert client.get(f"{SESSIONS}{session['id']}/").json()["title"] == "Pós-operatório"


def test_it_renames_a_session_and_audits_it_without_the_title(clinician, ai_settings):
    client = api_client(clinician)
    session = _session(client)
    response = client.patch(f"{SESSIONS}{session['id']}/", {"title": "  Retorno   da paciente "},
                            format="json")
    assert response.status_code == 200
    assert response.json()["title"] == "Retorno da paciente"
    event = AuditEvent.objects.get(event_type="session_renamed", session_id=session["id"])
    assert "Retorno" not in str(event.metadata)

    too_long = client.patch(f"{SESSIONS}{session['id']}/", {"title": "x" * 201}, format="json")
    assert too_long.status_code == 400
    wrong_type = client.patch(f"{SESSIONS}{session['id']}/", {"title": ["a"]}, format="json")
    assert wrong_type.status_code == 400


def test_it_finds_a_session_by_a_word_of_its_answer_and_only_the_owners(
    clinician, make_user, ai_settings
):
    client = api_client(clinician)
    first = _session(client)
    second = _session(client)
    _send(client, first["id"], "Cuidados após microagulhamento facial?")
    _send(client, second["id"], "Como orientar sobre bioestimulador?")

    # "provedor" is only in the simulated answers; "microagulhamento" in one question.
    found = client.get(SESSIONS, {"q": "Microagulhamento"}).json()
    assert [s["id"] for s in found] == [first["id"]]
    answer_word = client.get(SESSIONS, {"q": "provedor simulado"}).json()
    assert {s["id"] for s in answer_word} == {first["id"], second["id"]}
    assert client.get(SESSIONS, {"q": "inexistente"}).json() == []
    assert client.get(SESSIONS, {"q": "?!"}).json() == []
    assert client.get(SESSIONS, {"q": "x" * 201}).status_code == 400

    # Another clinician's identical words match nothing of theirs, and vice versa.
    other = api_client(make_user())
    _send(other, _session(other)["id"], "Cuidados após microagulhamento facial?")
    assert [s["id"] for s in client.get(SESSIONS, {"q": "microagulhamento"}).json()] == [
        first["id"]]
    mine = search.unpack(ChatSession.objects.get(id=first["id"]).search_tokens)
    theirs = search.unpack(ChatSession.objects.exclude(user=clinician).get().search_tokens)
    assert mine and theirs and not mine & theirs


def test_it_never_indexes_personal_data(clinician, ai_settings):
    client = api_client(clinician)
    session = _session(client)
    _send(client, session["id"], f"Paciente Joana Ferreira, CPF {CPF}, alergia a lidocaína?")
    assert client.get(SESSIONS, {"q": "lidocaína"}).json()[0]["id"] == session["id"]
    assert client.get(SESSIONS, {"q": "Ferreira"}).json() == []
    assert client.get(SESSIONS, {"q": "09"}).json() == []
    tokens = search.unpack(ChatSession.objects.get(id=session["id"]).search_tokens)
    assert search.word_token(user_id=clinician.pk, word="lidocaina") in tokens
    assert search.word_token(user_id=clinician.pk, word="ferreira") not in tokens


def test_its_word_tokens_stay_those_of_djangos_salted_hmac():
    # Tokens already stored must keep matching: the same keyed hash, key derived once.
    from django.utils.crypto import salted_hmac

    words = ["peeling", "regiao", "sessoes", "acido"]
    expected = {salted_hmac("neonpro.chat.search:42", word, algorithm="sha256").hexdigest()[:16]
                for word in words}
    assert set(search.tokens_for_texts(user_id=42, texts=[" ".join(words)])) == expected
    assert set(search.tokens_for_query(user_id=42, query=" ".join(words))) == expected
    assert {search.word_token(user_id=42, word=word) for word in words} == expected
    assert search.word_token(user_id=43, word="peeling") not in expected


def test_it_searches_a_thousand_sessions_quickly_with_the_index(clinician, ai_settings):
    user_id = clinician.pk
    rows = [
        ChatSession(user=clinician, clinic=clinician.clinic_membership.clinic,
                    expires_at=clinician.date_joined,
                    search_tokens=search.pack(search.tokens_for_texts(
                        user_id=user_id, texts=[f"sessão número {i} sobre rotina {i % 7}"])))
        for i in range(1000)
    ]
    ChatSession.objects.bulk_create(rows)
    client = api_client(clinician)
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        found = client.get(SESSIONS, {"q": "número 999"}).json()
    elapsed = time.perf_counter() - started
    assert len(found) == 1
    assert elapsed < 1.0
    # Matched in the database on the tokens: no message is read, nothing is decrypted.
    assert not any("chat_chatmessage" in q["sql"] for q in queries)
    assert any("search_tokens" in q["sql"] and "LIKE" in q["sql"] for q in queries)


def test_it_deletes_a_session_with_its_messages_and_audits_it(clinician, ai_settings):
    client = api_client(clinician)
    session = _session(client)
    _send(client, session["id"], "Pergunta a apagar")
    response = client.delete(f"{SESSIONS}{session['id']}/")
    assert response.status_code == 204
    assert not ChatSession.objects.filter(id=session["id"]).exists()
    assert not ChatMessage.objects.filter(session_id=session["id"]).exists()
    event = AuditEvent.objects.get(event_type="data_erased", session_id=session["id"])
    assert event.metadata["scope"] == "session"
    assert event.metadata["messages"] == 2
    assert client.delete(f"{SESSIONS}{session['id']}/").status_code == 404


def test_it_refuses_to_delete_a_session_under_legal_hold(clinician, make_user, ai_settings):
    client = api_client(clinician)
    session = _session(client)
    ChatSession.objects.filter(id=session["id"]).update(legal_hold=True)
    response = client.delete(f"{SESSIONS}{session['id']}/")
    assert response.status_code == 409
    assert response.json()["code"] == "legal_hold"
    assert ChatSession.objects.filter(id=session["id"]).exists()
    # Nobody deletes another clinician's session: it does not exist for them.
    assert api_client(make_user()).delete(f"{SESSIONS}{session['id']}/").status_code == 404


def test_it_records_feedback_audits_and_counts_it_by_rating(clinician, make_user, ai_settings):
    client = api_client(clinician)
    session = _session(client)
    answer = _send(client, session["id"], "Como aplicar o protetor?")["assistant_message"]
    url = f"/api/v1/ai-chat/messages/{answer['id']}/feedback/"
    before = metrics.FEEDBACK.labels(rating="down")._value.get()

    response = client.post(url, {"rating": "down", "comment": "Faltou a dose"}, format="json")
    assert response.status_code == 200
    assert response.json()["feedback_rating"] == "down"
    stored = ChatMessage.objects.get(id=answer["id"])
    assert (stored.feedback_rating, stored.feedback_comment) == ("down", "Faltou a dose")
    assert metrics.FEEDBACK.labels(rating="down")._value.get() == before + 1
    event = AuditEvent.objects.get(event_type="feedback_given")
    assert event.metadata == {"message_id": answer["id"], "rating": "down", "has_comment": True}

    assert client.post(url, {"rating": "meh"}, format="json").status_code == 400
    assert client.post(url, {"rating": "up", "comment": "x" * 2001},
                       format="json").status_code == 400
    question_url = f"/api/v1/ai-chat/messages/{uuid.uuid4()}/feedback/"
    assert client.post(question_url, {"rating": "up"}, format="json").status_code == 404
    other = api_client(make_user())
    assert other.post(url, {"rating": "up"}, format="json").status_code == 404
    listed = client.get(f"{SESSIONS}{session['id']}/messages/").json()
    assert listed[-1]["feedback_rating"] == "down"


def test_it_exports_a_conversation_as_the_clinician_sees_it_and_audits_it(
    clinician, make_user, ai_settings
):
    client = api_client(clinician)
    session = _session(client)
    question = f"A paciente Maria Aparecida da Silva, CPF {CPF}, pode fazer peeling?"
    _send(client, session["id"], question)
    url = f"{SESSIONS}{session['id']}/export/"

    markdown = client.get(url, {"as": "md"})
    assert markdown.status_code == 200
    assert markdown["Content-Type"].startswith("text/markdown")
    assert markdown["Content-Disposition"].startswith('attachment; filename="neonpro-conversa-')
    assert markdown["Cache-Control"] == "no-store"
    text = markdown.content.decode()
    assert question in text  # personal data as the clinician sees it
    assert "Maria Aparecida da Silva" in text.split("## Assistente", 1)[1]  # re-identified
    assert "## Você" in text

    pdf = client.get(url, {"as": "pdf"})
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")

    events = AuditEvent.objects.filter(event_type="data_exported", session_id=session["id"])
    assert sorted(e.metadata["format"] for e in events) == ["md", "pdf"]
    assert all(e.metadata["scope"] == "session" and e.metadata["messages"] == 2 for e in events)
    assert CPF not in str([e.metadata for e in events])

    assert client.get(url, {"as": "docx"}).status_code == 400
    assert client.get(url).status_code == 400
    assert api_client(make_user()).get(url, {"as": "md"}).status_code == 404


@pytest.mark.parametrize(("text", "title"), [
    ("Resumo\n\n## Cuidados\n\n- **hidratar**\n- `protetor`\n\n| Dia | Cuidado |\n|---|---|",
     "Resumo Cuidados hidratar protetor Dia Cuidado"),
    ("Paciente [NOME_1], CPF [CPF_1]: pode?", "Paciente [NOME_1], CPF [CPF_1]: pode?"),
    ("palavra " * 20, "palavra palavra palavra palavra palavra palavra palavra…"),
    ("   ", ""),
])
def test_it_makes_a_one_line_title_without_markdown(text, title):
    assert accept.title_from_text(text) == title
