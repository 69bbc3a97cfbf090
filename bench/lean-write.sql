-- The lean reference write of issue 16: what creating and submitting an order must write at the
-- least, with no pricing and no documents — an order row, its line rows, guarded stock updates in
-- SKU order, a status row and an audit row — in one plpgsql function. `make bench` runs it with
-- pgbench (bench/pgbench/lean.sql) beside api.order_create on the same five lines
-- (bench/pgbench/create5.sql) and prints create as a ratio of it. Loaded into the bench database
-- only (schema bench); never part of the application.
CREATE SCHEMA IF NOT EXISTS bench;

CREATE OR REPLACE FUNCTION bench.lean_order(actor bigint, customer bigint, skus bigint[], qtys integer[]) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id    bigint;
    v_total numeric;
    r       record;
BEGIN
    INSERT INTO orderly.orders (customer_id, status, currency, created_by, submitted_by, submitted_at, priced_at, next_line_no)
    VALUES (customer, 'submitted', 'EUR', actor, actor, now(), now(), cardinality(skus) + 1)
    RETURNING id INTO v_id;
    INSERT INTO orderly.order_lines (order_id, line_no, customer_id, spec, product_id, sku_id, qty, list_price, gross, discount, net, pricing)
    SELECT v_id, u.n, customer, jsonb_build_object('sku', s.code, 'qty', u.qty), s.product_id, s.id, u.qty,
           p.base_price, p.base_price * u.qty, 0, p.base_price * u.qty, sha256(convert_to(s.code, 'UTF8'))
    FROM unnest(skus, qtys) WITH ORDINALITY AS u(sku_id, qty, n)
    JOIN orderly.skus s ON s.id = u.sku_id
    JOIN orderly.products p ON p.id = s.product_id;
    -- Reserve, SKU by SKU in id order (the lock order of the real submission), all or nothing.
    FOR r IN SELECT u.sku_id, sum(u.qty) AS qty FROM unnest(skus, qtys) AS u(sku_id, qty) GROUP BY u.sku_id ORDER BY u.sku_id LOOP
        UPDATE orderly.skus x SET stock_reserved = x.stock_reserved + r.qty
        WHERE x.id = r.sku_id AND x.stock_on_hand - x.stock_reserved >= r.qty;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'not enough stock' USING ERRCODE = 'OL409';
        END IF;
    END LOOP;
    SELECT sum(l.net) INTO v_total FROM orderly.order_lines l WHERE l.order_id = v_id;
    UPDATE orderly.orders o SET subtotal = v_total, total = v_total WHERE o.id = v_id;
    INSERT INTO orderly.order_status_history (order_id, customer_id, from_status, to_status, changed_by)
    VALUES (v_id, customer, NULL, 'submitted', actor);
    PERFORM orderly.audit(actor, 'order.create', 'order', v_id::text, NULL, jsonb_build_object('total', v_total));
    RETURN v_id;
END
$$;
