#!/usr/bin/env bash
# The deployment's safe defaults (README "Docker"), checked without Docker, as a step of `make test`:
#
# 1. deploy/postgres/initdb runs as the postgres image runs it on a new volume (psql as the
#    superuser, the same environment variables), against the test cluster, with a login and a
#    database of this run's own; the login must come out no superuser.
# 2. `orderlyd migrate` migrates that database as that login.
# 3. orderlyd serves as that login on a free loopback port: without ORDERLY_DEMO there is no demo
#    user; with ORDERLY_DEMO=1 (how docker-compose.yml passes it) HELLO, AUTH sales_rep and
#    WHOAMI work over real TCP; ORDERLY_DEMO=yes is refused.
# 4. docker-compose.yml: PostgreSQL not published, every published port on loopback, the demo only
#    with ORDERLY_DEMO=1, orderlyd logging in as the init script's login; the Dockerfile's default
#    listener is loopback. With `docker compose` the configuration it renders is checked; without
#    it (no compose plugin here), the files as written (scripts/lib/compose_check.py render).
#
# Steps 1-3 need a superuser in libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD), as
# inside pg_virtualenv; ORDERLY_LP_COMPOSE_ONLY=1 runs step 4 alone. Alone:
#   pg_virtualenv -t env ORDERLYD=.build/debug/orderlyd scripts/check-least-privilege.sh
# Environment: ORDERLYD (default .build/debug/orderlyd, what `make test` builds), ORDERLY_SQL_DIR
# (default sql/).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

orderlyd=${ORDERLYD:-.build/debug/orderlyd}
export ORDERLY_SQL_DIR=${ORDERLY_SQL_DIR:-$root/sql}
. scripts/lib/orderlyd.sh

work=$(mktemp -d /tmp/orderly-least-privilege.XXXXXX)
login="orderly_lp_$$"
database="orderly_lp_$$"
# Characters a URL would need escaped: compose passes the password in PGPASSWORD, not the URL.
password="lp-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')@:/ x"
superuser_password=${PGPASSWORD:-}
orderlyd_pid=""
created=""
failures=0

say() { echo "check-least-privilege: $*"; }
fail() { say "FAILED: $*"; failures=$((failures + 1)); }
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "${2:-postgres}" -c "$1"; }

cleanup() {
    local status=$?
    [ -n "$orderlyd_pid" ] && kill -KILL "$orderlyd_pid" 2>/dev/null || true
    if [ -n "$created" ]; then
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
        psql -X -q -d postgres -c "DROP ROLE IF EXISTS $login" >/dev/null 2>&1 || true
    fi
    if [ "$status" -ne 0 ]; then
        for log in "$work"/*.log; do [ -f "$log" ] && { echo "---- $(basename "$log") (last 20 lines)"; tail -20 "$log"; }; done
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== check-least-privilege: docker-compose.yml and the Dockerfile"
# Debian's python3, where scripts/install-deps.sh --test puts python3-yaml (a python3 earlier on
# PATH, e.g. pyenv's, may lack it).
python=/usr/bin/python3
[ -x "$python" ] || python=python3
if docker compose version >/dev/null 2>&1; then
    # --env-file /dev/null: a developer's .env must not change what is checked.
    env -u ORDERLY_DEMO docker compose --env-file /dev/null -f docker-compose.yml config --format json >"$work/off.json"
    env ORDERLY_DEMO=1 docker compose --env-file /dev/null -f docker-compose.yml config --format json >"$work/on.json"
    env -u ORDERLY_DEMO docker compose --env-file /dev/null -f docker-compose.yml -f docker-compose.db-port.yml \
        config --format json >"$work/db-port.json"
else
    say "notice: docker compose is not available; checking the compose files as written instead of docker compose config"
    env -u ORDERLY_DEMO "$python" scripts/lib/compose_check.py render docker-compose.yml >"$work/off.json"
    "$python" scripts/lib/compose_check.py render ORDERLY_DEMO=1 docker-compose.yml >"$work/on.json"
    env -u ORDERLY_DEMO "$python" scripts/lib/compose_check.py render docker-compose.yml docker-compose.db-port.yml >"$work/db-port.json"
fi
"$python" scripts/lib/compose_check.py check "$work/off.json" "$work/on.json" "$work/db-port.json" || fail "docker-compose.yml (above)"
# The image's own default: loopback (ENV ORDERLY_LISTEN), and no CMD, ENV or ENTRYPOINT line that
# opens the plain listener to the network.
grep -qE '^\s*(ENV\s.*)?ORDERLY_LISTEN=127\.0\.0\.1:' Dockerfile || fail "Dockerfile: ORDERLY_LISTEN is not loopback by default"
if grep -vE '^\s*#' Dockerfile | grep -qE '0\.0\.0\.0|\[::\]|allow-plaintext-remote|--demo'; then
    fail "Dockerfile: the image's default listens beyond loopback or creates demo users"
fi

if [ -n "${ORDERLY_LP_COMPOSE_ONLY:-}" ]; then
    say "notice: ORDERLY_LP_COMPOSE_ONLY is set; the init script, migrate and serve checks are skipped"
    if [ "$failures" -ne 0 ]; then say "$failures check(s) failed"; exit 1; fi
    say "OK (compose and Dockerfile only)"
    exit 0
fi

[ -x "$orderlyd" ] || { say "$orderlyd is missing (build it or set ORDERLYD)" >&2; exit 2; }
orderlyd=$(cd "$(dirname "$orderlyd")" && pwd)/$(basename "$orderlyd")
[ "$(sql "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user")" = t ] \
    || { say "needs a superuser in PGUSER (the image runs deploy/postgres/initdb as one)" >&2; exit 2; }

echo "== check-least-privilege: deploy/postgres/initdb as the postgres image runs it"
created=1
# The image's docker_process_init_files: each *.sql with
#   psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc --dbname "$POSTGRES_DB" -f FILE
# with PGPASSWORD=$POSTGRES_PASSWORD and the container's environment (docker-compose.yml's db).
for file in deploy/postgres/initdb/*; do
    case "$file" in
        *.sql) env POSTGRES_USER="${PGUSER:-postgres}" POSTGRES_DB=postgres POSTGRES_PASSWORD="$superuser_password" \
                   ORDERLY_DB_USER="$login" ORDERLY_DB_NAME="$database" ORDERLY_DB_PASSWORD="$password" \
                   psql -v ON_ERROR_STOP=1 --username "${PGUSER:-postgres}" --no-password --no-psqlrc --dbname postgres \
                   -q -f "$file" >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log"; fail "$file failed"; exit 1; } ;;
        *) fail "$file: only *.sql is run here; teach this script the image's way with it"; exit 1 ;;
    esac
done
attributes=$(sql "SELECT concat_ws(' ', rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin)
                  FROM pg_catalog.pg_roles WHERE rolname = '$login'")
# superuser, createrole, createdb, replication, bypassrls, login
[ "$attributes" = "f t f f f t" ] || fail "the login's attributes are '$attributes', want 'f t f f f t' (no superuser, CREATEROLE, login)"
owner=$(sql "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = '$database'")
[ "$owner" = "$login" ] || fail "the database belongs to '$owner', not to the login"

# orderlyd reaches the server as docker-compose.yml makes it: user and database in the URL, the
# password in PGPASSWORD; host and port from libpq's environment here.
url="user=$login dbname=$database"
as_login() { env PGPASSWORD="$password" "$@"; }

echo "== check-least-privilege: orderlyd migrate as the login"
as_login "$orderlyd" migrate --database-url "$url" --log-level warning >"$work/migrate.log" 2>&1 \
    || { cat "$work/migrate.log"; fail "orderlyd migrate as the login failed"; exit 1; }
expected=$(ls "$ORDERLY_SQL_DIR" | grep -cE '^(V[0-9]+|R)__.*\.sql$')
applied=$(sql "SELECT count(*) FROM orderly_meta.migrations" "$database")
[ "$applied" = "$expected" ] || fail "$applied migrations recorded, $expected files in $ORDERLY_SQL_DIR"
strangers=$(sql "SELECT string_agg(nspname || ' (' || pg_catalog.pg_get_userbyid(nspowner) || ')', ', ')
                 FROM pg_catalog.pg_namespace WHERE nspname IN ('orderly', 'api', 'admin', 'analytics', 'orderly_ext')
                 AND nspowner <> 'orderly_owner'::regrole" "$database")
[ -z "$strangers" ] || fail "schemas not owned by orderly_owner: $strangers"
[ "$(sql "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = '$login'")" = f ] || fail "the login became a superuser"

# session PORT REQUEST…: one connection; sends each request after the previous reply is complete,
# then QUIT; prints every line the server sent (without the \r).
session() {
    local port=$1 request line
    shift
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    IFS= read -r -t 10 line <&3 && printf '%s\n' "${line%$'\r'}"
    for request in "$@" QUIT; do
        printf '%s\r\n' "$request" >&3
        while IFS= read -r -t 10 line <&3; do
            line=${line%$'\r'}
            printf '%s\n' "$line"
            case "$line" in [+-]*) break ;; esac
        done
    done
    exec 3<&- 3>&-
}

stop_orderlyd() {
    kill -TERM "$orderlyd_pid" 2>/dev/null || true
    wait "$orderlyd_pid" 2>/dev/null || true
    orderlyd_pid=""
}

echo "== check-least-privilege: orderlyd serves as the login, without ORDERLY_DEMO"
# env execs orderlyd, so orderlyd_pid is orderlyd's.
orderlyd_start env "$work/serve-plain.log" -u ORDERLY_DEMO PGPASSWORD="$password" "$orderlyd" \
    --database-url "$url" --listen 127.0.0.1:0
port=$orderlyd_port
replies=$(session "$port" HELLO "AUTH sales_rep sales_rep-demo")
grep -q '^+OK orderly' <<<"$replies" || fail "HELLO was not answered +OK: $replies"
grep -q '^-AUTH_FAILED' <<<"$replies" || fail "without ORDERLY_DEMO, AUTH sales_rep was not AUTH_FAILED (demo users exist?): $replies"
logins=$(sql "SELECT string_agg(DISTINCT usename, ',') FROM pg_catalog.pg_stat_activity WHERE datname = '$database' AND pid <> pg_backend_pid()")
[ "$logins" = "$login" ] || fail "orderlyd's connections log in as '$logins', not as the login"
stop_orderlyd

echo "== check-least-privilege: orderlyd serves as the login, with ORDERLY_DEMO=1"
orderlyd_start env "$work/serve-demo.log" ORDERLY_DEMO=1 PGPASSWORD="$password" "$orderlyd" \
    --database-url "$url" --listen 127.0.0.1:0
port=$orderlyd_port
replies=$(session "$port" HELLO "AUTH sales_rep sales_rep-demo" WHOAMI)
grep -q '^+OK orderly' <<<"$replies" || fail "HELLO was not answered +OK: $replies"
grep -q '^+OK authenticated as sales_rep' <<<"$replies" || fail "with ORDERLY_DEMO=1, AUTH sales_rep failed: $replies"
grep -q '^\*{.*"username":"sales_rep"' <<<"$replies" || fail "WHOAMI did not show sales_rep: $replies"
grep -q '^+OK 1 row' <<<"$replies" || fail "WHOAMI did not end +OK: $replies"
stop_orderlyd

echo "== check-least-privilege: ORDERLY_DEMO=yes is refused"
status=0
as_login env ORDERLY_DEMO=yes timeout 60 "$orderlyd" --database-url "$url" --listen 127.0.0.1:0 >"$work/serve-bad.log" 2>&1 || status=$?
if [ "$status" -eq 0 ] || [ "$status" -eq 124 ] || ! grep -q ORDERLY_DEMO "$work/serve-bad.log"; then
    fail "orderlyd with ORDERLY_DEMO=yes: exit $status, $(head -3 "$work/serve-bad.log")"
fi

if [ "$failures" -ne 0 ]; then say "$failures check(s) failed"; exit 1; fi
say "OK"
