#!/bin/sh
# Migrates throw-away databases exactly as orderlyd's migrator does and runs the pgTAP suite.
# Needs PG* variables for a superuser of a disposable cluster, e.g.:
#   pg_virtualenv sql/tests/run.sh
# Each file is sent as ONE simple-protocol query string inside one transaction, after
# SET LOCAL ROLE orderly_owner unless that role does not exist yet.
set -eu
cd "$(dirname "$0")/.."

run_file() { # db file
    # Like the migrator: SET LOCAL ROLE orderly_owner before every file once that role exists.
    if [ "$(psql -X -At -d "$1" -c "SELECT count(*) FROM pg_roles WHERE rolname = 'orderly_owner'")" = 1 ]; then
        psql -X -q -v ON_ERROR_STOP=1 -d "$1" -1 -c 'SET LOCAL ROLE orderly_owner' -c "$(cat "$2")"
    else
        psql -X -q -v ON_ERROR_STOP=1 -d "$1" -1 -c "$(cat "$2")"
    fi
}

migrate() { # db [repeatable-only]
    if [ "${2:-}" != repeatable-only ]; then
        for f in $(ls V[0-9]*__*.sql | sort -V); do run_file "$1" "$f"; done
    fi
    for f in $(ls R__*.sql | LC_ALL=C sort); do run_file "$1" "$f"; done
}

for db in orderly_pgtap_1 orderly_pgtap_2; do
    dropdb --if-exists "$db"
    createdb "$db"
done

migrate orderly_pgtap_1
migrate orderly_pgtap_1 repeatable-only   # changed R files re-run on an existing database
migrate orderly_pgtap_2                   # a second database: the roles already exist

for db in orderly_pgtap_1 orderly_pgtap_2; do
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION IF NOT EXISTS pgtap'
    pg_prove -d "$db" tests/*.sql
done
