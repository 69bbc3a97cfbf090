#!/usr/bin/env bash
# `make bench`: orderlyd (release build, --demo) against pgbench calling the same api functions
# directly, at 8, 32 and 128 connections, on a throw-away PostgreSQL cluster (pg_virtualenv) or,
# when BENCH_DATABASE_URL is set (a superuser postgres:// URL), in a fresh database bench_<pid>
# on that server. Prints one table.
#
# Environment: BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 2),
# BENCH_CONNECTIONS ("8 32 128"), BENCH_SCENARIOS ("ping create show mix"),
# BENCH_CUSTOMERS (2000), BENCH_ORDERS (50000), BENCH_POOL_SIZE (orderlyd --pool-size, 8),
# BENCH_SKIP_BUILD=1 (use the release build as it is), BENCH_OUTPUT (where the raw JSON of each
# run, pgbench's and orderlyd's output are kept; default .build/bench).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
connections=${BENCH_CONNECTIONS:-8 32 128}
scenarios=${BENCH_SCENARIOS:-ping create show mix}
customers=${BENCH_CUSTOMERS:-2000}
orders=${BENCH_ORDERS:-50000}
pool_size=${BENCH_POOL_SIZE:-8}

if [ -z "${BENCH_IN_CLUSTER:-}" ]; then
    if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
        echo "== build (release)" >&2
        swift build -c release --product orderlyd >&2
        swift build -c release --product orderly-bench >&2
    fi
    if [ -z "${BENCH_DATABASE_URL:-}" ]; then
        # pgbench's 128 clients, orderlyd's pool and the bench's own connections.
        exec pg_virtualenv -o max_connections=300 -o shared_buffers=256MB env BENCH_IN_CLUSTER=1 "$0" "$@"
    fi
fi

work=$(mktemp -d -t orderly-bench.XXXXXX)
orderlyd_pid=""
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    db="bench_$$"
    base="$BENCH_DATABASE_URL"
    dburl=$(echo "$base" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\1/$db#")
    maintenance=$(echo "$base" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\1/postgres#")
    psql -X -q -v ON_ERROR_STOP=1 -d "$maintenance" -c "CREATE DATABASE $db"
else
    db="orderly_bench"
    dburl="$db"              # pg_virtualenv's PG* variables supply host, port and user
    maintenance="postgres"
    psql -X -q -v ON_ERROR_STOP=1 -d "$maintenance" -c "CREATE DATABASE $db"
fi
cleanup() {
    # Keep every run's figures (errors by code, per-operation latencies) and pgbench's output.
    mkdir -p "${BENCH_OUTPUT:-.build/bench}"
    cp "$work"/*.jsonl "$work"/*.log "${BENCH_OUTPUT:-.build/bench}/" 2>/dev/null || true
    if [ -n "$orderlyd_pid" ]; then kill "$orderlyd_pid" 2>/dev/null || true; wait "$orderlyd_pid" 2>/dev/null || true; fi
    if [ -n "${BENCH_DATABASE_URL:-}" ]; then
        psql -X -q -d "$maintenance" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A free local port.
port=""
for candidate in $(seq 17400 17499); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "no free port in 17400-17499" >&2; exit 1; }

echo "== orderlyd on 127.0.0.1:$port (pool $pool_size), database $db" >&2
.build/release/orderlyd --database-url "$dburl" --demo --listen "127.0.0.1:$port" --pool-size "$pool_size" \
    --log-level warning > "$work/orderlyd.log" 2>&1 &
orderlyd_pid=$!
for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    kill -0 "$orderlyd_pid" 2>/dev/null || { cat "$work/orderlyd.log" >&2; exit 1; }
    sleep 0.1
done

echo "== seed: $customers customers, $orders orders" >&2
.build/release/orderly-bench seed --database-url "$dburl" --customers "$customers" --orders "$orders" >&2

q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$dburl" -c "$1"; }
q "UPDATE orderly.skus SET stock_on_hand = 100000000" >/dev/null
actor=$(q "SELECT id FROM orderly.users WHERE username = 'sales_rep'")
minc=$(q "SELECT min(customer_id) FROM orderly.addresses WHERE is_default")
maxc=$(q "SELECT max(customer_id) FROM orderly.addresses WHERE is_default")
mino=$(q "SELECT min(id) FROM orderly.orders WHERE created_by = $actor")
maxo=$(q "SELECT max(id) FROM orderly.orders WHERE created_by = $actor")
items=$(q "SELECT jsonb_agg(i) FROM (
             SELECT jsonb_build_object('sku', s.code) AS i FROM orderly.skus s JOIN orderly.products p ON p.id = s.product_id
             WHERE s.active AND p.active AND p.kind = 'goods'
             UNION ALL
             SELECT jsonb_build_object('product', p.code) FROM orderly.products p WHERE p.active AND p.kind = 'service') x")
defines=(-D "actor=$actor" -D "minc=$minc" -D "maxc=$maxc" -D "mino=$mino" -D "maxo=$maxo" -D "items=$items")

# Runs orderly-bench; prints "throughput p99 errors".
orderly_run() {
    local scenario=$1 clients=$2 out
    out=$(.build/release/orderly-bench "$scenario" --port "$port" --connections "$clients" --duration "$duration" \
              --warmup "$warmup" --database-url "$dburl" --json)
    echo "$out" >> "$work/orderly-bench.jsonl"
    echo "$(echo "$out" | grep -o '"throughput":[0-9.]*' | tail -1 | cut -d: -f2)" \
         "$(echo "$out" | grep -o '"p99_ms":[0-9.]*' | tail -1 | cut -d: -f2)" \
         "$(echo "$out" | grep -o '"error_count":[0-9]*' | head -1 | cut -d: -f2)"
}

# Runs pgbench with the scenario's script(s); prints its tps.
pgbench_run() {
    local scenario=$1 clients=$2 scripts out
    case "$scenario" in
        ping)   scripts=(-f bench/pgbench/ping.sql) ;;
        create) scripts=(-f bench/pgbench/create.sql) ;;
        show)   scripts=(-f bench/pgbench/show.sql) ;;
        mix)    scripts=(-f bench/pgbench/create.sql@45 -f bench/pgbench/show.sql@35
                         -f bench/pgbench/list.sql@10 -f bench/pgbench/quote.sql@10) ;;
    esac
    out=$(pgbench -n -M prepared -c "$clients" -j 2 -T "$duration" "${defines[@]}" "${scripts[@]}" "$dburl" 2>&1) || {
        echo "$out" >&2; echo "0"; return; }
    echo "$out" >> "$work/pgbench.log"
    local failed
    failed=$(echo "$out" | sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p')
    [ -z "$failed" ] || [ "$failed" = 0 ] || echo "pgbench $scenario $clients: $failed failed transactions" >&2
    echo "$out" | sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\)/\1/p'
}

rows=()
for scenario in $scenarios; do
    for clients in $connections; do
        echo "== $scenario, $clients connections" >&2
        read -r throughput p99 errors < <(orderly_run "$scenario" "$clients")
        direct=$(pgbench_run "$scenario" "$clients")
        ratio=$(awk -v a="$throughput" -v b="$direct" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        rows+=("$(printf "%-8s %11s %14.0f %14.0f %7s %13s %8s" "$scenario" "$clients" "$throughput" "$direct" "$ratio" "$p99" "$errors")")
    done
done

echo
echo "orderly-bench vs pgbench (same api functions over libpq), ${duration} s each, $(nproc) cores, PostgreSQL $(q 'SHOW server_version' | cut -d' ' -f1) on the same machine"
printf "%-8s %11s %14s %14s %7s %13s %8s\n" scenario connections "orderlyd req/s" "pgbench tps" ratio "orderlyd p99" errors
printf "%-8s %11s %14s %14s %7s %13s %8s\n" -------- ----------- -------------- -------------- ------- ------------- --------
for row in "${rows[@]}"; do echo "$row"; done
echo "(p99 in ms; ping: orderlyd PING vs pgbench SELECT 1; mix: orderly-bench also runs approvers, pgbench does not)"
