"""Render monitoring/ai-chat-alerts.yaml (PrometheusRule) from ai-chat-rules.yml.

The plain rules file is what Prometheus loads and what promtool checks and
tests; the Kubernetes manifest wraps the very same groups. The groups are
copied as text, indented under `spec:`, so the comments that explain each rule
survive in the manifest too.

    python monitoring/prometheus/render_manifest.py          # write the manifest
    python monitoring/prometheus/render_manifest.py --check  # exit 1 if stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROMETHEUS_DIR = Path(__file__).resolve().parent
RULES_FILE = PROMETHEUS_DIR / "ai-chat-rules.yml"
MANIFEST_FILE = PROMETHEUS_DIR.parent / "ai-chat-alerts.yaml"

_HEADER = """\
# NeonPro AI Chat alert and recording rules as a Prometheus Operator resource:
#   kubectl apply -f monitoring/ai-chat-alerts.yaml
#
# GENERATED from monitoring/prometheus/ai-chat-rules.yml by
# monitoring/prometheus/render_manifest.py. Edit the rules file, then re-run
# the script; a test fails when this file is stale.
#
# The metadata labels must match the ruleSelector of your Prometheus resource
# (kube-prometheus selects prometheus=k8s, role=alert-rules).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: ai-chat-alerts
  labels:
    app.kubernetes.io/name: ai-chat
    app.kubernetes.io/part-of: neonpro
    prometheus: k8s
    role: alert-rules
spec:
"""


def render_manifest(rules_text: str) -> str:
    """Return the PrometheusRule manifest wrapping the `groups:` of `rules_text`."""
    lines = rules_text.splitlines()
    try:
        start = lines.index("groups:")
    except ValueError:
        raise ValueError("the rules file has no top-level 'groups:' line") from None
    # Uniform indentation keeps YAML structure, block scalars included.
    body = "\n".join(f"  {line}" if line.strip() else "" for line in lines[start:])
    return _HEADER + body + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the manifest, or with --check report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the manifest is stale")
    args = parser.parse_args(argv)
    expected = render_manifest(RULES_FILE.read_text(encoding="utf-8"))
    if args.check:
        current = MANIFEST_FILE.read_text(encoding="utf-8") if MANIFEST_FILE.exists() else ""
        if current != expected:
            print(f"{MANIFEST_FILE.name} is stale: run render_manifest.py", file=sys.stderr)
            return 1
        return 0
    MANIFEST_FILE.write_text(expected, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
