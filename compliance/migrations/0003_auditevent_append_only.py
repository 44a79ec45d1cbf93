"""The database refuses UPDATE and DELETE on the audit-event table (PostgreSQL).

The only exception is a DELETE inside a transaction that set
`neonpro.audit_purge = on` (SET LOCAL / set_config(..., true)), which the
audit-retention purge does for its own batches (see compliance.retention).
TRUNCATE is not covered by row triggers: 0004 adds a statement trigger for it.

Other databases (the embedded SQLite default) skip this migration; the hash
chain still makes any change detectable there.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION compliance_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('neonpro.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'compliance_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER compliance_auditevent_append_only
    BEFORE UPDATE OR DELETE ON compliance_auditevent
    FOR EACH ROW EXECUTE FUNCTION compliance_auditevent_append_only();
"""

REVERSE = """
DROP TRIGGER IF EXISTS compliance_auditevent_append_only ON compliance_auditevent;
DROP FUNCTION IF EXISTS compliance_auditevent_append_only();
"""


class PostgreSQLOnlyRunSQL(migrations.RunSQL):
    """RunSQL that applies (and reverses) on PostgreSQL only."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):

    dependencies = [
        ("compliance", "0002_audit_terms_dsr"),
    ]

    operations = [
        PostgreSQLOnlyRunSQL(sql=FORWARD, reverse_sql=REVERSE),
    ]
