-- api.order_create as orderlyd calls it, of a fixed five-line order of demo SKUs with
-- submit=true: the same lines bench/pgbench/lean.sql writes without pricing (issue 16's ratio).
-- -D actor=… -D minc=… -D maxc=… -D lines5='[{"sku":…,"qty":1},…]'.
\set customer random(:minc, :maxc)
\set key random(1, 1000000000000)
SELECT * FROM api.order_create(:actor::bigint, jsonb_build_object(
    'customer', :customer::bigint,
    'lines', :lines5::jsonb,
    'submit', true,
    'idempotency_key', 'pgbench5-' || :client_id::text || '-' || :key::text));
