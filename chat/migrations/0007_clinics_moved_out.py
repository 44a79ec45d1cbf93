"""Clinics and memberships move to the clinics app (2/2): the chat lets them go.

State only: the tables already belong to clinics (chat 0006, clinics 0001), and a
session's foreign key keeps pointing at the same table.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0006_clinic_tables_to_clinics_app'),
        ('clinics', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='chatsession',
                    name='clinic',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='chat_sessions', to='clinics.clinic', verbose_name='clinic'),
                ),
                migrations.DeleteModel(name='ClinicMembership'),
                migrations.DeleteModel(name='Clinic'),
            ],
            database_operations=[],
        ),
        # The permission compliance.roles gives to officers, now declared on the model
        # (it was created by hand before; same codename, so the existing row is kept).
        migrations.AlterModelOptions(
            name='chatmessage',
            options={'ordering': ['created_at'], 'permissions': [('view_message_content', 'Can read decrypted chat message text')], 'verbose_name': 'chat message', 'verbose_name_plural': 'chat messages'},
        ),
    ]
