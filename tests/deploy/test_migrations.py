"""Migrations can be rolled back: every operation of our apps is reversible (or says why
not), and a populated database goes back to the previous release's state (this is the
first release: each app's 0001, then zero) and forward to head again, through PgBouncer
as the deployment's `migrate` runs."""

from __future__ import annotations

import json

from django.db import migrations
from django.db.migrations.loader import MigrationLoader

from tests.deploy import support

OUR_APPS = ("clinics", "chat", "compliance", "monitoring")


def _operations(operations):
    for operation in operations:
        if isinstance(operation, migrations.SeparateDatabaseAndState):
            yield from _operations(operation.database_operations)
        else:
            yield operation


def irreversible_operations(disk_migrations: dict) -> list[str]:
    """Operations that cannot be undone, in migrations that do not say why
    (a non-empty `irreversible_because` attribute on the Migration)."""
    found = []
    for (app, name), migration in sorted(disk_migrations.items()):
        if app not in OUR_APPS or getattr(migration, "irreversible_because", "").strip():
            continue
        for operation in _operations(migration.operations):
            if not operation.reversible:
                found.append(f"{app}.{name}: {operation.describe()}")
    return found


def test_it_makes_every_migration_of_our_apps_reversible_or_says_why_not():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    ours = {key: m for key, m in loader.disk_migrations.items() if key[0] in OUR_APPS}
    assert ours, "no migrations found"

    assert irreversible_operations(ours) == []


def test_it_flags_an_irreversible_operation_without_a_reason():
    def forwards(apps, schema_editor):  # pragma: no cover - never run
        pass

    class Migration(migrations.Migration):
        operations = [migrations.RunPython(forwards), migrations.RunSQL("SELECT 1")]

    class Explained(Migration):
        irreversible_because = "rewrites stored data with a one-way hash"

    flagged = irreversible_operations({("chat", "9999_x"): Migration("9999_x", "chat"),
                                       ("chat", "9998_y"): Explained("9998_y", "chat")})

    assert len(flagged) == 2 and all(f.startswith("chat.9999_x: ") for f in flagged)


# Runs in one `manage.py shell` process against the scratch database: populate with
# seed_demo, the smoke-test account and a chat exchange, then walk the migrations
# back and forward with `migrate` (what `manage.py migrate <app> <target>` runs),
# recording the database's state after each step.
DRIVER = r'''
import json
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

APPS = ("clinics", "chat", "compliance", "monitoring")


def scalar(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def state():
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = sorted(row[0] for row in cursor.fetchall())
    counts = {t: scalar(f'SELECT count(*) FROM "{t}"') for t in tables
              if t.split("_")[0] in APPS or t == "auth_user"}
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return {
        "counts": counts,
        "trigger": scalar("SELECT count(*) FROM pg_trigger "
                          "WHERE tgname = 'compliance_auditevent_append_only'"),
        "applied": sorted(f"{a}.{n}" for a, n in executor.loader.applied_migrations
                          if a in APPS),
        "pending": [f"{m.app_label}.{m.name}" for m, _ in plan],
    }


def migrate(*args):
    call_command("migrate", *args, interactive=False, verbosity=0)


result = {}
call_command("seed_demo", verbosity=0)
call_command("seed_smoke_account", "--password", "smoke-password-for-migrations", verbosity=0)
from chat.pipeline import sessions
from chat.models import ChatMessage
from compliance.services import consent_grant

user = get_user_model().objects.get(username="clinician")
consent_grant(user=user, purpose="ai_chat", ip_address="127.0.0.1", user_agent="migrations")
session = sessions.session_create(user=user, title="Avaliação")
with transaction.atomic():
    question = ChatMessage.objects.create(session=session, role="user",
                                          content="Paciente CPF 529.982.247-25",
                                          redacted_content="Paciente CPF [CPF_1]")
    ChatMessage.objects.create(session=session, role="assistant", reply_to=question,
                               content="Retorno em 15 dias.", redacted_content="Retorno")
sessions.session_close(user=user, session_id=session.id)
call_command("verify_audit_chain")
result["head"] = state()

executor = MigrationExecutor(connection)
ours = sorted(key for key in executor.loader.disk_migrations if key[0] in APPS)
result["steps"] = []
for app in APPS:
    names = [name for a, name in ours if a == app]
    if len(names) > 1:
        migrate(app, names[0])
        result["steps"].append([f"{app} {names[0]}", state()])
for app in APPS:
    if any(a == app for a, _ in ours):
        migrate(app, "zero")
        result["steps"].append([f"{app} zero", state()])

migrate()
result["forward"] = state()
call_command("seed_demo", verbosity=0)
call_command("seed_smoke_account", "--password", "smoke-password-for-migrations", verbosity=0)
call_command("verify_audit_chain")
try:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE compliance_auditevent SET metadata = '{}'")
    result["audit_update"] = "allowed"
except Exception as exc:
    result["audit_update"] = type(exc).__name__
result["after"] = state()
print("RESULT:" + json.dumps(result))
'''


def _tables(state: dict, prefix: str) -> set[str]:
    return {t for t in state["counts"] if t.startswith(prefix)}


def test_it_rolls_a_populated_database_back_to_the_previous_release_and_forward_again(
        clone_database, pgbouncer):
    name = clone_database("migrations")
    env = support.subprocess_env(DEBUG="true", DATABASE_URL=pgbouncer.url(name),
                                 DEMO_PASSWORD="demo-password-for-migrations")

    output = support.manage("shell", "-c", DRIVER, env=env).stdout
    result = json.loads(output.split("RESULT:", 1)[1])

    head = result["head"]
    assert head["pending"] == [] and head["trigger"] == 1
    assert head["counts"]["chat_chatmessage"] == 2
    assert head["counts"]["compliance_consentrecord"] == 2  # clinician and smoke-test
    assert head["counts"]["compliance_auditevent"] >= 4
    steps = dict((label, state) for label, state in result["steps"])
    # compliance back to 0001: the audit trail and its trigger go, consents stay.
    first = steps["compliance 0001_initial"]
    assert first["trigger"] == 0
    assert "compliance_auditevent" not in first["counts"]
    assert first["counts"]["compliance_consentrecord"] == 2
    assert first["counts"]["chat_chatmessage"] == 2
    # Each app to zero: its tables go, users stay.
    assert _tables(steps["chat zero"], "chat_") == set()
    zero = steps["compliance zero"]
    assert _tables(zero, "chat_") == _tables(zero, "compliance_") == set()
    assert zero["applied"] == []
    assert zero["counts"]["auth_user"] == head["counts"]["auth_user"]
    # Forward to head again: everything back, append-only trigger enforced.
    forward = result["forward"]
    assert forward["pending"] == [] and forward["trigger"] == 1
    assert forward["applied"] == head["applied"]
    assert _tables(forward, "") == _tables(head, "")
    assert result["audit_update"] != "allowed"
    assert result["after"]["counts"]["compliance_consentrecord"] >= 1
