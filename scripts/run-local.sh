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
mkdir -p var

"$PY" manage.py migrate --noinput
"$PY" manage.py seed_demo

sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -z "${OPENAI_API_KEY:-}" ] && [ -z "${ANTHROPIC_API_KEY:-}" ]; then
  echo "No OPENAI_API_KEY or ANTHROPIC_API_KEY set: answers come from the SIMULATED provider."
  "$PY" -m chat.simulated_provider --host 127.0.0.1 --port "$SIM_PORT" --token-delay-ms 25 &
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
echo
# daphne with bounded request bodies and JSON logs (neonpro/server.py).
"$VENV/bin/python" -m neonpro.server -b 127.0.0.1 -p "$PORT" neonpro.asgi:application
