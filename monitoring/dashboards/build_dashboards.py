"""Build the Grafana dashboards (operations, business, technical) as JSON.

The panels are declared here as data and written to `<name>.json` beside this
file, which Grafana loads through provisioning/dashboards/neonpro.yaml. Every
query goes to the provisioned Prometheus datasource (uid below) and names only
metrics the application exports or the recording rules define; a test checks
both, and that the JSON files are what this script writes.

    python monitoring/dashboards/build_dashboards.py          # write the JSON
    python monitoring/dashboards/build_dashboards.py --check  # exit 1 if stale
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DASHBOARDS_DIR = Path(__file__).resolve().parent
DATASOURCE_UID = "neonpro-prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39

# Rate window that Grafana widens to at least four scrape intervals.
RI = "$__rate_interval"
# Client errors describe the caller, not the service (same list as the
# ai_chat:error_ratio:rate5m recording rule).
CLIENT_ERRORS = (
    "invalid|not_found|no_clinic|consent_required|session_expired|message_too_long|in_progress|"
    "content_filtered|rate_limited|rate_limit"
)


@dataclass
class Target:
    """One PromQL query of a panel."""

    expr: str
    legend: str = ""
    heatmap: bool = False


@dataclass
class Panel:
    """A panel before layout: type, queries, unit, size and extra options."""

    kind: str
    title: str
    description: str
    targets: list[Target]
    unit: str = "short"
    width: int = 12
    height: int = 8
    thresholds: list[tuple[float | None, str]] = field(default_factory=list)
    mappings: list[dict[str, Any]] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    decimals: int | None = None


@dataclass
class Row:
    """A titled row of panels."""

    title: str
    panels: list[Panel]


@dataclass
class Dashboard:
    """A dashboard definition: file name, identity and rows."""

    name: str
    uid: str
    title: str
    description: str
    rows: list[Row]
    time_from: str = "now-6h"


def _q(expr: str, legend: str = "") -> Target:
    return Target(expr=expr, legend=legend)


def _quantiles(
    metric: str, by: str = "", quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)
) -> list[Target]:
    """histogram_quantile queries over `<metric>_bucket`, one per quantile."""
    group = f"le, {by}" if by else "le"
    suffix = f" {{{{{by}}}}}" if by else ""
    return [
        _q(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RI}])))",
            f"P{round(q * 100)}{suffix}",
        )
        for q in quantiles
    ]


_UP_MAPPING = [{"type": "value", "options": {"0": {"text": "DOWN", "color": "red"}}}]
_DB_MAPPING = [
    {
        "type": "value",
        "options": {
            "0": {"text": "unreachable", "color": "red"},
            "1": {"text": "reachable", "color": "green"},
        },
    }
]
_CIRCUIT_MAPPING = [
    {
        "type": "value",
        "options": {
            "0": {"text": "closed", "color": "green"},
            "1": {"text": "half-open", "color": "yellow"},
            "2": {"text": "open", "color": "red"},
        },
    }
]
_GREEN_RED_AT_1 = [(None, "red"), (1, "green")]
_PERCENT_80_95 = [(None, "green"), (80, "yellow"), (95, "red")]


def _operations() -> Dashboard:
    health = Row(
        "System health",
        [
            Panel(
                "stat",
                "Web processes up",
                "Web processes answering scrapes, out of those discovered.",
                [_q('sum(up{job="ai-chat"})', "up"), _q('count(up{job="ai-chat"})', "discovered")],
                width=4,
                height=5,
                thresholds=_GREEN_RED_AT_1,
                mappings=_UP_MAPPING,
            ),
            Panel(
                "stat",
                "Celery worker",
                "Celery workers answering scrapes (retention purges, background tasks).",
                [_q('sum(up{job="ai-chat-worker"})', "workers up")],
                width=4,
                height=5,
                thresholds=_GREEN_RED_AT_1,
                mappings=_UP_MAPPING,
            ),
            Panel(
                "stat",
                "Database",
                "Result of the last database check, worst process.",
                [_q("min(ai_chat_db_up)", "database")],
                width=4,
                height=5,
                thresholds=_GREEN_RED_AT_1,
                mappings=_DB_MAPPING,
            ),
            Panel(
                "stat",
                "Active sessions",
                "Active chat sessions system-wide (from the database).",
                [_q('max(ai_chat_sessions_total{status="active"})', "active")],
                width=4,
                height=5,
            ),
            Panel(
                "gauge",
                "Session capacity used",
                "Active sessions as a percentage of AI_SESSION_CAPACITY. "
                "HighSessionCapacity fires above 80% for 5 minutes.",
                [_q("ai_chat:session_utilization:max", "utilisation")],
                unit="percent",
                width=4,
                height=5,
                thresholds=_PERCENT_80_95,
                minimum=0,
                maximum=100,
            ),
            Panel(
                "stat",
                "Open WebSockets",
                "Chat WebSocket connections open across all web processes.",
                [_q("sum(ai_chat_websocket_connections)", "connections")],
                width=4,
                height=5,
            ),
        ],
    )
    traffic = Row(
        "Traffic and response times",
        [
            Panel(
                "timeseries",
                "Chat messages per second by role",
                "User messages stored and assistant answers stored.",
                [_q(f"sum by (role) (rate(ai_chat_messages_total[{RI}]))", "{{role}}")],
                unit="reqps",
            ),
            Panel(
                "timeseries",
                "HTTP requests per second by method",
                "All HTTP requests served by the web processes (REST API, pages, health).",
                [
                    _q(
                        f"sum by (method) (rate(django_http_requests_total_by_method_total[{RI}]))",
                        "{{method}}",
                    )
                ],
                unit="reqps",
            ),
            Panel(
                "timeseries",
                "Chat response time",
                "Stored user message to complete stored answer. Alerts: P95 > 2.5 s for 5 min "
                "(warning), > 4 s for 2 min (critical), > 5 s for 5 min (rollback).",
                [
                    _q(
                        "histogram_quantile(0.5, sum by (le) "
                        f"(rate(ai_chat_messages_response_time_seconds_bucket[{RI}])))",
                        "P50",
                    ),
                    _q("ai_chat_response_time_p95", "P95 (5m, alerting)"),
                    _q(
                        "histogram_quantile(0.99, sum by (le) "
                        f"(rate(ai_chat_messages_response_time_seconds_bucket[{RI}])))",
                        "P99",
                    ),
                ],
                unit="s",
                thresholds=[(None, "green"), (2.5, "yellow"), (4, "red")],
            ),
            Panel(
                "timeseries",
                "Sessions by status",
                "Chat sessions by status, from the database.",
                [_q("max by (status) (ai_chat_sessions_total)", "{{status}}")],
            ),
        ],
    )
    errors = Row(
        "Errors",
        [
            Panel(
                "timeseries",
                "Server-side error ratio",
                "Server errors per user message over 5 minutes (client errors excluded). "
                "Alerts at 5% (critical) and 10% (rollback).",
                [_q("ai_chat:error_ratio:rate5m", "error ratio")],
                unit="percentunit",
                width=8,
                thresholds=[(None, "green"), (0.05, "orange"), (0.10, "red")],
            ),
            Panel(
                "timeseries",
                "Errors per second by type",
                "Error codes returned to clients, client and server errors alike.",
                [_q(f"sum by (type) (rate(ai_chat_errors_total[{RI}]))", "{{type}}")],
                unit="reqps",
                width=8,
            ),
            Panel(
                "timeseries",
                "HTTP 4xx and 5xx responses per second",
                "HTTP responses by status code, errors only.",
                [
                    _q(
                        "sum by (status) (rate(django_http_responses_total_by_status_total"
                        f'{{status=~"4..|5.."}}[{RI}]))',
                        "{{status}}",
                    )
                ],
                unit="reqps",
                width=8,
            ),
        ],
    )
    resources = Row(
        "Resource utilisation",
        [
            Panel(
                "timeseries",
                "Memory used (percent of limit)",
                "Resident memory of each process over its memory limit. "
                "Alerts at 80% for 5 min (warning) and 95% for 1 min (rollback).",
                [_q("ai_chat_process_memory_usage_percent", "{{job}} {{instance}}")],
                unit="percent",
                width=8,
                thresholds=_PERCENT_80_95,
                minimum=0,
                maximum=100,
            ),
            Panel(
                "timeseries",
                "CPU used (cores)",
                "CPU seconds per second of each process.",
                [
                    _q(
                        "sum by (job, instance) "
                        f'(rate(process_cpu_seconds_total{{job=~"ai-chat|ai-chat-worker"}}[{RI}]))',
                        "{{job}} {{instance}}",
                    )
                ],
                unit="short",
                width=8,
            ),
            Panel(
                "timeseries",
                "Database connections",
                "New database connections opened, failed connection attempts seen by "
                "Django and by the application.",
                [
                    _q(f"sum(rate(django_db_new_connections_total[{RI}]))", "opened"),
                    _q(
                        f"sum(rate(django_db_new_connection_errors_total[{RI}]))", "errors (Django)"
                    ),
                    _q(f"sum(rate(ai_chat_db_connections_failed_total[{RI}]))", "failures (app)"),
                ],
                unit="ops",
                width=8,
            ),
        ],
    )
    providers = Row(
        "AI providers",
        [
            Panel(
                "timeseries",
                "Response time P95 by provider",
                "Stored user message to complete answer, per provider that answered.",
                [
                    _q(
                        "histogram_quantile(0.95, sum by (le, provider) "
                        f"(rate(ai_chat_messages_response_time_seconds_bucket[{RI}])))",
                        "{{provider}}",
                    )
                ],
                unit="s",
                width=8,
            ),
            Panel(
                "timeseries",
                "Time to first token P95 by provider",
                "Stored user message to the first token relayed to the clinician.",
                [
                    _q(
                        "histogram_quantile(0.95, sum by (le, provider) "
                        f"(rate(ai_chat_messages_first_token_seconds_bucket[{RI}])))",
                        "{{provider}}",
                    )
                ],
                unit="s",
                width=8,
            ),
            Panel(
                "stat",
                "Circuit breakers",
                "Circuit breaker state per provider: closed, half-open (probing) or open.",
                [_q("max by (provider) (ai_chat_provider_circuit_state)", "{{provider}}")],
                width=8,
                mappings=_CIRCUIT_MAPPING,
                thresholds=[(None, "green"), (1, "yellow"), (2, "red")],
            ),
            Panel(
                "timeseries",
                "Provider requests per second by outcome",
                "Every attempt at a provider, successful or not.",
                [
                    _q(
                        f"sum by (provider, outcome) (rate(ai_chat_provider_requests_total[{RI}]))",
                        "{{provider}} {{outcome}}",
                    )
                ],
                unit="reqps",
                width=8,
            ),
            Panel(
                "timeseries",
                "Provider success rate",
                "Successful attempts over completed attempts (success or error); attempts "
                "skipped by an open circuit or cancelled by the clinician are not counted.",
                [
                    _q(
                        "sum by (provider) (rate(ai_chat_provider_requests_total"
                        f'{{outcome="success"}}[{RI}])) / sum by (provider) '
                        "(rate(ai_chat_provider_requests_total"
                        f'{{outcome=~"success|error"}}[{RI}]))',
                        "{{provider}}",
                    )
                ],
                unit="percentunit",
                width=8,
                minimum=0,
                maximum=1,
            ),
            Panel(
                "timeseries",
                "Provider errors per second by code",
                "Failed provider attempts: timeout, connection, rate_limited, overloaded, "
                "server_error, auth... Each one is retried on the other provider.",
                [
                    _q(
                        f"sum by (provider, code) (rate(ai_chat_provider_errors_total[{RI}]))",
                        "{{provider}} {{code}}",
                    )
                ],
                unit="reqps",
                width=8,
            ),
            Panel(
                "timeseries",
                "Quota remaining",
                "Tokens and requests left in the current provider rate-limit window, "
                "from the providers' response headers.",
                [
                    _q(
                        "min by (provider, kind) (ai_chat_provider_quota_remaining)",
                        "{{provider}} {{kind}}",
                    )
                ],
                width=8,
            ),
            Panel(
                "timeseries",
                "Failovers per hour",
                "Answers moved from one provider to the other.",
                [
                    _q(
                        "sum by (from_provider, to_provider) "
                        "(increase(ai_chat_provider_failovers_total[1h]))",
                        "{{from_provider}} → {{to_provider}}",
                    )
                ],
                width=8,
            ),
            Panel(
                "timeseries",
                "Cost per hour (USD)",
                "Provider cost from token usage and the configured price table.",
                [
                    _q(
                        "sum by (provider, model) (increase(ai_chat_cost_usd_total[1h]))",
                        "{{provider}} {{model}}",
                    )
                ],
                unit="currencyUSD",
                width=8,
            ),
            Panel(
                "timeseries",
                "Tokens per second",
                "Tokens sent to and received from the providers.",
                [
                    _q(
                        f"sum by (provider, direction) (rate(ai_chat_messages_tokens_total[{RI}]))",
                        "{{provider}} {{direction}}",
                    )
                ],
                width=8,
            ),
        ],
    )
    return Dashboard(
        name="operations",
        uid="neonpro-ai-chat-operations",
        title="NeonPro AI Chat / Operations",
        description="Real-time health of the AI chat: availability, sessions, traffic, "
        "errors, resources and AI providers.",
        rows=[health, traffic, errors, resources, providers],
    )


def _business() -> Dashboard:
    usage = Row(
        "Usage",
        [
            Panel(
                "stat",
                "User messages (24 h)",
                "Chat messages sent by clinicians in the last 24 hours.",
                [_q('sum(increase(ai_chat_messages_total{role="user"}[24h]))', "messages")],
                width=6,
                height=5,
                decimals=0,
            ),
            Panel(
                "stat",
                "Sessions created (24 h)",
                "Chat sessions opened in the last 24 hours.",
                [_q("sum(increase(ai_chat_sessions_created_total[24h]))", "sessions")],
                width=6,
                height=5,
                decimals=0,
            ),
            Panel(
                "stat",
                "Median session duration (24 h)",
                "Median lifetime of the sessions that closed or expired in the last 24 hours.",
                [
                    _q(
                        "histogram_quantile(0.5, sum by (le) "
                        "(rate(ai_chat_sessions_duration_seconds_bucket[24h])))",
                        "median",
                    )
                ],
                unit="s",
                width=6,
                height=5,
            ),
            Panel(
                "stat",
                "Provider cost (24 h)",
                "Provider cost in US dollars, last 24 hours.",
                [_q("sum(increase(ai_chat_cost_usd_total[24h]))", "cost")],
                unit="currencyUSD",
                width=6,
                height=5,
            ),
            Panel(
                "timeseries",
                "Message volume per hour",
                "Messages stored per hour, by role.",
                [_q("sum by (role) (increase(ai_chat_messages_total[1h]))", "{{role}}")],
            ),
            Panel(
                "timeseries",
                "Sessions created per hour",
                "New chat sessions per hour.",
                [_q("sum(increase(ai_chat_sessions_created_total[1h]))", "sessions")],
            ),
            Panel(
                "heatmap",
                "Session duration distribution",
                "How long sessions last, from the session duration histogram.",
                [
                    Target(
                        "sum by (le) "
                        "(increase(ai_chat_sessions_duration_seconds_bucket[$__interval]))",
                        "{{le}}",
                        heatmap=True,
                    )
                ],
                unit="s",
            ),
            Panel(
                "timeseries",
                "Session duration percentiles",
                "P50 and P95 of session lifetime over the last hour.",
                [
                    _q(
                        "histogram_quantile(0.5, sum by (le) "
                        "(rate(ai_chat_sessions_duration_seconds_bucket[1h])))",
                        "P50",
                    ),
                    _q(
                        "histogram_quantile(0.95, sum by (le) "
                        "(rate(ai_chat_sessions_duration_seconds_bucket[1h])))",
                        "P95",
                    ),
                ],
                unit="s",
            ),
        ],
    )
    compliance = Row(
        "Compliance (LGPD)",
        [
            Panel(
                "timeseries",
                "PII detections per hour by type",
                "Personal data entities redacted before text left for a provider.",
                [_q("sum by (type) (increase(ai_chat_pii_detections_total[1h]))", "{{type}}")],
            ),
            Panel(
                "bargauge",
                "PII detections by type (24 h)",
                "Which kinds of personal data clinicians type most.",
                [_q("sum by (type) (increase(ai_chat_pii_detections_total[24h]))", "{{type}}")],
                decimals=0,
            ),
            Panel(
                "timeseries",
                "PII entities per user message",
                "Average number of redacted entities per user message, hourly.",
                [
                    _q(
                        "sum(rate(ai_chat_pii_detections_total[1h])) / "
                        'sum(rate(ai_chat_messages_total{role="user"}[1h]))',
                        "entities per message",
                    )
                ],
                width=8,
            ),
            Panel(
                "timeseries",
                "Consent validations per hour by outcome",
                "Consent checks made before sessions and messages.",
                [
                    _q(
                        "sum by (outcome) (increase(ai_chat_consent_validations_total[1h]))",
                        "{{outcome}}",
                    )
                ],
                width=8,
            ),
            Panel(
                "timeseries",
                "Consent validations per session created",
                "Coverage: at least one consent check per new session is expected.",
                [
                    _q(
                        "sum(increase(ai_chat_consent_validations_total[1h])) / "
                        "sum(increase(ai_chat_sessions_created_total[1h]))",
                        "checks per session",
                    )
                ],
                width=8,
            ),
            Panel(
                "timeseries",
                "Audit events per hour by type",
                "Business events written to the append-only audit trail.",
                [_q("sum by (type) (increase(ai_chat_audit_events_total[1h]))", "{{type}}")],
                width=8,
            ),
            Panel(
                "timeseries",
                "Retention purge: records deleted per day",
                "Chat data older than DATA_RETENTION_DAYS deleted by the retention task.",
                [
                    _q(
                        "sum by (kind) (increase(ai_chat_retention_purged_total[24h]))",
                        "{{kind}}",
                    )
                ],
                width=8,
                decimals=0,
            ),
            Panel(
                "stat",
                "Compliance failures (24 h)",
                "Redaction failures (messages refused) and audit write failures. "
                "Anything above zero has alerted the compliance team.",
                [
                    _q("sum(increase(ai_chat_pii_redaction_failures_total[24h]))", "redaction"),
                    _q("sum(increase(ai_chat_audit_failures_total[24h]))", "audit"),
                    _q("sum(increase(ai_chat_content_filtered_total[24h]))", "content filtered"),
                ],
                width=8,
                decimals=0,
                thresholds=[(None, "green"), (1, "red")],
            ),
        ],
    )
    return Dashboard(
        name="business",
        uid="neonpro-ai-chat-business",
        title="NeonPro AI Chat / Business",
        description="Usage and LGPD compliance: message volume, sessions, PII detections, "
        "consent, audit trail and retention.",
        rows=[usage, compliance],
        time_from="now-7d",
    )


def _technical() -> Dashboard:
    latency = Row(
        "Response time percentiles",
        [
            Panel(
                "timeseries",
                "Chat response time percentiles",
                "Stored user message to complete stored answer.",
                _quantiles(
                    "ai_chat_messages_response_time_seconds", quantiles=(0.5, 0.9, 0.95, 0.99)
                ),
                unit="s",
                width=8,
            ),
            Panel(
                "timeseries",
                "Time to first token percentiles",
                "Stored user message to the first streamed token.",
                _quantiles("ai_chat_messages_first_token_seconds"),
                unit="s",
                width=8,
            ),
            Panel(
                "timeseries",
                "HTTP latency P95 by view (top 10)",
                "Django view processing time, slowest ten views.",
                [
                    _q(
                        "topk(10, histogram_quantile(0.95, sum by (le, view) "
                        f"(rate(django_http_requests_latency_seconds_by_view_method_bucket[{RI}]))))",
                        "{{view}}",
                    )
                ],
                unit="s",
                width=8,
            ),
        ],
    )
    database = Row(
        "Database",
        [
            Panel(
                "timeseries",
                "Query duration percentiles",
                "Duration of SQL statements executed through the Django ORM.",
                _quantiles("django_db_query_duration_seconds"),
                unit="s",
                width=8,
            ),
            Panel(
                "timeseries",
                "Queries per second",
                "Statements executed, single and bulk.",
                [
                    _q(
                        f"sum by (alias) (rate(django_db_execute_total[{RI}]))", "{{alias}} execute"
                    ),
                    _q(
                        f"sum by (alias) (rate(django_db_execute_many_total[{RI}]))",
                        "{{alias}} execute_many",
                    ),
                ],
                unit="ops",
                width=8,
            ),
            Panel(
                "timeseries",
                "Database errors per second by type",
                "Exceptions raised by SQL statements, by exception class.",
                [_q(f"sum by (type) (rate(django_db_errors_total[{RI}]))", "{{type}}")],
                unit="ops",
                width=8,
            ),
        ],
    )
    cache = Row(
        "Cache",
        [
            Panel(
                "timeseries",
                "Cache hit ratio",
                "Share of cache reads that found a value (sessions, rate limits, circuit state).",
                [
                    _q(
                        f"sum(rate(django_cache_get_hits_total[{RI}])) / "
                        f"sum(rate(django_cache_get_total[{RI}]))",
                        "hit ratio",
                    )
                ],
                unit="percentunit",
                minimum=0,
                maximum=1,
            ),
            Panel(
                "timeseries",
                "Cache reads per second",
                "Cache gets, misses and failed gets (cache unreachable).",
                [
                    _q(f"sum(rate(django_cache_get_total[{RI}]))", "gets"),
                    _q(f"sum(rate(django_cache_get_misses_total[{RI}]))", "misses"),
                    _q(f"sum(rate(django_cache_get_fail_total[{RI}]))", "failures"),
                ],
                unit="ops",
            ),
        ],
    )
    runtime = Row(
        "Memory and runtime",
        [
            Panel(
                "timeseries",
                "Memory used (percent of limit)",
                "Resident memory of each process over its memory limit.",
                [_q("ai_chat_process_memory_usage_percent", "{{job}} {{instance}}")],
                unit="percent",
                width=8,
                thresholds=_PERCENT_80_95,
                minimum=0,
                maximum=100,
            ),
            Panel(
                "timeseries",
                "Resident memory",
                "Resident set size of each process.",
                [
                    _q(
                        'process_resident_memory_bytes{job=~"ai-chat|ai-chat-worker"}',
                        "{{job}} {{instance}}",
                    )
                ],
                unit="bytes",
                width=8,
            ),
            Panel(
                "timeseries",
                "Garbage collections per second by generation",
                "Python garbage collector runs; a rising generation 2 rate hints at churn.",
                [
                    _q(
                        f"sum by (generation) (rate(python_gc_collections_total[{RI}]))",
                        "gen {{generation}}",
                    )
                ],
                unit="ops",
                width=8,
            ),
        ],
    )
    security = Row(
        "Security",
        [
            Panel(
                "timeseries",
                "Authentication and authorisation failures",
                "HTTP 401 (not authenticated) and 403 (forbidden, incl. consent_required) "
                "responses per second.",
                [
                    _q(
                        "sum by (status) (rate(django_http_responses_total_by_status_total"
                        f'{{status=~"401|403"}}[{RI}]))',
                        "{{status}}",
                    )
                ],
                unit="reqps",
                width=8,
            ),
            Panel(
                "timeseries",
                "Rate-limit activations per second",
                "Requests refused with rate_limited (RATE_LIMIT_MAX per RATE_LIMIT_WINDOW).",
                [
                    _q(
                        f'sum(rate(ai_chat_errors_total{{type=~"rate_limited|rate_limit"}}[{RI}]))',
                        "rate limited",
                    )
                ],
                unit="reqps",
                width=8,
            ),
            Panel(
                "timeseries",
                "Provider authentication failures per hour",
                "Provider API keys rejected; any value is a rollback trigger.",
                [
                    _q(
                        "sum by (provider) (increase(ai_chat_provider_auth_failures_total[1h]))",
                        "{{provider}}",
                    )
                ],
                width=8,
                thresholds=[(None, "green"), (1, "red")],
            ),
            Panel(
                "timeseries",
                "Client errors per second by type",
                "Invalid input, missing consent, expired sessions, oversize messages: "
                "a sudden rise may be a misbehaving or hostile client.",
                [
                    _q(
                        "sum by (type) "
                        f'(rate(ai_chat_errors_total{{type=~"{CLIENT_ERRORS}"}}[{RI}]))',
                        "{{type}}",
                    )
                ],
                unit="reqps",
            ),
            Panel(
                "timeseries",
                "Compliance violations per hour",
                "PII redaction failures, audit write failures and filtered content.",
                [
                    _q(
                        "sum(increase(ai_chat_pii_redaction_failures_total[1h]))",
                        "redaction failures",
                    ),
                    _q("sum(increase(ai_chat_audit_failures_total[1h]))", "audit failures"),
                    _q("sum(increase(ai_chat_content_filtered_total[1h]))", "content filtered"),
                ],
                thresholds=[(None, "green"), (1, "red")],
            ),
        ],
    )
    return Dashboard(
        name="technical",
        uid="neonpro-ai-chat-technical",
        title="NeonPro AI Chat / Technical",
        description="Latency percentiles, database, cache, memory and security signals.",
        rows=[latency, database, cache, runtime, security],
    )


def _thresholds(steps: list[tuple[float | None, str]]) -> dict[str, Any]:
    steps = steps or [(None, "green")]
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def _options(panel: Panel) -> dict[str, Any]:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if panel.kind == "stat":
        return {
            "reduceOptions": reduce,
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
            "wideLayout": True,
            "showPercentChange": False,
        }
    if panel.kind == "gauge":
        return {"reduceOptions": reduce, "showThresholdLabels": False, "showThresholdMarkers": True}
    if panel.kind == "bargauge":
        return {
            "reduceOptions": reduce,
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "valueMode": "color",
        }
    if panel.kind == "heatmap":
        return {
            "calculate": False,
            "cellGap": 1,
            "yAxis": {"axisPlacement": "left", "unit": panel.unit},
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64, "exponent": 0.5},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"mode": "single", "yHistogram": True},
            "legend": {"show": True},
        }
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": _thresholds(panel.thresholds),
        "mappings": panel.mappings,
        "color": {"mode": "thresholds" if panel.kind in {"stat", "gauge"} else "palette-classic"},
    }
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "line" if panel.thresholds else "off"},
        }
    for key, value in (
        ("min", panel.minimum),
        ("max", panel.maximum),
        ("decimals", panel.decimals),
    ):
        if value is not None:
            defaults[key] = value
    return {"defaults": defaults, "overrides": []}


def _target_json(target: Target, ref: str, instant: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "datasource": dict(DATASOURCE),
        "refId": ref,
        "expr": target.expr,
        "legendFormat": target.legend,
        "editorMode": "code",
        "range": not instant,
        "instant": instant,
    }
    if target.heatmap:
        body["format"] = "heatmap"
    return body


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    instant = panel.kind in {"stat", "gauge", "bargauge"}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": dict(DATASOURCE),
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [
            _target_json(t, chr(ord("A") + i), instant) for i, t in enumerate(panel.targets)
        ],
        "fieldConfig": _field_config(panel),
        "options": _options(panel),
    }


def render_dashboard(dashboard: Dashboard) -> dict[str, Any]:
    """Lay out the rows and panels of `dashboard` into Grafana dashboard JSON."""
    panels: list[dict[str, Any]] = []
    panel_id, y = 1, 0
    for row in dashboard.rows:
        panels.append(
            {
                "id": panel_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        panel_id, y = panel_id + 1, y + 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, line_height = 0, y + line_height, 0
            panels.append(_panel_json(panel, panel_id, x, y))
            panel_id, x = panel_id + 1, x + panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["neonpro", "ai-chat", dashboard.name],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": dashboard.time_from, "to": "now"},
        "timepicker": {},
        "templating": {"list": []},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "type": "dashboards",
                "title": "AI Chat dashboards",
                "tags": ["ai-chat"],
                "asDropdown": False,
                "includeVars": False,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "panels": panels,
    }


def dashboards() -> list[Dashboard]:
    """The three dashboards of the deployment plan."""
    return [_operations(), _business(), _technical()]


def rendered_files() -> dict[Path, str]:
    """The JSON text of every dashboard file, keyed by path."""
    return {
        DASHBOARDS_DIR / f"{d.name}.json": json.dumps(
            render_dashboard(d), indent=2, ensure_ascii=False
        )
        + "\n"
        for d in dashboards()
    }


def main(argv: list[str] | None = None) -> int:
    """Write the dashboard JSON files, or with --check report whether they are current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a JSON file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered_files().items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale dashboards: {', '.join(stale)}: run build_dashboards.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
