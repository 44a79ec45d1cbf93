"""The chat pipeline, shared by the WebSocket consumer, the REST view and SSE.

authorise → consent → rate limit → capacity (at session creation) → persist the
user message (redacted in the same step) → stream from the provider → relay
re-identified tokens → persist the answer.

- `sessions`: opening, closing, renaming, deleting and expiring sessions; feedback.
- `accept`: checking and storing one message (`message_accept` → `AcceptedMessage`).
- `answer`: streaming, relaying and storing its answer (`answer_stream`,
  `message_stream` for the WebSocket, `message_exchange` for REST).
- `checks`: the checks every door shares (consent, rate limit, redaction…).
- `sql`: the statements every message runs, written as SQL.
"""
