#!/usr/bin/env bash
# Crash consistency: `scripts/crash-check.sh [seconds]` (default 20).
#
# On a throw-away PostgreSQL cluster of its own (initdb + pg_ctl in a temporary folder, run as
# the `postgres` user when started as root; nothing else shares it, so it may be restarted) it
# starts `orderlyd --demo`, runs `orderly-bench create --verify` with CRASH_CONNECTIONS (16)
# connections for [seconds], kills orderlyd with SIGKILL a third of the way in and starts it again
# on the same port, restarts PostgreSQL two thirds of the way in (`pg_ctl restart -m immediate`:
# a crash stop, WAL recovery at start; CRASH_PG_STOP_MODE=fast for a clean one), then runs
# `orderly-bench verify`. Fails when verify reports a violation, when nothing was acknowledged,
# or when no order was acknowledged after either crash (the service did not come back).
#
# Environment: CRASH_CONFIG (debug|release, default debug), CRASH_SKIP_BUILD=1 (binaries already
# built, e.g. by `make test`), CRASH_CONNECTIONS, CRASH_PG_STOP_MODE, CRASH_KEEP=1 (keep the
# temporary folder with the logs and the acknowledgement file).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
connections=${CRASH_CONNECTIONS:-16}
config=${CRASH_CONFIG:-debug}
stop_mode=${CRASH_PG_STOP_MODE:-immediate}
case "$seconds" in ''|*[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;; esac
[ "$seconds" -ge 6 ] || { echo "crash-check: at least 6 seconds" >&2; exit 2; }

if [ -z "${CRASH_SKIP_BUILD:-}" ]; then
    echo "== crash-check: build ($config)"
    swift build -c "$config" --product orderlyd
    swift build -c "$config" --product orderly-bench
fi
bin=".build/$config"
for exe in orderlyd orderly-bench; do
    [ -x "$bin/$exe" ] || { echo "crash-check: $bin/$exe is missing (build it or unset CRASH_SKIP_BUILD)" >&2; exit 2; }
done
bin=$(cd "$bin" && pwd)

work=$(mktemp -d /tmp/orderly-crash.XXXXXX)
. scripts/lib/pg-cluster.sh
. scripts/lib/orderlyd.sh
acks="$work/acknowledged.tsv"
orderlyd_pid=""
bench_pid=""

cleanup() {
    local status=$?
    [ -n "$bench_pid" ] && kill "$bench_pid" 2>/dev/null || true
    [ -n "$orderlyd_pid" ] && kill -KILL "$orderlyd_pid" 2>/dev/null || true
    pg pg_ctl -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
    if [ "$status" -ne 0 ]; then
        for log in "$work"/orderlyd-*.log "$work/postgres.log"; do
            [ -f "$log" ] && { echo "---- $(basename "$log") (last 20 lines)"; tail -20 "$log"; }
        done
    fi
    if [ -n "${CRASH_KEEP:-}" ]; then echo "crash-check: kept $work"; else rm -rf "$work"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_cluster_start "$work" crash-check "fsync = on" "synchronous_commit = on"
url=$cluster_url
echo "== crash-check: cluster in $work ($pgbin)"

acked() { [ -f "$acks" ] && wc -l <"$acks" || echo 0; }

orderlyd_start "$bin/orderlyd" "$work/orderlyd-1.log" --demo --database-url "$url" --listen "127.0.0.1:${CRASH_PORT:-0}"
port=$orderlyd_port
echo "== crash-check: orderlyd on port $port; create --verify for ${seconds}s with $connections connections"
"$bin/orderly-bench" create --port "$port" --connections "$connections" --duration "$seconds" --warmup 0 \
    --database-url "$url" --verify "$acks" >"$work/bench.out" 2>&1 &
bench_pid=$!

# The run starts once the bench has read the catalog: the first acknowledged order.
for _ in $(seq 1 600); do
    [ "$(acked)" -gt 0 ] && break
    kill -0 "$bench_pid" 2>/dev/null || break
    sleep 0.1
done
[ "$(acked)" -gt 0 ] || { echo "crash-check: no order acknowledged at all"; cat "$work/bench.out"; exit 1; }
started=$(date +%s.%N)
at() { awk -v s="$started" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'; }
sleep_until() { local wait; wait=$(awk -v s="$started" -v t="$1" -v n="$(date +%s.%N)" 'BEGIN { w = s + t - n; print (w > 0 ? w : 0) }'); sleep "$wait"; }

sleep_until "$(awk -v d="$seconds" 'BEGIN { print d / 3 }')"
before_kill=$(acked)
{ kill -KILL "$orderlyd_pid"; wait "$orderlyd_pid"; } 2>/dev/null || true
killed_at=$(at)
echo "== crash-check: t=${killed_at}s SIGKILL orderlyd ($before_kill acknowledged so far); starting it again on port $port"
orderlyd_start "$bin/orderlyd" "$work/orderlyd-2.log" --demo --database-url "$url" --listen "127.0.0.1:$port"
echo "== crash-check: t=$(at)s orderlyd listening again"

sleep_until "$(awk -v d="$seconds" 'BEGIN { print 2 * d / 3 }')"
before_restart=$(acked)
restart_at=$(at)
echo "== crash-check: t=${restart_at}s restarting PostgreSQL (-m $stop_mode; $before_restart acknowledged so far)"
pg pg_ctl -D "$pgdata" -l "$work/postgres.log" -m "$stop_mode" -w -t 60 restart >/dev/null
echo "== crash-check: t=$(at)s PostgreSQL is back"

status=0
wait "$bench_pid" || status=$?
bench_pid=""
cat "$work/bench.out"
[ "$status" -eq 0 ] || { echo "crash-check: orderly-bench failed (exit $status)"; exit 1; }
total=$(acked)
kill -TERM "$orderlyd_pid" 2>/dev/null || true
wait "$orderlyd_pid" 2>/dev/null || true
orderlyd_pid=""

echo "== crash-check: verify"
verify_status=0
"$bin/orderly-bench" verify --database-url "$url" --file "$acks" | tee "$work/verify.out" || verify_status=$?

counter() { grep -oE "(^| )$1 [0-9]+" "$work/bench.out" | awk '{ print $2 }' | head -1 | grep . || echo 0; }
violations=$(sed -nE 's/^verify: FAILED, ([0-9]+) violation.*/\1/p' "$work/verify.out")
echo "crash-check: ${seconds}s, $connections connections; acknowledged $total" \
     "(before SIGKILL $before_kill, before PostgreSQL restart $before_restart);" \
     "retries $(counter retries), in doubt $(counter in_doubt), replays $(counter replays)," \
     "unresolved at the end $(counter unresolved); violations ${violations:-0}"
failed=0
if [ "$verify_status" -ne 0 ]; then echo "crash-check: FAILED: verify found violations (exit $verify_status)"; failed=1; fi
if [ "$before_restart" -le "$before_kill" ]; then echo "crash-check: FAILED: nothing acknowledged between the SIGKILL and the PostgreSQL restart"; failed=1; fi
if [ "$total" -le "$before_restart" ]; then echo "crash-check: FAILED: nothing acknowledged after the PostgreSQL restart"; failed=1; fi
[ "$failed" -eq 0 ] || exit 1
echo "crash-check: OK"
