#!/usr/bin/env bash
# `make bench`: orderlyd (release build, --demo) against pgbench calling the same api functions
# directly, at 8, 32 and 128 connections, on a throw-away PostgreSQL cluster (pg_virtualenv) or,
# when BENCH_DATABASE_URL is set (a superuser postgres:// URL), in a fresh database bench_<pid>
# on that server. Prints one table, then (each on by default, 0 or "" turns it off):
#  - the same scenarios through haproxy in front of two orderlyd instances on the same database
#    (scripts/two-servers.sh; skipped with a message when haproxy is not installed);
#  - idle connections: a fresh orderlyd holds BENCH_IDLE_CONNECTIONS logged-in, silent clients
#    (`orderly-bench idle`); its resident memory (target: under 150 MB at 5 000) and how long
#    the logins took (each AUTH is a bcrypt check: 5 000 take two to three minutes here);
#  - show at 8 connections while BENCH_AUTHFLOOD_CONNECTIONS (200) others send wrong passwords
#    (`orderly-bench authflood`), every one reaching bcrypt;
#  - the crash-consistency check (scripts/crash-check.sh, on a cluster of its own) for
#    BENCH_CRASH_SECONDS; a violation makes the script fail;
#  - the analytics at scale (scripts/bench-analytics.sh): reports served and naive at
#    BENCH_ANALYTICS_ORDERS orders (a million; 0 skips it), and what they cost ORDER CREATE.
# Takes about 10 minutes with the defaults on 2 cores.
#
# Environment: BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 2),
# BENCH_CONNECTIONS ("8 32 128"), BENCH_SCENARIOS ("ping create show mix"),
# BENCH_CUSTOMERS (2000), BENCH_ORDERS (50000), BENCH_POOL_SIZE (orderlyd --pool-size, 8),
# BENCH_HAPROXY_SCENARIOS ("show create"), BENCH_HAPROXY_CONNECTIONS (32),
# BENCH_IDLE_CONNECTIONS (5000), BENCH_IDLE_HOLD (s, 10), BENCH_AUTHFLOOD_CONNECTIONS (200), BENCH_CRASH_SECONDS (120),
# BENCH_KEEP_DATABASE=1 (with BENCH_DATABASE_URL: keep the bench_<pid> database to look into), BENCH_WRITE_PATH (1; 0 skips the write path: create, the lean reference and the write floor), BENCH_FLASH (1; 0 skips the hot-SKU run), BENCH_SKIP_BUILD=1 (use the release build as it is), BENCH_OUTPUT (where the raw JSON of each
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
haproxy_scenarios=${BENCH_HAPROXY_SCENARIOS-show create}
haproxy_connections=${BENCH_HAPROXY_CONNECTIONS:-32}
idle_connections=${BENCH_IDLE_CONNECTIONS:-5000}
idle_hold=${BENCH_IDLE_HOLD:-10}
crash_seconds=${BENCH_CRASH_SECONDS:-120}
flood_connections=${BENCH_AUTHFLOOD_CONNECTIONS:-200}

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
. scripts/lib/orderlyd.sh
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
    cp "$work"/*.jsonl "$work"/*.log "$work"/*.out "${BENCH_OUTPUT:-.build/bench}/" 2>/dev/null || true
    if [ -n "$orderlyd_pid" ]; then kill "$orderlyd_pid" 2>/dev/null || true; wait "$orderlyd_pid" 2>/dev/null || true; fi
    if [ -n "${BENCH_DATABASE_URL:-}" ] && [ "${BENCH_KEEP_DATABASE:-0}" = 0 ]; then
        psql -X -q -d "$maintenance" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    elif [ -n "${BENCH_DATABASE_URL:-}" ]; then
        echo "bench: kept database $db" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# free_port COUNT: the first of COUNT consecutive free local ports.
free_port() {
    local candidate offset
    for candidate in $(seq 17400 17499); do
        for offset in $(seq 0 $(($1 - 1))); do
            (exec 3<>"/dev/tcp/127.0.0.1/$((candidate + offset))") 2>/dev/null && continue 2
        done
        echo "$candidate"; return 0
    done
    echo "no $1 free ports in 17400-17499" >&2; return 1
}
port=$(free_port 1)

# start_orderlyd LOG ARGS…: orderlyd on the database and $port; waits until it listens.
# The delay checks (every minute, a pass over every open order: about 0.3 ms an order here) are
# background work, not the request path measured against pgbench: off, so that a pass landing in
# one run's window does not skew that row.
# Every benchmark connection logs in as the same demo user (up to 5 000 of them in the idle run):
# no cap on one user's sessions here.
start_orderlyd() { orderlyd_start .build/release/orderlyd "$work/$1" --database-url "$dburl" --listen "127.0.0.1:$port" --delay-check-interval 0 --analytics-interval 0 --max-sessions-per-user 0 "${@:2}"; }
stop_orderlyd() {
    kill "$orderlyd_pid" 2>/dev/null || true
    wait "$orderlyd_pid" 2>/dev/null || true
    orderlyd_pid=""
}

echo "== orderlyd on 127.0.0.1:$port (pool $pool_size), database $db" >&2
start_orderlyd orderlyd.log --demo --pool-size "$pool_size"

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

# json_field NAME [last]: a number from the JSON object on stdin (the first occurrence of the key;
# `last` for the last: the totals of a load report follow its per-operation figures).
json_field() {
    local values
    values=$(grep -o "\"$1\":[0-9.]*" | cut -d: -f2)
    if [ "${2:-}" = last ]; then echo "$values" | tail -1; else echo "$values" | head -1; fi
}

# The figures of one orderly-bench load report (JSON on stdin): "throughput p99 errors".
load_figures() {
    local out
    out=$(cat)
    echo "$(json_field throughput last <<<"$out")" "$(json_field p99_ms last <<<"$out")" "$(json_field error_count <<<"$out")"
}

# Runs orderly-bench; prints "throughput p99 errors".
orderly_run() {
    local scenario=$1 clients=$2 out
    out=$(.build/release/orderly-bench "$scenario" --port "$port" --connections "$clients" --duration "$duration" \
              --warmup "$warmup" --database-url "$dburl" --json)
    echo "$out" >> "$work/orderly-bench.jsonl"
    load_figures <<<"$out"
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
        *)      scripts=(-f "bench/pgbench/$scenario.sql") ;;   # create5, lean, floor (the write path)
    esac
    out=$(pgbench -n -M prepared -c "$clients" -j 2 -T "$duration" "${defines[@]}" "${scripts[@]}" "$dburl" 2>&1) || {
        echo "$out" >&2; echo "0"; return; }
    echo "$out" >> "$work/pgbench.log"
    local failed
    failed=$(echo "$out" | sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p')
    [ -z "$failed" ] || [ "$failed" = 0 ] || echo "pgbench $scenario $clients: $failed failed transactions" >&2
    echo "$out" | sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\)/\1/p'
}

# Before each pair of runs the statistics are brought up to date, as autovacuum keeps them on a
# server that has run for a while. Without it the pool's backends keep plans made when a table was
# still empty: seconds after the seed, orderly.order_approvals has no rows until `create` adds
# thousands of pending ones, and the lookup of an order's pending step planned on the empty table
# (the partial index by role, where the one by order is right; both cost the same on no rows)
# then reads all of them at every ORDER SHOW, doubling its cost for orderlyd, while pgbench's new
# connections plan afresh. An ANALYZE invalidates those plans (measured: show at 8 went from
# 0.46–0.56 to ~0.8 of pgbench when the pool's backends were made to plan again).
settle() { q "ANALYZE" >/dev/null; }

rows=()
declare -A single   # "scenario clients" → orderlyd req/s, to set the haproxy rows beside
for scenario in $scenarios; do
    for clients in $connections; do
        echo "== $scenario, $clients connections" >&2
        settle
        read -r throughput p99 errors < <(orderly_run "$scenario" "$clients")
        single["$scenario $clients"]=$throughput
        direct=$(pgbench_run "$scenario" "$clients")
        ratio=$(awk -v a="$throughput" -v b="$direct" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        rows+=("$(printf "%-8s %11s %14.0f %14.0f %7s %13s %8s" "$scenario" "$clients" "$throughput" "$direct" "$ratio" "$p99" "$errors")")
    done
done

# Bytes per order line (issue 16, target 400): the lines' table with its indexes and TOAST, plus
# their shared pricings (orderly.line_pricings), over the lines the database holds after the
# orderlyd runs: measured before the write path, whose lean reference writes lines with no
# pricing at all (they would pull the figure down).
storage_summary=$(q "SELECT format('bytes per order line: %s (%s lines: order_lines %s MB with indexes, line_pricings %s kB in %s rows; target 400)',
                                   (pg_total_relation_size('orderly.order_lines') + pg_total_relation_size('orderly.line_pricings')) / greatest(n, 1),
                                   n, pg_total_relation_size('orderly.order_lines') / 1048576,
                                   pg_total_relation_size('orderly.line_pricings') / 1024, (SELECT count(*) FROM orderly.line_pricings))
                     FROM (SELECT count(*) AS n FROM orderly.order_lines) c")

# The write path (issue 16): api.order_create of a fixed five-line order with submit=true against
# the lean reference write of the same lines (bench/lean-write.sql: rows, stock, status, audit;
# no pricing, no documents), pgbench on both, 8 clients. Target: ratio >= 0.5. Beside them the
# write floor (bench/floor-write.sql): every row create writes, with none of its logic (pgTAP 900
# holds it to create's rows), so that create / floor is what the logic costs and floor / lean
# what the product's own rows cost.
write_summary=""
if [ "${BENCH_WRITE_PATH:-1}" != "0" ]; then
    echo "== write path: create of five lines vs the lean reference and the write floor, 8 connections" >&2
    psql -X -q -v ON_ERROR_STOP=1 -d "$dburl" -c "SET client_min_messages = warning" \
        -f bench/lean-write.sql -f bench/floor-write.sql >/dev/null
    five="SELECT s.id, s.code, row_number() OVER (ORDER BY s.code) AS n FROM orderly.skus s JOIN orderly.products p ON p.id = s.product_id
          WHERE s.active AND p.active AND p.kind = 'goods' ORDER BY s.code LIMIT 5"
    skus5=$(q "SELECT '{' || string_agg(f.id::text, ',' ORDER BY f.n) || '}' FROM ($five) f")
    lines5=$(q "SELECT jsonb_agg(jsonb_build_object('sku', f.code, 'qty', q.qty) ORDER BY f.n)
                FROM ($five) f JOIN unnest('{1,2,1,3,1}'::integer[]) WITH ORDINALITY AS q(qty, n) ON q.n = f.n")
    defines+=(-D "skus=$skus5" -D "lines5=$lines5")
    lean=$(pgbench_run lean 8)
    floor=$(pgbench_run floor 8)
    create5=$(pgbench_run create5 8)
    write_summary=$(awk -v c="$create5" -v l="$lean" -v f="$floor" 'BEGIN {
        printf "write path, 8 connections: api.order_create of 5 lines (submit=true) %.0f/s, lean reference write %.0f/s: ratio %.2f (target 0.5)\n", c, l, (l > 0 ? c / l : 0)
        printf "write floor (create'"'"'s rows, none of its logic) %.0f/s: floor / lean %.2f, create / floor %.2f", f, (l > 0 ? f / l : 0), (f > 0 ? c / f : 0) }')
fi

# A flash sale (issue 16): 32 connections through orderlyd all ordering one unit of one SKU.
# Target: at least half the throughput of create at 32; no deadlock (an error would show it); and
# nothing oversold, checked here: the SKU's reservations grew by exactly the units of the orders
# the run submitted, and stay within what is on hand.
flash_summary=""
if [ "${BENCH_FLASH:-1}" != "0" ]; then
    echo "== flash: 32 connections ordering one SKU" >&2
    settle
    read -r flash_sku flash_id < <(q "SELECT s.code, s.id FROM orderly.skus s JOIN orderly.products p ON p.id = s.product_id
                                      WHERE s.active AND p.active AND p.kind = 'goods' ORDER BY s.code LIMIT 1" | tr '|' ' ')
    reserved_before=$(q "SELECT stock_reserved FROM orderly.skus WHERE id = $flash_id")
    flash_started=$(q "SELECT now()")
    out=$(.build/release/orderly-bench flash --port "$port" --connections 32 --duration "$duration" --warmup "$warmup" \
              --database-url "$dburl" --sku "$flash_sku" --json)
    echo "$out" >> "$work/orderly-bench.jsonl"
    read -r throughput p99 errors < <(load_figures <<<"$out")
    oversold=$(q "SELECT CASE WHEN s.stock_reserved - $reserved_before = coalesce((
                          SELECT sum(l.qty) FROM orderly.order_lines l JOIN orderly.orders o ON o.id = l.order_id
                          WHERE l.sku_id = s.id AND o.created_at >= '$flash_started'
                            AND o.status NOT IN ('draft', 'rejected', 'cancelled')), 0)
                        AND s.stock_reserved <= s.stock_on_hand THEN 'none' ELSE 'YES' END
                  FROM orderly.skus s WHERE s.id = $flash_id")
    flash_summary=$(awk -v t="$throughput" -v c="${single["create 32"]:-0}" -v p="$p99" -v e="$errors" -v o="$oversold" -v sku="$flash_sku" 'BEGIN {
        printf "flash, 32 connections, every order one unit of %s: %.0f orders/s (%.2f of create at 32; target 0.5), p99 %s ms, errors %s, oversold: %s", sku, t, (c > 0 ? t / c : 0), p, e, o }')
    [ "$oversold" = none ] || failed_flash=1
fi

stop_orderlyd
failed=0
[ -z "${failed_flash:-}" ] || failed=1

# Through haproxy: two instances on this database (two-servers.sh starts them and haproxy, runs
# the scenarios, prints what each instance served, and stops them again).
haproxy_rows=()
haproxy_note=""
if [ -n "$haproxy_scenarios" ]; then
    if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then
        haproxy_note="haproxy is not installed (scripts/install-deps.sh --bench installs it): rows through haproxy skipped"
    else
        echo "== haproxy, 2 instances: $haproxy_scenarios, $haproxy_connections connections" >&2
        two_port=$(free_port 3)
        status=0
        TWO_CONFIG=release TWO_SKIP_BUILD=1 TWO_CONNECTIONS="$haproxy_connections" TWO_SCENARIOS="$haproxy_scenarios" \
            TWO_WARMUP="$warmup" TWO_JSON=1 scripts/two-servers.sh --database-url "$dburl" --port "$two_port" \
            --bench "$duration" > "$work/haproxy.out" 2>&1 || status=$?
        if [ "$status" -ne 0 ]; then
            haproxy_note="scripts/two-servers.sh failed (exit $status); its output is in ${BENCH_OUTPUT:-.build/bench}/haproxy.out"
            failed=1
        else
            while read -r out; do
                scenario=$(grep -o '"scenario":"[a-z]*"' <<<"$out" | cut -d'"' -f4)
                read -r throughput p99 errors < <(load_figures <<<"$out")
                one=${single["$scenario $haproxy_connections"]:-}
                ratio=$(awk -v a="$throughput" -v b="$one" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
                haproxy_rows+=("$(printf "%-32s %11s %14.0f %12s %7s %13s %8s" "$scenario via haproxy, 2 instances" \
                    "$haproxy_connections" "$throughput" "${one:+$(printf "%.0f" "$one")}" "$ratio" "$p99" "$errors")")
            done < <(grep '^{"' "$work/haproxy.out")
            haproxy_note=$(grep '^  orderlyd [AB] ' "$work/haproxy.out" | sed 's/^  /  served by /' || true)
        fi
    fi
fi

# Idle connections, on a fresh orderlyd: nothing else in its memory. The instance must admit
# them all and keep them however long the logins take (no idle limit).
idle_summary=""
if [ "$idle_connections" -gt 0 ]; then
    files=$(ulimit -Hn)
    if [ "$files" != unlimited ] && [ "$files" -lt $((idle_connections + 200)) ]; then
        idle_summary="idle: skipped, the hard open-file limit ($files) is below $idle_connections connections (raise ulimit -Hn)"
    else
        echo "== idle: $idle_connections logged-in connections held ${idle_hold}s" >&2
        start_orderlyd orderlyd-idle.log --max-connections $((idle_connections + 100)) --idle-timeout 0 --pool-size "$pool_size"
        status=0
        .build/release/orderly-bench idle --port "$port" --connections "$idle_connections" --hold "$idle_hold" \
            --server-pid "$orderlyd_pid" --json > "$work/idle.jsonl" || status=$?
        stop_orderlyd
        out=$(cat "$work/idle.jsonl")
        logged_in=$(json_field logged_in <<<"$out")
        served=$(json_field served <<<"$out")
        idle_summary=$(awk -v n="$idle_connections" -v li="${logged_in:-0}" -v s="${served:-0}" -v hold="$idle_hold" \
            -v login="$(json_field login_seconds <<<"$out")" -v before="$(json_field rss_kib_before <<<"$out")" \
            -v rss="$(json_field rss_kib_after_hold <<<"$out")" -v hwm="$(json_field hwm_kib <<<"$out")" \
            -v per="$(json_field per_connection_kib <<<"$out")" 'BEGIN {
                printf "idle: %d of %d connections logged in (in %.0f s, %.0f/s), held %d s; orderlyd RSS %.1f MB", li, n, login, (login > 0 ? li / login : 0), hold, rss * 1.024 / 1000
                printf " (peak %.1f MB, %.1f MB before the first; %.1f KiB per connection); PING answered by %d", hwm * 1.024 / 1000, before * 1.024 / 1000, per, s
                if (n == 5000) printf "; target: RSS under 150 MB at 5 000 (%s)", (hwm * 1.024 / 1000 < 150 ? "met" : "MISSED")
            }')
        if [ "$status" -ne 0 ]; then
            idle_summary+=$'
'"idle: FAILED (exit $status): $(grep -o '"errors":{[^}]*}' <<<"$out" || echo "no report")"
            failed=1
        fi
    fi
fi

# ORDER SHOW from 8 logged-in connections while BENCH_AUTHFLOOD_CONNECTIONS others hammer wrong
# passwords, every one of which reaches bcrypt (the throttling limits are lifted for this run):
# what the AUTH share of the pool (--auth-pool-share) leaves logged-in users, beside show at 8
# connections without the flood from the table above.
flood_summary=""
if [ "$flood_connections" -gt 0 ] && [[ " $scenarios " == *" show "* ]]; then
    echo "== show, 8 connections, during an AUTH flood of $flood_connections connections" >&2
    start_orderlyd orderlyd-flood.log --pool-size "$pool_size" \
        --auth-max-failures 1000000 --auth-max-address-failures 1000000 --auth-max-account-failures 1000000
    .build/release/orderly-bench authflood --port "$port" --connections "$flood_connections" \
        --duration "$(awk -v w="$warmup" -v d="$duration" 'BEGIN { print w + d + 5 }')" --json > "$work/authflood.jsonl" &
    flood_pid=$!
    sleep 1
    read -r throughput p99 errors < <(orderly_run show 8)
    wait "$flood_pid" || true
    stop_orderlyd
    flood_summary=$(awk -v n="$flood_connections" -v t="$throughput" -v base="${single["show 8"]:-0}" -v p99="$p99" -v e="$errors" \
        -v replies="$(json_field replies < "$work/authflood.jsonl")" -v secs="$(json_field seconds < "$work/authflood.jsonl")" 'BEGIN {
            printf "auth flood: show at 8 connections answered %.0f req/s (p99 %s ms, %s errors) while %d connections sent wrong passwords (%.0f AUTH replies/s)", t, p99, e, n, (secs > 0 ? replies / secs : 0)
            if (base > 0) printf "; %.0f req/s without the flood, ratio %.2f", base, t / base
        }')
    flood_summary+=$'\n'"  AUTH replies by code: $(grep -o '"by_code":{[^}]*}' "$work/authflood.jsonl" | cut -d: -f2-)"
fi

# The crash-consistency check on a cluster of its own, longer than the 20 s of `make test`.
crash_summary=""
if [ "$crash_seconds" -gt 0 ]; then
    echo "== crash-check: ${crash_seconds}s" >&2
    status=0
    CRASH_CONFIG=release CRASH_SKIP_BUILD=1 scripts/crash-check.sh "$crash_seconds" > "$work/crash-check.out" 2>&1 || status=$?
    crash_summary=$(grep -E '^crash-check: ([0-9]+s,|OK|FAILED)' "$work/crash-check.out" || true)
    if [ "$status" -ne 0 ]; then
        crash_summary+=$'
'"crash-check: exit $status; its output is in ${BENCH_OUTPUT:-.build/bench}/crash-check.out"
        failed=1
    fi
fi

echo
echo "orderly-bench vs pgbench (same api functions over libpq), ${duration} s each, $(nproc) cores, PostgreSQL $(q 'SHOW server_version' | cut -d' ' -f1) on the same machine"
printf "%-8s %11s %14s %14s %7s %13s %8s\n" scenario connections "orderlyd req/s" "pgbench tps" ratio "orderlyd p99" errors
printf "%-8s %11s %14s %14s %7s %13s %8s\n" -------- ----------- -------------- -------------- ------- ------------- --------
for row in "${rows[@]}"; do echo "$row"; done
echo "(p99 in ms; ping: orderlyd PING vs pgbench SELECT 1; mix: orderly-bench also runs approvers, pgbench does not)"
if [ ${#haproxy_rows[@]} -gt 0 ] || [ -n "$haproxy_note" ]; then
    echo
fi
if [ ${#haproxy_rows[@]} -gt 0 ]; then
    echo "through haproxy (leastconn), 2 orderlyd instances on the same database, pool 8 each; ratio: against 1 instance without haproxy"
    printf "%-32s %11s %14s %12s %7s %13s %8s\n" scenario connections "orderlyd req/s" "1 instance" ratio "orderlyd p99" errors
    printf "%-32s %11s %14s %12s %7s %13s %8s\n" -------------------------------- ----------- -------------- ------------ ------- ------------- --------
    for row in "${haproxy_rows[@]}"; do echo "$row"; done
fi
[ -z "$haproxy_note" ] || echo "$haproxy_note"
[ -z "$write_summary" ] || { echo; echo "$write_summary"; }
[ -z "$flash_summary" ] || { echo; echo "$flash_summary"; }
echo; echo "$storage_summary"
[ -z "$idle_summary" ] || { echo; echo "$idle_summary"; }
[ -z "$flood_summary" ] || { echo; echo "$flood_summary"; }
[ -z "$crash_summary" ] || { echo; echo "$crash_summary"; }
# The analytics at scale (scripts/bench-analytics.sh: its own database in this cluster, a million
# orders by default; BENCH_ANALYTICS_ORDERS=0 skips it).
if [ "${BENCH_ANALYTICS_ORDERS:-1000000}" != "0" ]; then
    echo
    BENCH_SKIP_BUILD=1 scripts/bench-analytics.sh || failed=1
fi
exit "$failed"
