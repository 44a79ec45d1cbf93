"""Compliance records (LGPD): consent evidence, terms versions, the audit trail
of business events and data-subject requests."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from clinics.people import person_short_name, short_date, short_datetime

# LGPD Art. 19 II: a complete answer to an access request within 15 days of receipt.
DSR_RESPONSE_DAYS = 15


class ConsentRecord(models.Model):
    class Purpose(models.TextChoices):
        AI_CHAT = "ai_chat", _("AI chat assistant")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="consent_records",
        verbose_name=_("data subject"),
    )
    purpose = models.CharField(_("purpose"), max_length=40, choices=Purpose.choices)
    terms_version = models.CharField(_("terms version"), max_length=40)
    granted_at = models.DateTimeField(_("granted at"), default=timezone.now)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser (user agent)"), max_length=400, blank=True,
                                  default="")

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["user", "purpose", "revoked_at"])]

    def __str__(self) -> str:
        return _("Consent of %(person)s (terms %(version)s), given on %(date)s") % {
            "person": person_short_name(self.user), "version": self.terms_version,
            "date": short_date(self.granted_at)}

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
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

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
        PII_REVEALED = "pii_revealed", _("personal data revealed to an officer")
        AUDIT_CHAIN_VERIFIED = "audit_chain_verified", _("audit chain verified")
        AUDIT_TRAIL_EXPORTED = "audit_trail_exported", _("audit trail exported")
        INCIDENT_RECORDED = "incident_recorded", _("security incident recorded")
        INCIDENT_UPDATED = "incident_updated", _("security incident updated")
        INCIDENT_NOTIFIED = "incident_notified", _("security incident notification sent")
        INCIDENT_CLOSED = "incident_closed", _("security incident closed")
        SESSION_RENAMED = "session_renamed", _("session renamed")
        FEEDBACK_GIVEN = "feedback_given", _("answer feedback given")
        ENCRYPTION_KEYS_ROTATED = "encryption_keys_rotated", _("stored data re-encrypted")

    id = models.BigIntegerField(_("number"), primary_key=True)
    created_at = models.DateTimeField(_("recorded at"), db_index=True)
    event_type = models.CharField(_("event"), max_length=40, choices=EventType.choices,
                                  db_index=True)
    actor_id = models.BigIntegerField(_("performed by"), null=True, blank=True, db_index=True)
    subject_user_id = models.BigIntegerField(_("data subject"), null=True, blank=True,
                                             db_index=True)
    clinic_id = models.BigIntegerField(_("clinic"), null=True, blank=True, db_index=True)
    session_id = models.UUIDField(_("chat session"), null=True, blank=True, db_index=True)
    metadata = models.JSONField(_("details (codes and counts)"), default=dict, blank=True)
    prev_hash = models.CharField(_("previous event's hash"), max_length=64)
    hash = models.CharField(_("hash (SHA-256)"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-id"]

    def __str__(self) -> str:
        return _("Event no. %(id)s: %(event)s (%(when)s)") % {
            "id": self.id, "event": self.get_event_type_display(),
            "when": short_datetime(self.created_at)}


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
        return _("%(kind)s request from %(person)s — received on %(received)s, due "
                 "%(due)s") % {
            "kind": self.short_kind(), "person": person_short_name(self.user),
            "received": short_date(self.received_at), "due": short_date(self.due_at)}

    def save(self, *args, **kwargs) -> None:
        if self.due_at is None:
            self.due_at = self.received_at + timedelta(days=DSR_RESPONSE_DAYS)
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def short_kind(self) -> str:
        """The type as a noun that fits in a sentence ("access", not the article)."""
        return str(_SHORT_KINDS.get(self.request_type, self.request_type))

    def is_overdue(self, now=None) -> bool:
        return self.is_open and self.due_at < (now or timezone.now())


_SHORT_KINDS = {
    DataSubjectRequest.RequestType.ACCESS: pgettext_lazy("request kind", "access"),
    DataSubjectRequest.RequestType.CORRECTION: pgettext_lazy("request kind", "correction"),
    DataSubjectRequest.RequestType.DELETION: pgettext_lazy("request kind", "deletion"),
    DataSubjectRequest.RequestType.CONSENT_REVOCATION:
        pgettext_lazy("request kind", "consent revocation"),
    DataSubjectRequest.RequestType.SHARING_INFO:
        pgettext_lazy("request kind", "sharing information"),
}


class SecurityIncident(models.Model):
    """A security incident involving personal data (LGPD Art. 48; Resolução CD/ANPD 15/2024).

    Every incident is recorded, notified or not, and kept as evidence: once closed
    it is read-only. `notification_due_at` is the end of the third business day
    (Brazil's national holidays excluded) after the controller learnt of it.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft (to be completed)")
        OPEN = "open", _("open, being assessed")
        NOTIFIED = "notified", _("notified")
        CLOSED = "closed", _("closed")

    class Source(models.TextChoices):
        OFFICER = "officer", _("recorded by an officer")
        CHAIN_VERIFICATION = "chain_verification", _("failed audit chain verification")

    OPEN_STATUSES = (Status.DRAFT, Status.OPEN, Status.NOTIFIED)

    title = models.CharField(_("what happened"), max_length=200,
                             help_text=_("A short description, without personal data."))
    description = models.TextField(_("description"), blank=True, default="")
    became_known_at = models.DateTimeField(
        _("became known at"), help_text=_("When the controller learnt that the incident "
                                           "affected personal data: the deadline runs from "
                                           "here."))
    occurred_at = models.DateTimeField(_("occurred at"), null=True, blank=True)
    data_categories = models.TextField(
        _("categories of personal data"), blank=True, default="",
        help_text=_("For example: health data in chat messages, names, CPF, e-mail."))
    subjects_affected = models.PositiveIntegerField(_("people affected"), null=True, blank=True)
    measures = models.TextField(_("measures taken"), blank=True, default="")
    risk_relevant = models.BooleanField(
        _("may cause relevant risk or damage"), default=True,
        help_text=_("If so, the ANPD and the people affected must be told within 3 business "
                    "days."))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices,
                              default=Status.OPEN)
    source = models.CharField(_("source"), max_length=30, choices=Source.choices,
                              default=Source.OFFICER, editable=False)
    notification_due_at = models.DateTimeField(_("notification due at"), editable=False,
                                               db_index=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("recorded by"), editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("security incident")
        verbose_name_plural = _("security incidents")
        ordering = ["-became_known_at"]

    def __str__(self) -> str:
        return _("Incident no. %(id)s: %(title)s (known on %(known)s)") % {
            "id": self.pk, "title": self.title, "known": short_date(self.became_known_at)}

    @property
    def is_closed(self) -> bool:
        return self.status == self.Status.CLOSED


class IncidentNotification(models.Model):
    """A communication about an incident: to the ANPD, the people affected or a clinic."""

    class Recipient(models.TextChoices):
        ANPD = "anpd", _("ANPD")
        SUBJECTS = "subjects", _("people affected")
        CONTROLLER = "controller", _("clinic (controller)")

    incident = models.ForeignKey(SecurityIncident, on_delete=models.PROTECT,
                                 related_name="notifications", verbose_name=_("incident"))
    recipient = models.CharField(_("recipient"), max_length=20, choices=Recipient.choices)
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)
    reference = models.CharField(_("protocol or reference"), max_length=100, blank=True,
                                 default="")
    summary = models.TextField(_("what was communicated"), blank=True, default="")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("recorded by"), editable=False)

    class Meta:
        verbose_name = _("incident notification")
        verbose_name_plural = _("incident notifications")
        ordering = ["sent_at"]

    def __str__(self) -> str:
        return _("Notification to %(recipient)s on %(date)s") % {
            "recipient": self.get_recipient_display(), "date": short_date(self.sent_at)}
