"""Clinics and their members: who works where, and in which role.

Every other app hangs off these two models (sessions belong to a clinic, audit
events name the subject's clinic), so they sit below all of them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics.people import person_short_name


class Clinic(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("clinic")
        verbose_name_plural = _("clinics")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ClinicMembership(models.Model):
    class Role(models.TextChoices):
        CLINICIAN = "clinician", _("clinician")
        MANAGER = "manager", _("clinic manager")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="clinic_membership",
        verbose_name=_("user"),
    )
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="memberships",
                               verbose_name=_("clinic"))
    role = models.CharField(_("role"), max_length=20, choices=Role.choices,
                            default=Role.CLINICIAN)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("clinic membership")
        verbose_name_plural = _("clinic memberships")

    def __str__(self) -> str:
        return _("%(person)s — %(role)s, %(clinic)s") % {
            "person": person_short_name(self.user), "role": self.get_role_display(),
            "clinic": self.clinic.name}
