"""django-auditlog on the models that matter: registered, actor recorded, and no
message text, title, PII mapping, password or identifying value in any diff."""

from __future__ import annotations

import json

import pytest
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from chat.models import ChatMessage, ChatSession
from clinics.models import Clinic, ClinicMembership
from compliance import audit, dsr, services
from compliance.checks import ACTOR_MIDDLEWARE, check_audit_actor_middleware
from compliance.models import ConsentRecord, DataSubjectRequest, TermsVersion
from tests.chat.helpers import api_client


def _log_text() -> str:
    return json.dumps([[e.object_repr, e.changes, e.changes_text, e.additional_data]
                       for e in LogEntry.objects.all()], ensure_ascii=False)


def test_every_model_that_matters_is_registered():
    for model in (ChatSession, ConsentRecord, DataSubjectRequest, ClinicMembership,
                  get_user_model(), Clinic, TermsVersion):
        assert auditlog.contains(model), model
    assert not auditlog.contains(ChatMessage)  # message text must never reach the log


@pytest.mark.django_db
def test_no_text_title_mapping_or_secret_reaches_a_diff(make_user, make_session):
    user = make_user(username="maria-clinician")
    session = make_session(user, title="Retorno de Helena Vasconcelos",
                           text="Helena Vasconcelos, CPF 529.982.247-25",
                           status=ChatSession.Status.ACTIVE)
    session.title = "Helena Vasconcelos (2)"
    session.pii_mapping = {"[NOME_1]": "Helena Vasconcelos"}
    session.status = ChatSession.Status.CLOSED
    session.save()
    message = ChatMessage.objects.filter(session=session).first()
    message.content = "Helena Vasconcelos mudou"
    message.save()
    user.email = "maria@example.com"
    user.first_name = "Maria"
    user.set_password("another-secret-password-1")
    user.save()
    dsr.dsr_create(user=user, request_type="correction", details="Meu nome é Maria Souza")
    ConsentRecord.objects.filter(user=user).update(user_agent="x")  # bulk: no signal
    services.consent_grant(user=make_user(consent=False), purpose="ai_chat",
                           ip_address="203.0.113.9", user_agent="Firefox/Helena")

    text = _log_text()
    for secret in ("Helena", "Vasconcelos", "529.982.247-25", "maria@example.com",
                   "Maria Souza", "203.0.113.9", "pbkdf2", "another-secret"):
        assert secret not in text, secret
    user_update = LogEntry.objects.get_for_object(user).filter(
        action=LogEntry.Action.UPDATE).latest("timestamp")
    assert user_update.changes["email"] == [audit.MASK, audit.MASK]
    assert user_update.changes["password"] == [audit.MASK, audit.MASK]
    session_update = LogEntry.objects.get_for_object(session).filter(
        action=LogEntry.Action.UPDATE).get()
    assert set(session_update.changes) == {"status"}


@pytest.mark.django_db
def test_group_changes_are_logged(make_user):
    user = make_user()
    group = Group.objects.create(name="Temporary")
    user.groups.add(group)
    entry = LogEntry.objects.get_for_object(user).latest("timestamp")
    assert "groups" in entry.changes


@pytest.fixture
def actor_middleware(settings):
    """MIDDLEWARE with the DRF-aware actor middleware (see compliance.checks W001)."""
    settings.MIDDLEWARE = [ACTOR_MIDDLEWARE if m == "auditlog.middleware.AuditlogMiddleware"
                           else m for m in settings.MIDDLEWARE]
    assert ACTOR_MIDDLEWARE in settings.MIDDLEWARE


@pytest.mark.django_db
@pytest.mark.parametrize("auth", ["jwt", "session"])
def test_api_changes_record_their_actor(auth, actor_middleware, make_user, client):
    user = make_user(consent=False)
    if auth == "jwt":
        caller = api_client(user)
    else:
        caller = client
        caller.force_login(user)
    response = caller.post("/api/v1/compliance/consents/",
                           {"purpose": "ai_chat", "accepted": True},
                           content_type="application/json")
    assert response.status_code == 201
    record = ConsentRecord.objects.get(user=user)
    entry = LogEntry.objects.get_for_object(record).get()
    assert entry.actor == user


@pytest.mark.django_db
def test_anonymous_requests_record_no_actor(actor_middleware, client):
    response = client.post("/login/", {"username": "nobody", "password": "wrong"})
    assert response.status_code == 200
    clinic = Clinic.objects.create(name="Sem ator")
    assert LogEntry.objects.get_for_object(clinic).get().actor is None


def test_the_system_check_asks_for_the_actor_middleware(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != ACTOR_MIDDLEWARE]
    assert [w.id for w in check_audit_actor_middleware(None)] == ["compliance.W001"]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, ACTOR_MIDDLEWARE]
    assert check_audit_actor_middleware(None) == []


@pytest.mark.django_db
def test_tasks_and_commands_record_the_actor_they_act_for(make_user, make_session):
    actor, user = make_user(), make_user()
    session = make_session(user)
    with audit.acting_as(actor):
        session.legal_hold = True
        session.save(update_fields=["legal_hold"])
    with audit.acting_as(None):
        session.legal_hold = False
        session.save(update_fields=["legal_hold"])
    entries = list(LogEntry.objects.get_for_object(session)
                   .filter(action=LogEntry.Action.UPDATE).order_by("timestamp"))
    assert [e.actor for e in entries] == [actor, None]
