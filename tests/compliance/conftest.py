"""Fixtures of the compliance tests: staff users per role and chat data factories."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from chat.models import ChatMessage, ChatSession, ProviderAttempt
from compliance.roles import COMPLIANCE_OFFICERS, OPERATIONS, roles_ensure_groups

PASSWORD = "correct-horse-battery-staple"
ANCHOR_KEY = "audit-anchor-key-of-the-compliance-tests-" + "k" * 24


@pytest.fixture(autouse=True)
def anchor_dir(settings, tmp_path):
    """Every compliance test anchors to its own, empty directory with a known key."""
    settings.AUDIT_ANCHOR_KEYS = [ANCHOR_KEY]
    settings.AUDIT_ANCHOR_DIR = tmp_path / "audit-anchors"
    return settings.AUDIT_ANCHOR_DIR


def _staff(username: str, group: str | None = None, **flags):
    groups = roles_ensure_groups()
    user = get_user_model().objects.create_user(username=username, password=PASSWORD,
                                                is_staff=True, **flags)
    if group:
        user.groups.add(groups[group])
    return user


@pytest.fixture
def client():
    """The Django test client, in English (the admin follows Accept-Language)."""
    return Client(headers={"accept-language": "en"})


@pytest.fixture
def officer(db):
    return _staff("officer-1", COMPLIANCE_OFFICERS)


@pytest.fixture
def ops(db):
    return _staff("ops-1", OPERATIONS)


@pytest.fixture
def superuser(db):
    return _staff("root-1", is_superuser=True)


@pytest.fixture
def make_session(db):
    """A chat session with `exchanges` user/assistant message pairs and provider attempts.

    Built directly with the ORM (like a factory) so tests can set any age or state.
    """

    def make(user, *, exchanges: int = 2, last_activity=None, legal_hold: bool = False,
             title: str = "", text: str = "Paciente Joana Prado, CPF 529.982.247-25",
             status: str = ChatSession.Status.CLOSED, failover: bool = False) -> ChatSession:
        now = timezone.now()
        last_activity = last_activity or now
        session = ChatSession.objects.create(
            user=user, clinic=user.clinic_membership.clinic, title=title,
            created_at=last_activity - timedelta(minutes=5), last_activity_at=last_activity,
            expires_at=last_activity + timedelta(minutes=30), status=status,
            legal_hold=legal_hold,
            pii_mapping={"[NOME_1]": "Joana Prado", "[CPF_1]": "529.982.247-25"},
        )
        for i in range(exchanges):
            question = ChatMessage.objects.create(
                session=session, role=ChatMessage.Role.USER, content=f"{text} #{i}",
                redacted_content=f"Paciente [NOME_1], CPF [CPF_1] #{i}",
                pii_counts={"NOME": 1, "CPF": 1}, client_id=uuid.uuid4(),
            )
            answer = ChatMessage.objects.create(
                session=session, role=ChatMessage.Role.ASSISTANT, reply_to=question,
                content=f"Resposta para Joana Prado #{i}",
                redacted_content=f"Resposta para [NOME_1] #{i}",
                provider="anthropic" if failover else "openai", model="m",
                input_tokens=10, output_tokens=20,
            )
            if failover:
                ProviderAttempt.objects.create(message=answer, provider="openai", model="m",
                                               outcome="error", error_code="server_error")
            ProviderAttempt.objects.create(
                message=answer, provider=answer.provider, model="m", outcome="success",
                input_tokens=10, output_tokens=20, cost_usd=Decimal("0.000010"),
            )
        return session

    return make
