"""Every Prometheus metric the application exports, in one module.

Labels are bounded (provider, model, role, outcome, type): never a user,
session or clinic id. Names follow the deployment document; families it does
not name are the ones its alerts and dashboards need.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 15, 30, 60)

SESSIONS_CREATED = Counter("ai_chat_sessions_created_total", "Chat sessions created.")
SESSION_DURATION = Histogram(
    "ai_chat_sessions_duration_seconds",
    "Lifetime of chat sessions when they close or expire.",
    buckets=(60, 300, 600, 900, 1800, 2700, 3600, 7200, 14400, 28800, 86400),
)
MESSAGES = Counter("ai_chat_messages", "Chat messages stored, by role.", ["role"])
FEEDBACK = Counter(
    "ai_chat_feedback", "Clinicians' ratings of answers, by rating (up or down).", ["rating"]
)
RESPONSE_TIME = Histogram(
    "ai_chat_messages_response_time_seconds",
    "Time from a stored user message to the complete stored answer.",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
)
FIRST_TOKEN_TIME = Histogram(
    "ai_chat_messages_first_token_seconds",
    "Time from a stored user message to the first token relayed to the clinician.",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
)
TOKENS = Counter(
    "ai_chat_messages_tokens", "Tokens used, by provider and direction.",
    ["provider", "model", "direction"],
)
COST = Counter("ai_chat_cost_usd", "Provider cost in US dollars.", ["provider", "model"])
ERRORS = Counter("ai_chat_errors", "Errors returned to clients, by code.", ["type"])
PROVIDER_REQUESTS = Counter(
    "ai_chat_provider_requests", "Provider attempts, by outcome.", ["provider", "outcome"]
)
FAILOVERS = Counter(
    "ai_chat_provider_failovers", "Answers moved to another provider.",
    ["from_provider", "to_provider"],
)
PII_DETECTIONS = Counter("ai_chat_pii_detections", "PII entities redacted, by type.", ["type"])
PII_REDACTION_FAILURES = Counter(
    "ai_chat_pii_redaction_failures", "Messages refused because redaction failed."
)
CONTENT_FILTERED = Counter("ai_chat_content_filtered", "Messages blocked by the content filter.")
CONSENT_VALIDATIONS = Counter(
    "ai_chat_consent_validations", "Consent checks, by outcome.", ["outcome"]
)
DB_CONNECTION_FAILURES = Counter(
    "ai_chat_db_connections_failed", "Database connection failures seen by the application."
)
AUDIT_FAILURES = Counter("ai_chat_audit_failures", "Audit events that could not be written.")
WEBSOCKET_CONNECTIONS = Gauge(
    "ai_chat_websocket_connections", "Open chat WebSocket connections.",
    multiprocess_mode="livesum",
)
PROVIDER_ERRORS = Counter(
    "ai_chat_provider_errors",
    "Failed provider attempts, by error code (timeout, rate_limited, server_error, ...).",
    ["provider", "code"],
)
PROVIDER_CIRCUIT_STATE = Gauge(
    "ai_chat_provider_circuit_state",
    "Provider circuit breaker as last seen by a process: 0 closed, 1 half-open, 2 open.",
    ["provider"],
    multiprocess_mode="mostrecent",
)
PROVIDER_AUTH_FAILURES = Counter(
    "ai_chat_provider_auth_failures",
    "Provider requests refused for our credentials (HTTP 401/403), by provider.",
    ["provider"],
)
for _provider in ("openai", "anthropic"):
    # Exported at 0 from process start, so the first failure is a visible increase.
    PROVIDER_AUTH_FAILURES.labels(provider=_provider)
AUDIT_EVENTS = Counter("ai_chat_audit_events", "Audit events written, by event type.", ["type"])
AUDIT_ANCHOR_LAST_TIMESTAMP = Gauge(
    "ai_chat_audit_anchor_last_timestamp_seconds",
    "Unix time of the newest signed audit-chain anchor written outside the database.",
    multiprocess_mode="max",
)
AUDIT_ANCHOR_FAILURES = Counter(
    "ai_chat_audit_anchor_failures",
    "Audit-chain anchors not written: no key, unwritable directory, or a chain that "
    "contradicts the newest anchor (deleted, truncated or rewritten events).",
)
RETENTION_PURGED = Counter(
    "ai_chat_retention_purged", "Rows deleted by the retention purge, by kind.", ["kind"]
)
LOGIN_FAILURES = Counter(
    "ai_chat_auth_login_failures",
    "Failed sign-ins, by door (web, admin, api) and reason (invalid_credentials, locked_out).",
    ["door", "reason"],
)
LOGIN_LOCKOUTS = Counter(
    "ai_chat_auth_lockouts",
    "Sign-in lock-outs started, by what was locked (username or ip).",
    ["scope"],
)
