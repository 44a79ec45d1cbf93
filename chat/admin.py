"""Admin for clinics, memberships, chat sessions and provider attempts.

Sessions are read-only except for legal hold. Message text and session titles
are decrypted only for staff holding `chat.view_message_content` (compliance
officers), only on a session's own page, and every opening of that page is an
admin_viewed_session audit event; if the event cannot be written, the page is
not shown. Operations staff see metadata only.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, F
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, linebreaks
from django.utils.translation import gettext_lazy as _

from chat.models import (
    ChatMessage,
    ChatSession,
    Clinic,
    ClinicMembership,
    MessageFeedback,
    ProviderAttempt,
)
from compliance import audit
from compliance.roles import is_compliance_officer


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
    list_display = ["user", "clinic", "role", "created_at"]
    list_filter = ["clinic", "role"]
    search_fields = ["user__username", "clinic__name"]
    list_select_related = ["user", "clinic"]
    raw_id_fields = ["user"]


class ChatMessageInline(admin.TabularInline):
    """The session's messages, read-only; text columns only for compliance officers."""

    model = ChatMessage
    fk_name = "session"
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    ordering = ["created_at"]
    _metadata_fields = ["created_at", "role", "status", "error_code", "pii_counts", "provider",
                        "model", "input_tokens", "output_tokens", "latency_ms"]
    _content_fields = ["text", "sent_to_provider"]

    def get_fields(self, request, obj=None):
        if is_compliance_officer(request.user):
            return self._metadata_fields[:3] + self._content_fields + self._metadata_fields[3:]
        return list(self._metadata_fields)

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not is_compliance_officer(request.user):
            queryset = queryset.defer("content", "redacted_content")
        return queryset

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("text (as the clinician saw it)"))
    def text(self, obj: ChatMessage) -> str:
        return format_html("<div style='white-space:pre-wrap'>{}</div>",
                           linebreaks(obj.content)) if obj.content else "—"

    @admin.display(description=_("sent to / received from the AI provider"))
    def sent_to_provider(self, obj: ChatMessage) -> str:
        return obj.redacted_content or "—"


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "clinic", "status", "created_at", "last_activity_at",
                    "message_count", "legal_hold"]
    list_filter = ["status", "legal_hold", "clinic", ("created_at", admin.DateFieldListFilter),
                   ("last_activity_at", admin.DateFieldListFilter)]
    search_fields = ["id__exact", "user__username", "user__id__exact"]
    search_help_text = _("Session id, username or user id.")
    list_select_related = ["user", "clinic"]
    inlines = [ChatMessageInline]
    actions = ["place_legal_hold", "release_legal_hold"]
    _metadata_fields = ["id", "user", "clinic", "status", "created_at", "last_activity_at",
                        "expires_at", "closed_at", "close_reason", "legal_hold"]

    def get_queryset(self, request):
        # Titles and PII mappings are encrypted: not loaded (nor decrypted) for lists.
        return (super().get_queryset(request).defer("title", "pii_mapping")
                .annotate(message_total=Count("messages")))

    def get_fields(self, request, obj=None):
        if is_compliance_officer(request.user):
            return self._metadata_fields[:3] + ["title"] + self._metadata_fields[3:]
        return list(self._metadata_fields)

    def get_readonly_fields(self, request, obj=None):
        return [f for f in self.get_fields(request, obj) if f != "legal_hold"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # sessions are opened by clinicians through the chat

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # chat data leaves only through retention or erasure

    @admin.display(description=_("messages"), ordering="message_total")
    def message_count(self, obj: ChatSession) -> int:
        return obj.message_total

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET" and self.has_view_or_change_permission(request):
            session = self.get_object(request, object_id)
            if session is not None and not self._record_view(request, session):
                return HttpResponseRedirect(reverse("admin:chat_chatsession_changelist"))
        return super().change_view(request, object_id, form_url, extra_context)

    def _record_view(self, request, session: ChatSession) -> bool:
        try:
            audit.record_event(
                event_type=audit.Event.ADMIN_VIEWED_SESSION, actor_id=request.user.pk,
                subject_user_id=session.user_id, clinic_id=session.clinic_id,
                session_id=session.id,
                metadata={"content_shown": is_compliance_officer(request.user),
                          "messages": session.message_total},
            )
        except audit.AuditWriteError:
            self.message_user(request, _("This session cannot be shown right now because the "
                                         "view could not be recorded in the audit trail."),
                              messages.ERROR)
            return False
        return True

    def save_model(self, request, obj: ChatSession, form, change: bool) -> None:
        # Only legal hold is editable; saving just that field never overwrites what
        # the chat writes to the session meanwhile (PII mapping, activity).
        obj.save(update_fields=["legal_hold"])

    def _set_legal_hold(self, request, queryset, value: bool) -> None:
        count = 0
        for session in queryset.select_related(None).only("id", "legal_hold"):
            if session.legal_hold != value:
                session.legal_hold = value
                session.save(update_fields=["legal_hold"])
                count += 1
        self.message_user(request, _("%(count)s session(s) updated.") % {"count": count})

    @admin.action(description=_("Place under legal hold (kept past retention)"),
                  permissions=["change"])
    def place_legal_hold(self, request, queryset) -> None:
        self._set_legal_hold(request, queryset, True)

    @admin.action(description=_("Release legal hold"), permissions=["change"])
    def release_legal_hold(self, request, queryset) -> None:
        self._set_legal_hold(request, queryset, False)


@admin.register(ProviderAttempt)
class ProviderAttemptAdmin(admin.ModelAdmin):
    """Which AI provider received (redacted) text, when, and what happened."""

    list_display = ["id", "started_at", "provider", "model", "outcome", "error_code",
                    "latency_ms", "input_tokens", "output_tokens", "cost_usd", "session"]
    list_filter = ["provider", "outcome", "error_code", ("started_at", admin.DateFieldListFilter)]
    search_fields = ["message__session__id__exact", "message__id__exact"]
    fields = ["started_at", "provider", "model", "outcome", "error_code", "latency_ms",
              "first_token_ms", "input_tokens", "output_tokens", "tokens_estimated", "cost_usd",
              "session", "message_id"]
    readonly_fields = fields

    def get_queryset(self, request):
        # The session id comes through the join, so no message (encrypted text) is loaded.
        return super().get_queryset(request).annotate(session_ref=F("message__session_id"))

    @admin.display(description=_("session"))
    def session(self, obj: ProviderAttempt):
        return obj.session_ref

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(MessageFeedback)
class MessageFeedbackAdmin(admin.ModelAdmin):
    """Clinicians' ratings of answers, read-only. The comment is free text (it may name
    a patient): decrypted only for compliance officers, like message text."""

    list_display = ["feedback_at", "feedback_rating", "provider", "model", "session_id",
                    "comment"]
    list_filter = ["feedback_rating", "provider", ("feedback_at", admin.DateFieldListFilter)]
    search_fields = ["session__id__exact", "id__exact"]
    ordering = ["-feedback_at"]
    _fields = ["id", "session_id", "feedback_rating", "feedback_at", "provider", "model",
               "created_at"]

    def get_queryset(self, request):
        queryset = (super().get_queryset(request).exclude(feedback_rating="")
                    .defer("content", "redacted_content"))
        if not is_compliance_officer(request.user):
            queryset = queryset.defer("feedback_comment")
        return queryset

    def get_fields(self, request, obj=None):
        return self._fields + (["comment"] if is_compliance_officer(request.user) else [])

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def get_list_display(self, request):
        if is_compliance_officer(request.user):
            return self.list_display
        return [field for field in self.list_display if field != "comment"]

    @admin.display(description=_("comment"))
    def comment(self, obj: MessageFeedback) -> str:
        return obj.feedback_comment or "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
