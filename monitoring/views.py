"""Operations endpoints: health reports, orchestrator probes and Prometheus metrics.

Who sees details
----------------
``/api/health`` and ``/api/v1/ai-chat/health`` always answer with the status
(and HTTP 503 when unhealthy / unavailable); the full report, and
``/api/metrics`` at all, need one of:

- ``Authorization: Bearer <MONITORING_TOKEN>`` when a token is configured;
- a signed-in staff user or member of the "Operations" group (Django session).

``DEBUG`` opens nothing: the details name the database, the providers and the
traffic, and a development machine is reachable by others too. Local runs get a
token generated on first start (``ensure_monitoring_token``, printed with the
demo passwords). Without a token only staff / Operations sessions get details.
Everyone else gets ``{status, timestamp, version}`` from the health reports and
401 from ``/api/metrics``.

``/api/health/live`` (the process answers; no dependency is touched) and
``/api/health/ready`` (database and cache reachable, else 503) are open: they
reveal nothing but up or down. ``MONITORING_ENABLED=false`` turns
``/api/metrics`` off (404); the health endpoints stay, orchestrators need them.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from monitoring import collectors, health
from neonpro.blocking import run_blocking

OPERATIONS_GROUP = "Operations"


def _bearer_matches(request: HttpRequest) -> bool:
    token = settings.MONITORING_TOKEN
    header = request.headers.get("Authorization", "")
    if not token or header[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def _user_may_see(user) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_staff or user.groups.filter(name=OPERATIONS_GROUP).exists()


def may_see_details(request: HttpRequest) -> bool:
    """The access rule of the module docstring (sync views)."""
    if _bearer_matches(request):
        return True
    return _user_may_see(getattr(request, "user", None))


async def amay_see_details(request: HttpRequest) -> bool:
    """The access rule of the module docstring (async views)."""
    if _bearer_matches(request):
        return True
    if not hasattr(request, "auser"):
        return False
    user = await request.auser()
    return await run_blocking(_user_may_see, user)


def _json(body: dict, status: int) -> JsonResponse:
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


@never_cache
@require_GET
async def system_health(request: HttpRequest) -> JsonResponse:
    """GET /api/health — the system report of `docs/contract/deployment.md`."""
    body, status = await health.system_health(details=await amay_see_details(request))
    return _json(body, status)


@never_cache
@require_GET
async def ai_chat_health(request: HttpRequest) -> JsonResponse:
    """GET /api/v1/ai-chat/health — sessions, providers, compliance and performance."""
    body, status = await health.ai_chat_health(details=await amay_see_details(request))
    return _json(body, status)


@never_cache
@require_GET
async def liveness(request: HttpRequest) -> JsonResponse:
    """GET /api/health/live — the process is up and serving; no dependency is checked."""
    return _json({"status": "ok", "timestamp": health._now_iso(),
                  "version": settings.APP_VERSION}, 200)


@never_cache
@require_GET
async def readiness(request: HttpRequest) -> JsonResponse:
    """GET /api/health/ready — database and cache reachable (503 otherwise)."""
    body, status = await health.readiness()
    return _json(body, status)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """GET /api/metrics — Prometheus text format 0.0.4 (see monitoring.collectors).

    The classic text format, which every Prometheus version reads; names are
    plain ASCII, so the newer format would carry the same bytes.
    """
    if not settings.MONITORING_ENABLED:
        raise Http404("Monitoring is disabled.")
    if not may_see_details(request):
        response = HttpResponse("Authentication required.\n", status=401,
                                content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(collectors.scrape_registry()),
                        content_type=CONTENT_TYPE_PLAIN_0_0_4)
