# The event types of the chat page (session renamed, answer feedback).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('compliance', '0007_security_incident_register'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='event_type',
            field=models.CharField(choices=[('session_created', 'session created'), ('session_closed', 'session closed'), ('message_processed', 'message processed'), ('pii_detected', 'PII detected'), ('provider_failover', 'provider failover'), ('consent_granted', 'consent granted'), ('consent_revoked', 'consent revoked'), ('terms_published', 'terms version published'), ('admin_viewed_session', 'admin viewed session'), ('dsr_created', 'data-subject request filed'), ('dsr_status_changed', 'data-subject request status changed'), ('data_exported', 'data exported'), ('data_erased', 'data erased'), ('retention_purge', 'retention purge'), ('pii_revealed', 'personal data revealed to an officer'), ('audit_chain_verified', 'audit chain verified'), ('audit_trail_exported', 'audit trail exported'), ('incident_recorded', 'security incident recorded'), ('incident_updated', 'security incident updated'), ('incident_notified', 'security incident notification sent'), ('incident_closed', 'security incident closed'), ('session_renamed', 'session renamed'), ('feedback_given', 'answer feedback given')], db_index=True, max_length=40, verbose_name='event'),
        ),
    ]
