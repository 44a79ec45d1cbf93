"""Trace context for HTTP requests (Django middleware) and WebSockets (ASGI middleware)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from monitoring import tracing


class TraceContextMiddleware:
    """Sets the trace id of each HTTP request and echoes it in a `traceparent` header.

    The id comes from a valid incoming W3C `traceparent` header, else it is new.
    The request itself is kept in the context so log lines can name its user
    once authentication has resolved it.
    """

    async_capable = True
    sync_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _start(self, request) -> tuple:
        trace_id = (tracing.trace_id_from_traceparent(request.headers.get("traceparent"))
                    or tracing.new_trace_id())
        request.trace_id = trace_id
        return (tracing.trace_id_var.set(trace_id), tracing.request_var.set(request))

    def _finish(self, response, tokens) -> None:
        response["traceparent"] = tracing.traceparent_for(tracing.trace_id_var.get())
        tracing.request_var.reset(tokens[1])
        tracing.trace_id_var.reset(tokens[0])

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        tokens = self._start(request)
        response = self.get_response(request)
        self._finish(response, tokens)
        return response

    async def __acall__(self, request):
        tokens = self._start(request)
        response = await self.get_response(request)
        self._finish(response, tokens)
        return response


class TraceContextASGIMiddleware:
    """ASGI middleware: `scope["trace_id"]` for WebSocket connections.

    Wrap the WebSocket application with it (outermost, before authentication)::

        "websocket": TraceContextASGIMiddleware(chat_auth_stack(URLRouter(...)))

    The trace id comes from the `traceparent` header of the upgrade request (API
    clients can send one; browsers cannot) or is new, and is also set in the
    context for the lifetime of the connection, so every log line of the
    consumer and every provider call it makes carries it.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope.get("type") != "websocket":
            return await self.app(scope, receive, send)
        header = None
        for name, value in scope.get("headers") or ():
            if name.lower() == b"traceparent":
                header = value.decode("latin-1")
                break
        trace_id = tracing.trace_id_from_traceparent(header) or tracing.new_trace_id()
        token = tracing.trace_id_var.set(trace_id)
        try:
            return await self.app(dict(scope, trace_id=trace_id), receive, send)
        finally:
            tracing.trace_id_var.reset(token)
