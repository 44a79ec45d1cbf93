"""Compliance records (LGPD): consent evidence, terms versions, the audit trail
of business events and data-subject requests."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# LGPD Art. 19 II: a complete answer to an access request within 15 days of receipt.
DSR_RESPONSE_DAYS = 15


class ConsentRecord(models.Model):
    class Purpose(models.TextChoices):
        AI_CHAT = "ai_chat", _("AI chat assistant")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="consent_records"
    )
    purpose = models.CharField(max_length=40, choices=Purpose.choices)
    terms_version = models.CharField(max_length=40)
    granted_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True, default="")

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["user", "purpose", "revoked_at"])]

    def __str__(self) -> str:
        return f"consent {self.purpose} v{self.terms_version} user {self.user_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class TermsVersion(models.Model):
    """A version of the terms users consent to; the latest published one is current."""

    version = models.CharField(_("version"), max_length=40, unique=True)
    published_at = models.DateTimeField(
        _("published at"), db_index=True,
        help_text=_("From this moment the version is current and users must consent again."),
    )
    summary = models.CharField(_("summary"), max_length=500, blank=True, default="")
    text = models.TextField(_("text"), blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("terms version")
        verbose_name_plural = _("terms versions")
        ordering = ["-published_at", "-id"]

    def __str__(self) -> str:
        return self.version

    @property
    def is_published(self) -> bool:
        return self.published_at <= timezone.now()


class AuditEvent(models.Model):
    """One business event in the append-only, hash-chained audit trail.

    Ids are plain integers/UUIDs, not foreign keys: deleting or anonymising a
    user, clinic or session never cascades into the trail. `id` is assigned
    gap-free by `compliance.audit.record_event` while it holds the append lock,
    so a missing row shows as a gap as well as a broken link. `metadata` holds
    counts, codes and ids only, never personal data.
    """

    class EventType(models.TextChoices):
        SESSION_CREATED = "session_created", _("session created")
        SESSION_CLOSED = "session_closed", _("session closed")
        MESSAGE_PROCESSED = "message_processed", _("message processed")
        PII_DETECTED = "pii_detected", _("PII detected")
        PROVIDER_FAILOVER = "provider_failover", _("provider failover")
        CONSENT_GRANTED = "consent_granted", _("consent granted")
        CONSENT_REVOKED = "consent_revoked", _("consent revoked")
        TERMS_PUBLISHED = "terms_published", _("terms version published")
        ADMIN_VIEWED_SESSION = "admin_viewed_session", _("admin viewed session")
        DSR_CREATED = "dsr_created", _("data-subject request filed")
        DSR_STATUS_CHANGED = "dsr_status_changed", _("data-subject request status changed")
        DATA_EXPORTED = "data_exported", _("data exported")
        DATA_ERASED = "data_erased", _("data erased")
        RETENTION_PURGE = "retention_purge", _("retention purge")
        SESSION_RENAMED = "session_renamed", _("session renamed")
        FEEDBACK_GIVEN = "feedback_given", _("answer feedback given")

    id = models.BigIntegerField(primary_key=True)
    created_at = models.DateTimeField(db_index=True)
    event_type = models.CharField(max_length=40, choices=EventType.choices, db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    subject_user_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    clinic_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    session_id = models.UUIDField(null=True, blank=True, db_index=True)
    metadata = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.event_type}"


class DataSubjectRequest(models.Model):
    """A request by a data subject under LGPD Art. 18, tracked to its answer."""

    class RequestType(models.TextChoices):
        ACCESS = "access", _("access / portability (Art. 18 II, V)")
        CORRECTION = "correction", _("correction (Art. 18 III)")
        DELETION = "deletion", _("anonymisation / deletion (Art. 18 IV, VI)")
        CONSENT_REVOCATION = "consent_revocation", _("consent revocation (Art. 18 IX)")
        SHARING_INFO = "sharing_info", _("information about sharing (Art. 18 VII)")

    class Status(models.TextChoices):
        RECEIVED = "received", _("received")
        IN_PROGRESS = "in_progress", _("in progress")
        COMPLETED = "completed", _("completed")
        REJECTED = "rejected", _("rejected")

    OPEN_STATUSES = (Status.RECEIVED, Status.IN_PROGRESS)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
        related_name="data_subject_requests", verbose_name=_("data subject"),
    )
    request_type = models.CharField(_("type"), max_length=30, choices=RequestType.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.RECEIVED
    )
    # Free text from the subject; may contain personal data (kept out of audit diffs).
    details = models.TextField(_("details"), blank=True, default="")
    received_at = models.DateTimeField(_("received at"), default=timezone.now, db_index=True)
    due_at = models.DateTimeField(_("due at"), db_index=True, editable=False)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("handled by"),
    )
    resolution_note = models.TextField(_("resolution note"), blank=True, default="")

    class Meta:
        verbose_name = _("data-subject request")
        verbose_name_plural = _("data-subject requests")
        ordering = ["due_at"]
        indexes = [models.Index(fields=["status", "due_at"])]

    def __str__(self) -> str:
        return f"request #{self.pk} {self.request_type} user {self.user_id}"

    def save(self, *args, **kwargs) -> None:
        if self.due_at is None:
            self.due_at = self.received_at + timedelta(days=DSR_RESPONSE_DAYS)
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def is_overdue(self, now=None) -> bool:
        return self.is_open and self.due_at < (now or timezone.now())
