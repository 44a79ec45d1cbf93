"""Admin for compliance officers: audit trails and consents read-only,
data-subject requests handled through actions that call the services."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlencode

from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.filters import ResourceTypeFilter
from auditlog.models import LogEntry
from auditlog.render import get_field_verbose_name
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import Case, OuterRef, Q, QuerySet, Subquery, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from clinics import people
from clinics.models import Clinic, ClinicMembership
from compliance import audit, backoffice, dsr, incidents, selectors, services
from compliance.admin_mixins import ReadOnlyAdminMixin
from compliance.models import (
    DSR_RESPONSE_DAYS,
    AuditEvent,
    ConsentRecord,
    DataSubjectRequest,
    IncidentNotification,
    SecurityIncident,
    TermsVersion,
)


def _person_of(user) -> str:
    """"Maria S. (Clínica X)" for a user loaded with its membership and clinic."""
    membership = getattr(user, "clinic_membership", None) if user is not None else None
    name = people.person_short_name(user)
    return f"{name} ({membership.clinic.name})" if membership is not None else name


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Nobody adds, edits or deletes these rows in the admin, superusers included."""


class ClinicIdFilter(admin.SimpleListFilter):
    title = _("clinic")
    parameter_name = "clinic_id"

    def lookups(self, request, model_admin):
        return list(Clinic.objects.order_by("name").values_list("id", "name"))

    def queryset(self, request, queryset):
        return queryset.filter(clinic_id=self.value()) if self.value() else queryset


class _RecentPeopleFilter(admin.SimpleListFilter):
    """People of the latest events, by name and clinic (any user id works in the URL)."""

    field = ""
    max_choices = 50

    def lookups(self, request, model_admin):
        ids = list(
            AuditEvent.objects.exclude(**{self.field: None}).order_by("-id")
            .values_list(self.field, flat=True)[:2000]
        )
        recent = list(dict.fromkeys(ids))[: self.max_choices]
        labels = people.people_labels(user_ids=recent)
        choices = [(pk, str(labels[pk])) for pk in recent if pk in labels]
        return sorted(choices, key=lambda choice: choice[1].casefold())

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class SubjectUserFilter(_RecentPeopleFilter):
    title = _("data subject")
    parameter_name = "subject_user_id"
    field = "subject_user_id"


class ActorFilter(_RecentPeopleFilter):
    title = _("performed by")
    parameter_name = "actor_id"
    field = "actor_id"


class PeopleFilter(admin.SimpleListFilter):
    """Events by or about the people a name search found (ids only in the URL).

    The person search posts the name or e-mail and is redirected here, so the
    term never appears in a URL, and so never in an access log or the history.
    """

    title = _("people found")
    parameter_name = "people"

    def lookups(self, request, model_admin):
        return []  # reached through the person search only

    def expected_parameters(self):
        return [self.parameter_name]

    def queryset(self, request, queryset):
        ids = _id_list(self.value())
        if ids is None:
            return queryset
        return queryset.filter(Q(actor_id__in=ids) | Q(subject_user_id__in=ids))


def _id_list(value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        return [int(part) for part in value.split(",") if part][:50]
    except ValueError:
        return []


def _users_matching(term: str) -> list[int]:
    return list(get_user_model().objects.filter(username__iexact=term)
                .values_list("pk", flat=True)[:10])


def _person_annotations(prefix: str, field: str) -> dict:
    """Name parts of the user an audit id points at, read in the list's one query."""
    user = get_user_model().objects.filter(pk=OuterRef(field))
    return {
        f"{prefix}_first": Subquery(user.values("first_name")[:1]),
        f"{prefix}_last": Subquery(user.values("last_name")[:1]),
        f"{prefix}_username": Subquery(user.values("username")[:1]),
        f"{prefix}_clinic": Subquery(
            ClinicMembership.objects.filter(user_id=OuterRef(field)).values("clinic__name")[:1]
        ),
    }


def _annotated_person(obj, prefix: str, user_id: int | None) -> str:
    if user_id is None:
        return "—"
    username = getattr(obj, f"{prefix}_username", None)
    if username is None:
        return _("user #%(id)s (removed)") % {"id": user_id}
    first = (getattr(obj, f"{prefix}_first") or "").strip().split(" ")[0]
    last = (getattr(obj, f"{prefix}_last") or "").strip()
    name = f"{first} {last[0].upper()}." if first and last else first or username
    clinic = getattr(obj, f"{prefix}_clinic")
    return f"{name} ({clinic})" if clinic else name


class AuditExportForm(forms.Form):
    start = forms.DateField(label=_("from"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("to (inclusive)"),
                          widget=forms.DateInput(attrs={"type": "date"}))
    clinic = forms.ModelChoiceField(label=_("clinic"), queryset=Clinic.objects.order_by("name"),
                                    required=False, empty_label=_("all clinics"))
    file_format = forms.ChoiceField(label=_("format"),
                                    choices=[("csv", "CSV"), ("json", "JSON")])


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "event_type", "actor", "subject", "clinic",
                    "session_ref", "metadata_summary"]
    list_filter = ["event_type", ("created_at", admin.DateFieldListFilter), ClinicIdFilter,
                   SubjectUserFilter, ActorFilter, PeopleFilter]
    date_hierarchy = "created_at"
    search_fields = ["id__exact", "actor_id__exact", "subject_user_id__exact",
                     "session_id__exact", "clinic_id__exact", "event_type"]
    search_help_text = _("Event number, user id or username, session id, clinic id or event "
                         "type. To find a person by name or e-mail, use the person search.")
    fields = ["id", "created_at", "event_type", "actor", "subject", "clinic", "session_id",
              "metadata_pretty", "prev_hash", "hash", "hash_matches"]
    readonly_fields = fields
    show_full_result_count = False
    change_list_template = "admin/compliance/auditevent/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            **_person_annotations("actor", "actor_id"),
            **_person_annotations("subject", "subject_user_id"),
            clinic_name=Subquery(Clinic.objects.filter(pk=OuterRef("clinic_id"))
                                 .values("name")[:1]),
        )

    def get_search_results(self, request, queryset, search_term):
        found, may_duplicate = super().get_search_results(request, queryset, search_term)
        user_ids = _users_matching(search_term.strip()) if search_term else []
        if user_ids:
            found |= queryset.filter(Q(actor_id__in=user_ids) | Q(subject_user_id__in=user_ids))
        return found, may_duplicate

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("person-search/", view(self.person_search_view),
                 name="compliance_auditevent_person_search"),
            path("verify/", view(self.verify_view), name="compliance_auditevent_verify"),
            path("export/", view(self.export_view), name="compliance_auditevent_export"),
            path("overview/", view(self.overview_view), name="compliance_overview"),
        ] + super().get_urls()

    def _page(self, request, template: str, title, **context) -> TemplateResponse:
        return TemplateResponse(request, f"admin/compliance/auditevent/{template}", {
            **self.admin_site.each_context(request), "title": title, "opts": self.opts,
            **context,
        })

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        """The figures a DPO reports monthly (reads only: opening it is not an event)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return self._page(request, "overview.html", _("Compliance overview"),
                          overview=selectors.compliance_overview())

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        """GET: the page; POST: run the verification (chain and anchors), recorded."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        status = None
        if request.method == "POST":
            try:
                status = backoffice.audit_chain_check(actor=request.user)
            except audit.AuditWriteError:
                self.message_user(request, _("The verification could not be recorded in the "
                                             "audit trail, so it was not run."), messages.ERROR)
        return self._page(request, "verify.html", _("Verify the audit chain"), status=status)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """A period, a clinic (or all) and a format; the download is a ZIP with the file
        and its signed manifest."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = AuditExportForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            data = form.cleaned_data
            try:
                export = backoffice.audit_trail_export(
                    actor=request.user, start=data["start"], end=data["end"],
                    clinic_id=data["clinic"].pk if data["clinic"] else None,
                    file_format=data["file_format"])
            except backoffice.BackofficeError as error:
                form.add_error(error.field if error.field in form.fields else None,
                               error.message)
            except audit.AuditWriteError:
                self.message_user(request, _("The export could not be recorded in the audit "
                                             "trail, so it was not produced."), messages.ERROR)
            else:
                response = HttpResponse(export.as_zip(), content_type="application/zip")
                name = export.filename.rsplit(".", 1)[0]
                response["Content-Disposition"] = f'attachment; filename="{name}.zip"'
                return response
        return self._page(request, "export.html", _("Export the audit trail"), form=form)

    def person_search_view(self, request: HttpRequest) -> HttpResponse:
        """POST a name or e-mail; redirect to the events of the people it names (ids only)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = reverse("admin:compliance_auditevent_changelist")
        if request.method != "POST":
            return HttpResponseRedirect(changelist)
        term = request.POST.get("person", "").strip()
        ids = people.people_search(term=term) if len(term) >= 2 else []
        if not ids:
            self.message_user(request, _("Nobody matches that name or e-mail."),
                              messages.WARNING)
            return HttpResponseRedirect(changelist)
        query = urlencode({"people": ",".join(map(str, ids))})
        return HttpResponseRedirect(f"{changelist}?{query}")

    @admin.display(description=_("performed by"), ordering="actor_id")
    def actor(self, obj: AuditEvent) -> str:
        return _annotated_person(obj, "actor", obj.actor_id)

    @admin.display(description=_("data subject"), ordering="subject_user_id")
    def subject(self, obj: AuditEvent) -> str:
        return _annotated_person(obj, "subject", obj.subject_user_id)

    @admin.display(description=_("clinic"), ordering="clinic_id")
    def clinic(self, obj: AuditEvent) -> str:
        if obj.clinic_id is None:
            return "—"
        return getattr(obj, "clinic_name", None) or _("clinic #%(id)s") % {"id": obj.clinic_id}

    @admin.display(description=_("chat session"))
    def session_ref(self, obj: AuditEvent) -> str:
        return str(obj.session_id)[:8] if obj.session_id else "—"

    @admin.display(description=_("details"))
    def metadata_summary(self, obj: AuditEvent) -> str:
        text = json.dumps(obj.metadata, sort_keys=True, ensure_ascii=False)
        return text if len(text) <= 120 else text[:117] + "..."

    @admin.display(description=_("details (codes and counts)"))
    def metadata_pretty(self, obj: AuditEvent) -> str:
        return format_html("<pre class=\"np-json\">{}</pre>",
                           json.dumps(obj.metadata, sort_keys=True, indent=2, ensure_ascii=False))

    @admin.display(description=_("content matches its hash"), boolean=True)
    def hash_matches(self, obj: AuditEvent) -> bool:
        return audit.event_hash(obj) == obj.hash


if admin.site.is_registered(LogEntry):  # auditlog registers its own admin first
    admin.site.unregister(LogEntry)


class RecordTypeFilter(ResourceTypeFilter):
    """auditlog's filter by record type, named by the model's (translated) verbose name."""

    title = _("record type")

    def lookups(self, request, model_admin):
        ids = (model_admin.get_queryset(request).order_by()
               .values_list("content_type_id", flat=True).distinct())
        types = ContentType.objects.filter(pk__in=list(ids))
        return sorted(((t.pk, str(t.name)) for t in types), key=lambda c: c[1].casefold())


@admin.register(LogEntry)
class LogEntryAdmin(AuditlogLogEntryAdmin):
    """auditlog's change log, with deletion refused outright."""

    list_filter = ["action", RecordTypeFilter, ("timestamp", admin.DateFieldListFilter)]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    # auditlog builds these two columns in English only: the same, through our catalogue.
    @admin.display(description=_("changes"))
    def msg_short(self, obj: LogEntry) -> str:
        if obj.action in (LogEntry.Action.DELETE, LogEntry.Action.ACCESS):
            return ""
        names = [str(get_field_verbose_name(obj, name)) for name in obj.changes_dict]
        return ngettext("%(count)d change: %(fields)s", "%(count)d changes: %(fields)s",
                        len(names)) % {"count": len(names), "fields": ", ".join(names)}

    @admin.display(description=_("correlation id"))
    def cid_url(self, obj: LogEntry):
        return super().cid_url(obj)


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
    list_display = ["id", "person", "purpose", "terms_version", "granted_at", "revoked_at",
                    "is_active"]
    list_filter = ["purpose", "terms_version", ActiveConsentFilter, ConsentClinicFilter,
                   ("granted_at", admin.DateFieldListFilter),
                   ("revoked_at", admin.DateFieldListFilter)]
    date_hierarchy = "granted_at"
    search_fields = ["user__username", "user__id__exact", "terms_version"]
    search_help_text = _("Username, user id or terms version.")
    list_select_related = ["user__clinic_membership__clinic"]
    readonly_fields = ["person", "purpose", "terms_version", "granted_at", "revoked_at",
                       "ip_address", "user_agent"]
    fields = readonly_fields

    @admin.display(description=_("active"), boolean=True)
    def is_active(self, obj: ConsentRecord) -> bool:
        return obj.is_active

    @admin.display(description=_("data subject"), ordering="user__first_name")
    def person(self, obj: ConsentRecord) -> str:
        return _person_of(obj.user)


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


# Open requests this close to their due date are shown in amber.
DUE_SOON_DAYS = 3


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
    list_display = ["id", "person", "request_type", "status", "received_at", "due_at",
                    "deadline"]
    list_filter = ["status", "request_type", OverdueFilter,
                   ("received_at", admin.DateFieldListFilter)]
    search_fields = ["id__exact", "user__username", "user__id__exact"]
    search_help_text = _("Request number, username or user id.")
    list_select_related = ["user__clinic_membership__clinic"]
    # Officers pick the person by name, username or e-mail (the user admin's search).
    autocomplete_fields = ["user"]
    actions = ["export_subject_data", "erase_subject_data", "apply_consent_revocation",
               "mark_in_progress", "mark_completed", "mark_rejected"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # requests are the evidence of how the subject was answered

    def get_ordering(self, request):
        # Open requests first, the nearest due date at the top.
        open_first = Case(When(status__in=DataSubjectRequest.OPEN_STATUSES, then=Value(0)),
                          default=Value(1))
        return [open_first.asc(), "due_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None and "received_at" in form.base_fields:
            form.base_fields["received_at"].help_text = _(
                "The answer is due %(days)s days after receipt (LGPD Art. 19 II); the due "
                "date is computed and shown once the request is saved."
            ) % {"days": DSR_RESPONSE_DAYS}
        return form

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, _("Request filed for %(person)s; the answer is due on "
                                     "%(due)s.") % {"person": people.person_short_name(obj.user),
                                                    "due": people.short_date(obj.due_at)},
                          messages.SUCCESS)
        return super().response_add(request, obj, post_url_continue)

    @admin.display(description=_("data subject"), ordering="user__first_name")
    def person(self, obj: DataSubjectRequest) -> str:
        return _person_of(obj.user)

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
            return format_html('<strong class="np-overdue">{}</strong>', label)
        days_left = math.ceil((obj.due_at - now) / timedelta(days=1))
        label = _("%(days)s day(s) left") % {"days": days_left}
        if days_left <= DUE_SOON_DAYS:
            return format_html('<strong class="np-due-soon">{}</strong>', label)
        return label

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
                               actor=request.user, note=_("Export delivered."))
        response = JsonResponse(document, json_dumps_params={"ensure_ascii": False,
                                                             "indent": 2})
        response["Content-Disposition"] = (
            f'attachment; filename="subject-{request_obj.user_id}-export.json"'
        )
        return response

    @staticmethod
    def _confirmed(request) -> bool:
        """True once the officer confirmed on the intermediate page (like Django's delete)."""
        return request.POST.get("confirmed") == "yes"

    def _confirmation(self, request, queryset: QuerySet, action: str, question, warning):
        context = {
            **self.admin_site.each_context(request),
            "title": _("Are you sure?"), "question": question, "warning": warning,
            "requests": list(queryset.select_related("user")), "action": action,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/compliance/datasubjectrequest/confirm.html",
                                context)

    @admin.action(description=_("Erase / anonymise the subject's data"),
                  permissions=["change"])
    def erase_subject_data(self, request, queryset: QuerySet) -> HttpResponse | None:
        if not self._confirmed(request):
            return self._confirmation(
                request, queryset, "erase_subject_data",
                _("Erase or anonymise the data of the people of these requests?"),
                _("This cannot be undone: messages, titles and personal details are wiped and "
                  "the accounts are deactivated. Sessions under legal hold keep their content."))

        def erase(request_obj: DataSubjectRequest) -> None:
            counts = dsr.dsr_erase_subject(user=request_obj.user, actor=request.user,
                                           request=request_obj)
            dsr.dsr_set_status(request=request_obj, status=DataSubjectRequest.Status.COMPLETED,
                               actor=request.user,
                               note=_("%(messages)s messages erased in %(sessions)s sessions; "
                                      "%(held)s under legal hold kept.") % {
                                   "messages": counts["messages"],
                                   "sessions": counts["sessions"],
                                   "held": counts["sessions_on_legal_hold"]})

        self._apply_to_open_requests(
            request, queryset, DataSubjectRequest.RequestType.DELETION, erase,
            unaudited=_("Request #%(id)s: the erasure could not be audited, so nothing was "
                        "erased."),
            kind=_("open deletion requests"))
        return None

    @admin.action(description=_("Apply consent revocation"), permissions=["change"])
    def apply_consent_revocation(self, request, queryset: QuerySet) -> HttpResponse | None:
        if not self._confirmed(request):
            return self._confirmation(
                request, queryset, "apply_consent_revocation",
                _("Revoke the consent of the people of these requests?"),
                _("Their open chat sessions are closed and they can use the assistant again "
                  "only after consenting anew."))
        self._apply_to_open_requests(
            request, queryset, DataSubjectRequest.RequestType.CONSENT_REVOCATION,
            lambda request_obj: dsr.dsr_revoke_consent(request=request_obj, actor=request.user),
            unaudited=_("Request #%(id)s: the revocation could not be audited, so it was not "
                        "applied."),
            kind=_("open consent-revocation requests"))
        return None

    def _apply_to_open_requests(self, request, queryset: QuerySet, request_type: str,
                                apply: Callable[[DataSubjectRequest], object], *,
                                unaudited, kind) -> None:
        """Run `apply` on each selected open request of `request_type`, skip the others.

        A request whose action could not be audited is reported and left as it was (the
        service refuses to act unaudited); the rest of the selection goes on.
        """
        done = skipped = 0
        for request_obj in queryset.select_related("user"):
            if request_obj.request_type != request_type or not request_obj.is_open:
                skipped += 1
                continue
            try:
                apply(request_obj)
            except audit.AuditWriteError:
                self.message_user(request, unaudited % {"id": request_obj.pk}, messages.ERROR)
                continue
            done += 1
        self._report(request, done, skipped, kind)

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


class IncidentNotificationInline(admin.TabularInline):
    """Notifications sent: added while the incident is open, never changed afterwards."""

    model = IncidentNotification
    extra = 0
    can_delete = False
    fields = ["recipient", "sent_at", "reference", "summary"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a sent notification is a fact: record a new one instead

    def has_add_permission(self, request, obj=None) -> bool:
        return obj is not None and not obj.is_closed and super().has_add_permission(request, obj)


class IncidentDeadlineFilter(admin.SimpleListFilter):
    title = _("notification deadline")
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return [("overdue", _("overdue, not notified")), ("pending", _("not notified yet"))]

    def queryset(self, request, queryset):
        pending = queryset.filter(status__in=(SecurityIncident.Status.DRAFT,
                                              SecurityIncident.Status.OPEN),
                                  risk_relevant=True)
        if self.value() == "overdue":
            return pending.filter(notification_due_at__lt=timezone.now())
        if self.value() == "pending":
            return pending
        return queryset


@admin.register(SecurityIncident)
class SecurityIncidentAdmin(admin.ModelAdmin):
    """The incident register: recorded, assessed, notified, closed; read-only once closed."""

    list_display = ["id", "title", "status", "became_known_at", "notification_due_at",
                    "deadline", "subjects_affected"]
    list_filter = ["status", IncidentDeadlineFilter, "risk_relevant", "source"]
    search_fields = ["id__exact", "title"]
    search_help_text = _("Incident number or title.")
    inlines = [IncidentNotificationInline]
    fields = ["title", "status", "became_known_at", "notification_due_at", "occurred_at",
              "description", "data_categories", "subjects_affected", "risk_relevant",
              "measures", "source", "recorded_by", "closed_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_closed:
            return self.fields
        return ["notification_due_at", "source", "recorded_by", "closed_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_closed:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # every incident is kept as evidence (Resolução CD/ANPD 15/2024)

    @admin.display(description=_("deadline"), ordering="notification_due_at")
    def deadline(self, obj: SecurityIncident) -> str:
        if obj.status not in (SecurityIncident.Status.DRAFT, SecurityIncident.Status.OPEN) \
                or not obj.risk_relevant:
            return "—"
        left = obj.notification_due_at - timezone.now()
        if left.total_seconds() < 0:
            return format_html('<strong class="np-overdue">{}</strong>',
                               _("OVERDUE: notify the ANPD now"))
        hours = int(left.total_seconds() // 3600)
        label = _("%(hours)s hour(s) left to notify") % {"hours": hours}
        if hours < 24:
            return format_html('<strong class="np-due-soon">{}</strong>', label)
        return label

    def save_model(self, request, obj: SecurityIncident, form, change: bool) -> None:
        try:
            if change:
                incidents.incident_update(incident=obj, actor=request.user,
                                          changed=list(form.changed_data))
            else:
                incidents.incident_record(incident=obj, actor=request.user)
        except incidents.IncidentError as error:
            raise PermissionDenied(str(error)) from error

    def save_formset(self, request, form, formset, change: bool) -> None:
        for notification in formset.save(commit=False):
            notification.incident = form.instance
            incidents.incident_notification_record(notification=notification,
                                                   actor=request.user)

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, _("Incident recorded; the ANPD must be notified by %(due)s "
                                     "if it may cause relevant risk or damage.")
                          % {"due": people.short_datetime(obj.notification_due_at)},
                          messages.WARNING)
        return super().response_add(request, obj, post_url_continue)


class UserAdmin(DjangoUserAdmin):
    """Accounts are never deleted in the admin, superusers included.

    The change log is append-only (a database trigger refuses UPDATE), and it names
    each entry's actor: deleting a user would have to null that reference. A person's
    data leaves through a data-subject erasure (`dsr.dsr_erase_subject`), which
    anonymises the account and scrubs its identifiers under an audited licence; an
    account that should no longer sign in is deactivated.
    """

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), UserAdmin)
