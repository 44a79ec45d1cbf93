"""Who may open which admin page (officer, ops, clinician, anonymous, superuser),
read-only audit data, and message text shown only to officers on an audited page."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from chat.models import ProviderAttempt
from clinics.models import ClinicMembership
from compliance import audit
from compliance.audit import Event
from compliance.models import AuditEvent, ConsentRecord, DataSubjectRequest, TermsVersion

PAGES = ("changelist", "add", "change", "delete")
OK, DENIED, LOGIN = 200, 403, 302

READ_ONLY = (OK, DENIED, OK, DENIED)
NONE = (DENIED,) * 4
FULL = (OK,) * 4
# model -> role -> expected status of (changelist, add, change, delete)
EXPECTED = {
    "compliance.auditevent": {"officer": READ_ONLY, "ops": NONE, "superuser": READ_ONLY},
    "auditlog.logentry": {"officer": READ_ONLY, "ops": NONE, "superuser": READ_ONLY},
    "compliance.consentrecord": {"officer": READ_ONLY, "ops": NONE, "superuser": READ_ONLY},
    # Published terms are evidence: viewable, never edited or deleted; new ones are added.
    "compliance.termsversion": {"officer": (OK, OK, OK, DENIED), "ops": NONE,
                                "superuser": (OK, OK, OK, DENIED)},
    "compliance.datasubjectrequest": {"officer": (OK, OK, OK, DENIED), "ops": NONE,
                                      "superuser": (OK, OK, OK, DENIED)},
    "clinics.clinic": {"officer": READ_ONLY, "ops": READ_ONLY, "superuser": FULL},
    "clinics.clinicmembership": {"officer": READ_ONLY, "ops": READ_ONLY, "superuser": FULL},
    "chat.chatsession": {"officer": READ_ONLY, "ops": READ_ONLY, "superuser": READ_ONLY},
    "chat.providerattempt": {"officer": READ_ONLY, "ops": READ_ONLY, "superuser": READ_ONLY},
    # Accounts are anonymised by a data-subject erasure, never deleted: the change log
    # that names them as actors is append-only.
    "auth.user": {"officer": READ_ONLY, "ops": NONE, "superuser": (OK, OK, OK, DENIED)},
    "auth.group": {"officer": NONE, "ops": NONE, "superuser": FULL},
}


@pytest.fixture
def objects(make_user, make_session, django_capture_on_commit_callbacks):
    """One row of every registered model, so each change and delete page has a target."""
    with django_capture_on_commit_callbacks(execute=True):
        subject = make_user(username="subject-1")
        session = make_session(subject, title="Paciente Joana Prado", exchanges=1)
        TermsVersion.objects.create(version="v-test", published_at=timezone.now())
        request = DataSubjectRequest.objects.create(user=subject, request_type="access")
    return {
        "compliance.auditevent": AuditEvent.objects.first().pk,
        "auditlog.logentry": LogEntry.objects.first().pk,
        "compliance.consentrecord": ConsentRecord.objects.get(user=subject).pk,
        "compliance.termsversion": TermsVersion.objects.get().pk,
        "compliance.datasubjectrequest": request.pk,
        "clinics.clinic": subject.clinic_membership.clinic_id,
        "clinics.clinicmembership": ClinicMembership.objects.get(user=subject).pk,
        "chat.chatsession": session.pk,
        "chat.providerattempt": ProviderAttempt.objects.first().pk,
        "auth.user": subject.pk,
        "auth.group": Group.objects.first().pk,
        "session": session,
        "subject": subject,
    }


def _url(model: str, page: str, pk) -> str:
    app_label, model_name = model.split(".")
    name = f"admin:{app_label}_{model_name}_{page}"
    return reverse(name, args=[pk] if page in ("change", "delete") else [])


def _user_for(role: str, officer, ops, superuser, make_user):
    return {"officer": officer, "ops": ops, "superuser": superuser,
            "clinician": make_user(username="clinician-x"), "anonymous": None}[role]


def test_every_model_that_matters_is_in_the_admin():
    registered = {m._meta.label_lower for m in admin.site._registry}
    assert set(EXPECTED) <= registered


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["officer", "ops", "superuser", "clinician", "anonymous"])
def test_the_admin_permission_matrix(role, client, objects, officer, ops, superuser,
                                     make_user):
    user = _user_for(role, officer, ops, superuser, make_user)
    if user is not None:
        client.force_login(user)
    mismatches = []
    for model, expectations in EXPECTED.items():
        expected = expectations.get(role, (LOGIN,) * 4)
        for page, status in zip(PAGES, expected, strict=True):
            url = _url(model, page, objects[model])
            response = client.get(url)
            if response.status_code != status:
                mismatches.append((model, page, status, response.status_code))
            if status == LOGIN:
                assert response["Location"].startswith("/admin/login/")
    assert mismatches == []
    index = client.get("/admin/")
    assert index.status_code == (OK if role in ("officer", "ops", "superuser") else LOGIN)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["officer", "superuser"])
def test_nobody_can_change_or_delete_audit_data_through_the_admin(role, client, objects,
                                                                  officer, superuser):
    client.force_login(officer if role == "officer" else superuser)
    event_id = objects["compliance.auditevent"]
    before = AuditEvent.objects.get(pk=event_id).hash
    change = client.post(_url("compliance.auditevent", "change", event_id),
                         {"event_type": "data_erased"})
    delete = client.post(_url("compliance.auditevent", "delete", event_id), {"post": "yes"})
    bulk = client.post(reverse("admin:compliance_auditevent_changelist"),
                       {"action": "delete_selected", "_selected_action": [event_id],
                        "post": "yes"})
    assert change.status_code == 403 and delete.status_code == 403
    assert bulk.status_code in (200, 302)  # no such action: nothing happens
    assert AuditEvent.objects.get(pk=event_id).hash == before
    for model in ("auditlog.logentry", "compliance.consentrecord"):
        response = client.post(_url(model, "delete", objects[model]), {"post": "yes"})
        assert response.status_code == 403
    assert LogEntry.objects.filter(pk=objects["auditlog.logentry"]).exists()


@pytest.mark.django_db
def test_officers_read_masked_message_text_on_the_session_page_and_the_view_is_audited(
        client, objects, officer):
    # Masked by default (issue 19): placeholders only; the clear text needs a reason.
    session = objects["session"]
    client.force_login(officer)
    page = client.get(_url("chat.chatsession", "change", session.pk)).content.decode()
    assert "Paciente [NOME_1], CPF [CPF_1] #0" in page  # what went to the provider
    assert "Joana" not in page and "529.982.247-25" not in page  # nor in the title
    assert "recorded in the audit trail" in page
    event = AuditEvent.objects.get(event_type=Event.ADMIN_VIEWED_SESSION)
    assert (event.actor_id, event.subject_user_id, event.session_id) == (
        officer.pk, objects["subject"].pk, session.pk)
    assert event.metadata == {"content_shown": True, "masked": True, "messages": 2}


@pytest.mark.django_db
def test_operations_staff_see_session_metadata_but_never_text(client, objects, ops):
    session = objects["session"]
    client.force_login(ops)
    page = client.get(_url("chat.chatsession", "change", session.pk)).content.decode()
    assert "Joana" not in page and "529.982.247-25" not in page and "[NOME_1]" not in page
    assert "openai" in page  # provider of the answer: metadata is visible
    event = AuditEvent.objects.get(event_type=Event.ADMIN_VIEWED_SESSION)
    assert event.actor_id == ops.pk and event.metadata["content_shown"] is False


@pytest.mark.django_db
def test_no_list_page_shows_message_text_or_titles(client, objects, officer):
    client.force_login(officer)
    for url in (reverse("admin:chat_chatsession_changelist"),
                reverse("admin:chat_providerattempt_changelist"),
                reverse("admin:compliance_auditevent_changelist"),
                reverse("admin:auditlog_logentry_changelist")):
        page = client.get(url).content.decode()
        assert "Joana" not in page and "529.982.247-25" not in page, url
    assert not AuditEvent.objects.filter(event_type=Event.ADMIN_VIEWED_SESSION).exists()


@pytest.mark.django_db
def test_the_session_page_is_not_shown_when_its_view_cannot_be_audited(client, objects,
                                                                       officer):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_auditevent "
                       "ADD CONSTRAINT refuse_inserts CHECK (false) NOT VALID")
    client.force_login(officer)
    response = client.get(_url("chat.chatsession", "change", objects["session"].pk))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:chat_chatsession_changelist")


@pytest.mark.django_db
def test_officers_place_a_legal_hold_and_the_change_log_names_them(client, objects, officer):
    session = objects["session"]
    client.force_login(officer)
    response = client.post(reverse("admin:chat_chatsession_changelist"),
                           {"action": "place_legal_hold", "_selected_action": [session.pk]})
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.legal_hold is True
    entry = LogEntry.objects.get_for_object(session).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == officer and entry.changes == {"legal_hold": ["False", "True"]}


@pytest.mark.django_db
def test_the_audit_event_list_filters_by_type_clinic_user_and_date(client, objects, officer):
    subject = objects["subject"]
    client.force_login(officer)
    changelist = reverse("admin:compliance_auditevent_changelist")
    for query in (f"?event_type={Event.CONSENT_GRANTED}",
                  f"?clinic_id={subject.clinic_membership.clinic_id}",
                  f"?subject_user_id={subject.pk}",
                  "?" + urlencode({"created_at__gte": str(timezone.localtime().replace(
                      hour=0, minute=0, second=0, microsecond=0))}),
                  f"?q={subject.username}", f"?q={subject.pk}"):
        response = client.get(changelist + query)
        assert response.status_code == 200, query
        assert response.context["cl"].result_count >= 1, query
    other = get_user_model().objects.create_user(username="nobody-here")
    response = client.get(changelist + f"?subject_user_id={other.pk}")
    assert response.context["cl"].result_count == 0
    assert audit.audit_chain_verify().ok


@pytest.mark.django_db
def test_a_superuser_cannot_delete_an_account_that_the_change_log_names(
        client, superuser, make_user):
    member = make_user(username="leaving-clinician")
    client.force_login(superuser)
    # An action of the member's is in the change log with the member as actor.
    from auditlog.context import set_actor

    with set_actor(member):
        member.first_name = "Renomeada"
        member.save()
    url = reverse("admin:auth_user_delete", args=[member.pk])
    response = client.post(url, {"post": "yes"})
    assert response.status_code == DENIED
    changelist = client.post(reverse("admin:auth_user_changelist"),
                             {"action": "delete_selected", "_selected_action": [member.pk]})
    assert changelist.status_code in (OK, 302)
    assert get_user_model().objects.filter(pk=member.pk).exists()


@pytest.mark.django_db
def test_officers_list_answer_feedback_with_its_comment_and_ops_cannot(
        client, make_user, make_session, officer, ops):
    session = make_session(make_user(username="subject-feedback"), exchanges=2)
    rated, unrated = session.messages.filter(role="assistant").order_by("created_at")
    rated.feedback_rating = "down"
    rated.feedback_comment = "Faltou a dose para Joana Prado"
    rated.feedback_at = timezone.now()
    rated.save()
    changelist = reverse("admin:chat_messagefeedback_changelist")

    client.force_login(officer)
    page = client.get(changelist).content.decode()
    # Comments: officers only, and with their personal data masked like message text.
    assert "Faltou a dose para [NOME]" in page and "Joana Prado" not in page
    assert str(rated.pk) in page and str(unrated.pk) not in page  # rated answers only
    change = _url("chat.messagefeedback", "change", rated.pk)
    assert client.get(change).status_code == OK
    assert client.post(change, {"feedback_rating": "up"}).status_code == DENIED
    assert client.post(_url("chat.messagefeedback", "delete", rated.pk),
                       {"post": "yes"}).status_code == DENIED
    rated.refresh_from_db()
    assert rated.feedback_rating == "down"

    client.force_login(ops)
    assert client.get(changelist).status_code == DENIED
