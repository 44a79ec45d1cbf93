"""manage.py seed_demo: a demo clinic and one user per role (idempotent).

Passwords come from DEMO_PASSWORD; otherwise each new user gets a random one,
printed once. Existing users keep their password. `clinician` gets no consent:
the chat asks for it on first use.
"""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from clinics.models import Clinic, ClinicMembership
from compliance import audit
from compliance.roles import COMPLIANCE_OFFICERS, OPERATIONS, roles_ensure_groups

DEMO_CLINIC = "Clínica Demo"
DEMO_USERS = {
    # username: (is_staff, group, clinic role)
    "clinician": (False, None, ClinicMembership.Role.CLINICIAN),
    "officer": (True, COMPLIANCE_OFFICERS, None),
    "ops": (True, OPERATIONS, None),
}


class Command(BaseCommand):
    help = ('Create clinic "Clínica Demo" and users clinician, officer and ops '
            "(passwords from DEMO_PASSWORD, else random and printed once).")

    def handle(self, *args, **options) -> None:
        with audit.acting_as(None), transaction.atomic():
            groups = roles_ensure_groups()
            clinic, _ = Clinic.objects.get_or_create(name=DEMO_CLINIC)
            for username, (is_staff, group, role) in DEMO_USERS.items():
                self._ensure_user(username, is_staff=is_staff,
                                  group=groups[group] if group else None,
                                  clinic=clinic if role else None, role=role)
        self.stdout.write(self.style.SUCCESS(f'Demo data ready: clinic "{DEMO_CLINIC}", '
                                             f"users {', '.join(DEMO_USERS)}."))

    def _ensure_user(self, username: str, *, is_staff: bool, group, clinic, role) -> None:
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(12)
            user.set_password(password)
            if not os.environ.get("DEMO_PASSWORD"):
                self.stdout.write(f"  {username}: password {password}  (shown only now)")
        if created or user.is_staff != is_staff:
            user.is_staff = is_staff
            user.save()
        if group is not None:
            user.groups.add(group)
        if clinic is not None:
            ClinicMembership.objects.update_or_create(
                user=user, defaults={"clinic": clinic, "role": role}
            )
