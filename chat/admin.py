"""Admin for chat sessions, provider attempts and answer feedback.

Sessions are read-only except for legal hold. Message text and session titles
are shown only to staff holding `chat.view_message_content` (compliance
officers), only on a session's own page, masked by default (placeholders
instead of personal data); every opening of that page is an
admin_viewed_session audit event, and showing the clear text needs a reason
recorded as a pii_revealed event. If the event cannot be written, the page is
not shown. Operations staff see metadata only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from chat.models import (
    OUTCOME_LABELS,
    ChatMessage,
    ChatSession,
    MessageFeedback,
    ProviderAttempt,
)
from clinics.people import person_short_name
from compliance import audit, backoffice, redaction
from compliance.admin_mixins import ReadOnlyAdminMixin
from compliance.backoffice import REVEAL_REASONS
from compliance.roles import is_compliance_officer

# Why a session ended (chat.pipeline.sessions), as officers read it.
CLOSE_REASON_LABELS = {
    "closed_by_user": _("closed by the clinician"),
    "idle": _("expired after inactivity"),
    "subject_erased": _("closed by a data erasure"),
    "consent_revoked": _("closed because consent was revoked"),
}


def _revealed(request) -> bool:
    """This response (and only this one) shows personal data in clear: set by the reveal
    view after it recorded the officer's reason."""
    return getattr(request, "neonpro_reveal", False) and is_compliance_officer(request.user)


class ChatMessageInline(admin.TabularInline):
    """The session's messages, read-only.

    Officers see the text masked by default (the redacted form, with placeholders
    such as [NOME_1]); after "Revelar dados pessoais" with a recorded reason, that
    one page shows the text as the clinician saw it. Operations staff see metadata
    only, and nothing of the text is even loaded for them.
    """

    model = ChatMessage
    fk_name = "session"
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    ordering = ["created_at"]
    _metadata_fields = ["created_at", "role", "status", "error_code", "pii_counts", "provider",
                        "model", "input_tokens", "output_tokens", "latency_ms"]

    def get_fields(self, request, obj=None):
        if not is_compliance_officer(request.user):
            return list(self._metadata_fields)
        content = ["text", "sent_to_provider"] if _revealed(request) else ["masked_text"]
        return self._metadata_fields[:3] + content + self._metadata_fields[3:]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not is_compliance_officer(request.user):
            return queryset.defer("content", "redacted_content")
        if not _revealed(request):
            return queryset.defer("content")  # the clear text is not even decrypted
        return queryset

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("text (personal data masked)"))
    def masked_text(self, obj: ChatMessage) -> str:
        return format_html('<div class="np-message np-masked">{}</div>', obj.redacted_content) \
            if obj.redacted_content else "—"

    @admin.display(description=_("text (as the clinician saw it)"))
    def text(self, obj: ChatMessage) -> str:
        # Plain text in a pre-wrap block: line breaks kept, any markup shown as typed.
        return format_html('<div class="np-message">{}</div>', obj.content) \
            if obj.content else "—"

    @admin.display(description=_("sent to / received from the AI provider"))
    def sent_to_provider(self, obj: ChatMessage) -> str:
        return format_html('<div class="np-message">{}</div>', obj.redacted_content) \
            if obj.redacted_content else "—"


class RevealForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=list(REVEAL_REASONS.items()))
    reference = forms.CharField(
        label=_("Number of the request, incident or protocol"), max_length=40,
        help_text=_("For example DSR-12, INC-3 or 2026/000123. No names: it is recorded in "
                    "the audit trail."),
    )


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = ["short_id", "person", "clinic", "status", "created_at", "last_activity_at",
                    "message_count", "legal_hold"]
    list_filter = ["status", "legal_hold", "clinic", ("created_at", admin.DateFieldListFilter),
                   ("last_activity_at", admin.DateFieldListFilter)]
    search_fields = ["id__exact", "user__username", "user__id__exact"]
    search_help_text = _("Session id, username or user id.")
    list_select_related = ["user__clinic_membership__clinic", "clinic"]
    inlines = [ChatMessageInline]
    actions = ["place_legal_hold", "release_legal_hold"]
    _metadata_fields = ["id", "person", "clinic", "status", "created_at", "last_activity_at",
                        "expires_at", "closed_at", "close_reason_label", "legal_hold"]

    def get_queryset(self, request):
        # Titles and PII mappings are encrypted: not loaded (nor decrypted) for lists.
        return (super().get_queryset(request).defer("title", "pii_mapping")
                .annotate(message_total=Count("messages")))

    def get_fields(self, request, obj=None):
        if is_compliance_officer(request.user):
            title = "title" if _revealed(request) else "masked_title"
            return self._metadata_fields[:3] + [title] + self._metadata_fields[3:]
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

    @admin.display(description=_("session"), ordering="created_at")
    def short_id(self, obj: ChatSession) -> str:
        return str(obj.id)[:8]

    @admin.display(description=_("clinician"), ordering="user__first_name")
    def person(self, obj: ChatSession) -> str:
        return person_short_name(obj.user)

    @admin.display(description=_("close reason"))
    def close_reason_label(self, obj: ChatSession) -> str:
        if not obj.close_reason:
            return "—"
        return str(CLOSE_REASON_LABELS.get(obj.close_reason, obj.close_reason))

    @admin.display(description=_("title (personal data masked)"))
    def masked_title(self, obj: ChatSession) -> str:
        if not obj.title:
            return "—"
        try:  # the session's own placeholders, on a copy: nothing is stored
            return redaction.redact(obj.title, mapping=dict(obj.pii_mapping)).text
        except redaction.RedactionError:
            return str(_("[hidden: reveal to read]"))

    def get_urls(self):
        return [
            path("<path:object_id>/reveal/", self.admin_site.admin_view(self.reveal_view),
                 name="chat_chatsession_reveal"),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if (request.method == "GET" and not _revealed(request)
                and self.has_view_or_change_permission(request)):
            session = self.get_object(request, object_id)
            if session is not None and not self._record_view(request, session):
                return HttpResponseRedirect(reverse("admin:chat_chatsession_changelist"))
        extra_context = {**(extra_context or {}),
                         "can_reveal": is_compliance_officer(request.user),
                         "revealed": _revealed(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def reveal_view(self, request: HttpRequest, object_id: str):
        """"Revelar dados pessoais": ask why, record it, show this one page in clear."""
        if not is_compliance_officer(request.user):
            raise PermissionDenied
        session = self.get_object(request, object_id)
        if session is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = RevealForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                backoffice.pii_reveal_record(actor=request.user, session=session,
                                             **form.cleaned_data)
            except backoffice.BackofficeError as error:
                form.add_error(error.field, error.message)
            except audit.AuditWriteError:
                self.message_user(request, _("The personal data cannot be shown right now "
                                             "because the reason could not be recorded in "
                                             "the audit trail."), messages.ERROR)
                return HttpResponseRedirect(
                    reverse("admin:chat_chatsession_change", args=[session.pk]))
            else:
                # Render the session page for this response only; its forms post to the
                # session's own URL, and opening it again shows the masked page.
                request.neonpro_reveal = True
                request.method = "GET"
                return self.change_view(
                    request, object_id,
                    form_url=reverse("admin:chat_chatsession_change", args=[session.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Reveal personal data"),
            "opts": self.opts, "original": session, "form": form,
            "change_url": reverse("admin:chat_chatsession_change", args=[session.pk]),
        }
        return TemplateResponse(request, "admin/chat/chatsession/reveal.html", context)

    def _record_view(self, request, session: ChatSession) -> bool:
        try:
            audit.record_event(
                event_type=audit.Event.ADMIN_VIEWED_SESSION, actor_id=request.user.pk,
                subject_user_id=session.user_id, clinic_id=session.clinic_id,
                session_id=session.id,
                metadata={"content_shown": is_compliance_officer(request.user),
                          "masked": True, "messages": session.message_total},
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


class OutcomeFilter(admin.SimpleListFilter):
    title = _("outcome")
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return list(OUTCOME_LABELS.items())

    def queryset(self, request, queryset):
        return queryset.filter(outcome=self.value()) if self.value() else queryset


@admin.register(ProviderAttempt)
class ProviderAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Which AI provider received (redacted) text, when, and what happened."""

    list_display = ["id", "started_at", "provider", "model", "outcome_label", "error_code",
                    "latency_ms", "input_tokens", "output_tokens", "cost_usd", "session"]
    list_filter = ["provider", OutcomeFilter, "error_code",
                   ("started_at", admin.DateFieldListFilter)]
    search_fields = ["message__session__id__exact", "message__id__exact"]
    search_help_text = _("Session id or message id.")
    fields = ["started_at", "provider", "model", "outcome_label", "error_code", "latency_ms",
              "first_token_ms", "input_tokens", "output_tokens", "tokens_estimated", "cost_usd",
              "session", "message_ref"]
    readonly_fields = fields

    def get_queryset(self, request):
        # The session id comes through the join, so no message (encrypted text) is loaded.
        return super().get_queryset(request).annotate(session_ref=F("message__session_id"))

    @admin.display(description=_("session"))
    def session(self, obj: ProviderAttempt):
        return str(obj.session_ref)[:8] if obj.session_ref else "—"

    @admin.display(description=_("chat message"))
    def message_ref(self, obj: ProviderAttempt) -> str:
        return str(obj.message_id)

    @admin.display(description=_("outcome"), ordering="outcome")
    def outcome_label(self, obj: ProviderAttempt) -> str:
        return obj.get_outcome_display()


@admin.register(MessageFeedback)
class MessageFeedbackAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Clinicians' ratings of answers, read-only. The comment is free text (it may name
    a patient): decrypted only for compliance officers, and shown to them with its
    personal data masked, like message text."""

    list_display = ["feedback_at", "feedback_rating", "provider", "model", "session_ref",
                    "comment"]
    list_filter = ["feedback_rating", "provider", ("feedback_at", admin.DateFieldListFilter)]
    search_fields = ["session__id__exact", "id__exact"]
    ordering = ["-feedback_at"]
    _fields = ["id", "session_ref", "feedback_rating", "feedback_at", "provider", "model",
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

    @admin.display(description=_("session"))
    def session_ref(self, obj: MessageFeedback) -> str:
        return str(obj.session_id)

    @admin.display(description=_("comment (personal data masked)"))
    def comment(self, obj: MessageFeedback) -> str:
        if not obj.feedback_comment:
            return "—"
        # Stateless and fail-closed: a comment the detectors cannot read is withheld whole.
        return redaction.redact_for_log(obj.feedback_comment)
