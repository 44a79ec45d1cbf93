"""Synthetic chat history past retention, for the purge benchmarks (needs Django set up)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from chat.models import ChatMessage, ChatSession, ProviderAttempt
from clinics.models import Clinic, ClinicMembership

QUESTION = ("Paciente [NOME_1], 42 anos, CPF [CPF_1], quer saber os cuidados após "
            "aplicação de toxina botulínica na região frontal e o intervalo até o retorno.")
ANSWER = ("Após a aplicação, oriente [NOME_1] a não deitar por 4 horas, evitar massagear a "
          "área e exercícios intensos por 24 horas; o retorno costuma ser em 15 dias. " * 3)


def fill_expired_sessions(*, sessions: int, per_session: int, recent_share: float,
                          held: int, progress: bool = True) -> dict:
    """Bulk-insert `sessions` chat sessions of one synthetic clinician: the first
    `recent_share` of them recent, the next `held` past retention but on legal hold,
    the rest past retention. Returns what a purge must delete."""
    user = get_user_model().objects.create_user(username=f"bench-{uuid.uuid4().hex[:8]}")
    clinic = Clinic.objects.create(name=f"Bench {uuid.uuid4().hex[:8]}")
    ClinicMembership.objects.create(user=user, clinic=clinic)
    now = timezone.now()
    old = now - timedelta(days=settings.DATA_RETENTION_DAYS + 30)
    recent_count = int(sessions * recent_share)
    expected = {"sessions": 0, "messages": 0, "attempts": 0}
    chunk = 1000
    for start in range(0, sessions, chunk):
        batch = []
        for i in range(start, min(start + chunk, sessions)):
            is_recent = i < recent_count
            is_held = not is_recent and i < recent_count + held
            activity = now - timedelta(days=1) if is_recent else old
            batch.append(ChatSession(
                user=user, clinic=clinic, status="closed", created_at=activity,
                last_activity_at=activity, expires_at=activity, legal_hold=is_held,
                pii_mapping={"[NOME_1]": "Nome Sintético", "[CPF_1]": "000.000.000-00"},
            ))
            if not is_recent and not is_held:
                expected["sessions"] += 1
                expected["messages"] += per_session
                expected["attempts"] += per_session // 2
        ChatSession.objects.bulk_create(batch)
        questions, answers, attempts = [], [], []
        for session in batch:
            for _ in range(per_session // 2):
                question = ChatMessage(session=session, role="user", content=QUESTION,
                                       redacted_content=QUESTION, pii_counts={"NOME": 1})
                answer = ChatMessage(session=session, role="assistant", reply_to=question,
                                     content=ANSWER, redacted_content=ANSWER,
                                     provider="openai", model="gpt-4o-mini",
                                     input_tokens=60, output_tokens=120)
                questions.append(question)
                answers.append(answer)
                attempts.append(ProviderAttempt(message=answer, provider="openai",
                                                model="gpt-4o-mini", outcome="success",
                                                input_tokens=60, output_tokens=120))
        ChatMessage.objects.bulk_create(questions, batch_size=5000)
        ChatMessage.objects.bulk_create(answers, batch_size=5000)
        ProviderAttempt.objects.bulk_create(attempts, batch_size=5000)
        if progress:
            print(f"\r  filled {min(start + chunk, sessions)}/{sessions} sessions", end="",
                  flush=True)
    if progress:
        print()
    return expected
