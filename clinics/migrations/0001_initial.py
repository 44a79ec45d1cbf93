"""Clinics and memberships, taken over from the chat app with their rows.

No table is created: chat 0006 renamed the chat's tables to these. The content
types follow (so do the permissions, staff groups and change-log entries tied to
them); chat 0007 then drops the models from the chat's state.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MODELS = ('clinic', 'clinicmembership')


def _move_content_types(apps, schema_editor, source, target):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    content_types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MODELS:
        if not content_types.filter(app_label=source, model=model).exists():
            continue  # a fresh database: Django creates the content type after migrating
        # One left at the target by an interrupted run has nothing of its own yet;
        # the source's rows (permissions, groups, change log) are the ones to keep.
        content_types.filter(app_label=target, model=model).delete()
        content_types.filter(app_label=source, model=model).update(app_label=target)


def content_types_to_clinics(apps, schema_editor):
    _move_content_types(apps, schema_editor, 'chat', 'clinics')


def content_types_to_chat(apps, schema_editor):
    _move_content_types(apps, schema_editor, 'clinics', 'chat')


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('contenttypes', '0002_remove_content_type_name'),
        ('chat', '0006_clinic_tables_to_clinics_app'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Clinic',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200, unique=True, verbose_name='name')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False, verbose_name='created at')),
                    ],
                    options={
                        'verbose_name': 'clinic',
                        'verbose_name_plural': 'clinics',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='ClinicMembership',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('role', models.CharField(choices=[('clinician', 'clinician'), ('manager', 'clinic manager')], default='clinician', max_length=20, verbose_name='role')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False, verbose_name='created at')),
                        ('clinic', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='memberships', to='clinics.clinic', verbose_name='clinic')),
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='clinic_membership', to=settings.AUTH_USER_MODEL, verbose_name='user')),
                    ],
                    options={
                        'verbose_name': 'clinic membership',
                        'verbose_name_plural': 'clinic memberships',
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_clinics, content_types_to_chat),
    ]
