-- Baseline of `orderly-bench create`: api.order_create as orderlyd calls it (actor, jsonb), with
-- 3-10 distinct lines from the catalog items and submit=true. Run with -M prepared and
-- -D actor=<sales_rep id> -D minc=… -D maxc=… (customers with an address)
-- -D items='[{"sku":"PHN-X1-128-BLK"},…,{"product":"SVC-SETUP"}]'.
\set customer random(:minc, :maxc)
\set nlines random(3, 10)
\set key random(1, 1000000000000)
SELECT * FROM api.order_create(:actor::bigint, jsonb_build_object(
    'customer', :customer::bigint,
    'lines', (SELECT jsonb_agg(i.item || jsonb_build_object('qty', 1 + floor(random() * 5)::integer))
              FROM (SELECT item FROM jsonb_array_elements(:items::jsonb) item ORDER BY random() LIMIT :nlines::integer) i),
    'submit', true,
    'idempotency_key', 'pgbench-' || :client_id::text || '-' || :key::text));
