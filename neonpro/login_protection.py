"""Brute-force protection for every door that signs someone in.

The web login form, the admin login and `POST /api/v1/auth/token/` all go
through `django.contrib.auth.authenticate()`, so the protection hooks in there:

- `LockoutBackend` (Django's ModelBackend, the only authentication backend)
  refuses a locked-out username or client address before any password is
  checked;
- the `user_login_failed` receiver counts each failure per username and per
  address in the cache (Redis: shared by every web process), in a window that
  opens at the first failure (LOGIN_FAILURE_WINDOW);
- reaching LOGIN_FAILURE_LIMIT_PER_USERNAME or LOGIN_FAILURE_LIMIT_PER_IP locks
  that username or address until the window ends, and records a
  `login_locked_out` audit event;
- a successful sign-in clears its username's failures.

Locked-out answers: 429 `rate_limited` with `Retry-After` from the API
(`chat.auth_views.TokenObtainView`, through `lockout_error`), and the sign-in
form again with a clear message, status 429 and `Retry-After` from the web and
admin forms (`LoginLockoutMiddleware`). The lock-out's audit event is recorded
by compliance, which listens to `sign_in_locked_out`.
Failures for unknown usernames count too, so the lock-out reveals nothing about
which accounts exist. Usernames and addresses are only ever kept as keyed
hashes: never in a cache key, a log line, a metric label or the audit trail.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.dispatch import Signal, receiver
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from monitoring import metrics
from neonpro.client_address import request_client_ip
from neonpro.errors import NeonProError
from neonpro.middleware import HybridMiddleware
from neonpro.ratelimit import (
    rate_limit_hit,
    window_count_clear,
    window_count_get,
    window_count_hit,
)

logger = logging.getLogger(__name__)

USERNAME_SCOPE = "login-fail-user"
IP_SCOPE = "login-fail-ip"
LOCKED_OUT_EVENT = "login_locked_out"

# Sent when a username or an address gets locked out, with `subject_user_id` (the
# account, when a username is locked) and `metadata` (scope, failures, door, window,
# the address's keyed hash): the compliance app records it in the audit trail, in the
# same call, so a lock-out that cannot be recorded fails the sign-in like before.
sign_in_locked_out = Signal()


@dataclass(frozen=True)
class Lockout:
    """What is locked ("username" or "ip") and for how many more seconds."""

    scope: str
    retry_after: int


# --- Keys, doors and addresses -----------------------------------------------------------


def _digest(value: str) -> str:
    """A keyed hash: stable across processes, useless without SECRET_KEY."""
    return hmac.new(settings.SECRET_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def _username_key(username: str) -> str:
    return _digest("user:" + username.strip().casefold())


def _ip_key(ip: str) -> str:
    return _digest("ip:" + ip)


def _http_request(request: Any) -> HttpRequest | None:
    """The Django request behind a DRF Request (flags must live on one object)."""
    if request is None:
        return None
    return getattr(request, "_request", request)


def client_ip(request: Any) -> str | None:
    """The client's address, behind trusted proxies only (neonpro.client_address)."""
    if request is None:
        return None
    return request_client_ip(request)


def _door(request: Any) -> str:
    http_request = _http_request(request)
    path = getattr(http_request, "path", "") or ""
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith("/api/"):
        return "api"
    return "web"


# --- Counting ----------------------------------------------------------------------------


def lockout_status(*, username: str | None, ip: str | None) -> Lockout | None:
    """The lock-out in force for this username or address, if any."""
    if username:
        count, left = window_count_get(scope=USERNAME_SCOPE, key=_username_key(username))
        if count >= settings.LOGIN_FAILURE_LIMIT_PER_USERNAME:
            return Lockout("username", left)
    if ip:
        count, left = window_count_get(scope=IP_SCOPE, key=_ip_key(ip))
        if count >= settings.LOGIN_FAILURE_LIMIT_PER_IP:
            return Lockout("ip", left)
    return None


def _record_lockout(*, scope: str, failures: int, door: str, username: str | None,
                    ip: str | None) -> None:
    metrics.LOGIN_LOCKOUTS.labels(scope=scope).inc()
    subject_id = None
    metadata: dict[str, Any] = {"scope": scope, "failures": failures, "door": door,
                                "window_s": settings.LOGIN_FAILURE_WINDOW}
    if scope == "username" and username:
        subject_id = (get_user_model().objects.filter(username=username)
                      .values_list("pk", flat=True).first())
    elif ip:
        # Lets an investigator link lock-outs of one address without storing it.
        metadata["ip_hash"] = _ip_key(ip)[:16]
    sign_in_locked_out.send(sender=LockoutBackend, subject_user_id=subject_id,
                            metadata=metadata)
    logger.warning("sign-in locked out after repeated failures", extra={
        "event": LOCKED_OUT_EVENT, "metadata": {"scope": scope, "door": door}})


def login_failure_record(*, username: str | None, ip: str | None, door: str) -> Lockout | None:
    """Count one failed sign-in; returns the lock-out it started, if it started one."""
    metrics.LOGIN_FAILURES.labels(door=door, reason="invalid_credentials").inc()
    window = settings.LOGIN_FAILURE_WINDOW
    started = None
    if username:
        count, left = window_count_hit(scope=USERNAME_SCOPE, key=_username_key(username),
                                       window_s=window)
        if count == settings.LOGIN_FAILURE_LIMIT_PER_USERNAME:
            _record_lockout(scope="username", failures=count, door=door, username=username,
                            ip=ip)
            started = Lockout("username", left)
    if ip:
        count, left = window_count_hit(scope=IP_SCOPE, key=_ip_key(ip), window_s=window)
        if count == settings.LOGIN_FAILURE_LIMIT_PER_IP:
            _record_lockout(scope="ip", failures=count, door=door, username=username, ip=ip)
            started = started or Lockout("ip", left)
    return started


def login_success_record(*, username: str | None) -> None:
    """A successful sign-in clears its username's failures (the address keeps its count)."""
    if username:
        window_count_clear(scope=USERNAME_SCOPE, key=_username_key(username))


def _flag(request: Any, lockout: Lockout) -> None:
    http_request = _http_request(request)
    if http_request is not None:
        http_request.login_lockout = lockout


def request_lockout(request: Any) -> Lockout | None:
    """The lock-out met by this request's sign-in attempt, if any."""
    return getattr(_http_request(request), "login_lockout", None)


def lockout_message(lockout: Lockout) -> str:
    minutes = max(1, math.ceil(lockout.retry_after / 60))
    return ngettext(
        "Too many failed sign-in attempts. For your security, signing in is blocked "
        "for %(minutes)s minute.",
        "Too many failed sign-in attempts. For your security, signing in is blocked "
        "for %(minutes)s minutes.",
        minutes,
    ) % {"minutes": minutes}


# --- authenticate() hooks ---------------------------------------------------------------


class LockoutBackend(ModelBackend):
    """Django's ModelBackend that refuses a locked-out username or address first.

    No password is checked while locked out. Raising PermissionDenied makes
    `authenticate()` stop at once and send `user_login_failed`; the flag on the
    request tells the receiver not to count it again and tells the views to
    answer 429. Everything else (sessions, permissions) is ModelBackend's.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        lockout = lockout_status(username=username if isinstance(username, str) else None,
                                 ip=client_ip(request))
        if lockout is not None:
            _flag(request, lockout)
            metrics.LOGIN_FAILURES.labels(door=_door(request), reason="locked_out").inc()
            raise PermissionDenied("sign-in locked out")
        return super().authenticate(request, username=username, password=password, **kwargs)


@receiver(user_login_failed, dispatch_uid="neonpro-login-failed")
def _on_login_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    if request_lockout(request) is not None:
        return  # refused by LockoutBackend: already counted when the lock started
    username = credentials.get(get_user_model().USERNAME_FIELD)
    started = login_failure_record(
        username=username if isinstance(username, str) else None,
        ip=client_ip(request), door=_door(request),
    )
    if started is not None:
        _flag(request, started)


@receiver(user_logged_in, dispatch_uid="neonpro-logged-in")
def _on_logged_in(sender, request=None, user=None, **kwargs) -> None:
    if user is not None:
        login_success_record(username=user.get_username())


# --- Web and admin forms ----------------------------------------------------------------


class LoginLockoutMiddleware(HybridMiddleware):
    """Shows a locked-out sign-in as such: the form's message, 429 and Retry-After.

    Both login views (web and admin) answer an invalid form with a
    TemplateResponse, so the form is still there to carry the message.
    """

    def process_template_response(self, request, response):
        lockout = request_lockout(request)
        if lockout is None:
            return response
        form = (response.context_data or {}).get("form")
        if form is not None and hasattr(form, "error_class"):
            form._errors = form._errors or {}
            form._errors[NON_FIELD_ERRORS] = form.error_class(
                [lockout_message(lockout)], error_class="nonfield")
        response.status_code = 429
        response["Retry-After"] = str(lockout.retry_after)
        return response


# --- API token requests -----------------------------------------------------------------


def limit_token_requests(request: Any) -> None:
    """AUTH_RATE_LIMIT_PER_IP token requests per address per minute (obtain and refresh)."""
    ip = client_ip(request)
    if not ip or not settings.AUTH_RATE_LIMIT_PER_IP:
        return
    retry_after = rate_limit_hit(scope="auth-ip", key=_ip_key(ip),
                                 limit=settings.AUTH_RATE_LIMIT_PER_IP, window_ms=60_000)
    if retry_after is not None:
        raise NeonProError("rate_limited", _("Too many requests; try again in %(seconds)s s.")
                           % {"seconds": retry_after}, retry_after=retry_after)


def lockout_error(lockout: Lockout) -> NeonProError:
    """The API's answer to a locked-out sign-in: 429 `rate_limited` with Retry-After."""
    return NeonProError("rate_limited", lockout_message(lockout),
                        retry_after=lockout.retry_after)


def hide_refresh_tokens_from_admin() -> None:
    """Unregister simplejwt's token admin: outstanding refresh tokens are live credentials.

    Its pages show each refresh token in full, which would let anyone with admin
    access act as any API user. Revoking access is done by deactivating the user.
    Called from neonpro's ready(), after the admin has discovered the models.
    """
    for model in (OutstandingToken, BlacklistedToken):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
