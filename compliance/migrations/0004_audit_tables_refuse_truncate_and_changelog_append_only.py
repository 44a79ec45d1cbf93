"""Both audit tables are append-only in PostgreSQL, TRUNCATE included.

- `compliance_auditevent`: a statement trigger refuses TRUNCATE (row triggers,
  added in 0003, do not see it).
- `auditlog_logentry` (django-auditlog's change log): UPDATE, DELETE and
  TRUNCATE are refused. The one exception is the erasure of a data subject
  (LGPD Art. 18 VI), which must drop their name, e-mail and address from the
  log: inside a transaction that set `neonpro.changelog_scrub = on`
  (set_config(..., true), see compliance.audit.changelog_scrub_allowed), an
  UPDATE may change only `object_repr` and may only clear `actor_email`,
  `remote_addr` and `remote_port`; every other column must stay as it was. The
  erasure records a data_erased audit event with the number of entries it
  scrubbed, in the same transaction. Nothing deletes log entries.

A superuser can still disable triggers; the signed anchors outside the database
(compliance.anchors) are what make that visible. Other databases (the embedded
SQLite default) skip this migration.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION neonpro_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER compliance_auditevent_refuse_truncate
    BEFORE TRUNCATE ON compliance_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION neonpro_refuse_truncate();

CREATE OR REPLACE FUNCTION auditlog_logentry_append_only() RETURNS trigger AS $$
DECLARE
    scrubbable CONSTANT text[] := ARRAY['object_repr', 'actor_email', 'remote_addr',
                                        'remote_port'];
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('neonpro.changelog_scrub', true) = 'on'
       AND (to_jsonb(NEW) - scrubbable) = (to_jsonb(OLD) - scrubbable)
       AND (NEW.actor_email IS NULL OR NEW.actor_email IS NOT DISTINCT FROM OLD.actor_email)
       AND (NEW.remote_addr IS NULL OR NEW.remote_addr IS NOT DISTINCT FROM OLD.remote_addr)
       AND (NEW.remote_port IS NULL OR NEW.remote_port IS NOT DISTINCT FROM OLD.remote_port)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'auditlog_logentry is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER auditlog_logentry_append_only
    BEFORE UPDATE OR DELETE ON auditlog_logentry
    FOR EACH ROW EXECUTE FUNCTION auditlog_logentry_append_only();

CREATE TRIGGER auditlog_logentry_refuse_truncate
    BEFORE TRUNCATE ON auditlog_logentry
    FOR EACH STATEMENT EXECUTE FUNCTION neonpro_refuse_truncate();
"""

REVERSE = """
DROP TRIGGER IF EXISTS auditlog_logentry_refuse_truncate ON auditlog_logentry;
DROP TRIGGER IF EXISTS auditlog_logentry_append_only ON auditlog_logentry;
DROP FUNCTION IF EXISTS auditlog_logentry_append_only();
DROP TRIGGER IF EXISTS compliance_auditevent_refuse_truncate ON compliance_auditevent;
DROP FUNCTION IF EXISTS neonpro_refuse_truncate();
"""


class PostgreSQLOnlyRunSQL(migrations.RunSQL):
    """RunSQL that applies (and reverses) on PostgreSQL only (as in 0003, kept here so
    this migration stands alone)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):

    dependencies = [
        ("compliance", "0003_auditevent_append_only"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [
        PostgreSQLOnlyRunSQL(sql=FORWARD, reverse_sql=REVERSE),
    ]
