"""Chat sessions, messages and provider attempts."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics.models import Clinic
from clinics.people import person_short_name, short_date, short_datetime
from compliance.encryption import EncryptedJSONField, EncryptedTextField


class ChatSession(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        CLOSED = "closed", _("closed")
        EXPIRED = "expired", _("expired")

    id = models.UUIDField(_("identifier"), primary_key=True, default=uuid.uuid4,
                          editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="chat_sessions",
        verbose_name=_("clinician"),
    )
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="chat_sessions",
                               verbose_name=_("clinic"))
    # Titles are typed by clinicians and may name a patient: encrypted like messages.
    title = EncryptedTextField(_("title"), blank=True, default="")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.ACTIVE)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False,
                                      db_index=True)
    last_activity_at = models.DateTimeField(_("last activity at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    close_reason = models.CharField(_("close reason"), max_length=40, blank=True, default="")
    # placeholder -> original value, stable for the whole session (see compliance.redaction).
    pii_mapping = EncryptedJSONField(_("personal data mapping"), default=dict, blank=True)
    legal_hold = models.BooleanField(
        _("legal hold"), default=False,
        help_text=_("Sessions under legal hold are skipped by the retention purge."),
    )
    # Keyed hashes of the words of the title and of the redacted messages (chat.search),
    # space-separated: the owner's search matches them without decrypting anything, and
    # equal words hash differently for different users. Deleted with the session.
    search_tokens = models.TextField(_("search tokens"), default="", blank=True, editable=False)

    class Meta:
        verbose_name = _("chat session")
        verbose_name_plural = _("chat sessions")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["status", "expires_at"]),
            # The retention purge takes the oldest sessions first, batch after batch.
            models.Index(fields=["last_activity_at"], name="chat_session_last_activity"),
        ]

    def __str__(self) -> str:
        return _("Session of %(person)s on %(date)s (%(ref)s)") % {
            "person": person_short_name(self.user), "date": short_date(self.created_at),
            "ref": str(self.id)[:8]}

    def is_expired(self, now=None) -> bool:
        now = now or timezone.now()
        return self.status == self.Status.EXPIRED or (
            self.status == self.Status.ACTIVE and self.expires_at <= now
        )


class ChatMessage(models.Model):
    class Role(models.TextChoices):
        USER = "user", _("user")
        ASSISTANT = "assistant", _("assistant")

    class Rating(models.TextChoices):
        UP = "up", _("helpful")
        DOWN = "down", _("not helpful")

    class Status(models.TextChoices):
        COMPLETE = "complete", _("complete")
        STREAMING = "streaming", _("streaming")
        STOPPED = "stopped", _("stopped")
        FAILED = "failed", _("failed")

    id = models.UUIDField(_("identifier"), primary_key=True, default=uuid.uuid4,
                          editable=False)
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages",
                                verbose_name=_("chat session"))
    role = models.CharField(_("author"), max_length=10, choices=Role.choices)
    # What the clinician typed (user) or sees (assistant, re-identified).
    content = EncryptedTextField(_("text"), blank=True, default="")
    # What left for the provider (user) or came back from it (assistant): placeholders only.
    redacted_content = EncryptedTextField(_("redacted text"), blank=True, default="")
    client_id = models.UUIDField(_("client identifier"), null=True, blank=True)
    # No database-level constraint on the two relations that point at messages (this
    # one and ProviderAttempt.message): PostgreSQL checks a foreign key with a trigger
    # per deleted row, which tripled the retention purge's time. Rows are only ever
    # deleted together with their session (purge, erasure: attempts and messages in one
    # transaction) or through the ORM, whose CASCADE still applies; the message's own
    # link to its session keeps its constraint.
    reply_to = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="reply",
        db_constraint=False, verbose_name=_("in reply to"),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.COMPLETE)
    error_code = models.CharField(_("error code"), max_length=40, blank=True, default="")
    pii_counts = models.JSONField(_("personal data found"), default=dict, blank=True)
    provider = models.CharField(_("AI provider"), max_length=20, blank=True, default="")
    model = models.CharField(_("AI model"), max_length=100, blank=True, default="")
    input_tokens = models.PositiveIntegerField(_("input tokens"), default=0)
    output_tokens = models.PositiveIntegerField(_("output tokens"), default=0)
    tokens_estimated = models.BooleanField(_("tokens estimated"), default=False)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(_("first token (ms)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False,
                                      db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # The clinician's rating of an answer. Kept on the message, not in a table of its
    # own, so that retention and erasure remove it with the answer it rates.
    feedback_rating = models.CharField(
        _("rating"), max_length=4, choices=Rating.choices, blank=True, default=""
    )
    # Free text typed by the clinician: may name a patient, so encrypted.
    feedback_comment = EncryptedTextField(_("comment"), blank=True, default="")
    feedback_at = models.DateTimeField(_("rated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("chat message")
        verbose_name_plural = _("chat messages")
        ordering = ["created_at"]
        # Officers read decrypted text in the admin with it (compliance.roles).
        permissions = [("view_message_content", "Can read decrypted chat message text")]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "client_id"],
                condition=models.Q(role="user", client_id__isnull=False),
                name="chat_message_unique_client_id",
            )
        ]
        indexes = [models.Index(fields=["session", "created_at"])]

    def __str__(self) -> str:
        return _("%(role)s message of %(when)s") % {
            "role": self.get_role_display(), "when": short_datetime(self.created_at)}


class ProviderAttempt(models.Model):
    """One call to one provider for one answer: the evidence of where text went."""

    # No database-level constraint: see ChatMessage.reply_to.
    message = models.ForeignKey(ChatMessage, on_delete=models.CASCADE, related_name="attempts",
                                db_constraint=False, verbose_name=_("chat message"))
    provider = models.CharField(_("AI provider"), max_length=20)
    model = models.CharField(_("AI model"), max_length=100)
    outcome = models.CharField(_("outcome"), max_length=30)
    error_code = models.CharField(_("error code"), max_length=40, blank=True, default="")
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), default=0)
    first_token_ms = models.PositiveIntegerField(_("first token (ms)"), null=True, blank=True)
    input_tokens = models.PositiveIntegerField(_("input tokens"), default=0)
    output_tokens = models.PositiveIntegerField(_("output tokens"), default=0)
    tokens_estimated = models.BooleanField(_("tokens estimated"), default=False)
    cost_usd = models.DecimalField(_("cost (USD)"), max_digits=12, decimal_places=6,
                                   default=0)

    class Meta:
        verbose_name = _("provider attempt")
        verbose_name_plural = _("provider attempts")
        ordering = ["started_at"]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}: {self.get_outcome_display()}"

    def get_outcome_display(self) -> str:
        return str(OUTCOME_LABELS.get(self.outcome, self.outcome))


# Outcomes of a provider attempt (chat.providers.base.AttemptRecord), as officers read them.
OUTCOME_LABELS = {
    "success": _("success"),
    "error": _("error"),
    "cancelled": _("cancelled"),
    "skipped_open_circuit": _("skipped (provider circuit open)"),
}


class MessageFeedback(ChatMessage):
    """Rated answers, for the officers' list in the admin (same rows as ChatMessage)."""

    class Meta:
        proxy = True
        verbose_name = _("answer feedback")
        verbose_name_plural = _("answer feedback")
