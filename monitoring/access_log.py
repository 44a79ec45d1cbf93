"""The web process's access log: one JSON line per HTTP request and per WebSocket.

daphne's own access log was plain text, outside the JSON format, with raw query
strings: an officer's admin search (`?q=<CPF>`, `?q=<full name>`) went to the log
verbatim. This log replaces it (neonpro.server turns daphne's off). Each line
goes through the same logging pipeline as every other (monitoring.logging), and
the query string is URL-decoded first, so the redactor sees the CPF or the name
as typed rather than percent-encoded, and replaces it as it does in messages.

The client's address is never written: only a keyed hash of it (linking lines of
one client without naming it), from the address neonpro.client_address settled.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from neonpro import tracing
from neonpro.client_address import scope_client_ip

logger = logging.getLogger("neonpro.access")

HTTP_EVENT = "http_request"
WEBSOCKET_EVENT = "websocket_connection"


def client_hash(ip: str | None) -> str | None:
    """A keyed hash of the client's address: stable across processes, not reversible."""
    if not ip:
        return None
    from django.conf import settings

    return hmac.new(settings.SECRET_KEY.encode(), f"client:{ip}".encode(),
                    hashlib.sha256).hexdigest()[:16]


def readable_query(query: str) -> str:
    """The query string decoded (`+` and `%XX`), so redaction sees what was typed."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return query
    return "&".join(f"{key}={value}" for key, value in pairs)


def log_http_request(*, method: str, path: str, query: str, status: int, size: int,
                     duration_ms: float, client_ip: str | None, trace_id: str | None,
                     extra: dict[str, Any] | None = None) -> None:
    """Write one access-log line (redaction happens in the logging filter)."""
    metadata: dict[str, Any] = {"method": method, "path": path,
                                "query": readable_query(query), "status": status,
                                "bytes": size, "client": client_hash(client_ip)}
    if extra:
        metadata.update(extra)
    record_extra: dict[str, Any] = {"event": HTTP_EVENT, "metadata": metadata,
                                    "performance": {"durationMs": round(duration_ms, 1)}}
    if trace_id:
        record_extra["traceId"] = trace_id
    logger.info("%s %s %s", method, path, status, extra=record_extra)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _client_ip(scope: dict) -> str | None:
    return scope_client_ip(scope)


class AccessLogMiddleware:
    """ASGI middleware: logs each HTTP request when its answer ends, and each WebSocket.

    Goes inside neonpro.client_address's middleware, so `scope["client"]` is the
    client's own address. The trace id is read from the answer's `traceparent`
    header (HTTP) or the connection's scope (WebSocket).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope.get("type") == "http":
            return await self._http(scope, receive, send)
        if scope.get("type") == "websocket":
            return await self._websocket(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _http(self, scope: dict, receive: Any, send: Any) -> Any:
        started = time.monotonic()
        state: dict[str, Any] = {"status": 500, "bytes": 0, "traceparent": None}

        async def logging_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["traceparent"] = _header(list(message.get("headers") or ()),
                                               b"traceparent")
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body") or b"")
            await send(message)

        try:
            return await self.app(scope, receive, logging_send)
        finally:
            log_http_request(
                method=scope.get("method", "-"), path=scope.get("path", ""),
                query=(scope.get("query_string") or b"").decode("latin-1"),
                status=state["status"], size=state["bytes"],
                duration_ms=(time.monotonic() - started) * 1000,
                client_ip=_client_ip(scope),
                trace_id=tracing.trace_id_from_traceparent(state["traceparent"]),
            )

    async def _websocket(self, scope: dict, receive: Any, send: Any) -> Any:
        started = time.monotonic()
        state: dict[str, Any] = {"outcome": "rejected", "code": None}

        async def logging_send(message: dict) -> None:
            if message["type"] == "websocket.accept":
                state["outcome"] = "accepted"
            elif message["type"] == "websocket.close":
                state["code"] = message.get("code", 1000)
            await send(message)

        try:
            return await self.app(scope, receive, logging_send)
        finally:
            extra: dict[str, Any] = {
                "event": WEBSOCKET_EVENT,
                "metadata": {"path": scope.get("path", ""),
                             "query": readable_query(
                                 (scope.get("query_string") or b"").decode("latin-1")),
                             "outcome": state["outcome"], "closeCode": state["code"],
                             "client": client_hash(_client_ip(scope))},
                "performance": {"durationMs": round((time.monotonic() - started) * 1000, 1)},
            }
            trace_id = scope.get("trace_id")
            if trace_id:
                extra["traceId"] = trace_id
            logger.info("WEBSOCKET %s %s", scope.get("path", ""), state["outcome"],
                        extra=extra)
