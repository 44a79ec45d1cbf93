"""The clinician web UI: thin views over compliance.services and chat.selectors.

The chat itself runs in the browser (static/chat/chat.js) against the REST API
and the WebSocket; these views render the pages, gate them on a clinic
membership and a current consent, and record consent with its evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from chat import selectors
from chat.errors import ChatError
from compliance import services as compliance_services
from compliance.api import client_ip
from compliance.models import ConsentRecord

_PURPOSE = ConsentRecord.Purpose.AI_CHAT

# The pages carry no inline script, style or event handler, so they can run
# under a strict policy: a message that smuggled markup in could not run it.
_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self' {websockets}; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def content_security_policy(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Send the UI's Content-Security-Policy with the view's response (unless one is set)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        host = request.get_host()
        # Older browsers do not count ws:/wss: as 'self'; name the page's own host.
        websockets = f"ws://{host} wss://{host}"
        response.headers.setdefault(
            "Content-Security-Policy", _CONTENT_SECURITY_POLICY.format(websockets=websockets)
        )
        return response

    return wrapped


def _clinic_of(user):
    """The user's clinic, or None for accounts without a membership (officers, ops)."""
    try:
        return user.clinic_membership.clinic
    except ObjectDoesNotExist:
        return None


def _needs_consent(user) -> bool:
    if not settings.CONSENT_VALIDATION_ENABLED:
        return False
    return compliance_services.consent_get_active(user=user, purpose=_PURPOSE) is None


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}"


def _ui_strings() -> dict[str, str]:
    """Every text the script shows, translated here so the script carries no language."""
    pii_one = ngettext(
        "%(count)s personal data item protected", "%(count)s personal data items protected", 1
    )
    pii_many = ngettext(
        "%(count)s personal data item protected", "%(count)s personal data items protected", 2
    )
    return {
        "you": _("You"),
        "assistant": _("Assistant"),
        "piiOne": pii_one,
        "piiMany": pii_many,
        "piiTitle": _("Personal data was replaced by markers before leaving NeonPro."),
        "streaming": _("Writing…"),
        "stopped": _("Answer stopped"),
        "failed": _("The assistant could not answer this message."),
        "notSent": _("Not sent"),
        "retry": _("Retry"),
        "newSession": _("New session"),
        "reviewConsent": _("Review consent"),
        "dismiss": _("Dismiss"),
        "untitled": _("Session of %(date)s"),
        "statusActive": pgettext("session status", "active"),
        "statusClosed": pgettext("session status", "closed"),
        "statusExpired": pgettext("session status", "expired"),
        "noSessions": _("No sessions yet. Start a new one."),
        "sessionEnded": _("This session has ended. Start a new session to keep chatting."),
        "sessionClosed": _("Session ended"),
        "appTitle": _("AI Assistant"),
        "startHint": _(
            "Write your question below to start a new session, or pick one from the list."
        ),
        "sessionMeta": _("Started %(created)s · last activity %(last)s"),
        "noResults": _("No session matches this search."),
        "rename": _("Rename"),
        "renameSession": _("Rename session “%(title)s”"),
        "delete": _("Delete"),
        "deleteSession": _("Delete session “%(title)s”"),
        "confirmDelete": _(
            "Delete the session “%(title)s” and its messages? This cannot be undone."
        ),
        "copy": _("Copy"),
        "copyCode": _("Copy code"),
        "copied": _("Copied!"),
        "copyFailed": _("Could not copy to the clipboard."),
        "regenerate": _("Regenerate"),
        "edit": _("Edit"),
        "helpful": _("Helpful answer"),
        "notHelpful": _("Unhelpful answer"),
        "feedbackComment": _("Comment (optional)"),
        "feedbackSend": _("Send comment"),
        "feedbackThanks": _("Thank you for the feedback."),
        "err_legal_hold": _("This session is under legal hold and cannot be deleted."),
        "endSession": _("End session"),
        "confirmEndSession": _(
            "End this session? You can still read it, but not send new messages in it."
        ),
        "connecting": _("Connecting…"),
        "reconnecting": _("Connection lost. Reconnecting…"),
        "connected": _("Connected"),
        "loadFailed": _("Could not load this session. Check your connection and try again."),
        "charCount": _("%(count)s of %(max)s characters"),
        "sessionNotFound": _("This session was not found."),
        "err_rate_limited": _(
            "You sent too many messages in a short time. You can try again in %(seconds)s s."
        ),
        "err_rate_limited_ready": _("You can send again now."),
        "err_session_expired": _(
            "This session has expired or was closed. Start a new session to continue."
        ),
        "err_provider_unavailable": _(
            "The AI service is unavailable right now. Your message was kept; you can retry it."
        ),
        "err_provider_error": _(
            "The AI service refused this request. "
            "Your message was kept; the team has been notified."
        ),
        "err_consent_required": _(
            "Your consent for the AI assistant is needed "
            "(it may have been revoked or the terms changed)."
        ),
        "err_message_too_long": _("The message is too long: the limit is %(max)s characters."),
        "err_content_filtered": _(
            "This message was blocked by the clinic's content policy and was not sent."
        ),
        "err_pii_redaction_failed": _(
            "For your patients' safety the message was not sent: "
            "its personal data could not be verified. "
            "Rephrase it and try again."
        ),
        "err_pii_blocked": _(
            "The clinic does not allow this personal data to be sent to the assistant "
            "(%(types)s). Remove it and try again."
        ),
        "err_capacity_exceeded": _(
            "The assistant is at full capacity. Try again in %(seconds)s s."
        ),
        "err_in_progress": _(
            "The previous answer is still being generated. Wait a moment and retry."
        ),
        "err_invalid": _("The message could not be understood. Please try again."),
        "err_not_found": _("This session was not found."),
        "err_no_clinic": _("Your account is not linked to a clinic."),
        "err_generic": _("Something went wrong. Your message was kept; try again shortly."),
        "err_network": _("No connection to the server. Check your network."),
    }


def _chat_page(request: HttpRequest, *, session_id: str | None) -> HttpResponse:
    if _clinic_of(request.user) is None:
        return render(request, "chat/no_clinic.html", status=403)
    if _needs_consent(request.user):
        return redirect(_with_next(reverse("chat-consent"), request.path))
    config: dict[str, Any] = {
        "sessionsUrl": reverse("chat-sessions"),
        "sessionUrlTemplate": reverse("chat-session", args=[_ZERO_UUID]),
        "closeUrlTemplate": reverse("chat-session-close", args=[_ZERO_UUID]),
        "messagesUrlTemplate": reverse("chat-session-messages", args=[_ZERO_UUID]),
        "feedbackUrlTemplate": reverse("chat-message-feedback", args=[_ZERO_UUID]),
        "exportUrlTemplate": reverse("chat-session-export", args=[_ZERO_UUID]),
        "pageUrlTemplate": reverse("chat-session-page", args=[_ZERO_UUID]),
        "homeUrl": reverse("chat-home"),
        "wsPathTemplate": f"/ws/ai-chat/{_ZERO_UUID}/",
        "consentUrl": reverse("chat-consent"),
        "loginUrl": reverse("login"),
        "placeholder": _ZERO_UUID,
        "maxChars": settings.AI_MAX_INPUT_CHARS,
        "idleTimeoutSeconds": settings.AI_SESSION_IDLE_TIMEOUT,
        "timeZone": settings.TIME_ZONE,
        "locale": "pt-BR",
        "initialSessionId": session_id,
        "strings": _ui_strings(),
    }
    return render(request, "chat/chat.html", {"chat_config": config})


_ZERO_UUID = "00000000-0000-0000-0000-000000000000"


@content_security_policy
@login_required
@require_safe
def chat_home(request: HttpRequest) -> HttpResponse:
    """The chat page: the clinician's sessions and the conversation pane."""
    return _chat_page(request, session_id=None)


@content_security_policy
@login_required
@require_safe
def chat_session_page(request: HttpRequest, session_id) -> HttpResponse:
    """The chat page opened on one of the clinician's own sessions (404 for anyone else's)."""
    try:
        session = selectors.session_get_for_user(user=request.user, session_id=session_id)
    except ChatError:
        return render(request, "chat/not_found.html", status=404)
    return _chat_page(request, session_id=str(session.id))


@content_security_policy
@login_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest) -> HttpResponse:
    """The terms of the AI assistant and the clinician's acceptance (LGPD Art. 7/8)."""
    next_url = _safe_next(request, reverse("chat-home"))
    if request.method == "POST":
        if request.POST.get("accept") != "yes":
            messages.error(request, _("Tick the box to confirm you read the terms."))
            return redirect(_with_next(reverse("chat-consent"), next_url))
        compliance_services.consent_grant(
            user=request.user,
            purpose=_PURPOSE,
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        messages.success(request, _("Thank you. Your consent was recorded."))
        return redirect(next_url)
    active = compliance_services.consent_get_active(user=request.user, purpose=_PURPOSE)
    return render(
        request,
        "chat/consent.html",
        {
            "active_consent": active,
            "terms_version": compliance_services.current_terms_version(),
            "retention_days": settings.DATA_RETENTION_DAYS,
            "next_url": next_url,
            "has_clinic": _clinic_of(request.user) is not None,
        },
    )


@login_required
@require_POST
def consent_revoke(request: HttpRequest) -> HttpResponse:
    """Withdraw consent; the clinician's open sessions are closed by the service."""
    revoked = compliance_services.consent_revoke(user=request.user, purpose=_PURPOSE)
    if revoked:
        messages.success(
            request,
            _(
                "Your consent was revoked and your open sessions were "
                "closed. The assistant stays unavailable until you "
                "accept the terms again."
            ),
        )
    else:
        messages.info(request, _("There was no active consent to revoke."))
    return redirect("chat-privacy")


@content_security_policy
@login_required
@require_safe
def privacy(request: HttpRequest) -> HttpResponse:
    """The clinician's privacy settings: consent status, history, revocation, own data."""
    records = ConsentRecord.objects.filter(user=request.user, purpose=_PURPOSE)[:20]
    return render(
        request,
        "chat/privacy.html",
        {
            "active_consent": compliance_services.consent_get_active(
                user=request.user, purpose=_PURPOSE
            ),
            "records": records,
            "terms_version": compliance_services.current_terms_version(),
            "retention_days": settings.DATA_RETENTION_DAYS,
            "has_clinic": _clinic_of(request.user) is not None,
        },
    )
