"""Middleware that serves sync and async requests alike, and the trace context.

`HybridMiddleware` is the one copy of the sync/async boilerplate: it runs
`start()` before the rest of the stack and `finish()` after it, in the mode the
stack runs in. Django's `MiddlewareMixin` does the same with `process_request`
and `process_response`, but under ASGI it runs them in a thread through
`sync_to_async`: a thread hop per middleware per request, on every chat
message. The hooks here are plain functions that never block, so they run on
the event loop.

The trace context (neonpro.tracing) is set here for HTTP requests
(`TraceContextMiddleware`) and WebSocket connections (`TraceContextASGIMiddleware`).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from neonpro import tracing


class HybridMiddleware:
    """Base for middleware that works under WSGI and ASGI without a thread hop.

    Subclasses override `start(request)` (its result is handed to `finish`) and
    `finish(request, response, started)`, which returns the response; both must
    not block. Django's other hooks (`process_exception`,
    `process_template_response`) work as usual.
    """

    async_capable = True
    sync_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        started = self.start(request)
        return self.finish(request, self.get_response(request), started)

    async def __acall__(self, request):
        started = self.start(request)
        return self.finish(request, await self.get_response(request), started)

    def start(self, request) -> Any:
        return None

    def finish(self, request, response, started: Any):
        return response


class TraceContextMiddleware(HybridMiddleware):
    """Sets the trace id of each HTTP request and echoes it in a `traceparent` header.

    The id comes from a valid incoming W3C `traceparent` header, else it is new.
    The request itself is kept in the context so log lines can name its user
    once authentication has resolved it.
    """

    def start(self, request) -> tuple:
        trace_id = (tracing.trace_id_from_traceparent(request.headers.get("traceparent"))
                    or tracing.new_trace_id())
        request.trace_id = trace_id
        return (tracing.trace_id_var.set(trace_id), tracing.request_var.set(request))

    def finish(self, request, response, started: tuple):
        response["traceparent"] = tracing.traceparent_for(tracing.trace_id_var.get())
        tracing.request_var.reset(started[1])
        tracing.trace_id_var.reset(started[0])
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
