"""manage.py seed_smoke_account: the dedicated account `smoke_test` logs in with (idempotent).

A clinician of its own clinic ("NeonPro Smoke Test", so its sessions never mix
with a real clinic's data), with consent for the AI chat under the current
terms. The username comes from --username or SMOKE_TEST_USERNAME (default
"smoke-test"); the password from --password, SMOKE_TEST_PASSWORD or the file
named by SMOKE_TEST_PASSWORD_FILE, else a new account gets a random one,
printed once. Running it again changes nothing, except setting a different
password when one is given, and granting consent again after new terms.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from clinics.models import Clinic, ClinicMembership
from compliance import audit
from compliance.services import consent_grant
from monitoring.smoke import env_secret

SMOKE_CLINIC = "NeonPro Smoke Test"
DEFAULT_USERNAME = "smoke-test"


class Command(BaseCommand):
    help = ("Create or update the dedicated smoke-test account: a clinician of clinic "
            f'"{SMOKE_CLINIC}" with consent for the AI chat.')

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=None,
                            help=f"default: env SMOKE_TEST_USERNAME, else {DEFAULT_USERNAME}")
        parser.add_argument("--password", default=None,
                            help="default: env SMOKE_TEST_PASSWORD / SMOKE_TEST_PASSWORD_FILE; "
                                 "unset keeps an existing password or generates one")
        parser.add_argument("--clinic", default=SMOKE_CLINIC, help="clinic of the account")

    def handle(self, *args, username: str | None, password: str | None, clinic: str,
               **options) -> None:
        username = username or env_secret("SMOKE_TEST_USERNAME") or DEFAULT_USERNAME
        password = password or env_secret("SMOKE_TEST_PASSWORD")
        with audit.acting_as(None), transaction.atomic():
            user, created = get_user_model().objects.get_or_create(
                username=username, defaults={"is_staff": False, "is_superuser": False}
            )
            generated = None
            if password and not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
            elif created and not password:
                generated = secrets.token_urlsafe(18)
                user.set_password(generated)
                user.save(update_fields=["password"])
            smoke_clinic, _ = Clinic.objects.get_or_create(name=clinic)
            ClinicMembership.objects.update_or_create(
                user=user,
                defaults={"clinic": smoke_clinic, "role": ClinicMembership.Role.CLINICIAN},
            )
            consent = consent_grant(user=user, purpose="ai_chat", ip_address=None,
                                    user_agent="manage.py seed_smoke_account")
        if generated:
            self.stdout.write(f"  {username}: password {generated}  (shown only now)")
        self.stdout.write(self.style.SUCCESS(
            f'Smoke-test account ready: user {username}, clinic "{clinic}", consent for the '
            f"AI chat under terms {consent.terms_version}."
        ))
