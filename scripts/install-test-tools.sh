#!/usr/bin/env bash
# System tools the test suite uses: Chromium (UI tests), promtool and amtool
# (alert rules), pgbouncer (pooling tests), gettext (translations), nginx (reverse
# proxy tests).
# Installed from Debian packages when missing and we are allowed to.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
command -v msgfmt >/dev/null || missing+=(gettext)
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v pg_dump >/dev/null || missing+=(postgresql-client)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "Missing system packages: ${missing[*]} (install them with your package manager)" >&2
  exit 1
fi
echo "Installing system packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
