"""Admin for clinics and memberships (officers and operations staff read them)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from clinics.models import Clinic, ClinicMembership
from clinics.people import person_short_name


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at", "members"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description=_("members"), ordering="member_count")
    def members(self, obj: Clinic) -> int:
        return obj.member_count


@admin.register(ClinicMembership)
class ClinicMembershipAdmin(admin.ModelAdmin):
    list_display = ["person", "clinic", "role", "created_at"]
    list_filter = ["clinic", "role"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "clinic__name"]
    search_help_text = _("Name, username or clinic.")
    list_select_related = ["user", "clinic"]
    autocomplete_fields = ["user"]

    @admin.display(description=_("user"), ordering="user__first_name")
    def person(self, obj: ClinicMembership) -> str:
        return person_short_name(obj.user)
