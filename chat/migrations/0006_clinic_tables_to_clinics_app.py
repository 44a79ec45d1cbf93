"""Clinics and memberships move to the clinics app (1/2): their tables take its name.

A rename only (nothing is copied; PostgreSQL keeps every row, index, sequence and
the foreign keys pointing at them). clinics 0001 then takes the models over in
Django's state, and chat 0007 lets them go.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0005_chat_ui_feedback_and_search'),
    ]

    operations = [
        migrations.AlterModelTable(name='clinic', table='clinics_clinic'),
        migrations.AlterModelTable(name='clinicmembership', table='clinics_clinicmembership'),
    ]
