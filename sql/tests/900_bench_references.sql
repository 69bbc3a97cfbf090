-- The bench's reference writes (issue 16; bench/lean-write.sql, bench/floor-write.sql, which
-- scripts/test.sh loads into this database as scripts/bench.sh loads them into the bench's). The
-- write floor must write, table by table, exactly the rows ORDER CREATE … submit=true writes for
-- the same five-line order routed to one approver: `make bench` prints create as a ratio of it,
-- which means "the cost of everything but the writes" only while the two write the same. The lean
-- reference writes what its file says. Counted by PostgreSQL itself (pg_stat_xact_user_tables:
-- rows inserted, updated, deleted by this transaction, per table).
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(6);

DO $$
BEGIN
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('sue', 'sue-secret-1', ARRAY['sales_supervisor']);
END
$$;
SELECT count(*) FROM admin.load_demo_approvals();

-- Five stocked SKUs, one per product.
INSERT INTO orderly.products (code, name, kind, base_price)
SELECT 'P' || n, 'Product ' || n, 'goods', 10 * n FROM generate_series(1, 5) n;
INSERT INTO orderly.skus (product_id, code, stock_on_hand) SELECT p.id, p.code || '-STD', 1000 FROM orderly.products p;

CREATE TEMP TABLE five AS
SELECT s.id, s.code, row_number() OVER (ORDER BY s.code) AS n FROM orderly.skus s ORDER BY s.code LIMIT 5;
CREATE TEMP TABLE args AS
SELECT test.customer('rita', 'Acme', '+4930100100') AS customer,
       (SELECT jsonb_agg(jsonb_build_object('sku', f.code, 'qty', q.qty) ORDER BY f.n)
        FROM five f JOIN unnest('{1,2,1,3,1}'::integer[]) WITH ORDINALITY AS q(qty, n) ON q.n = f.n) AS lines,
       (SELECT array_agg(f.id ORDER BY f.n) FROM five f) AS skus;

-- Rows each table (but temporary ones) gained by running `sql`: {"schema.table": [inserted, updated, deleted]}.
CREATE FUNCTION pg_temp.tally() RETURNS TABLE (t text, ins bigint, upd bigint, del bigint) LANGUAGE sql AS $$
    SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables
    WHERE schemaname !~ '^pg_temp'
$$;
CREATE FUNCTION pg_temp.writes_of(sql text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_before jsonb := (SELECT jsonb_object_agg(t, jsonb_build_array(ins, upd, del)) FROM pg_temp.tally());
BEGIN
    EXECUTE sql;
    RETURN (SELECT jsonb_object_agg(a.t, jsonb_build_array(a.ins - coalesce((v_before -> a.t ->> 0)::bigint, 0),
                                                            a.upd - coalesce((v_before -> a.t ->> 1)::bigint, 0),
                                                            a.del - coalesce((v_before -> a.t ->> 2)::bigint, 0)))
            FROM pg_temp.tally() a
            WHERE (a.ins, a.upd, a.del) IS DISTINCT FROM (coalesce((v_before -> a.t ->> 0)::bigint, 0),
                                                         coalesce((v_before -> a.t ->> 1)::bigint, 0),
                                                         coalesce((v_before -> a.t ->> 2)::bigint, 0)));
END
$$;
CREATE FUNCTION pg_temp.create_sql(key text) RETURNS text LANGUAGE sql AS $$
    SELECT format('SELECT test.call(%L, %L, %L)', 'order_create', 'rita',
                  jsonb_build_object('customer', a.customer, 'lines', a.lines, 'submit', true, 'idempotency_key', key))
    FROM args a
$$;

-- The first order stores the lines' pricings (shared by every later line priced the same way,
-- as on the bench's database after its first orders); the second is the one the bench repeats.
SELECT ok(pg_temp.writes_of(pg_temp.create_sql('bench-ref-1')) ? 'orderly.line_pricings', 'the first order stores its pricings');
CREATE TEMP TABLE created AS SELECT pg_temp.writes_of(pg_temp.create_sql('bench-ref-2')) AS w;
SELECT is((SELECT status FROM orderly.orders ORDER BY id DESC LIMIT 1), 'pending_approval',
          'the order waits for its one approver, as on the bench');

SELECT is(pg_temp.writes_of(format('SELECT bench.floor_order(%s, %s, %L, %L, %L)', test.uid('rita'), a.customer, a.skus,
                                   '{1,2,1,3,1}'::integer[], 'bench-floor-1')),
          (SELECT w FROM created),
          'the write floor writes what ORDER CREATE writes, table by table')
FROM args a;

-- The stored reply is the largest value either writes (compressed on the way in): the floor's
-- is of about the length and the stored size of create's.
SELECT ok((SELECT bool_and(f.n BETWEEN c.n * 0.75 AND c.n * 1.25 AND f.stored BETWEEN c.stored * 0.75 AND c.stored * 1.25)
           FROM (SELECT octet_length(reply) AS n, pg_column_size(reply) AS stored FROM orderly.idempotency_keys WHERE key = 'bench-ref-2') c,
                (SELECT octet_length(reply) AS n, pg_column_size(reply) AS stored FROM orderly.idempotency_keys WHERE key = 'bench-floor-1') f),
          'the floor stores a reply of about the size of create''s');

SELECT is((SELECT w FROM created),
          '{"orderly.orders": [1, 3, 0], "orderly.order_lines": [5, 0, 0], "orderly.order_status_history": [3, 0, 0],
            "orderly.order_approvals": [1, 0, 0], "orderly.notifications": [1, 0, 0], "orderly.skus": [0, 5, 0],
            "orderly.stock_reservations": [5, 0, 0], "orderly.audit_log": [7, 0, 0], "orderly.idempotency_keys": [1, 1, 0]}'::jsonb,
          'ORDER CREATE of the bench''s order writes the rows bench/floor-write.sql lists');

SELECT is(pg_temp.writes_of(format('SELECT bench.lean_order(%s, %s, %L, %L)', test.uid('rita'), a.customer, a.skus,
                                   '{1,2,1,3,1}'::integer[])),
          '{"orderly.orders": [1, 1, 0], "orderly.order_lines": [5, 0, 0], "orderly.skus": [0, 5, 0],
            "orderly.order_status_history": [1, 0, 0], "orderly.audit_log": [1, 0, 0]}'::jsonb,
          'the lean reference writes what bench/lean-write.sql says')
FROM args a;

SELECT * FROM finish();
ROLLBACK;
