"""Clinics and memberships moved from the chat app to the clinics app without losing a row.

A scratch PostgreSQL database is built at the previous release's state (the chat
app owning `Clinic` and `ClinicMembership`), filled with clinics, memberships, a
staff group holding the clinic permissions, a session with its messages and a
provider attempt, then migrated to head: every row, id, encrypted text, content
type and permission must come through, the foreign keys must still hold, and
the way back must work too. One `manage.py shell` process drives it, as the
deployment's `migrate` runs.
"""

from __future__ import annotations

import json

import pytest

from tests.deploy import support

DRIVER = r'''
import json
from datetime import timedelta

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

PREVIOUS = ("chat", "0005_chat_ui_feedback_and_search")


def migrate(*args):
    call_command("migrate", *args, interactive=False, verbosity=0)


def tables():
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND "
                       "(tablename LIKE 'chat\\_%%' OR tablename LIKE 'clinics\\_%%')")
        return sorted(row[0] for row in cursor.fetchall())


def rows(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [list(row) for row in cursor.fetchall()]


result = {}
# The previous release: the chat app owns clinics and memberships.
migrate("auth")
migrate("auditlog")
migrate(*PREVIOUS)
migrate("compliance")
loader = MigrationExecutor(connection).loader
old = loader.project_state(list(loader.applied_migrations)).apps
User = old.get_model("auth", "User")
OldClinic = old.get_model("chat", "Clinic")
OldMembership = old.get_model("chat", "ClinicMembership")
Session, Message = old.get_model("chat", "ChatSession"), old.get_model("chat", "ChatMessage")
Attempt = old.get_model("chat", "ProviderAttempt")
OldContentType = old.get_model("contenttypes", "ContentType")
OldPermission = old.get_model("auth", "Permission")
OldGroup = old.get_model("auth", "Group")

aurora = OldClinic.objects.create(name="Clínica Aurora")
boreal = OldClinic.objects.create(name="Clínica Boreal")
ana = User.objects.create(username="ana", first_name="Ana", last_name="Souza", password="!")
bruno = User.objects.create(username="bruno", first_name="Bruno", password="!")
OldMembership.objects.create(user=ana, clinic=aurora, role="clinician")
OldMembership.objects.create(user=bruno, clinic=boreal, role="manager")
session = Session.objects.create(
    user=ana, clinic=aurora, title="Retorno de Maria", pii_mapping={"[NOME_1]": "Maria"},
    expires_at=timezone.now() + timedelta(hours=1))
question = Message.objects.create(session=session, role="user",
                                  content="Maria, CPF 529.982.247-25, volta amanhã?",
                                  redacted_content="[NOME_1], CPF [CPF_1], volta amanhã?")
answer = Message.objects.create(session=session, role="assistant", reply_to=question,
                                content="Sim, Maria volta amanhã.",
                                redacted_content="Sim, [NOME_1] volta amanhã.")
Attempt.objects.create(message=answer, provider="openai", model="gpt-4o-mini",
                       outcome="success", input_tokens=12, output_tokens=6)
clinic_type = OldContentType.objects.get(app_label="chat", model="clinic")
membership_type = OldContentType.objects.get(app_label="chat", model="clinicmembership")
staff = OldGroup.objects.create(name="Clinic readers")
staff.permissions.set(OldPermission.objects.filter(
    content_type__in=[clinic_type, membership_type], codename__startswith="view_"))
result["before"] = {
    "tables": tables(),
    "clinics": rows("SELECT id, name, created_at::text FROM chat_clinic ORDER BY id"),
    "memberships": rows("SELECT id, user_id, clinic_id, role FROM chat_clinicmembership "
                        "ORDER BY id"),
    "sessions": rows("SELECT id::text, clinic_id, user_id FROM chat_chatsession"),
    "messages": rows("SELECT id::text, content, redacted_content FROM chat_chatmessage "
                     "ORDER BY created_at"),
    "content_types": {"clinic": clinic_type.pk, "clinicmembership": membership_type.pk},
    "group_permissions": sorted(staff.permissions.values_list("pk", flat=True)),
}

migrate()  # to head: the clinics app takes them over

from chat.models import ChatMessage, ChatSession, ProviderAttempt
from clinics.models import Clinic, ClinicMembership

ContentType.objects.clear_cache()
new_session = ChatSession.objects.select_related("clinic").get()
group = Group.objects.get(name="Clinic readers")
result["after"] = {
    "tables": tables(),
    "clinics": [[c.pk, c.name, None] for c in Clinic.objects.order_by("pk")],
    "memberships": [[m.pk, m.user_id, m.clinic_id, m.role]
                    for m in ClinicMembership.objects.order_by("pk")],
    "session": [str(new_session.pk), new_session.clinic.name, new_session.title,
                new_session.pii_mapping],
    "messages": [[str(m.pk), m.content, m.redacted_content]
                 for m in ChatMessage.objects.order_by("created_at")],
    "attempts": ProviderAttempt.objects.count(),
    "content_types": {model: ContentType.objects.get(app_label="clinics", model=model).pk
                      for model in ("clinic", "clinicmembership")},
    "chat_content_types_left": ContentType.objects.filter(
        app_label="chat", model__in=["clinic", "clinicmembership"]).count(),
    "group_permissions": sorted(group.permissions.values_list("pk", flat=True)),
    "group_permission_names": sorted(
        f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()),
    "officers": sorted(
        f"{p.content_type.app_label}.{p.codename}" for p in
        Group.objects.get(name="Compliance Officers").permissions.all()
        if p.content_type.app_label in ("chat", "clinics")),
}
try:
    with transaction.atomic():
        ChatSession.objects.create(user_id=ana.pk, clinic_id=999999,
                                   expires_at=timezone.now())
    result["orphan_session"] = "accepted"
except IntegrityError:
    result["orphan_session"] = "refused"
result["new_clinic_id"] = Clinic.objects.create(name="Clínica Cais").pk

migrate(*PREVIOUS)  # and back: the chat app owns them again
result["back"] = {
    "tables": tables(),
    "clinics": rows("SELECT id, name FROM chat_clinic ORDER BY id"),
    "memberships": rows("SELECT id, user_id, clinic_id, role FROM chat_clinicmembership "
                        "ORDER BY id"),
    "content_types": rows("SELECT app_label, model FROM django_content_type WHERE model IN "
                          "('clinic', 'clinicmembership') ORDER BY model"),
}
migrate()
result["again"] = {"clinics": Clinic.objects.count(),
                   "memberships": ClinicMembership.objects.count()}
print("RESULT:" + json.dumps(result, default=str))
'''


@pytest.fixture
def scratch_database():
    name = support.unique_database_name("clinics_move")
    support.create_database(name)
    yield name
    support.drop_database(name)


def test_it_moves_clinics_and_memberships_to_their_app_with_every_row(scratch_database):
    env = support.subprocess_env(DEBUG="true",
                                 DATABASE_URL=support.database_url(scratch_database))

    output = support.manage("shell", "-c", DRIVER, env=env).stdout
    result = json.loads(output.split("RESULT:", 1)[1])

    before, after, back = result["before"], result["after"], result["back"]
    assert {"chat_clinic", "chat_clinicmembership"} <= set(before["tables"])
    # Renamed, not copied: the clinics app's tables, the chat's gone.
    assert {"clinics_clinic", "clinics_clinicmembership"} <= set(after["tables"])
    assert not {"chat_clinic", "chat_clinicmembership"} & set(after["tables"])
    assert [c[:2] for c in after["clinics"]] == [c[:2] for c in before["clinics"]]
    assert after["memberships"] == before["memberships"]
    ana_session = before["sessions"][0]
    assert after["session"] == [ana_session[0], "Clínica Aurora", "Retorno de Maria",
                                {"[NOME_1]": "Maria"}]
    assert after["messages"] == [
        [before["messages"][0][0], "Maria, CPF 529.982.247-25, volta amanhã?",
         "[NOME_1], CPF [CPF_1], volta amanhã?"],
        [before["messages"][1][0], "Sim, Maria volta amanhã.", "Sim, [NOME_1] volta amanhã."],
    ]
    assert after["attempts"] == 1
    # The same content types (ids), so the same permissions, groups and change-log entries.
    assert after["content_types"] == before["content_types"]
    assert after["chat_content_types_left"] == 0
    assert after["group_permissions"] == before["group_permissions"]
    assert after["group_permission_names"] == ["clinics.view_clinic",
                                               "clinics.view_clinicmembership"]
    assert {"clinics.view_clinic", "clinics.view_clinicmembership",
            "chat.view_message_content"} <= set(after["officers"])
    assert result["orphan_session"] == "refused"
    assert result["new_clinic_id"] > max(c[0] for c in before["clinics"])
    # Reversible: back to the chat's tables and content types, nothing lost.
    assert {"chat_clinic", "chat_clinicmembership"} <= set(back["tables"])
    assert back["clinics"][:2] == [c[:2] for c in before["clinics"]]
    assert back["memberships"] == before["memberships"]
    assert back["content_types"] == [["chat", "clinic"], ["chat", "clinicmembership"]]
    assert result["again"] == {"clinics": 3, "memberships": 2}
