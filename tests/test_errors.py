"""One error base class, one handler: every refusal renders as {"code", "detail"}."""

from __future__ import annotations

import pytest

from chat.errors import ChatError
from compliance.dsr import DSRError
from compliance.services import ConsentError
from neonpro.api_errors import exception_handler
from neonpro.errors import NeonProError


@pytest.mark.parametrize(("error", "status", "body"), [
    (ChatError("consent_required", "Consent first."), 403,
     {"code": "consent_required", "detail": "Consent first."}),
    (ConsentError("invalid", "Unknown consent purpose."), 400,
     {"code": "invalid", "detail": "Unknown consent purpose."}),
    (DSRError("wrong_type", "Only consent-revocation requests revoke consent."), 400,
     {"code": "wrong_type", "detail": "Only consent-revocation requests revoke consent."}),
    (NeonProError("pii_blocked", "Blocked.", types=["CPF"]), 422,
     {"code": "pii_blocked", "detail": "Blocked.", "types": ["CPF"]}),
])
def test_it_renders_every_projects_error_with_the_one_handler(error, status, body):
    response = exception_handler(error, {})

    assert isinstance(error, NeonProError)
    assert (response.status_code, response.data) == (status, body)
    assert "Retry-After" not in response


def test_it_sends_retry_after_and_the_same_code_in_a_websocket_frame():
    error = ChatError("rate_limited", "Too many messages.", retry_after=7, message_id="m-1")

    response = exception_handler(error, {})

    assert response.status_code == 429 and response["Retry-After"] == "7"
    assert error.as_frame() == {"type": "error", "code": "rate_limited",
                                "detail": "Too many messages.", "retry_after": 7,
                                "message_id": "m-1"}
