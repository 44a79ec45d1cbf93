"""The one error type of the project: one code, one HTTP status, one WebSocket frame.

Every layer refuses a request the same way: it raises a subclass of
`NeonProError` with a stable `code` clients can act on and a `detail` safe to
show (never personal data). `neonpro.api_errors` renders any of them as the
API's JSON error, with `Retry-After` when there is one; the chat consumer
sends `as_frame()` over the WebSocket.
"""

from __future__ import annotations

from typing import Any

# code -> HTTP status (docs/contract/SPEC.md §5). WebSocket clients get the same codes
# in `error` frames. A code missing here answers 400.
STATUS_BY_CODE: dict[str, int] = {
    "invalid": 400,
    "content_filtered": 400,
    "not_authenticated": 401,
    "consent_required": 403,
    "no_clinic": 403,
    "permission_denied": 403,
    "not_found": 404,
    "session_expired": 409,
    "in_progress": 409,
    "legal_hold": 409,
    "message_too_long": 413,
    "pii_redaction_failed": 422,
    "pii_blocked": 422,
    "rate_limited": 429,
    "capacity_exceeded": 503,
    "provider_unavailable": 503,
    "service_unavailable": 503,
    "provider_error": 502,
}


class NeonProError(Exception):
    """A request the project refuses, with a stable `code` clients can act on."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        retry_after: int | None = None,
        message_id: str | None = None,
        types: list[str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
        self.message_id = message_id
        self.types = types  # pii_blocked: the entity types the policy refuses

    @property
    def status(self) -> int:
        return STATUS_BY_CODE.get(self.code, 400)

    def as_frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "error", "code": self.code, "detail": self.detail}
        if self.retry_after is not None:
            frame["retry_after"] = self.retry_after
        if self.message_id is not None:
            frame["message_id"] = self.message_id
        if self.types is not None:
            frame["types"] = self.types
        return frame

    def as_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "detail": self.detail}
        if self.message_id is not None:
            body["message_id"] = self.message_id
        if self.types is not None:
            body["types"] = self.types
        return body
