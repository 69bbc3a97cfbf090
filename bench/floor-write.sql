-- The write floor of issue 16's create: every row api.order_create … submit=true writes for the
-- bench's five-line order, written with plain statements — no pricing (list prices copied), no
-- documents (a reply of about the same length and kind stored), no checks — and only the reads
-- that say which rows to write: the approval rule as orderly.rule_for_order picks it (and locks
-- it, FOR SHARE), its first step's role, that role's holders to notify. It is what the product's
-- data costs by itself: an implementation of ORDER CREATE that keeps the product (its approval
-- round, its notifications, its audit trail, its replayable reply) cannot write less. It writes
-- in create's order: the reply is stored before the SKU rows are locked, and those are the last
-- statements. `make bench` runs it beside the lean reference (bench/lean-write.sql) and
-- api.order_create, on the same five lines, and prints both ratios. Loaded into the bench
-- database only (schema bench); never part of the application.
--
-- Rows, as one api.order_create of bench/pgbench/create5.sql writes them (pgTAP 900 checks it
-- table by table): idempotency_keys 1 (inserted, then its reply), orders 1 (inserted as a
-- draft, then its totals, submitted, pending_approval: four versions), order_lines 5,
-- order_status_history 3, order_approvals 1, notifications 1 per holder of the step's role
-- (one on the bench; with NOTIFY), skus 5 (updated), stock_reservations 5, audit_log 6 + 1 per
-- notification. The lean reference writes orders 1 (two versions), order_lines 5, skus 5,
-- order_status_history 1 and audit_log 1.
CREATE SCHEMA IF NOT EXISTS bench;

CREATE OR REPLACE FUNCTION bench.floor_order(actor bigint, customer bigint, skus bigint[], qtys integer[], key text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id    bigint;
    v_total numeric;
    v_rule  bigint;
    v_role  text;
    v_due   interval;
    v_note  bigint;
    r       record;
BEGIN
    INSERT INTO orderly.idempotency_keys (user_id, key, command, request_hash)
    VALUES (actor, floor_order.key, 'ORDER CREATE', sha256(convert_to(floor_order.key, 'UTF8')));
    INSERT INTO orderly.orders (customer_id, status, currency, created_by, next_line_no)
    VALUES (customer, 'draft', 'EUR', actor, cardinality(skus) + 1)
    RETURNING id INTO v_id;
    INSERT INTO orderly.order_status_history (order_id, customer_id, from_status, to_status, changed_by)
    VALUES (v_id, customer, NULL, 'draft', actor);
    PERFORM orderly.audit(actor, 'order.draft', 'order', v_id::text, NULL,
                          jsonb_build_object('customer', customer, 'type', 'standard', 'lines', cardinality(skus)));
    INSERT INTO orderly.order_lines (order_id, line_no, customer_id, spec, product_id, sku_id, qty, list_price, gross, discount, net, pricing)
    SELECT v_id, u.n, customer, jsonb_build_object('sku', s.code, 'qty', u.qty), s.product_id, s.id, u.qty,
           p.base_price, p.base_price * u.qty, 0, p.base_price * u.qty, sha256(convert_to(s.code, 'UTF8'))
    FROM unnest(skus, qtys) WITH ORDINALITY AS u(sku_id, qty, n)
    JOIN orderly.skus s ON s.id = u.sku_id
    JOIN orderly.products p ON p.id = s.product_id;
    SELECT sum(l.net) INTO v_total FROM orderly.order_lines l WHERE l.order_id = v_id;
    UPDATE orderly.orders o SET subtotal = v_total, total = v_total, priced_at = now() WHERE o.id = v_id;
    -- Submitted: status row, its audit, the submission's audit.
    UPDATE orderly.orders o SET status = 'submitted', submitted_by = actor, submitted_at = now(), updated_at = now()
    WHERE o.id = v_id;
    INSERT INTO orderly.order_status_history (order_id, customer_id, from_status, to_status, changed_by)
    VALUES (v_id, customer, 'draft', 'submitted', actor);
    PERFORM orderly.audit(actor, 'order.status', 'order', v_id::text, jsonb_build_object('status', 'draft'),
                          jsonb_build_object('status', 'submitted'));
    PERFORM orderly.audit(actor, 'order.submit', 'order', v_id::text, NULL,
                          jsonb_build_object('total', v_total, 'currency', 'EUR', 'ship_to', NULL, 'coupon', NULL));
    -- The approval round's first step, its audit, the status it leads to.
    SELECT ar.id INTO v_rule FROM orderly.approval_rules ar
    WHERE ar.active AND ar.order_types @> ARRAY['standard']
      AND (ar.min_total IS NULL OR v_total >= ar.min_total) AND (ar.max_total IS NULL OR v_total <= ar.max_total)
      AND EXISTS (SELECT 1 FROM orderly.approval_rule_steps st WHERE st.rule_id = ar.id)
    ORDER BY ar.priority DESC, ar.id LIMIT 1
    FOR SHARE OF ar;
    SELECT st.role, st.due_after INTO v_role, v_due FROM orderly.approval_rule_steps st
    WHERE st.rule_id = v_rule ORDER BY st.step_no LIMIT 1;
    INSERT INTO orderly.order_approvals (order_id, customer_id, round, step_no, steps, rule_id, role, due_after,
                                         status, pending_since, due_at)
    VALUES (v_id, customer, 1, 1, 1, v_rule, v_role, v_due, 'pending', now(), now() + v_due);
    PERFORM orderly.audit(actor, 'approval.route', 'order', v_id::text, NULL,
                          jsonb_build_object('rule', 'bench', 'rule_id', v_rule, 'round', 1, 'steps', 1, 'first_role', v_role));
    UPDATE orderly.orders o SET status = 'pending_approval', updated_at = now() WHERE o.id = v_id;
    INSERT INTO orderly.order_status_history (order_id, customer_id, from_status, to_status, changed_by)
    VALUES (v_id, customer, 'submitted', 'pending_approval', actor);
    PERFORM orderly.audit(actor, 'order.status', 'order', v_id::text, jsonb_build_object('status', 'submitted'),
                          jsonb_build_object('status', 'pending_approval', 'reason', NULL));
    -- The reply kept for a retry (stored before the stock, as create stores its own): the order,
    -- its lines and five stored pricings as JSON, about the length of create's reply (some
    -- 7 000 characters for this order) and of the same kind, so that it compresses about as one.
    UPDATE orderly.idempotency_keys k
    SET reply = json_build_object(
            'order', (SELECT row_to_json(o) FROM orderly.orders o WHERE o.id = v_id),
            'lines', (SELECT json_agg(l ORDER BY l.line_no) FROM orderly.order_lines l WHERE l.order_id = v_id),
            'pricings', (SELECT json_agg(y.body) FROM (SELECT lp.body FROM orderly.line_pricings lp ORDER BY lp.digest LIMIT 5) y))::text
    WHERE k.user_id = actor AND k.key = floor_order.key;
    -- Each holder's notification (its row, its audit, its NOTIFY), as api.notify writes them.
    FOR r IN SELECT ur.user_id FROM orderly.roles ro JOIN orderly.user_roles ur ON ur.role_id = ro.id
             JOIN orderly.users u ON u.id = ur.user_id AND NOT u.locked
             WHERE ro.name = v_role AND ur.user_id <> actor ORDER BY ur.user_id LOOP
        INSERT INTO orderly.notifications (recipient_user_id, kind, payload)
        VALUES (r.user_id, 'approval.requested',
                jsonb_build_object('order_id', v_id, 'customer_id', customer, 'total', v_total, 'currency', 'EUR',
                                   'round', 1, 'step', 1, 'of', 1, 'role', v_role, 'rule', 'bench'))
        RETURNING id INTO v_note;
        PERFORM orderly.audit(actor, 'notification.create', 'notification', v_note::text, NULL,
                              jsonb_build_object('recipient_user', r.user_id, 'kind', 'approval.requested',
                                                 'payload', jsonb_build_object('order_id', v_id, 'customer_id', customer,
                                                     'total', v_total, 'currency', 'EUR', 'round', 1, 'step', 1, 'of', 1,
                                                     'role', v_role, 'rule', 'bench')));
        PERFORM pg_notify('orderly_events', v_note::text);
    END LOOP;
    -- The stock, SKU by SKU in id order (the real submission's lock order), then the reservations.
    FOR r IN SELECT u.sku_id, sum(u.qty) AS qty FROM unnest(skus, qtys) AS u(sku_id, qty) GROUP BY u.sku_id ORDER BY u.sku_id LOOP
        UPDATE orderly.skus x SET stock_reserved = x.stock_reserved + r.qty, updated_at = now()
        WHERE x.id = r.sku_id AND x.stock_on_hand - x.stock_reserved >= r.qty;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'not enough stock' USING ERRCODE = 'OL409';
        END IF;
    END LOOP;
    INSERT INTO orderly.stock_reservations (order_id, line_no, sku_id, customer_id, qty)
    SELECT v_id, u.n, u.sku_id, customer, u.qty FROM unnest(skus, qtys) WITH ORDINALITY AS u(sku_id, qty, n);
    PERFORM orderly.audit(actor, 'order.stock_reserve', 'order', v_id::text, NULL,
                          (SELECT jsonb_object_agg(u.sku_id::text, u.qty) FROM unnest(skus, qtys) AS u(sku_id, qty)));
    RETURN v_id;
END
$$;
