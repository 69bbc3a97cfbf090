-- Receivables (R__182_receivables.sql, REPORT receivables in R__200): which placed orders still owe
-- money or are owed a refund, when each was billed and is due (prepaid: at approval; net_N: N days
-- after the first shipment; a cancellation fee: when decided), days overdue and aging, per currency.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(20);

SET CONSTRAINTS orderly.order_status_events IMMEDIATE;

DO $$
BEGIN
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('fay', 'fay-secret-1', ARRAY['finance_manager']);
    PERFORM admin.create_user('wes', 'wes-secret-1', ARRAY['warehouse']);
    PERFORM admin.create_user('pat', 'pat-secret-1', ARRAY['production_manager']);
END
$$;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
INSERT INTO orderly.products (code, name, kind, base_price, currency) VALUES ('PHN', 'Phone', 'goods', 100, 'EUR'), ('PHU', 'Phone US', 'goods', 80, 'USD');
INSERT INTO orderly.products (code, name, kind, base_price, currency) VALUES ('SVC', 'Setup', 'service', 30, 'EUR');
INSERT INTO orderly.skus (product_id, code, stock_on_hand) SELECT id, code || '-1', 100 FROM orderly.products;
INSERT INTO orderly.carriers (code, name) VALUES ('dhl', 'DHL');
INSERT INTO ids VALUES ('net', test.customer('rita', 'Netco', '+4930100100')), ('pre', test.customer('rita', 'Preco', '+4930100200'));
UPDATE orderly.customers SET payment_terms = 'prepaid' WHERE id = test.id('pre');

-- An order of qty phones for a customer (approved at once: no approval rules here), shipped days ago.
CREATE FUNCTION pg_temp.order(label text, customer text, qty integer, product text DEFAULT 'PHN', submit boolean DEFAULT true)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (test.call('order_create', 'rita', jsonb_build_object('customer', test.id(customer),
                        'lines', jsonb_build_array(jsonb_build_object('product', product, 'qty', qty)), 'submit', submit)) ->> 'id')::bigint;
BEGIN
    INSERT INTO ids VALUES (label, v_id);
    RETURN v_id;
END
$$;
CREATE FUNCTION pg_temp.ship(label text, qty integer, days_ago integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (test.call('shipment_create', 'wes', jsonb_build_object('order', test.id(label), 'lines',
                        jsonb_build_array(jsonb_build_object('line', 1, 'qty', qty)), 'carrier', 'dhl')) ->> 'id')::bigint;
BEGIN
    UPDATE orderly.shipments SET shipped_at = now() - make_interval(days => days_ago) WHERE id = v_id;
END
$$;
CREATE FUNCTION pg_temp.pay(label text, amount numeric, reference text) RETURNS void LANGUAGE sql AS $$
    SELECT test.call('payment_record', 'fay', jsonb_build_object('order', test.id(label), 'amount', amount,
                                                                 'method', 'bank_transfer', 'reference', reference)) IS NULL
$$;
CREATE FUNCTION pg_temp.row(label text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT to_jsonb(r) - 'order_id' - 'customer_id' - 'customer_name' - 'billed_at' - 'due_at' FROM orderly.receivables r WHERE r.order_id = test.id(label)
$$;

SELECT pg_temp.order('unshipped', 'net', 1);              -- 100 + tax, net_30, nothing shipped
SELECT pg_temp.order('late15', 'net', 1);   SELECT pg_temp.ship('late15', 1, 45);
SELECT pg_temp.order('fresh', 'net', 1);    SELECT pg_temp.ship('fresh', 1, 10);
SELECT pg_temp.order('settled', 'net', 1);  SELECT pg_temp.ship('settled', 1, 200);
SELECT pg_temp.order('late95', 'net', 2);   SELECT pg_temp.ship('late95', 1, 125);
SELECT pg_temp.order('usd', 'net', 1, 'PHU'); SELECT pg_temp.ship('usd', 1, 20);
SELECT pg_temp.order('prewait', 'pre', 1);                -- prepaid, unpaid: waits at approved
SELECT pg_temp.order('prepaid_cancelled', 'pre', 1);
SELECT pg_temp.order('draft', 'net', 1, 'PHN', false);
SELECT pg_temp.order('fee', 'net', 1);
SELECT pg_temp.order('svc', 'net', 1, 'SVC');
SELECT test.call('service_done', 'pat', jsonb_build_object('order', test.id('svc'))) IS NOT NULL;
SELECT pg_temp.pay('settled', (SELECT total FROM orderly.orders WHERE id = test.id('settled')), 'S-1');
SELECT pg_temp.pay('late95', 50, 'L-1');
SELECT pg_temp.pay('prepaid_cancelled', (SELECT total FROM orderly.orders WHERE id = test.id('prepaid_cancelled')), 'P-1');
SELECT test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('prepaid_cancelled'), 'reason', 'Changed plans')) IS NOT NULL;
SELECT test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('fee'), 'reason', 'Changed plans')) IS NOT NULL;

SELECT is((SELECT array_agg(x.name ORDER BY x.name) FROM ids x JOIN orderly.receivables r ON r.order_id = x.id WHERE x.name NOT IN ('net', 'pre')),
          ARRAY['fee', 'fresh', 'late15', 'late95', 'prepaid_cancelled', 'prewait', 'svc', 'unshipped', 'usd'],
          'every placed order that owes or is owed money; not the one paid in full, not the draft');
SELECT is(pg_temp.row('unshipped') - 'owed' - 'open_amount',
          '{"status":"ready","currency":"EUR","payment_terms":"net_30","paid":0.00,"refund_due":0.00,"days_overdue":0,"aging":"not_billed"}'::jsonb,
          'net terms, nothing shipped: not billed yet');
SELECT is((SELECT (r.owed, r.open_amount)::text FROM orderly.receivables r WHERE r.order_id = test.id('unshipped')),
          (SELECT (o.total, o.total)::text FROM orderly.orders o WHERE o.id = test.id('unshipped')), 'it owes its total, all of it open');
SELECT is((SELECT (r.billed_at, r.due_at)::text FROM orderly.receivables r WHERE r.order_id = test.id('late15')),
          (SELECT (s.shipped_at, s.shipped_at + interval '30 days')::text FROM orderly.shipments s WHERE s.order_id = test.id('late15')),
          'net_30: billed when the first shipment left, due 30 days later');
SELECT is(pg_temp.row('late15') ->> 'days_overdue', '15', 'shipped 45 days ago: 15 days overdue');
SELECT is(pg_temp.row('late15') ->> 'aging', '1_30', 'in the 1-30 bucket');
SELECT is(pg_temp.row('fresh') ->> 'aging', 'current', 'shipped 10 days ago on 30 days'' terms: current, 0 days overdue');
SELECT is(pg_temp.row('late95') - 'owed' - 'status',
          jsonb_build_object('currency', 'EUR', 'payment_terms', 'net_30', 'paid', 50.00,
                             'open_amount', (SELECT total - 50 FROM orderly.orders WHERE id = test.id('late95')),
                             'refund_due', 0.00, 'days_overdue', 95, 'aging', 'over_90'),
          'part paid, the first of two shipments 125 days ago: the rest 95 days overdue');
SELECT is((SELECT (r.billed_at, r.due_at, r.aging)::text FROM orderly.receivables r WHERE r.order_id = test.id('prewait')),
          (SELECT (h.changed_at, h.changed_at, 'current')::text FROM orderly.order_status_history h
           WHERE h.order_id = test.id('prewait') AND h.to_status = 'approved'),
          'prepaid: billed and due at approval');
SELECT is(pg_temp.row('prepaid_cancelled') - 'paid' - 'refund_due',
          '{"status":"cancelled","currency":"EUR","payment_terms":"prepaid","owed":10.00,"open_amount":0.00,"days_overdue":0,"aging":"refund_due"}'::jsonb,
          'paid, then cancelled once released (the default policy''s fee at ready: 10.00): owes the fee, the rest to pay back');
SELECT is((SELECT r.refund_due = r.paid - 10 AND r.paid > 10 FROM orderly.receivables r WHERE r.order_id = test.id('prepaid_cancelled')), true,
          'refund_due: what was paid less the fee');
SELECT is((SELECT (r.open_amount, r.billed_at, r.due_at, r.aging)::text FROM orderly.receivables r WHERE r.order_id = test.id('fee')),
          (SELECT (10.00, c.decided_at, c.decided_at + interval '30 days', 'current')::text FROM orderly.order_cancellations c
           WHERE c.order_id = test.id('fee')),
          'net terms, cancelled before shipping with a fee: the fee billed when the cancellation was decided, due 30 days later');
SELECT is((SELECT (r.billed_at, r.due_at, r.aging)::text FROM orderly.receivables r WHERE r.order_id = test.id('svc')),
          (SELECT (h.changed_at, h.changed_at + interval '30 days', 'current')::text FROM orderly.order_status_history h
           WHERE h.order_id = test.id('svc') AND h.to_status = 'delivered'),
          'net terms, services only (nothing ships): billed when delivered (performed), due 30 days later');

-- REPORT receivables: the same rows, summed per aging bucket and currency, per customer, per order.
SELECT is(test.rows('report', 'fay', '{"name":"receivables"}'),
          (SELECT jsonb_agg(jsonb_build_object('key', a, 'aging', a, 'currency', c, 'orders', n, 'open_amount', o, 'refund_due', r))
           FROM (SELECT x.aging AS a, x.currency AS c, count(*) AS n, sum(x.open_amount) AS o, sum(x.refund_due) AS r
                 FROM orderly.receivables x GROUP BY 1, 2
                 ORDER BY 2, array_position(ARRAY['current', '1_30', '31_60', '61_90', 'over_90', 'not_billed', 'refund_due'], x.aging)) t),
          'REPORT receivables: orders and amounts per aging bucket, per currency, oldest buckets after current');
SELECT is((SELECT array_agg(r ->> 'key' || ' ' || (r ->> 'currency')) FROM jsonb_array_elements(test.rows('report', 'fay', '{"name":"receivables"}')) r),
          ARRAY['current EUR', '1_30 EUR', 'over_90 EUR', 'not_billed EUR', 'refund_due EUR', 'current USD'],
          'never summed across currencies');
SELECT is((SELECT array_agg(r ->> 'key' || ' ' || (r ->> 'currency')) FROM jsonb_array_elements(test.rows('report', 'fay', '{"name":"receivables","limit":2}')) r),
          ARRAY['current EUR', '1_30 EUR', 'current USD'], 'limit= caps the buckets of each currency too');
SELECT is((SELECT array_agg((r ->> 'key') || ':' || (r ->> 'days_overdue')) FROM jsonb_array_elements(test.rows('report', 'fay', '{"name":"receivables","group":"order","limit":2}')) r),
          ARRAY[test.id('late95') || ':95', test.id('late15') || ':15', test.id('usd') || ':0'],
          'group=order: the most overdue first, limit per currency');
SELECT is((SELECT r - 'key' - 'name' - 'customer' - 'open_amount' - 'overdue_amount' FROM jsonb_array_elements(test.rows('report', 'fay', '{"name":"receivables","group":"customer"}')) r
           WHERE r ->> 'currency' = 'EUR' AND (r ->> 'customer')::bigint = test.id('net')),
          '{"currency":"EUR","orders":6,"most_days_overdue":95,"refund_due":0.00}'::jsonb,
          'group=customer: the customer''s orders, most days overdue');
SELECT is((SELECT (r ->> 'overdue_amount')::numeric FROM jsonb_array_elements(test.rows('report', 'fay', '{"name":"receivables","group":"customer"}')) r
           WHERE r ->> 'currency' = 'EUR' AND (r ->> 'customer')::bigint = test.id('net')),
          (SELECT sum(open_amount) FROM orderly.receivables WHERE order_id IN (test.id('late15'), test.id('late95'))),
          'and the amount overdue: the open amounts of its overdue orders only');
SELECT throws_ok($$ SELECT test.rows('report', 'fay', '{"name":"receivables","from":"2026-01-01"}') $$, 'OL400',
                 'report receivables takes no from= (usage: REPORT receivables [group=aging|customer|order] [limit=])',
                 'receivables are as of now: from= is refused, not ignored');

SELECT * FROM finish();
ROLLBACK;
