"""Request context (trace id, user, clinic, session) carried through contextvars.

The trace id comes from an incoming W3C `traceparent` header or is generated,
and follows the work:

- HTTP: `neonpro.middleware.TraceContextMiddleware` sets it per request and
  echoes a `traceparent` response header.
- WebSocket: `neonpro.middleware.TraceContextASGIMiddleware` puts it in
  `scope["trace_id"]` (the chat consumer reads it) and in the context.
- Log lines: `monitoring.logging.ContextFilter` copies these values into every
  record.
- Provider calls: the provider layer receives the trace id; `outgoing_headers()`
  is the `traceparent` to send along.
- Celery: `connect_celery_signals()` adds a `traceparent` header when a task is
  published and restores the trace id in the worker before the task runs.

Only identifiers live here (numeric or UUID keys), never names or contents.
Every layer may set or read this context; monitoring reads it (log lines,
access log) and exports nothing back into it.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import secrets
from collections.abc import Iterator
from typing import Any

from celery import signals
from django.utils.functional import SimpleLazyObject, empty

# version-traceid-parentid-flags; version ff is forbidden by the W3C spec.
_TRACEPARENT = re.compile(r"^([\da-f]{2})-([\da-f]{32})-([\da-f]{16})-[\da-f]{2}$")
_TRACEPARENT_HEADER = "traceparent"

trace_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)
user_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)
clinic_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "clinic_id", default=None
)
session_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "session_id", default=None
)
# The HttpRequest being served, so log lines can name its authenticated user
# once authentication has happened (see `request_user_id`).
request_var: contextvars.ContextVar[Any | None] = contextvars.ContextVar("request", default=None)

_VARS = {
    "trace_id": trace_id_var,
    "user_id": user_id_var,
    "clinic_id": clinic_id_var,
    "session_id": session_id_var,
}


def new_trace_id() -> str:
    """A fresh random 128-bit trace id, as 32 lowercase hex digits."""
    return secrets.token_hex(16)


def trace_id_from_traceparent(header: str | None) -> str | None:
    """The trace id of a valid W3C traceparent header, else None."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if not match or match.group(1) == "ff":
        return None
    trace_id, parent_id = match.group(2), match.group(3)
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id


def current_trace_id() -> str | None:
    """The trace id of the work being done now, if any."""
    return trace_id_var.get()


def traceparent_for(trace_id: str) -> str:
    """A traceparent header continuing `trace_id` with a fresh span id."""
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def outgoing_headers(trace_id: str | None = None) -> dict[str, str]:
    """Headers that carry the trace to another service (empty when there is no trace)."""
    trace_id = trace_id or trace_id_var.get()
    return {_TRACEPARENT_HEADER: traceparent_for(trace_id)} if trace_id else {}


def bind(
    *,
    trace_id: str | None = None,
    user_id: Any = None,
    clinic_id: Any = None,
    session_id: Any = None,
) -> dict[str, contextvars.Token]:
    """Set the given context values (those not None) for the current context.

    Returns the tokens to pass to `unbind`. In a long-lived task (a WebSocket
    consumer) there is nothing to undo: the values die with the task.
    """
    values = {"trace_id": trace_id, "user_id": user_id, "clinic_id": clinic_id,
              "session_id": session_id}
    return {
        name: _VARS[name].set(str(value))
        for name, value in values.items()
        if value is not None
    }


def unbind(tokens: dict[str, contextvars.Token]) -> None:
    """Undo a `bind` made in the same context."""
    for name, token in tokens.items():
        _VARS[name].reset(token)


@contextlib.contextmanager
def context(**values: Any) -> Iterator[None]:
    """`bind(**values)` for the duration of a `with` block."""
    tokens = bind(**values)
    try:
        yield
    finally:
        unbind(tokens)


def request_user_id(request: Any) -> str | None:
    """The id of the request's user if authentication already resolved it, else None.

    Never triggers authentication itself: that would query the database from
    inside a log call (and fail on an event loop).
    """
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = user.__dict__.get("_wrapped", empty)
        if user is empty:
            user = request.__dict__.get("_cached_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


# --- Celery --------------------------------------------------------------------------

# Trace tokens of the tasks running in this worker, by task id: task_postrun
# restores what was there before (in eager mode that is the caller's trace).
_task_tokens: dict[str, contextvars.Token] = {}


def _on_before_task_publish(headers: dict | None = None, **_: Any) -> None:
    trace_id = trace_id_var.get()
    if headers is not None and trace_id and _TRACEPARENT_HEADER not in headers:
        headers[_TRACEPARENT_HEADER] = traceparent_for(trace_id)


def _on_task_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    header = getattr(request, _TRACEPARENT_HEADER, None)
    if header is None:
        header = (getattr(request, "headers", None) or {}).get(_TRACEPARENT_HEADER)
    # Eager tasks run inside the caller's context and keep its trace.
    trace_id = trace_id_from_traceparent(header) or trace_id_var.get() or new_trace_id()
    if task_id:
        _task_tokens[task_id] = trace_id_var.set(trace_id)


def _on_task_postrun(task_id: str | None = None, **_: Any) -> None:
    token = _task_tokens.pop(task_id, None) if task_id else None
    if token is not None:
        with contextlib.suppress(ValueError):  # set in another context: nothing to restore
            trace_id_var.reset(token)


def connect_celery_signals() -> None:
    """Carry the trace id from the publisher into the Celery task (idempotent)."""
    signals.before_task_publish.connect(_on_before_task_publish, weak=False,
                                        dispatch_uid="neonpro.trace.publish")
    signals.task_prerun.connect(_on_task_prerun, weak=False, dispatch_uid="neonpro.trace.prerun")
    signals.task_postrun.connect(_on_task_postrun, weak=False,
                                 dispatch_uid="neonpro.trace.postrun")
