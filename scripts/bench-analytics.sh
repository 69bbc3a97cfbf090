#!/usr/bin/env bash
# The analytics at scale (issue 15), the last part of `make bench`, or alone:
#   scripts/bench-analytics.sh
# On a throw-away cluster (pg_virtualenv): a migrated database with the demo catalog and users,
# seeded with `orderly-bench seed` (BENCH_ANALYTICS_CUSTOMERS customers, BENCH_ANALYTICS_ORDERS
# orders over two years, through every stage, some cancelled), then
#  1. the first refresh of the rollups (api.refresh_analytics: a month of days or 20 000 orders per
#     run, then 5 000 customers per run), timed, with its longest run (orderlyd's statement
#     timeout is 30 s);
#  2. each report, served (REPORT through api.report, over the rollups) and naive (the same
#     answer computed from the orders, lines and history), BENCH_ANALYTICS_RUNS times each
#     (20; the naive ones 3 times), p50 and p95 in ms;
#  3. what the analytics add to ORDER CREATE: pgbench on api.order_create with and without the
#     one index they need on the write path (order_status_history.changed_at), 8 clients,
#     BENCH_DURATION seconds each, three rounds alternating;
#  4. one refresh after those rounds: what the timer does every 30 s.
# Environment: BENCH_ANALYTICS_CUSTOMERS (100000), BENCH_ANALYTICS_ORDERS (1000000),
# BENCH_ANALYTICS_RUNS (20), BENCH_DURATION (10), BENCH_SKIP_BUILD=1 (use the release build as is).
set -euo pipefail
cd "$(dirname "$0")/.."

customers=${BENCH_ANALYTICS_CUSTOMERS:-100000}
orders=${BENCH_ANALYTICS_ORDERS:-1000000}
runs=${BENCH_ANALYTICS_RUNS:-20}
duration=${BENCH_DURATION:-10}

if [ -z "${BENCH_IN_CLUSTER:-}" ]; then
    if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
        echo "== build (release)" >&2
        swift build -c release --product orderlyd >&2
        swift build -c release --product orderly-bench >&2
    fi
    exec pg_virtualenv -o shared_buffers=512MB -o max_connections=50 -o work_mem=32MB env BENCH_IN_CLUSTER=1 "$0" "$@"
fi

db="orderly_analytics_$$"
createdb "$db"
trap 'dropdb --if-exists "$db" >/dev/null 2>&1 || true' EXIT
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

echo "== migrate, demo catalog and users" >&2
.build/release/orderlyd migrate --database-url "$db" --log-level warning >&2
q "SELECT count(*) FROM admin.create_demo_users(); SELECT count(*) FROM admin.load_demo_catalog(); SELECT admin.load_demo_customer();" >/dev/null

echo "== seed: $customers customers, $orders orders" >&2
started=$(date +%s)
.build/release/orderly-bench seed --database-url "$db" --customers "$customers" --orders "$orders" >&2
echo "seed: $(( $(date +%s) - started )) s" >&2
q "VACUUM ANALYZE" >/dev/null
size=$(q "SELECT pg_size_pretty(pg_database_size(current_database()))")

echo "== first refresh (backfill)" >&2
started=$(date +%s%N)
passes=0
longest=0
while :; do
    passes=$((passes + 1))
    pass=$(q "SELECT api.refresh_analytics()")
    echo "refresh: $pass" >&2
    ms=$(q "SELECT ('$pass'::json ->> 'ms')::integer")
    [ "$ms" -le "$longest" ] || longest=$ms
    [ "$(q "SELECT '$pass'::json ->> 'backfilling'")" = "false" ] && break
done
backfill_ms=$(( ($(date +%s%N) - started) / 1000000 ))
q "VACUUM ANALYZE" >/dev/null

# The timings, by a function of this throw-away database: each query run N times (after one to
# warm up), p50 and p95 of the wall time.
q "CREATE SCHEMA IF NOT EXISTS bench; CREATE OR REPLACE FUNCTION bench.timed(query text, n integer) RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
    t  timestamptz;
    ms double precision[] := '{}';
    i  integer;
BEGIN
    EXECUTE query;  -- warm
    FOR i IN 1..n LOOP
        t := clock_timestamp();
        EXECUTE query;
        ms := ms || extract(epoch FROM clock_timestamp() - t) * 1000;
    END LOOP;
    RETURN (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 1) || ' ' ||
                   round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x)::numeric, 1) FROM unnest(ms) x);
END \$\$" >/dev/null
actor=$(q "SELECT id FROM orderly.users WHERE username = 'finance_manager'")

# name | served (REPORT args) | naive SQL over the base tables
reports=(
"sales by month|{\"name\":\"sales\"}|SELECT to_char(o.created_at, 'YYYY-MM'), o.currency, count(DISTINCT o.id), sum(l.net * (l.qty - l.cancelled_qty) / l.qty) FROM orderly.orders o JOIN orderly.order_lines l ON l.order_id = o.id WHERE o.created_at >= date_trunc('month', now()) - interval '11 months' AND o.status NOT IN ('draft','submitted','pending_approval','rejected','cancelled') AND EXISTS (SELECT 1 FROM orderly.order_status_history h WHERE h.order_id = o.id AND h.to_status = 'approved') GROUP BY 1, 2"
"sales by category|{\"name\":\"sales\",\"group\":\"category\"}|WITH RECURSIVE tree AS (SELECT id AS category_id, id AS ancestor_id FROM orderly.categories UNION ALL SELECT t.category_id, c.parent_id FROM tree t JOIN orderly.categories c ON c.id = t.ancestor_id WHERE c.parent_id IS NOT NULL) SELECT t.ancestor_id, o.currency, sum(l.net * (l.qty - l.cancelled_qty) / l.qty) FROM orderly.orders o JOIN orderly.order_lines l ON l.order_id = o.id JOIN orderly.products p ON p.id = l.product_id JOIN tree t ON t.category_id = p.category_id WHERE o.created_at >= date_trunc('month', now()) - interval '11 months' AND o.status NOT IN ('draft','submitted','pending_approval','rejected','cancelled') GROUP BY 1, 2"
"sales by region|{\"name\":\"sales\",\"group\":\"region\"}|SELECT c.region, o.currency, count(*), sum(o.total - o.cancelled_total - o.tax_total) FROM orderly.orders o JOIN orderly.customers c ON c.id = o.customer_id WHERE o.created_at >= date_trunc('month', now()) - interval '11 months' AND o.status NOT IN ('draft','submitted','pending_approval','rejected','cancelled') GROUP BY 1, 2"
"top products|{\"name\":\"products\"}|SELECT l.product_id, o.currency, sum(l.net) FROM orderly.orders o JOIN orderly.order_lines l ON l.order_id = o.id WHERE o.created_at >= date_trunc('month', now()) - interval '11 months' AND o.status NOT IN ('draft','submitted','pending_approval','rejected','cancelled') GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10"
"slow movers|{\"name\":\"slow_movers\"}|SELECT k.id FROM orderly.skus k WHERE k.stock_on_hand > 0 AND NOT EXISTS (SELECT 1 FROM orderly.order_lines l JOIN orderly.orders o ON o.id = l.order_id WHERE l.sku_id = k.id AND o.created_at > now() - interval '60 days' AND o.status NOT IN ('draft','submitted','pending_approval','rejected','cancelled'))"
"top customers|{\"name\":\"customers\",\"group\":\"customer\"}|SELECT o.customer_id, o.currency, count(*), sum(o.total - o.cancelled_total) FROM orderly.orders o WHERE o.status NOT IN ('draft','submitted','pending_approval','rejected','cancelled') GROUP BY 1, 2 ORDER BY 4 DESC LIMIT 10"
"rfm segments|{\"name\":\"rfm\"}|SELECT r, f, m, count(*) FROM (SELECT ntile(5) OVER (ORDER BY max(o.created_at)) r, ntile(5) OVER (ORDER BY count(*)) f, ntile(5) OVER (ORDER BY sum(o.total - o.cancelled_total)) m FROM orderly.orders o WHERE o.status NOT IN ('draft','submitted','pending_approval','rejected','cancelled') GROUP BY o.customer_id, o.currency) x GROUP BY 1, 2, 3"
"stage times|{\"name\":\"stages\"}|SELECT stage, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.9) WITHIN GROUP (ORDER BY d), sum(d) FROM (SELECT h.to_status AS stage, lead(h.changed_at) OVER (PARTITION BY h.order_id ORDER BY h.id) - h.changed_at AS d FROM orderly.order_status_history h) v WHERE d IS NOT NULL GROUP BY stage"
"on-time delivery|{\"name\":\"on_time\"}|SELECT date_trunc('month', h.changed_at), count(*), count(*) FILTER (WHERE h.changed_at::date <= o.requested_date) FROM orderly.order_status_history h JOIN orderly.orders o ON o.id = h.order_id WHERE h.to_status = 'delivered' GROUP BY 1"
"cancellations|{\"name\":\"cancellations\"}|SELECT c.plan ->> 'order_status', c.currency, count(*), sum(c.fee) FROM orderly.order_cancellations c WHERE c.status = 'applied' GROUP BY 1, 2"
)

echo "rollups: $(q "SELECT (SELECT count(*) FROM orderly.sales_day_lines) || ' product-day rows, ' || (SELECT count(*) FROM orderly.customer_stats) || ' customers, ' || (SELECT count(*) FROM orderly.stage_month_stats) || ' stage-months'")" >&2
echo "== reports: served $runs runs, naive 3 runs" >&2
table=""
for r in "${reports[@]}"; do
    IFS='|' read -r name args naive <<<"$r"
    served=$(q "SELECT bench.timed(format('SELECT count(*) FROM api.report(%s, %L::jsonb)', $actor, '$args'), $runs)")
    base=$(q "SELECT bench.timed(\$q\$$naive\$q\$, 3)")
    table+=$(printf '%-18s  %9s  %9s  %11s  %11s' "$name" ${served} ${base})$'\n'
done

echo "== ORDER CREATE with and without the analytics index, $duration s each, 8 clients" >&2
sales_rep=$(q "SELECT id FROM orderly.users WHERE username = 'sales_rep'")
minc=$(q "SELECT min(customer_id) FROM orderly.addresses WHERE is_default")
maxc=$(q "SELECT max(customer_id) FROM orderly.addresses WHERE is_default")
items=$(q "SELECT jsonb_agg(i) FROM (
             SELECT jsonb_build_object('sku', s.code) AS i FROM orderly.skus s JOIN orderly.products p ON p.id = s.product_id
             WHERE s.active AND p.active AND p.kind = 'goods'
             UNION ALL
             SELECT jsonb_build_object('product', p.code) FROM orderly.products p WHERE p.active AND p.kind = 'service') x")
q "UPDATE orderly.skus SET stock_on_hand = 100000000" >/dev/null
tps() { pgbench -n -M prepared -c 8 -j 2 -T "$duration" -D "actor=$sales_rep" -D "minc=$minc" -D "maxc=$maxc" -D "items=$items" \
          -f bench/pgbench/create.sql "$db" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
with=() without=()
for round in 1 2 3; do
    with+=("$(tps)")
    q "DROP INDEX orderly.order_status_history_changed_idx" >/dev/null
    without+=("$(tps)")
    q "CREATE INDEX order_status_history_changed_idx ON orderly.order_status_history (changed_at)" >/dev/null
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }

# What the timer does every 30 s: the orders the create rounds made (all of today) brought in.
made=$(q "SELECT count(*) FROM orderly.orders WHERE created_at > now() - interval '1 hour'")
incremental=$(q "SELECT api.refresh_analytics() ->> 'ms'")
w=$(median "${with[@]}"); wo=$(median "${without[@]}")

echo
echo "Analytics at $orders orders, $customers customers (database $size)"
echo "first refresh (backfill): $backfill_ms ms in $passes runs, the longest $longest ms; then one refresh after the $made orders the create rounds made: $incremental ms"
echo
printf '%-18s  %9s  %9s  %11s  %11s\n' "report" "served p50" "p95 (ms)" "naive p50" "p95 (ms)"
printf '%s' "$table"
echo
echo "ORDER CREATE (pgbench, 8 clients, median of 3): with the index $w tps, without $wo tps; cost $(awk -v a="$w" -v b="$wo" 'BEGIN { printf "%.1f", (b - a) / b * 100 }') %"
