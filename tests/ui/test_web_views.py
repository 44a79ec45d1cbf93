"""The clinician pages without a browser: access rules, consent evidence, translations."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.urls import reverse

from chat.models import ChatSession
from chat.pipeline import sessions
from compliance.models import ConsentRecord

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        assert client.login(username=user.username, password=PASSWORD)
        return client

    return sign_in


def test_it_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get(reverse("chat-home"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/chat/"


def test_it_shows_the_login_page_in_portuguese(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert 'lang="pt-BR"' in response.text
    assert "Entrar" in response.text
    assert "csrfmiddlewaretoken" in response.text


def test_it_asks_for_consent_before_the_chat(make_user, signed_in):
    client = signed_in(make_user(consent=False))
    response = client.get(reverse("chat-home"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('chat-consent')}?next=%2Fchat%2F"


def test_it_records_consent_with_ip_and_user_agent(make_user, signed_in):
    user = make_user(consent=False)
    client = signed_in(user)
    response = client.post(
        reverse("chat-consent"),
        {"accept": "yes", "next": "/chat/"},
        HTTP_USER_AGENT="Navegador de Teste/1.0",
        REMOTE_ADDR="127.0.0.9",
    )
    assert response.status_code == 302
    assert response["Location"] == "/chat/"
    record = ConsentRecord.objects.get(user=user)
    assert record.purpose == "ai_chat"
    assert record.ip_address == "127.0.0.9"
    assert record.user_agent == "Navegador de Teste/1.0"
    assert record.revoked_at is None


def test_it_records_nothing_unless_the_box_is_ticked(make_user, signed_in):
    user = make_user(consent=False)
    response = signed_in(user).post(reverse("chat-consent"), {"next": "/chat/"})
    assert response.status_code == 302
    assert not ConsentRecord.objects.filter(user=user).exists()


def test_it_never_redirects_to_another_site_after_consent(make_user, signed_in):
    client = signed_in(make_user(consent=False))
    response = client.post(
        reverse("chat-consent"), {"accept": "yes", "next": "https://example.com/phish"}
    )
    assert response["Location"] == reverse("chat-home")


def test_it_revokes_consent_and_closes_open_sessions(make_user, signed_in):
    user = make_user()
    session = sessions.session_create(user=user)
    client = signed_in(user)
    response = client.post(reverse("chat-consent-revoke"))
    assert response.status_code == 302
    assert response["Location"] == reverse("chat-privacy")
    assert not ConsentRecord.objects.filter(user=user, revoked_at__isnull=True).exists()
    session.refresh_from_db()
    assert session.status == ChatSession.Status.CLOSED
    assert client.get(reverse("chat-home"))["Location"].startswith(reverse("chat-consent"))


def test_it_only_revokes_through_post(make_user, signed_in):
    client = signed_in(make_user())
    assert client.get(reverse("chat-consent-revoke")).status_code == 405


def test_it_tells_a_user_without_a_clinic_why(make_user, signed_in):
    client = signed_in(make_user(member_of=None))
    response = client.get(reverse("chat-home"))
    assert response.status_code == 403
    assert "não está vinculada a uma clínica" in response.text


def test_it_renders_the_chat_page_with_its_configuration(make_user, signed_in, settings):
    settings.AI_MAX_INPUT_CHARS = 1234
    client = signed_in(make_user())
    response = client.get(reverse("chat-home"))
    assert response.status_code == 200
    config = json.loads(
        response.text.split('<script id="chat-config" type="application/json">')[1].split(
            "</script>"
        )[0]
    )
    assert config["maxChars"] == 1234
    assert config["timeZone"] == "America/Sao_Paulo"
    assert config["strings"]["piiMany"] == "%(count)s dados pessoais protegidos"
    assert config["initialSessionId"] is None
    # CSP-friendly: the only inline script is the inert JSON configuration.
    scripts = re.findall(r"<script([^>]*)>", response.text)
    inline = [attributes for attributes in scripts if " src=" not in attributes]
    assert inline == [' id="chat-config" type="application/json"']
    assert all("/static/" in attributes for attributes in scripts if " src=" in attributes)
    assert " onclick=" not in response.text and " style=" not in response.text


def test_it_opens_the_chat_on_an_own_session(make_user, signed_in):
    user = make_user()
    session = sessions.session_create(user=user)
    response = signed_in(user).get(reverse("chat-session-page", args=[session.id]))
    assert response.status_code == 200
    assert str(session.id) in response.text


def test_it_answers_404_for_another_users_session(make_user, signed_in):
    owner = make_user()
    session = sessions.session_create(user=owner)
    intruder = signed_in(make_user())
    assert intruder.get(reverse("chat-session-page", args=[session.id])).status_code == 404
    assert intruder.get(reverse("chat-session-page", args=[uuid.uuid4()])).status_code == 404


def test_it_shows_the_simulated_provider_banner_only_when_simulated(client, settings):
    settings.AI_SIMULATED = True
    assert "provedor simulado (sem IA real)" in client.get(reverse("login")).text
    settings.AI_SIMULATED = False
    assert "provedor simulado" not in client.get(reverse("login")).text


def test_it_logs_out_only_through_post(make_user, signed_in):
    client = signed_in(make_user())
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response["Location"] == reverse("login")
    assert client.get(reverse("chat-home")).status_code == 302


def test_it_serves_the_pages_under_a_strict_content_security_policy(client, make_user, signed_in):
    login_policy = client.get(reverse("login"))["Content-Security-Policy"]
    assert "script-src 'self';" in login_policy
    chat_policy = signed_in(make_user()).get(reverse("chat-home"))["Content-Security-Policy"]
    assert "script-src 'self';" in chat_policy
    assert "style-src 'self';" in chat_policy
    assert "connect-src 'self' ws://testserver wss://testserver;" in chat_policy
    assert "'unsafe-inline'" not in chat_policy
