#!/usr/bin/env bash
# `make test`: pgTAP on a freshly migrated database, the least-privilege check of the Docker set-up
# (scripts/check-least-privilege.sh), `swift test` and the 20-second crash-consistency
# check (scripts/crash-check.sh, on a cluster of its own), against a throw-away
# PostgreSQL cluster (pg_virtualenv) or, when set, the server in ORDERLY_TEST_DATABASE_URL
# (whose login must be allowed to create databases and roles).
set -euo pipefail
cd "$(dirname "$0")/.."

# Every failing check is repeated here at the very end: pg_virtualenv prints the whole server
# log when a run fails, which would otherwise bury the test that failed.
summary="${ORDERLY_TEST_SUMMARY:-$(mktemp -t orderly-test-summary.XXXXXX)}"
if [ -z "${ORDERLY_TEST_DATABASE_URL:-}" ] && [ -z "${ORDERLY_IN_TEST_CLUSTER:-}" ]; then
    # Swift Testing runs suites in parallel, each with its own database and server pool.
    status=0
    env ORDERLY_IN_TEST_CLUSTER=1 ORDERLY_TEST_SUMMARY="$summary" \
        pg_virtualenv -t -o max_connections=400 "$0" "$@" || status=$?
    if [ "$status" -ne 0 ] && [ -s "$summary" ]; then
        echo "== failures (exit $status)"
        cat "$summary"
    fi
    rm -f "$summary"
    exit "$status"
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

# run_step PATTERN COMMAND…: runs the command with its output shown as usual; when it fails,
# the lines matching PATTERN go to the summary and the script stops with its status.
run_step() {
    local pattern=$1; shift
    local output status
    output=$(mktemp -t orderly-step.XXXXXX)
    set +e
    "$@" 2>&1 | tee "$output"
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
        grep -aE "$pattern" "$output" | tail -200 >> "$summary" || true
        rm -f "$output"
        if [ -z "${ORDERLY_IN_TEST_CLUSTER:-}" ]; then
            echo "== failures (exit $status)"; cat "$summary"; rm -f "$summary"
        fi
        exit "$status"
    fi
    rm -f "$output"
}

echo "== SQL file order"
# Each R file calls only functions of its own and earlier files (docs/ARCHITECTURE.md §6).
run_step "^sql/|^check-sql-deps" scripts/check-sql-deps.sh

echo "== no Foundation Process"
# Its run() over-reads /proc/self/fd entries and crashed the test process (swift-corelibs-foundation
# PR #5472); tests run programs through Tests/OrderlyTestSupport/Program.swift (swift-subprocess).
run_step "Process\\(\\)" bash -c '! grep -rnE "(^|[^A-Za-z])Process\(\)" Sources Tests'

echo "== build"
run_step "error:" swift build --build-tests

echo "== pgTAP"
db="orderly_pgtap_$$"
psql -X -q -v ON_ERROR_STOP=1 -d "$maintenance" -c "CREATE DATABASE $db"
trap 'psql -X -q -d "$maintenance" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
.build/debug/orderlyd migrate --database-url "$(database_url "$db")" --log-level warning
psql -X -q -v ON_ERROR_STOP=1 -d "$(database_url "$db")" -c "CREATE EXTENSION IF NOT EXISTS pgtap"
# The helpers the tests share (schema test), loaded once: pg_prove runs each file in a session of
# its own, where another session's pg_temp functions do not exist.
run_step "ERROR|psql:" psql -X -q -v ON_ERROR_STOP=1 -d "$(database_url "$db")" -f sql/tests/setup/helpers.sql
# The bench's reference writes (schema bench, as scripts/bench.sh loads them), which pgTAP 900
# holds to what ORDER CREATE writes.
run_step "ERROR|psql:" psql -X -q -v ON_ERROR_STOP=1 -d "$(database_url "$db")" \
    -c "SET client_min_messages = warning" -f bench/lean-write.sql -f bench/floor-write.sql
run_step "^(not ok|#|Failed|Parse errors|Result)" \
    pg_prove --failures -d "$(database_url "$db")" sql/tests/*.sql

echo "== least privilege (the Docker set-up)"
# deploy/postgres/initdb's login (no superuser) migrates and serves; docker-compose.yml's and the
# Dockerfile's safe defaults. The init script runs as a superuser of the throw-away cluster, so a
# server of your own (ORDERLY_TEST_DATABASE_URL) gets the file checks only.
if [ -z "${ORDERLY_TEST_DATABASE_URL:-}" ]; then
    run_step "^check-least-privilege|^compose_check" env ORDERLYD=.build/debug/orderlyd scripts/check-least-privilege.sh
else
    run_step "^check-least-privilege|^compose_check" env ORDERLY_LP_COMPOSE_ONLY=1 scripts/check-least-privilege.sh
fi

echo "== swift test"
# Swift Testing marks failed tests and issues with ✘; XCTest and crashes say "error:" / "Fatal".
run_step "✘|error:|Fatal error|Crash|Exited with" swift test

echo "== crash consistency (20 s)"
# Its own throw-away cluster (it restarts PostgreSQL), so the same with or without pg_virtualenv;
# orderlyd and orderly-bench were built above. CrashConsistencyTests covers the verifier itself.
run_step "^crash-check|^verify:|^    |^  [a-z ]+: [0-9]+$" env CRASH_SKIP_BUILD=1 scripts/crash-check.sh 20
[ -n "${ORDERLY_IN_TEST_CLUSTER:-}" ] || rm -f "$summary"
