#!/usr/bin/env bash
# Runs NeonPro AI Chat locally: migrates, seeds the demo clinic and users,
# starts the simulated AI provider when no API keys are configured, and serves
# the ASGI app with daphne on http://127.0.0.1:8000/.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

export DEBUG=${DEBUG:-true}
export SECURE_SSL_REDIRECT=${SECURE_SSL_REDIRECT:-false}
PORT=${PORT:-8000}
SIM_PORT=${SIMULATED_PROVIDER_PORT:-8765}
export SIMULATED_PROVIDER_URL=${SIMULATED_PROVIDER_URL:-http://127.0.0.1:$SIM_PORT}
VAR_DIR=${NEONPRO_VAR_DIR:-var}
mkdir -p "$VAR_DIR"

# The audit-anchor key (AUDIT_ANCHOR_KEY): generated once, kept outside the
# database; DEBUG runs read var/audit-anchor.key when the variable is unset.
ANCHOR_KEY_FILE="$VAR_DIR/audit-anchor.key"
if [ -z "${AUDIT_ANCHOR_KEY:-}${AUDIT_ANCHOR_KEY_FILE:-}" ] && [ ! -s "$ANCHOR_KEY_FILE" ]; then
  mkdir -p "$(dirname "$ANCHOR_KEY_FILE")"
  (umask 077 && "$PY" -c "import secrets; print(secrets.token_urlsafe(48))" > "$ANCHOR_KEY_FILE")
  echo "Generated the audit-anchor key in $ANCHOR_KEY_FILE."
fi

"$PY" manage.py migrate --noinput
"$PY" manage.py seed_demo
# A refusal must not stop the app: after deleting var/neonpro.sqlite3 the old
# anchors describe a chain that no longer exists (move var/audit-anchors away).
"$PY" manage.py anchor_audit_chain || echo "Audit chain not anchored: see the message above."
# Health details and /api/metrics need a token here too: one is generated on the
# first run, printed with the demo passwords, and reused afterwards.
if [ -z "${MONITORING_TOKEN:-}" ] && [ -z "${MONITORING_TOKEN_FILE:-}" ]; then
  "$PY" manage.py ensure_monitoring_token --file "$VAR_DIR/monitoring-token"
  export MONITORING_TOKEN_FILE="$VAR_DIR/monitoring-token"
fi

sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -z "${OPENAI_API_KEY:-}" ] && [ -z "${ANTHROPIC_API_KEY:-}" ]; then
  echo "No OPENAI_API_KEY or ANTHROPIC_API_KEY set: answers come from the SIMULATED provider."
  "$PY" -m simulated_provider --host 127.0.0.1 --port "$SIM_PORT" --token-delay-ms 25 &
  sim_pid=$!
fi

echo
echo "NeonPro AI Chat: http://127.0.0.1:$PORT/   (admin: http://127.0.0.1:$PORT/admin/)"
if [ -n "${DEMO_PASSWORD:-}" ]; then
  echo "Log in as clinician, officer or ops with the password in DEMO_PASSWORD."
else
  echo "Log in as clinician, officer or ops with the passwords printed above on the first run"
  echo "(set DEMO_PASSWORD and run again to choose them)."
fi
if [ -n "${MONITORING_TOKEN_FILE:-}" ]; then
  echo "Health details and metrics: curl -H \"Authorization: Bearer \$(cat $MONITORING_TOKEN_FILE)\" http://127.0.0.1:$PORT/api/health"
fi
echo
# daphne with bounded request bodies and JSON logs (neonpro/server.py).
"$VENV/bin/python" -m neonpro.server -b 127.0.0.1 -p "$PORT" neonpro.asgi:application
