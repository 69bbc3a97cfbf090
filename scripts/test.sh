#!/usr/bin/env bash
# `make test`: pgTAP on a freshly migrated database, then `swift test`, against a throw-away
# PostgreSQL cluster (pg_virtualenv) or, when set, the server in ORDERLY_TEST_DATABASE_URL
# (whose login must be allowed to create databases and roles).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${ORDERLY_TEST_DATABASE_URL:-}" ] && [ -z "${ORDERLY_IN_TEST_CLUSTER:-}" ]; then
    # Swift Testing runs suites in parallel, each with its own database and server pool.
    exec env ORDERLY_IN_TEST_CLUSTER=1 pg_virtualenv -t -o max_connections=400 "$0" "$@"
fi

# How psql, pg_prove and orderlyd reach database $1 on the test server: a URL, or in the
# throw-away cluster just the name (pg_virtualenv's PG* variables supply the rest).
database_url() {
    local base="${ORDERLY_TEST_DATABASE_URL:-}"
    case "$base" in
        "") echo "$1" ;;
        postgres://*|postgresql://*) echo "$base" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\1/$1#" ;;
        *) echo "ORDERLY_TEST_DATABASE_URL must be a postgres:// URL" >&2; exit 2 ;;
    esac
}
maintenance=$(database_url postgres)

echo "== build"
swift build --build-tests

echo "== pgTAP"
db="orderly_pgtap_$$"
psql -X -q -v ON_ERROR_STOP=1 -d "$maintenance" -c "CREATE DATABASE $db"
trap 'psql -X -q -d "$maintenance" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
.build/debug/orderlyd migrate --database-url "$(database_url "$db")" --log-level warning
psql -X -q -v ON_ERROR_STOP=1 -d "$(database_url "$db")" -c "CREATE EXTENSION IF NOT EXISTS pgtap"
pg_prove --failures -d "$(database_url "$db")" sql/tests/*.sql

echo "== swift test"
swift test
