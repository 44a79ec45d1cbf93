"""Admin for compliance officers: audit trails and consents read-only,
data-subject requests handled through actions that call the services."""

from __future__ import annotations

import json
import math
from datetime import timedelta

from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.filters import ResourceTypeFilter
from auditlog.models import LogEntry
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from chat.models import Clinic
from compliance import audit, dsr, services
from compliance.models import AuditEvent, ConsentRecord, DataSubjectRequest, TermsVersion


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody adds, edits or deletes these rows in the admin, superusers included."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ClinicIdFilter(admin.SimpleListFilter):
    title = _("clinic")
    parameter_name = "clinic_id"

    def lookups(self, request, model_admin):
        return list(Clinic.objects.order_by("name").values_list("id", "name"))

    def queryset(self, request, queryset):
        return queryset.filter(clinic_id=self.value()) if self.value() else queryset


class SubjectUserFilter(admin.SimpleListFilter):
    """Events about one user (any user id works in the URL; the list shows the latest)."""

    title = _("subject user")
    parameter_name = "subject_user_id"
    max_choices = 50

    def lookups(self, request, model_admin):
        ids = list(
            AuditEvent.objects.exclude(subject_user_id=None).order_by("-id")
            .values_list("subject_user_id", flat=True)[:2000]
        )
        recent = list(dict.fromkeys(ids))[: self.max_choices]
        names = dict(get_user_model().objects.filter(pk__in=recent)
                     .values_list("pk", "username"))
        return [(pk, f"{names.get(pk, '?')} (#{pk})") for pk in recent]

    def queryset(self, request, queryset):
        return queryset.filter(subject_user_id=self.value()) if self.value() else queryset


def _users_matching(term: str) -> list[int]:
    return list(get_user_model().objects.filter(username__iexact=term)
                .values_list("pk", flat=True)[:10])


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "event_type", "actor_id", "subject_user_id",
                    "clinic_id", "session_id", "metadata_summary"]
    list_filter = ["event_type", ("created_at", admin.DateFieldListFilter), ClinicIdFilter,
                   SubjectUserFilter]
    date_hierarchy = "created_at"
    search_fields = ["id__exact", "actor_id__exact", "subject_user_id__exact",
                     "session_id__exact", "clinic_id__exact", "event_type"]
    search_help_text = _("Event id, user id or username, session id, clinic id, event type.")
    fields = ["id", "created_at", "event_type", "actor_id", "subject_user_id", "clinic_id",
              "session_id", "metadata_pretty", "prev_hash", "hash", "hash_matches"]
    readonly_fields = fields
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        found, may_duplicate = super().get_search_results(request, queryset, search_term)
        user_ids = _users_matching(search_term.strip()) if search_term else []
        if user_ids:
            found |= queryset.filter(Q(actor_id__in=user_ids) | Q(subject_user_id__in=user_ids))
        return found, may_duplicate

    @admin.display(description=_("metadata"))
    def metadata_summary(self, obj: AuditEvent) -> str:
        text = json.dumps(obj.metadata, sort_keys=True, ensure_ascii=False)
        return text if len(text) <= 120 else text[:117] + "..."

    @admin.display(description=_("metadata"))
    def metadata_pretty(self, obj: AuditEvent) -> str:
        return format_html("<pre>{}</pre>",
                           json.dumps(obj.metadata, sort_keys=True, indent=2, ensure_ascii=False))

    @admin.display(description=_("content matches its hash"), boolean=True)
    def hash_matches(self, obj: AuditEvent) -> bool:
        return audit.event_hash(obj) == obj.hash


if admin.site.is_registered(LogEntry):  # auditlog registers its own admin first
    admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class LogEntryAdmin(AuditlogLogEntryAdmin):
    """auditlog's change log, with deletion refused outright."""

    list_filter = ["action", ResourceTypeFilter, ("timestamp", admin.DateFieldListFilter)]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ActiveConsentFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", _("active")), ("revoked", _("revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class ConsentClinicFilter(admin.SimpleListFilter):
    title = _("clinic")
    parameter_name = "clinic"

    def lookups(self, request, model_admin):
        return list(Clinic.objects.order_by("name").values_list("id", "name"))

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(user__clinic_membership__clinic_id=self.value())


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "purpose", "terms_version", "granted_at", "revoked_at",
                    "is_active"]
    list_filter = ["purpose", "terms_version", ActiveConsentFilter, ConsentClinicFilter,
                   ("granted_at", admin.DateFieldListFilter),
                   ("revoked_at", admin.DateFieldListFilter)]
    date_hierarchy = "granted_at"
    search_fields = ["user__username", "user__id__exact", "terms_version"]
    list_select_related = ["user"]
    readonly_fields = ["user", "purpose", "terms_version", "granted_at", "revoked_at",
                       "ip_address", "user_agent"]
    fields = readonly_fields

    @admin.display(description=_("active"), boolean=True)
    def is_active(self, obj: ConsentRecord) -> bool:
        return obj.is_active


@admin.register(TermsVersion)
class TermsVersionAdmin(admin.ModelAdmin):
    """Officers publish new terms; published versions are evidence and stay as they are."""

    list_display = ["version", "published_at", "summary", "is_current"]
    search_fields = ["version", "summary"]
    fields = ["version", "published_at", "summary", "text"]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        return {"published_at": timezone.now()}

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        if obj is not None and obj.is_published:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("current"), boolean=True)
    def is_current(self, obj: TermsVersion) -> bool:
        return obj.version == services.current_terms_version()

    def save_model(self, request, obj: TermsVersion, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.terms_version_publish(
            version=obj.version, summary=obj.summary, text=obj.text,
            published_at=obj.published_at, actor=request.user,
        )
        obj.pk = created.pk
        obj._state.adding = False


class OverdueFilter(admin.SimpleListFilter):
    title = _("deadline")
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return [("overdue", _("overdue")), ("open", _("open, within deadline"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "overdue":
            return queryset.filter(status__in=DataSubjectRequest.OPEN_STATUSES, due_at__lt=now)
        if self.value() == "open":
            return queryset.filter(status__in=DataSubjectRequest.OPEN_STATUSES,
                                   due_at__gte=now)
        return queryset


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "request_type", "status", "received_at", "due_at",
                    "deadline"]
    list_filter = ["status", "request_type", OverdueFilter,
                   ("received_at", admin.DateFieldListFilter)]
    search_fields = ["id__exact", "user__username", "user__id__exact"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    actions = ["export_subject_data", "erase_subject_data", "apply_consent_revocation",
               "mark_in_progress", "mark_completed", "mark_rejected"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # requests are the evidence of how the subject was answered

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "request_type", "details", "received_at"]
        return ["user", "request_type", "details", "status", "received_at", "due_at",
                "completed_at", "handled_by", "resolution_note"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["user", "request_type", "details", "status", "received_at", "due_at",
                "completed_at", "handled_by"]

    @admin.display(description=_("deadline"), ordering="due_at")
    def deadline(self, obj: DataSubjectRequest) -> str:
        if not obj.is_open:
            return "—"
        now = timezone.now()
        if obj.is_overdue(now):
            late = (now - obj.due_at).days
            label = _("OVERDUE by %(days)s day(s)") % {"days": late} if late else _("OVERDUE")
            return format_html('<strong style="color:#ba2121">{}</strong>', label)
        days_left = math.ceil((obj.due_at - now) / timedelta(days=1))
        return _("%(days)s day(s) left") % {"days": days_left}

    def save_model(self, request, obj: DataSubjectRequest, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = dsr.dsr_create(user=obj.user, request_type=obj.request_type,
                                 details=obj.details, actor=request.user,
                                 received_at=obj.received_at)
        obj.pk, obj.due_at = created.pk, created.due_at
        obj._state.adding = False

    # --- actions ---------------------------------------------------------------------

    @admin.action(description=_("Export the subject's data (JSON download)"),
                  permissions=["change"])
    def export_subject_data(self, request, queryset: QuerySet) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one request to export."),
                              messages.WARNING)
            return None
        request_obj = queryset.get()
        try:
            document = dsr.dsr_export_subject(user=request_obj.user, actor=request.user,
                                              request=request_obj)
        except audit.AuditWriteError:
            self.message_user(request, _("The export could not be audited, so it was not "
                                         "produced. Try again or call the on-call engineer."),
                              messages.ERROR)
            return None
        if request_obj.request_type in (DataSubjectRequest.RequestType.ACCESS,
                                        DataSubjectRequest.RequestType.SHARING_INFO) \
                and request_obj.is_open:
            dsr.dsr_set_status(request=request_obj, status=DataSubjectRequest.Status.COMPLETED,
                               actor=request.user, note="Export delivered.")
        response = JsonResponse(document, json_dumps_params={"ensure_ascii": False,
                                                             "indent": 2})
        response["Content-Disposition"] = (
            f'attachment; filename="subject-{request_obj.user_id}-export.json"'
        )
        return response

    @admin.action(description=_("Erase / anonymise the subject's data"),
                  permissions=["change"])
    def erase_subject_data(self, request, queryset: QuerySet) -> None:
        done = skipped = 0
        for request_obj in queryset.select_related("user"):
            if (request_obj.request_type != DataSubjectRequest.RequestType.DELETION
                    or not request_obj.is_open):
                skipped += 1
                continue
            try:
                counts = dsr.dsr_erase_subject(user=request_obj.user, actor=request.user,
                                               request=request_obj)
            except audit.AuditWriteError:
                self.message_user(request, _("Request #%(id)s: the erasure could not be "
                                             "audited, so nothing was erased.")
                                  % {"id": request_obj.pk}, messages.ERROR)
                continue
            dsr.dsr_set_status(request=request_obj, status=DataSubjectRequest.Status.COMPLETED,
                               actor=request.user,
                               note=f"Erased {counts['messages']} messages in "
                                    f"{counts['sessions']} sessions; "
                                    f"{counts['sessions_on_legal_hold']} under legal hold kept.")
            done += 1
        self._report(request, done, skipped, _("open deletion requests"))

    @admin.action(description=_("Apply consent revocation"), permissions=["change"])
    def apply_consent_revocation(self, request, queryset: QuerySet) -> None:
        done = skipped = 0
        for request_obj in queryset.select_related("user"):
            if (request_obj.request_type != DataSubjectRequest.RequestType.CONSENT_REVOCATION
                    or not request_obj.is_open):
                skipped += 1
                continue
            try:
                dsr.dsr_revoke_consent(request=request_obj, actor=request.user)
            except audit.AuditWriteError:
                self.message_user(request, _("Request #%(id)s: the revocation could not be "
                                             "audited, so it was not applied.")
                                  % {"id": request_obj.pk}, messages.ERROR)
                continue
            done += 1
        self._report(request, done, skipped, _("open consent-revocation requests"))

    def _set_status(self, request, queryset: QuerySet, status: str) -> None:
        done = 0
        for request_obj in queryset:
            if request_obj.status != status:
                dsr.dsr_set_status(request=request_obj, status=status, actor=request.user)
                done += 1
        self.message_user(request, _("%(count)s request(s) updated.") % {"count": done})

    @admin.action(description=_("Mark in progress"), permissions=["change"])
    def mark_in_progress(self, request, queryset: QuerySet) -> None:
        self._set_status(request, queryset, DataSubjectRequest.Status.IN_PROGRESS)

    @admin.action(description=_("Mark completed"), permissions=["change"])
    def mark_completed(self, request, queryset: QuerySet) -> None:
        self._set_status(request, queryset, DataSubjectRequest.Status.COMPLETED)

    @admin.action(description=_("Mark rejected (write the reason in the note first)"),
                  permissions=["change"])
    def mark_rejected(self, request, queryset: QuerySet) -> None:
        self._set_status(request, queryset, DataSubjectRequest.Status.REJECTED)

    def _report(self, request, done: int, skipped: int, kind) -> None:
        self.message_user(request, _("%(done)s request(s) processed.") % {"done": done})
        if skipped:
            self.message_user(
                request,
                _("%(skipped)s request(s) skipped: this action applies only to %(kind)s.")
                % {"skipped": skipped, "kind": kind},
                messages.WARNING,
            )
