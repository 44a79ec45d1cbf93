"""Alert rules, Prometheus and Alertmanager configuration, checked with the real tools.

promtool (Debian package `prometheus`) checks the rules and runs the unit tests
in monitoring/tests/; amtool and the Alertmanager binary (Debian package
`prometheus-alertmanager`) check routing and inhibition. The tools are part of
the test toolchain: a missing tool is a failure, not a skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
RULES_FILE = MONITORING / "prometheus" / "ai-chat-rules.yml"
MANIFEST_FILE = MONITORING / "ai-chat-alerts.yaml"
PROMETHEUS_CONFIG = MONITORING / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = MONITORING / "prometheus" / "alertmanager.yml"
PROMTOOL_TESTS_DIR = MONITORING / "tests"
RUNBOOK = ROOT / "docs" / "runbook.md"

# The deployment plan's alerts: name -> (severity, for, threshold in the expression).
PLAN_ALERTS = {
    "AIChatServiceDown": ("critical", "30s", 'up{job="ai-chat"} == 0'),
    "DatabaseConnectionFailure": ("critical", "1m", "> 10"),
    "HighResponseTime": ("critical", "2m", "ai_chat_response_time_p95 > 4"),
    "HighErrorRate": ("critical", "1m", "> 0.05"),
    "ElevatedResponseTime": ("warning", "5m", "ai_chat_response_time_p95 > 2.5"),
    "HighMemoryUsage": ("warning", "5m", "ai_chat_process_memory_usage_percent > 80"),
    "HighSessionCapacity": ("warning", "5m", "> 80"),
    "PIIRedactionFailure": (
        "critical",
        "0s",
        "rate(ai_chat_pii_redaction_failures_total[5m]) > 0",
    ),
    "AuditLoggingFailure": ("critical", "0s", "rate(ai_chat_audit_failures_total[5m]) > 0"),
}

# The plan's automated rollback triggers: alert -> (for, what the expression must say).
ROLLBACK_TRIGGERS = {
    "AIChatRollbackHighResponseTime": ("5m", ["ai_chat_response_time_p95 > 5"]),
    "AIChatRollbackHighErrorRate": ("2m", ["ai_chat:error_ratio:rate5m > 0.10"]),
    "AIChatRollbackMemoryExhaustion": ("1m", ["ai_chat_process_memory_usage_percent > 95"]),
    "AIChatRollbackDatabaseConnectivityLost": ("1m", ["ai_chat_db_up == 0"]),
    "AIChatRollbackProviderAuthFailure": (
        "0s",
        ["increase(ai_chat_provider_auth_failures_total[5m])"],
    ),
    "AIChatRollbackComplianceViolation": (
        "0s",
        [
            "increase(ai_chat_pii_redaction_failures_total[5m])",
            "increase(ai_chat_audit_failures_total[5m])",
        ],
    ),
}

TEAMS = {"operations", "security", "compliance", "product"}
CONTACTS = {
    "operations": "devops@neonpro.com.br",
    "security": "security@neonpro.com.br",
    "compliance": "legal@neonpro.com.br",
    "product": "product@neonpro.com.br",
}


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed. It is part of the test toolchain: install Debian's "
            f"'{package}' package (scripts/install-test-tools.sh does it)."
        )
    return path


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed tool paths and our own files
        args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _rules() -> dict[str, Any]:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


def _alert_rules() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in _rules()["groups"] for r in g["rules"] if "alert" in r}


def _recording_rules() -> dict[str, dict[str, Any]]:
    return {r["record"]: r for g in _rules()["groups"] for r in g["rules"] if "record" in r}


def _promtool_test_files() -> list[Path]:
    return sorted(PROMTOOL_TESTS_DIR.glob("*.test.yml"))


def _github_anchors(markdown: str) -> set[str]:
    """Heading anchors as GitHub renders them (lowercase, punctuation dropped, '-' for ' ')."""
    anchors: set[str] = set()
    in_fence = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in anchors:
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return anchors


# --- promtool ------------------------------------------------------------------


def test_it_passes_promtool_check_rules():
    promtool = _tool("promtool", "prometheus")
    result = _run([promtool, "check", "rules", str(RULES_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    expected = len(_alert_rules()) + len(_recording_rules())
    assert f"SUCCESS: {expected} rules found" in result.stdout, result.stdout


def test_it_passes_every_promtool_unit_test():
    promtool = _tool("promtool", "prometheus")
    files = _promtool_test_files()
    assert files, "no promtool unit tests in monitoring/tests/"
    result = _run([promtool, "test", "rules", *(f.name for f in files)], cwd=PROMTOOL_TESTS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


def test_it_reports_a_promtool_unit_test_whose_expectation_is_wrong(tmp_path):
    promtool = _tool("promtool", "prometheus")
    wrong = {
        "rule_files": [str(RULES_FILE)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {
                        "series": 'ai_chat_db_up{job="ai-chat", instance="web-1:8000"}',
                        "values": "1x20",
                    }
                ],
                # The database is up: expecting the rollback alert must fail.
                "alert_rule_test": [
                    {
                        "eval_time": "3m",
                        "alertname": "AIChatRollbackDatabaseConnectivityLost",
                        "exp_alerts": [{"exp_labels": {"instance": "web-1:8000"}}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "wrong.test.yml"
    path.write_text(yaml.safe_dump(wrong), encoding="utf-8")
    result = _run([promtool, "test", "rules", str(path)])
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_it_unit_tests_every_alert_both_firing_and_quiet():
    firing: set[str] = set()
    quiet: set[str] = set()
    tested_exprs: list[str] = []
    for path in _promtool_test_files():
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
            tested_exprs += [c["expr"] for c in case.get("promql_expr_test", [])]
    alerts = set(_alert_rules())
    assert alerts - firing == set(), "alerts never shown firing in a promtool test"
    assert alerts - quiet == set(), "alerts never shown staying quiet in a promtool test"
    untested = {r for r in _recording_rules() if not any(r in e for e in tested_exprs)}
    assert untested == set(), "recording rules without a promql_expr_test"


# --- the deployment plan's contract ----------------------------------------------


@pytest.mark.parametrize("name", sorted(PLAN_ALERTS))
def test_it_keeps_the_deployment_plan_alert(name):
    severity, duration, condition = PLAN_ALERTS[name]
    rule = _alert_rules().get(name)
    assert rule is not None, f"{name} is missing"
    assert rule["labels"]["severity"] == severity
    assert rule.get("for", "0s") == duration
    assert condition in " ".join(rule["expr"].split())


def test_it_defines_the_p95_as_a_recording_rule_over_the_response_time_histogram():
    expr = " ".join(_recording_rules()["ai_chat_response_time_p95"]["expr"].split())
    assert expr.startswith("histogram_quantile(0.95, sum by (le) (rate(")
    assert "ai_chat_messages_response_time_seconds_bucket[5m]" in expr


def test_it_counts_database_failures_within_a_window_not_since_process_start():
    rule = _alert_rules()["DatabaseConnectionFailure"]
    assert "increase(ai_chat_db_connections_failed_total[5m])" in rule["expr"]
    assert "counter never resets" in " ".join(rule["annotations"]["description"].split())


def test_it_measures_the_error_rate_as_server_errors_over_user_messages():
    expr = " ".join(_recording_rules()["ai_chat:error_ratio:rate5m"]["expr"].split())
    numerator, denominator = expr.split(" / ")
    assert "ai_chat_errors_total" in numerator and 'type!~"' in numerator
    assert 'ai_chat_messages_total{role="user"}' in denominator
    assert "ai_chat:error_ratio:rate5m > 0.05" in _alert_rules()["HighErrorRate"]["expr"]


def test_it_marks_exactly_the_rollback_triggers_of_the_deployment_plan():
    rules = _alert_rules()
    marked = {name for name, r in rules.items() if r["labels"].get("rollback") == "true"}
    assert marked == set(ROLLBACK_TRIGGERS)
    for name, (duration, parts) in ROLLBACK_TRIGGERS.items():
        rule = rules[name]
        assert rule.get("for", "0s") == duration, name
        assert rule["labels"]["severity"] == "critical", name
        for part in parts:
            assert part in " ".join(rule["expr"].split()), (name, part)
    others = {r["labels"].get("rollback") for n, r in rules.items() if n not in marked}
    assert others == {None}


def test_it_labels_and_annotates_every_alert_for_routing_and_the_runbook():
    anchors = _github_anchors(RUNBOOK.read_text(encoding="utf-8"))
    for name, rule in _alert_rules().items():
        labels, notes = rule["labels"], rule["annotations"]
        assert labels["severity"] in {"critical", "warning"}, name
        assert labels["team"] in TEAMS, name
        assert re.fullmatch(r"[a-z_]+", labels["category"]), name
        assert notes["summary"] and notes["description"], name
        page, _, anchor = notes["runbook_url"].partition("#")
        assert page == "docs/runbook.md", name
        assert anchor == name.lower() and anchor in anchors, f"{name}: no runbook section"


def test_it_gives_each_warning_with_a_critical_sibling_the_same_category():
    # Inhibition works on category: the critical alert must share it.
    rules = _alert_rules()
    for warning, critical in [
        ("ElevatedResponseTime", "HighResponseTime"),
        ("HighMemoryUsage", "AIChatRollbackMemoryExhaustion"),
    ]:
        assert rules[warning]["labels"]["category"] == rules[critical]["labels"]["category"]


def test_it_renders_the_prometheus_rule_manifest_from_the_rules_file():
    manifest = yaml.safe_load(MANIFEST_FILE.read_text(encoding="utf-8"))
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["name"] == "ai-chat-alerts"
    assert manifest["spec"]["groups"] == _rules()["groups"]
    script = MONITORING / "prometheus" / "render_manifest.py"
    result = _run([sys.executable, str(script), "--check"])
    assert result.returncode == 0, result.stderr


# --- Prometheus configuration ----------------------------------------------------------


def test_it_passes_promtool_check_config_with_the_rules_loaded(tmp_path):
    promtool = _tool("promtool", "prometheus")
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    # The token file is a deployment secret: point the check at a stand-in.
    token = tmp_path / "monitoring_token"
    token.write_text("test-token", encoding="utf-8")
    for job in config["scrape_configs"]:
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(token)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    shutil.copy(RULES_FILE, tmp_path / RULES_FILE.name)
    result = _run([promtool, "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout, result.stdout


def test_it_scrapes_the_web_processes_with_the_monitoring_token_and_the_worker():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    web = jobs["ai-chat"]
    assert web["metrics_path"] == "/api/metrics"
    assert web["authorization"]["type"] == "Bearer"
    assert web["dns_sd_configs"][0]["names"] == ["web"]
    assert jobs["ai-chat-worker"]["dns_sd_configs"][0]["names"] == ["worker"]
    assert config["rule_files"] == [RULES_FILE.name]


# --- Alertmanager ------------------------------------------------------------------------


def test_it_passes_amtool_check_config():
    amtool = _tool("amtool", "prometheus-alertmanager")
    result = _run([amtool, "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"severity": "critical", "team": "operations"}, "operations"),
        ({"severity": "warning", "team": "operations"}, "operations"),
        ({"severity": "critical", "team": "compliance"}, "compliance,operations"),
        ({"severity": "critical", "team": "security"}, "security,operations"),
        ({"severity": "warning", "team": "product"}, "product,operations"),
        ({"alertname": "Unlabelled"}, "operations"),
    ],
)
def test_it_routes_alerts_to_their_team_and_always_to_operations(labels, receivers):
    amtool = _tool("amtool", "prometheus-alertmanager")
    args = [f"{k}={v}" for k, v in labels.items()]
    result = _run(
        [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *args]
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receivers


def test_it_routes_every_alert_of_the_rules_to_its_team():
    amtool = _tool("amtool", "prometheus-alertmanager")
    for name, rule in _alert_rules().items():
        labels = [f"alertname={name}", *(f"{k}={v}" for k, v in rule["labels"].items())]
        result = _run(
            [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels]
        )
        receivers = result.stdout.strip().split(",")
        assert rule["labels"]["team"] in receivers, (name, receivers)
        assert "operations" in receivers, (name, receivers)


def test_it_sends_each_receiver_to_the_deployment_plan_contact():
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    addresses = {r["name"]: [e["to"] for e in r["email_configs"]] for r in config["receivers"]}
    assert addresses == {team: [email] for team, email in CONTACTS.items()}


def _durations(route: dict[str, Any], inherited: dict[str, str]) -> list[tuple[str, dict]]:
    """(matchers, effective timings) of every route, children inheriting from parents."""
    own = {k: route.get(k, inherited.get(k)) for k in ("group_wait", "repeat_interval")}
    found = [(" ".join(route.get("matchers", [])), own)]
    for child in route.get("routes", []):
        found += _durations(child, own)
    return found


def _seconds(value: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", value))


def test_it_notifies_critical_alerts_fast_and_repeats_them_often():
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    for matchers, timing in _durations(config["route"], {}):
        if 'severity="critical"' in matchers:
            assert _seconds(timing["group_wait"]) <= 10, matchers
            assert _seconds(timing["repeat_interval"]) <= 30 * 60, matchers
        elif 'severity="warning"' in matchers:
            assert _seconds(timing["repeat_interval"]) >= 60 * 60, matchers


# A real Alertmanager, on loopback, fed alerts through its API: the inhibit rule
# must hide the warning of a family whose critical alert fires, and only that.



def _http(url: str, payload: Any = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback URL built here
        url, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture
def alertmanager(tmp_path):
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail(
            "the Alertmanager binary is not installed: install Debian's "
            "'prometheus-alertmanager' package (scripts/install-test-tools.sh does it)."
        )
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    # Never let a test mail leave the machine: a closed loopback port instead.
    config["global"]["smtp_smarthost"] = "127.0.0.1:9"
    config["global"].pop("smtp_auth_password_file", None)
    config["global"]["smtp_require_tls"] = False
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(  # noqa: S603
        [
            binary,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()  # noqa: S310
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    pytest.fail(f"Alertmanager did not start: {process.stderr.read().decode()}")
                time.sleep(0.1)  # polling readiness, not waiting for an outcome
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _alert(name: str, **labels: str) -> dict[str, Any]:
    rule = _alert_rules()[name]
    return {"labels": {"alertname": name, **rule["labels"], **labels}, "annotations": {}}


def test_it_inhibits_a_warning_only_while_a_critical_alert_of_its_family_fires(alertmanager):
    _http(
        f"{alertmanager}/api/v2/alerts",
        [
            _alert("HighResponseTime"),
            _alert("ElevatedResponseTime"),
            _alert("AIChatRollbackMemoryExhaustion", job="ai-chat", instance="web-1:8000"),
            _alert("HighMemoryUsage", job="ai-chat", instance="web-1:8000"),
            _alert("HighMemoryUsage", job="ai-chat", instance="web-2:8000"),
            _alert("HighSessionCapacity"),
        ],
    )
    alerts = _http(f"{alertmanager}/api/v2/alerts")
    state = {
        (a["labels"]["alertname"], a["labels"].get("instance", "")): a["status"]["state"]
        for a in alerts
    }
    assert state == {
        ("HighResponseTime", ""): "active",
        ("ElevatedResponseTime", ""): "suppressed",
        ("AIChatRollbackMemoryExhaustion", "web-1:8000"): "active",
        ("HighMemoryUsage", "web-1:8000"): "suppressed",
        ("HighMemoryUsage", "web-2:8000"): "active",
        ("HighSessionCapacity", ""): "active",
    }
    receivers = {
        a["labels"]["alertname"]: sorted(r["name"] for r in a["receivers"]) for a in alerts
    }
    assert receivers["HighSessionCapacity"] == ["operations", "product"]
