"""One JSON error shape for the whole API: {"code": "...", "detail": "..."}.

Every `NeonProError` (the chat's, consent's, data-subject requests') is rendered
here, with its status and `Retry-After`.

Outages of the database or Redis get the same treatment everywhere: DRF views
through `exception_handler`, every other Django view (admin, web pages) and the
middleware stack through `ServiceUnavailableMiddleware`. The client sees a 503
`service_unavailable` with `Retry-After`, never a traceback; the failure is
counted and logged by type only (driver messages can quote values).
"""

from __future__ import annotations

import logging
import sys

import redis.exceptions
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from monitoring import metrics
from neonpro.errors import NeonProError
from neonpro.middleware import HybridMiddleware

logger = logging.getLogger(__name__)

# Seconds a client should wait before retrying after an outage answer.
SERVICE_UNAVAILABLE_RETRY_AFTER = 5

_DATABASE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
_REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
try:  # the Celery broker (Redis) refusing a task that a request enqueues
    from kombu.exceptions import OperationalError as BrokerError

    _REDIS_ERRORS += (BrokerError,)
except ImportError:  # pragma: no cover - kombu comes with celery
    pass

_CODE_BY_DRF_CLASS = [
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "not_authenticated"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "rate_limited"),
    (exceptions.ParseError, "invalid"),
    (exceptions.ValidationError, "invalid"),
]


# --- Outages ------------------------------------------------------------------------


def outage_dependency(exc: BaseException) -> str | None:
    """"database" or "redis" when `exc` means that dependency is unreachable, else None."""
    if isinstance(exc, _DATABASE_ERRORS):
        return "database"
    if isinstance(exc, _REDIS_ERRORS):
        return "redis"
    return None


def outage_error(exc: BaseException) -> NeonProError:
    """The client-facing error for an outage of the database or Redis (counted, logged)."""
    dependency = outage_dependency(exc) or "unknown"
    if dependency == "database":
        metrics.DB_CONNECTION_FAILURES.inc()
    metrics.ERRORS.labels(type="service_unavailable").inc()
    logger.warning("dependency unavailable", extra={
        "event": "service_unavailable",
        "metadata": {"dependency": dependency, "error": type(exc).__name__},
    })
    return NeonProError(
        "service_unavailable",
        "The service is temporarily unavailable; nothing was lost. Try again shortly.",
        retry_after=SERVICE_UNAVAILABLE_RETRY_AFTER,
    )


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "json" in request.headers.get("Accept", "")


def service_unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """503 for any Django view: JSON for API clients, a short page for browsers."""
    error = outage_error(exc)
    if _wants_json(request):
        response: HttpResponse = JsonResponse(error.as_body(), status=503)
    else:
        title = escape(_("Service temporarily unavailable"))
        text = escape(_("NeonPro cannot reach one of its services right now. Nothing you "
                        "sent was lost. Please try again in a few seconds."))
        response = HttpResponse(
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>{text}</p></body></html>",
            status=503, content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = str(SERVICE_UNAVAILABLE_RETRY_AFTER)
    response["Cache-Control"] = "no-store"
    return response


def _remember_outage(sender, request=None, **kwargs) -> None:
    """Exceptions from middleware never reach process_exception: note them for __call__."""
    exc = sys.exc_info()[1]
    if request is not None and exc is not None and outage_dependency(exc):
        request._service_outage = exc


got_request_exception.connect(_remember_outage, dispatch_uid="neonpro-service-outage")


class ServiceUnavailableMiddleware(HybridMiddleware):
    """A database or Redis outage anywhere below this middleware becomes a clean 503.

    Views raise into `process_exception`; anything else (session or auth
    middleware, response phases) has already been turned into a 500 by Django,
    which this middleware replaces on the way out.
    """

    def finish(self, request: HttpRequest, response: HttpResponse, started) -> HttpResponse:
        outage = getattr(request, "_service_outage", None)
        if outage is not None and response.status_code >= 500:
            return service_unavailable_response(request, outage)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception):
        if outage_dependency(exception):
            return service_unavailable_response(request, exception)
        return None


# --- DRF ----------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """The error shape, for the OpenAPI schema."""

    code = serializers.CharField()
    detail = serializers.CharField()


def error_response(exc: NeonProError) -> Response:
    response = Response(exc.as_body(), status=exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, NeonProError):
        return error_response(exc)
    if outage_dependency(exc):
        return error_response(outage_error(exc))
    if isinstance(exc, RequestDataTooBig):
        return error_response(NeonProError(
            "message_too_long",
            f"Request bodies are limited to {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _CODE_BY_DRF_CLASS if isinstance(exc, cls)), "error")
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        code = "not_authenticated"
    response.data = {"code": code, "detail": _flatten(getattr(exc, "detail", str(exc)))}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(max(1, int(exc.wait)))
    return response


# --- Error pages (URLconf handlers) -------------------------------------------------


def _page_handler(status_code: int, code: str, detail: str, default_view):
    def handler(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse({"code": code, "detail": detail}, status=status_code)
        if exception is None:
            return default_view(request)
        return default_view(request, exception)

    return handler


def _default_404(request, exception=None):
    from django.views import defaults

    return defaults.page_not_found(request, exception)


def _default_500(request):
    from django.views import defaults

    return defaults.server_error(request)


def _default_400(request, exception=None):
    from django.views import defaults

    return defaults.bad_request(request, exception)


def _default_403(request, exception=None):
    from django.views import defaults

    return defaults.permission_denied(request, exception)


# API clients get the JSON error shape even for URLs no view matched, and for
# failures no handler caught; browsers keep the HTML pages.
bad_request = _page_handler(400, "invalid", "Bad request.", _default_400)
permission_denied = _page_handler(403, "permission_denied", "Permission denied.",
                                  _default_403)
page_not_found = _page_handler(404, "not_found", "Not found.", _default_404)
server_error = _page_handler(500, "error", "Internal error; the team has been notified.",
                             _default_500)
