#!/usr/bin/env bash
# Two orderlyd instances on one database behind haproxy (README: "Beyond one machine").
#
#   scripts/two-servers.sh [--database-url URL] [--port N] [--bench SECONDS]
#
# Starts orderlyd A on port N+1 and B on port N+2 (default N = 7400) over one database — URL, or
# without it a throw-away PostgreSQL cluster of its own in a temporary folder (initdb + pg_ctl,
# run as the `postgres` user when started as root) — and haproxy on port N with
# deploy/haproxy/orderly.cfg (TCP mode, balance leastconn, a PING health check). A loads the
# demo users, catalog and approval rules (--demo). Then it prints how to connect and waits: Ctrl-C
# stops haproxy, both instances and the throw-away cluster. Kill one instance (its pid is
# printed) to watch its clients reconnect to the other.
#
# With --bench SECONDS it runs `orderly-bench mix` (or each of TWO_SCENARIOS) through haproxy for
# that long instead of waiting, prints how many connections and requests each instance served,
# and stops.
#
# Environment: TWO_CONFIG (debug|release, default debug), TWO_SKIP_BUILD=1 (binaries already
# built), TWO_CONNECTIONS (bench connections, default 16), TWO_SCENARIOS (default "mix"),
# TWO_WARMUP (bench warm-up seconds, default 1), TWO_JSON=1 (each bench result as one JSON line,
# for scripts: `make bench` uses it), TWO_KEEP=1 (keep the temporary folder with the logs).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '3,4p' "$0" | sed 's/^# *//' >&2; exit 2; }
url=""
port=7400
bench=""
while [ $# -gt 0 ]; do
    case "$1" in
        --database-url) url=${2:?}; shift 2 ;;
        --port) port=${2:?}; shift 2 ;;
        --bench) bench=${2:?}; shift 2 ;;
        -h|--help) usage ;;
        *) echo "two-servers: unknown argument $1" >&2; usage ;;
    esac
done
case "$port" in ''|*[!0-9]*) usage ;; esac
case "$bench" in *[!0-9]*) usage ;; esac
port_a=$((port + 1))
port_b=$((port + 2))
config=${TWO_CONFIG:-debug}

haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$haproxy" ] || { echo "two-servers: haproxy is missing (apt-get install haproxy, or scripts/install-deps.sh --test)" >&2; exit 2; }

if [ -z "${TWO_SKIP_BUILD:-}" ]; then
    echo "== two-servers: build ($config)"
    swift build -c "$config" --product orderlyd
    [ -z "$bench" ] || swift build -c "$config" --product orderly-bench
fi
bin=$(cd ".build/$config" && pwd)
[ -x "$bin/orderlyd" ] || { echo "two-servers: $bin/orderlyd is missing" >&2; exit 2; }

work=$(mktemp -d /tmp/orderly-two.XXXXXX)
pids=()
. scripts/lib/pg-cluster.sh
. scripts/lib/orderlyd.sh
orderlyd_pid=""

cleanup() {
    local status=$?
    trap - INT TERM EXIT
    local pid
    # orderlyd_pid: an instance that failed to start before it joined pids.
    for pid in "${pids[@]}" $orderlyd_pid; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}" $orderlyd_pid; do wait "$pid" 2>/dev/null || true; done
    [ -n "$pgdata" ] && { pg pg_ctl -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true; }
    if [ "$status" -ne 0 ] && [ "$status" -ne 130 ]; then
        for log in "$work"/*.log; do
            [ -f "$log" ] && { echo "---- $(basename "$log") (last 20 lines)"; tail -20 "$log"; }
        done
    fi
    if [ -n "${TWO_KEEP:-}" ]; then echo "two-servers: kept $work"; else rm -rf "$work"; fi
    echo "== two-servers: stopped"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$url" ]; then
    echo "== two-servers: PostgreSQL cluster in $work"
    pg_cluster_start "$work" two-servers
    url=$cluster_url
fi

# One at a time: A migrates the database and loads the demo data, B finds it current.
orderlyd_start "$bin/orderlyd" "$work/orderlyd-a.log" --database-url "$url" --listen "127.0.0.1:$port_a" --demo --trusted-proxy 127.0.0.2
pid_a=$orderlyd_pid; pids+=("$pid_a")
orderlyd_start "$bin/orderlyd" "$work/orderlyd-b.log" --database-url "$url" --listen "127.0.0.1:$port_b" --trusted-proxy 127.0.0.2
pid_b=$orderlyd_pid; pids+=("$pid_b")
orderlyd_pid=""
echo "== two-servers: orderlyd A on 127.0.0.1:$port_a (pid $pid_a), B on 127.0.0.1:$port_b (pid $pid_b)"

export ORDERLY_HAPROXY_BIND="127.0.0.1:$port" ORDERLY_BACKEND_A="127.0.0.1:$port_a" ORDERLY_BACKEND_B="127.0.0.1:$port_b"
# haproxy connects from 127.0.0.2, which both instances trust for the PROXY protocol (so that a
# direct connection from 127.0.0.1 still needs no header).
export ORDERLY_HAPROXY_SOURCE=127.0.0.2
export ORDERLY_CHECK_INTER=${ORDERLY_CHECK_INTER:-1s}
"$haproxy" -c -q -f deploy/haproxy/orderly.cfg
"$haproxy" -db -f deploy/haproxy/orderly.cfg >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
pids+=("$haproxy_pid")

# request PORT LINES…: sends the lines (then QUIT) to orderlyd or haproxy and prints the reply.
request() {
    local at=$1; shift
    exec 3<>"/dev/tcp/127.0.0.1/$at" || return 1
    printf '%s\r\n' "$@" QUIT >&3
    timeout 10 cat <&3 | tr -d '\r'
    exec 3<&-
}

for _ in $(seq 1 100); do
    request "$port" PING 2>/dev/null | grep -q '^+PONG' && break
    kill -0 "$haproxy_pid" 2>/dev/null || { echo "two-servers: haproxy exited"; cat "$work/haproxy.log"; exit 1; }
    sleep 0.1
done
request "$port" PING | grep -q '^+PONG' || { echo "two-servers: no PONG through haproxy"; exit 1; }
echo "== two-servers: haproxy on 127.0.0.1:$port (pid $haproxy_pid) → A and B, config deploy/haproxy/orderly.cfg"

# stats NAME PORT: connections accepted and requests served by one instance (AUTH as the demo admin).
stats() {
    local line
    line=$(request "$2" "AUTH admin admin-demo" STATS | grep -m1 '"uptime_seconds"' || true)
    local accepted requests
    accepted=$(sed -nE 's/.*"accepted":([0-9]+).*/\1/p' <<<"$line")
    requests=$(sed -nE 's/.*"requests":([0-9]+),"errors".*/\1/p' <<<"$line")
    echo "  orderlyd $1 (port $2): ${accepted:-?} connections accepted (health checks included), ${requests:-?} requests"
}

if [ -n "$bench" ]; then
    connections=${TWO_CONNECTIONS:-16}
    [ -x "$bin/orderly-bench" ] || { echo "two-servers: $bin/orderly-bench is missing" >&2; exit 2; }
    for scenario in ${TWO_SCENARIOS:-mix}; do
        echo "== two-servers: orderly-bench $scenario through haproxy, $connections connections, ${bench}s"
        "$bin/orderly-bench" "$scenario" --port "$port" --connections "$connections" --duration "$bench" \
            --warmup "${TWO_WARMUP:-1}" --database-url "$url" ${TWO_JSON:+--json}
    done
    echo "== two-servers: what each instance served"
    stats A "$port_a"
    stats B "$port_b"
    exit 0
fi

cat <<TEXT
== two-servers: ready
Connect through haproxy:   orderly --port $port --user sales_rep      (demo passwords: <role>-demo)
Raw protocol:              nc 127.0.0.1 $port
The instances directly:    orderly --port $port_a …  /  orderly --port $port_b …
Database:                  $url
Try a failover:            kill -TERM $pid_a   (A's clients are closed; they reconnect to B)
Logs:                      $work (TWO_KEEP=1 keeps them)
Ctrl-C stops everything.
TEXT
# Until Ctrl-C, or until haproxy ends; an instance that is killed stays down (that is the point).
wait "$haproxy_pid" || true
echo "two-servers: haproxy ended"; tail -5 "$work/haproxy.log"
exit 1
