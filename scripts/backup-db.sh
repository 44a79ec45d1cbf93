#!/usr/bin/env bash
# Consistent logical backup of the NeonPro AI Chat PostgreSQL database.
#
#   scripts/backup-db.sh [OUTPUT_FILE]
#
# pg_dump reads the whole database inside one REPEATABLE READ transaction, so
# the dump is a consistent snapshot even while clinicians keep chatting:
# every message has its answer row, every audit event its predecessor.
# The archive is in custom format (restore with scripts/restore-db.sh), is
# checked with `pg_restore --list` before it is moved into place, and gets a
# SHA-256 file beside it.
#
# Database: BACKUP_DATABASE_URL, else DATABASE_DIRECT_URL, else DATABASE_URL.
# Connect to PostgreSQL directly, not through PgBouncer: in transaction pooling
# the session settings pg_dump makes would not stay on its connection.
# The URL is visible in this host's process list; on a shared host leave the
# password out of it and use ~/.pgpass or PGPASSWORD.
#
# The dump holds personal health data: store it encrypted, with access limited
# to operations, and delete it on the retention schedule. Message text in it is
# encrypted with ENCRYPTION_KEY: without every key that encrypted it, a backup
# cannot be read.
set -euo pipefail
umask 077

url="${BACKUP_DATABASE_URL:-${DATABASE_DIRECT_URL:-${DATABASE_URL:-}}}"
if [ -z "$url" ]; then
  echo "backup-db: set BACKUP_DATABASE_URL, DATABASE_DIRECT_URL or DATABASE_URL" >&2
  exit 2
fi
case "$url" in
  postgres://* | postgresql://*) ;;
  *) echo "backup-db: the database URL is not a PostgreSQL URL" >&2; exit 2 ;;
esac
case "$url" in
  *:6432/*) echo "backup-db: warning: port 6432 looks like PgBouncer; use the direct URL" >&2 ;;
esac

out="${1:-neonpro-$(date -u +%Y%m%dT%H%M%SZ).dump}"
dir="$(dirname -- "$out")"
base="$(basename -- "$out")"
mkdir -p -- "$dir"
tmp="$(mktemp "$dir/.$base.XXXXXX")"
trap 'rm -f -- "$tmp"' EXIT

started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
pg_dump --format=custom --compress=6 --no-password --dbname="$url" --file="$tmp"
# A truncated or unreadable archive must never replace a good one.
pg_restore --list "$tmp" >/dev/null
mv -f -- "$tmp" "$out"
trap - EXIT
(cd -- "$dir" && sha256sum -- "$base" >"$base.sha256")

size="$(du -h -- "$out" | cut -f1)"
echo "backup-db: wrote $out ($size; snapshot of $started UTC; checksum in $out.sha256)"
echo "backup-db: restoring it needs the same ENCRYPTION_KEY (every key that encrypted its data)."
