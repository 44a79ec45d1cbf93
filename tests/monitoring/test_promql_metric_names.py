"""Every metric named by an alert rule or a dashboard query is one the application exports.

The exported names come from the prometheus_client registry after the
application's metric modules are loaded as at runtime (monitoring.metrics,
django-prometheus's middleware, database and cache backends), plus the
collectors being written (ADDITIONAL_EXPORTED), the recording rules and `up`.
PromQL is not parsed by any tool we have, so a small tokenizer removes
strings, label matchers, ranges, grouping clauses and functions and keeps the
metric names; its own tests below show it neither misses nor invents names.
The same module checks the dashboards' Grafana structure.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "monitoring" / "prometheus" / "ai-chat-rules.yml"
DASHBOARDS_DIR = ROOT / "monitoring" / "dashboards"
DASHBOARD_FILES = sorted(DASHBOARDS_DIR.glob("*.json"))
DATASOURCES_FILE = DASHBOARDS_DIR / "provisioning" / "datasources" / "neonpro.yaml"
PROVIDERS_FILE = DASHBOARDS_DIR / "provisioning" / "dashboards" / "neonpro.yaml"

# Exported by collectors computed at scrape time. Must match
# monitoring/collectors.py (being written); sample names as exposed. The
# circuit state (ai_chat_provider_circuit_state) and provider auth failures
# are defined in monitoring/metrics.py and found in the registry instead.
ADDITIONAL_EXPORTED = {
    "ai_chat_sessions_total",  # gauge {status}: active / expired / closed, from the database
    "ai_chat_session_utilization",  # gauge: percent of AI_SESSION_CAPACITY in use
    "ai_chat_provider_quota_remaining",  # gauge {provider, kind}: kind tokens | requests
    "ai_chat_process_memory_usage_percent",  # gauge: process RSS / memory limit
    "ai_chat_db_up",  # gauge: 1/0 from the last database check
}
# Series Prometheus itself creates for every target.
PROMETHEUS_GENERATED = {"up"}

PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "end", "exp", "floor", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
    "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
    "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
    "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "start", "stddev_over_time",
    "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
}  # fmt: skip
PROMQL_AGGREGATIONS = {
    "avg", "bottomk", "count", "count_values", "group", "max", "min", "quantile", "stddev",
    "stdvar", "sum", "topk",
}  # fmt: skip
PROMQL_KEYWORDS = {
    "and", "atan2", "bool", "by", "group_left", "group_right", "ignoring", "inf", "nan",
    "offset", "on", "or", "unless", "without",
}  # fmt: skip

_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
_NAME_MATCHER = re.compile(rf"__name__\s*(=~|!~|!=|=)\s*({_STRING})")
_STRINGS = re.compile(_STRING)
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_GRAFANA_LABEL_VALUES = re.compile(r"\blabel_values\s*\(\s*([^,()]*?)\s*(?:,\s*\w+\s*)?\)")
_TOKEN = re.compile(
    r"""
    (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:ms|[smhdwy])*)
    |(?P<variable>\$\{[^}]*\}|\$\w+)
    |(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<open>\()
    |(?P<other>\S)
    """,
    re.VERBOSE,
)


class UnknownFunctionError(ValueError):
    """A PromQL call of a function that does not exist (a typo the query would hit)."""


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (Grafana variables allowed)."""
    names: set[str] = set()
    for op, literal in _NAME_MATCHER.findall(expr):
        if op != "=":
            raise ValueError(f"cannot check a {op} __name__ matcher: {expr}")
        names.add(literal[1:-1])
    text = _GRAFANA_LABEL_VALUES.sub(r"\1", expr)
    text = _STRINGS.sub(" ", text)
    while _BRACES.search(text):
        text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    for i, (kind, value) in enumerate(tokens):
        if kind != "name":
            continue
        called = i + 1 < len(tokens) and tokens[i + 1][0] == "open"
        if called:
            if value not in PROMQL_FUNCTIONS | PROMQL_AGGREGATIONS:
                raise UnknownFunctionError(f"unknown PromQL function {value!r} in: {expr}")
        elif value.lower() not in PROMQL_KEYWORDS:
            names.add(value)
    return names


# --- what the application exports ----------------------------------------------------------


def _family_sample_names(family: Any) -> set[str]:
    # describe() gives families without samples: derive what the exposition shows.
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "summary": ("", "_sum", "_count"),
        "info": ("_info",),
    }.get(family.type, ("",))
    names = {family.name + s for s in suffixes}
    # `_created` samples are not exported in multi-process mode: never rely on them.
    names |= {s.name for s in family.samples if not s.name.endswith("_created")}
    return names


def _load_runtime_metric_modules() -> None:
    """Register every metric family the running application registers."""
    from django.conf import settings
    from django.core.cache import caches
    from django.db import connections
    from django.utils.module_loading import import_string

    importlib.import_module("monitoring.metrics")
    if importlib.util.find_spec("monitoring.collectors") is not None:
        importlib.import_module("monitoring.collectors")
    for path in settings.MIDDLEWARE:
        if path.startswith("django_prometheus."):
            import_string(path).metrics_cls.get_instance()
    for alias in connections:
        connections[alias]  # loads the backend (django_prometheus.db metrics); no connection
    for alias in settings.CACHES:
        caches[alias]


@pytest.fixture(scope="module")
def exported() -> set[str]:
    from prometheus_client import REGISTRY

    _load_runtime_metric_modules()
    names: set[str] = set()
    # describe() where a collector has it, so collectors that query the database
    # at scrape time are not run (this test has no database).
    for collector in list(REGISTRY._collector_to_names):
        describe = getattr(collector, "describe", None)
        for family in describe() if describe else collector.collect():
            names |= _family_sample_names(family)
    return names | ADDITIONAL_EXPORTED | PROMETHEUS_GENERATED | set(_recording_rules())


# --- where queries are ------------------------------------------------------------------


def _rules() -> dict[str, Any]:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


def _recording_rules() -> dict[str, str]:
    return {r["record"]: r["expr"] for g in _rules()["groups"] for r in g["rules"] if "record" in r}


def _rule_exprs() -> list[tuple[str, str]]:
    return [
        (r.get("alert") or r["record"], r["expr"]) for g in _rules()["groups"] for r in g["rules"]
    ]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels += panel.get("panels", [])  # collapsed rows keep their panels inside
    return panels


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query":
            text = query.get("query", "") if isinstance(query, dict) else query
            found.append((f"${variable['name']}", text))
    return found


def _unknown(exprs: list[tuple[str, str]], exported: set[str]) -> dict[str, set[str]]:
    unknown: dict[str, set[str]] = {}
    for where, expr in exprs:
        missing = metric_names(expr) - exported
        if missing:
            unknown.setdefault(where, set()).update(missing)
    return unknown


# --- the tokenizer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up == 0", {"up"}),
        ('up{job="ai-chat"} == 0 or absent(up{job="ai-chat"})', {"up"}),
        (
            "histogram_quantile(0.95, sum by (le, provider) "
            '(rate(a_bucket{le!="+Inf", provider=~"open.*|x"}[5m] offset 1h)))',
            {"a_bucket"},
        ),
        (
            "sum(rate(b_total[$__rate_interval])) by (le) / on (job) group_left(instance) c",
            {
                "b_total",
                "c",
            },
        ),
        ('label_replace(up{job="a"}, "dst", "$1 rate(fake_total[5m])", "src", "(.*)")', {"up"}),
        ('{__name__="by_name_total", job="x"}', {"by_name_total"}),
        ("x > bool 1e3 and y unless z offset 5m", {"x", "y", "z"}),
        ("max_over_time(q[1h:5m]) @ end()", {"q"}),
        ("ai_chat:error_ratio:rate5m > 0.05", {"ai_chat:error_ratio:rate5m"}),
        ("sum without (instance) (a) * ignoring(job) b", {"a", "b"}),
        ('count_values("value", x) + topk(5, y) - 0x1F * 1h30m', {"x", "y"}),
        ("(sum(increase(p[5m])) or vector(0)) + NaN - Inf > -inf", {"p"}),
        (
            "label_values(ai_chat_provider_circuit_state, provider)",
            {"ai_chat_provider_circuit_state"},
        ),
        ("rate(${metric}[5m]) + $other", set()),
    ],
)
def test_it_extracts_exactly_the_metric_names_of_an_expression(expr, expected):
    assert metric_names(expr) == expected


def test_it_rejects_a_misspelt_function():
    with pytest.raises(UnknownFunctionError):
        metric_names("histogram_quantle(0.95, sum by (le) (rate(x_bucket[5m])))")


def test_it_rejects_a_regex_name_matcher_it_cannot_check():
    with pytest.raises(ValueError, match="__name__"):
        metric_names('{__name__=~"ai_chat_.*"}')


# --- the checks ---------------------------------------------------------------------------


def test_it_knows_the_metrics_the_application_module_defines(exported):
    # Counters gain _total, histograms _bucket/_sum/_count: proof the registry walk works.
    assert {
        "ai_chat_messages_total",
        "ai_chat_sessions_created_total",
        "ai_chat_messages_response_time_seconds_bucket",
        "ai_chat_websocket_connections",
        "django_http_requests_total_by_method_total",
        "django_db_query_duration_seconds_bucket",
    } <= exported
    assert "ai_chat_messages" not in exported


def test_it_finds_no_unknown_metric_in_the_alert_rules(exported):
    unknown = _unknown(_rule_exprs(), exported)
    assert unknown == {}, f"rules name metrics the application does not export: {unknown}"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_it_finds_no_unknown_metric_in_the_dashboard(path, exported):
    unknown = _unknown(_dashboard_exprs(_dashboard(path)), exported)
    assert unknown == {}, (
        f"{path.name} queries metrics the application does not export (panel: names). "
        f"Export them (monitoring/metrics.py, monitoring/collectors.py, a django-prometheus "
        f"cache backend) or change the panel: {unknown}"
    )


# --- the dashboards as Grafana objects ---------------------------------------------------


def _prometheus_uid() -> str:
    provisioning = yaml.safe_load(DATASOURCES_FILE.read_text(encoding="utf-8"))
    (prometheus,) = [d for d in provisioning["datasources"] if d["type"] == "prometheus"]
    return prometheus["uid"]


def test_it_provisions_the_three_dashboards_of_the_deployment_plan():
    assert [p.name for p in DASHBOARD_FILES] == [
        "business.json",
        "operations.json",
        "technical.json",
    ]
    providers = yaml.safe_load(PROVIDERS_FILE.read_text(encoding="utf-8"))["providers"]
    assert [p["type"] for p in providers] == ["file"]
    uids = [_dashboard(p)["uid"] for p in DASHBOARD_FILES]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_it_builds_valid_grafana_json_on_the_provisioned_datasource(path):
    dashboard = _dashboard(path)
    uid = _prometheus_uid()
    assert dashboard["schemaVersion"] == 39
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    assert dashboard["title"]
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(set(ids)) == len(ids), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in _panels(dashboard):
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
            assert target["expr"].strip(), panel["title"]


# Per dashboard, what the deployment plan lists, as the metric that shows it.
PLAN_PANELS = {
    "operations.json": {
        "system health": "up",
        "database health": "ai_chat_db_up",
        "active session count": "ai_chat_sessions_total",
        "request rate": "django_http_requests_total_by_method_total",
        "response times": "ai_chat_response_time_p95",
        "error rates and types": "ai_chat_errors_total",
        "resource utilisation (memory)": "ai_chat_process_memory_usage_percent",
        "resource utilisation (CPU)": "process_cpu_seconds_total",
        "resource utilisation (database)": "django_db_new_connections_total",
        "provider response times": "ai_chat_messages_response_time_seconds_bucket",
        "provider success/failure": "ai_chat_provider_requests_total",
        "provider errors": "ai_chat_provider_errors_total",
        "circuit breakers": "ai_chat_provider_circuit_state",
        "quota usage": "ai_chat_provider_quota_remaining",
        "failover frequency": "ai_chat_provider_failovers_total",
        "cost tracking": "ai_chat_cost_usd_total",
    },
    "business.json": {
        "message volume": "ai_chat_messages_total",
        "session duration distribution": "ai_chat_sessions_duration_seconds_bucket",
        "PII detection rates by type": "ai_chat_pii_detections_total",
        "consent validations": "ai_chat_consent_validations_total",
        "audit events": "ai_chat_audit_events_total",
        "retention purge": "ai_chat_retention_purged_total",
    },
    "technical.json": {
        "response time percentiles": "ai_chat_messages_response_time_seconds_bucket",
        "database query performance": "django_db_query_duration_seconds_bucket",
        "cache hit rates": "django_cache_get_hits_total",
        "memory usage": "ai_chat_process_memory_usage_percent",
        "garbage collection": "python_gc_collections_total",
        "authentication failures": "django_http_responses_total_by_status_total",
        "provider authentication failures": "ai_chat_provider_auth_failures_total",
        "rate-limit activations": "ai_chat_errors_total",
    },
}


@pytest.mark.parametrize("name", sorted(PLAN_PANELS))
def test_it_shows_what_the_deployment_plan_lists_on_the_dashboard(name):
    shown = set().union(
        *(metric_names(e) for _, e in _dashboard_exprs(_dashboard(DASHBOARDS_DIR / name)))
    )
    missing = {topic: metric for topic, metric in PLAN_PANELS[name].items() if metric not in shown}
    assert missing == {}


def test_it_keeps_the_dashboard_json_in_step_with_its_builder():
    script = DASHBOARDS_DIR / "build_dashboards.py"
    result = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
