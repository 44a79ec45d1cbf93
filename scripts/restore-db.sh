#!/usr/bin/env bash
# Restore a backup of scripts/backup-db.sh into a fresh, empty PostgreSQL database.
#
#   scripts/restore-db.sh [--create] BACKUP_FILE [TARGET_DATABASE_URL] [-- PG_RESTORE_ARGS...]
#
# TARGET_DATABASE_URL defaults to RESTORE_DATABASE_URL. --create creates the
# target database first (through the server's "postgres" database). The target
# must be empty: this script never overwrites a database, so restore beside
# production, check, then switch DATABASE_URL (or PgBouncer's upstream) to it.
#
# The restore is one transaction that stops at the first error (pg_restore
# --single-transaction --exit-on-error): either everything is restored or
# nothing is. Objects are owned by the connecting user (--no-owner). Extra
# pg_restore arguments go after `--` (e.g. `-- --no-privileges` on a server
# without the original roles).
#
# Afterwards the application must run with the same ENCRYPTION_KEY (every key
# that encrypted data in the backup), or message text cannot be decrypted.
# Then: `manage.py migrate --check`, `manage.py verify_audit_chain`, re-apply
# erasures done since the backup, `manage.py purge_expired_data`, and
# `manage.py smoke_test` (docs/runbook.md, "Backup and restore").
set -euo pipefail

usage() {
  echo "usage: $0 [--create] BACKUP_FILE [TARGET_DATABASE_URL] [-- PG_RESTORE_ARGS...]" >&2
  exit 2
}

create=no
if [ "${1:-}" = "--create" ]; then create=yes; shift; fi
[ $# -ge 1 ] || usage
file="$1"; shift
url="${RESTORE_DATABASE_URL:-}"
if [ $# -ge 1 ] && [ "$1" != "--" ]; then url="$1"; shift; fi
extra=()
if [ "${1:-}" = "--" ]; then shift; extra=("$@"); fi

[ -n "$url" ] || { echo "restore-db: give TARGET_DATABASE_URL or set RESTORE_DATABASE_URL" >&2; exit 2; }
case "$url" in
  postgres://* | postgresql://*) ;;
  *) echo "restore-db: the target URL is not a PostgreSQL URL" >&2; exit 2 ;;
esac
[ -r "$file" ] || { echo "restore-db: cannot read $file" >&2; exit 2; }

if [ -f "$file.sha256" ]; then
  (cd -- "$(dirname -- "$file")" && sha256sum --check --status -- "$(basename -- "$file").sha256") \
    || { echo "restore-db: $file does not match its checksum" >&2; exit 3; }
fi
pg_restore --list "$file" >/dev/null || { echo "restore-db: $file is not a readable archive" >&2; exit 3; }

if [ "$create" = yes ]; then
  # postgres://user@host:port/NAME?query -> the database NAME and the same server's "postgres".
  no_query="${url%%\?*}"
  query=""
  [ "$no_query" != "$url" ] && query="?${url#*\?}"
  name="${no_query##*/}"
  createdb --maintenance-db="${no_query%/*}/postgres$query" -- "$name"
  echo "restore-db: created database $name"
fi

objects="$(psql --no-psqlrc --no-password -Atq --dbname="$url" -c \
  "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'")"
if [ "$objects" != "0" ]; then
  echo "restore-db: the target database is not empty ($objects objects): restore into a fresh one" >&2
  exit 3
fi

pg_restore --no-owner --exit-on-error --single-transaction --no-password \
  --dbname="$url" "${extra[@]}" "$file"

tables="$(psql --no-psqlrc --no-password -Atq --dbname="$url" -c \
  "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")"
echo "restore-db: restored $file ($tables tables)."
echo "restore-db: run the application with the same ENCRYPTION_KEY as when the backup was taken,"
echo "restore-db: then: manage.py migrate --check; manage.py verify_audit_chain; manage.py smoke_test"
