-- Cancellation (issue 14, item 2; R__198_cancellation.sql, V019__cancellation.sql): the fee rules
-- (percent of what, fixed, minimum, maximum, never more than what is cancelled), the policy
-- table (most specific row, on hold, constraints), ORDER CANCEL at each stage (submitted,
-- approved, ready, in production, partially shipped) with what it releases, stops and charges,
-- quote=true changing nothing, the customer's request and staff's decision, REFUND RECORD,
-- order.cancelled once per department, the keys a customer sees, idempotency.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(137);

-- Events are raised at commit (a deferred trigger, R__140_orders.sql): at once in this test.
SET CONSTRAINTS orderly.order_status_events IMMEDIATE;

DO $$
BEGIN
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('sam', 'sam-secret-1', ARRAY['sales_manager']);
    PERFORM admin.create_user('cas', 'cas-secret-1', ARRAY['customer_service']);
    PERFORM admin.create_user('fay', 'fay-secret-1', ARRAY['finance_manager']);
    PERFORM admin.create_user('pat', 'pat-secret-1', ARRAY['production_manager']);
    PERFORM admin.create_user('wes', 'wes-secret-1', ARRAY['warehouse']);
    PERFORM admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
END
$$;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
-- Untaxed prices (no tax rate is loaded): GD 100.00, GB 10.00, a bundle BN of one GD and two GB
-- at 150.00, a custom CU at 200.00, a service SV at 50.00.
INSERT INTO orderly.products (code, name, kind, base_price) VALUES
    ('GD', 'Gadget', 'goods', 100), ('GB', 'Gizmo', 'goods', 10), ('BN', 'Bundle', 'bundle', 150),
    ('CU', 'Custom case', 'custom', 200), ('SV', 'Setup', 'service', 50);
INSERT INTO orderly.skus (product_id, code, stock_on_hand) SELECT id, code || '-1', 100 FROM orderly.products WHERE code IN ('GD', 'GB');
INSERT INTO orderly.bundle_items (bundle_product_id, sku_id, qty)
SELECT (SELECT id FROM orderly.products WHERE code = 'BN'), s.id, CASE s.code WHEN 'GD-1' THEN 1 ELSE 2 END
FROM orderly.skus s WHERE s.code IN ('GD-1', 'GB-1');
INSERT INTO orderly.coupons (code) VALUES ('WELCOME');
INSERT INTO orderly.carriers (code, name) VALUES ('dhl', 'DHL');
INSERT INTO ids VALUES ('acme', test.customer('rita', 'Acme', '+4930100100'));
SELECT admin.link_customer('buyer', test.id('acme'));

CREATE FUNCTION pg_temp.reserved() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(code || ':' || stock_reserved || '/' || stock_on_hand, ' ' ORDER BY code) FROM orderly.skus
$$;
CREATE FUNCTION pg_temp.held(order_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(r.line_no || ':' || k.code || '=' || r.qty, ' ' ORDER BY r.line_no, k.code), '')
    FROM orderly.stock_reservations r JOIN orderly.skus k ON k.id = r.sku_id
    WHERE r.order_id = held.order_id AND r.released_at IS NULL
$$;
CREATE FUNCTION pg_temp.told(kind text, order_id bigint) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(coalesce(u.username, 'role:' || n.recipient_role) ORDER BY coalesce(u.username, 'role:' || n.recipient_role))
    FROM orderly.notifications n LEFT JOIN orderly.users u ON u.id = n.recipient_user_id
    WHERE n.kind = told.kind AND (n.payload ->> 'order')::bigint = told.order_id
$$;
CREATE FUNCTION pg_temp.money(order_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT o.status || ' due ' || orderly.amount_owed(o) || ' open ' || orderly.open_amount(o) || ' refund ' || orderly.refund_due(o)
           || ' ' || orderly.payment_status(o)
    FROM orderly.orders o WHERE o.id = money.order_id
$$;
CREATE FUNCTION pg_temp.policy(status text, percent numeric, basis text, fixed numeric, min numeric, max numeric)
RETURNS orderly.cancellation_policies LANGUAGE sql AS $$
    SELECT NULL::bigint, status, NULL::text, 'EUR'::char(3), percent, basis, fixed, min, max, NULL::text, NULL::text
$$;

-- The fee rules -----------------------------------------------------------------------------------

SELECT is(orderly.cancellation_fee(pg_temp.policy('ready', 20, 'cancelled_value', 0, NULL, NULL), 100, 1000), 20.00::numeric,
          'percent of what is cancelled (cancelled_value)');
SELECT is(orderly.cancellation_fee(pg_temp.policy('ready', 10, 'order_value', 0, NULL, NULL), 200, 1000), 100.00::numeric,
          'or of what the whole order is worth (order_value)');
SELECT is(orderly.cancellation_fee(pg_temp.policy('ready', 10, 'cancelled_value', 15, NULL, NULL), 200, 1000), 35.00::numeric,
          'plus the fixed part');
SELECT is(orderly.cancellation_fee(pg_temp.policy('ready', 20, 'cancelled_value', 0, 50, NULL), 100, 100), 50.00::numeric,
          'at least the minimum');
SELECT is(orderly.cancellation_fee(pg_temp.policy('ready', 20, 'cancelled_value', 0, 50, 5000), 100000, 100000), 5000.00::numeric,
          'at most the maximum');
SELECT is(orderly.cancellation_fee(pg_temp.policy('ready', 20, 'cancelled_value', 0, 50, NULL), 30, 30), 30.00::numeric,
          'never more than what is cancelled is worth, the minimum included');
SELECT is(orderly.cancellation_fee(pg_temp.policy('ready', 12.5, 'cancelled_value', 0, NULL, NULL), 33.33, 33.33), 4.17::numeric,
          'rounded to the cent');

-- The policy table ------------------------------------------------------------------------------------

SELECT set_eq($$ SELECT status || '/' || coalesce(currency, '*') || ' ' || trim_scale(fee_percent) || '% +' || fee_fixed
                        || ' min ' || coalesce(fee_min::text, '-') || ' max ' || coalesce(fee_max::text, '-')
                        || ' by ' || coalesce(approval_role, '-')
                 FROM orderly.cancellation_policies $$,
              ARRAY['submitted/* 0% +0.00 min - max - by -', 'pending_approval/* 0% +0.00 min - max - by -',
                    'approved/* 0% +0.00 min - max - by -', 'ready/* 5% +0.00 min - max - by -',
                    'ready/EUR 5% +0.00 min 10.00 max - by -', 'in_production/* 20% +0.00 min - max - by sales_manager',
                    'in_production/EUR 20% +0.00 min 50.00 max 5000.00 by sales_manager',
                    'partially_shipped/* 10% +0.00 min - max - by sales_manager',
                    'partially_shipped/EUR 10% +15.00 min - max 2000.00 by sales_manager',
                    'shipped/* 0% +0.00 min - max - by sales_manager'],
              'the policy as shipped (README "Cancellation policy")');
SELECT throws_ok($$ INSERT INTO orderly.cancellation_policies (status, fee_fixed) VALUES ('shipped', 5) $$, '23514', NULL,
                 'a row without a currency has percentages only');
SELECT throws_ok($$ INSERT INTO orderly.cancellation_policies (status, fee_percent) VALUES ('ready', 1) $$, '23505', NULL,
                 'one row per status, type and currency (a missing type or currency counts as a value)');
SELECT throws_ok($$ INSERT INTO orderly.cancellation_policies (status, currency, fee_min, fee_max) VALUES ('shipped', 'EUR', 10, 5) $$,
                 '23514', NULL, 'the minimum is not above the maximum');

-- Waiting for approval: free; everything goes back ----------------------------------------------------
-- Strategic orders wait for a sales manager; the others are approved at once (no other rule).

SELECT admin.create_approval_rule('Strategic', ARRAY['strategic']);
SELECT admin.add_approval_step('Strategic', 1, 'sales_manager', interval '1 day');
INSERT INTO ids VALUES ('s1', test.submitted('rita', test.id('acme'),
    '[{"sku":"GD-1","qty":2},{"sku":"GB-1","qty":3},{"product":"BN","qty":1}]', '{"type":"strategic","coupon":"WELCOME"}'));
SELECT is(pg_temp.money(test.id('s1')), 'pending_approval due 380.00 open 380.00 refund 0.00 unpaid', 'a strategic order waits for approval');
SELECT is(pg_temp.reserved() || ' | ' || pg_temp.held(test.id('s1')), 'GB-1:5/100 GD-1:3/100 | 1:GD-1=2 2:GB-1=3 3:GB-1=2 3:GD-1=1',
          'it holds its goods and its bundle''s components');

SELECT test.snapshot(ARRAY['orderly.order_cancellations', 'orderly.order_charges', 'orderly.order_status_history',
                           'orderly.notifications', 'orderly.audit_log', 'orderly.coupon_redemptions']);
CREATE TEMP TABLE replies (name text PRIMARY KEY, doc jsonb);
INSERT INTO replies SELECT 'quote', test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('s1'), 'quote', true));
SELECT is((SELECT doc ->> 'status' || ' ' || (doc ->> 'outcome') || ' fee ' || (doc ->> 'fee') || ' of ' || (doc ->> 'cancelled_value')
                  || ' whole ' || (doc ->> 'whole_order') FROM replies WHERE name = 'quote'),
          'quote cancel fee 0.00 of 380.00 whole true', 'quote=true: the fee, what is cancelled, and that rita''s ORDER CANCEL cancels');
SELECT is((SELECT doc -> 'stock_released' FROM replies WHERE name = 'quote'), '{"GB-1": 5, "GD-1": 3}'::jsonb,
          'and the stock it would release');
SELECT ok(test.unchanged() AND pg_temp.reserved() = 'GB-1:5/100 GD-1:3/100'
          AND (SELECT status FROM orderly.orders WHERE id = test.id('s1')) = 'pending_approval'
          AND (SELECT used_count FROM orderly.coupons WHERE code = 'WELCOME') = 1,
          'a quote changes nothing (rows, stock, status, coupon)');

INSERT INTO replies SELECT 's1', test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('s1'), 'reason', 'Customer changed plans',
                                                                                      'idempotency_key', 'cancel-s1'));
SELECT is((SELECT doc ->> 'status' || ' ' || (doc ->> 'order_status') || ' ' || (doc ->> 'message') FROM replies WHERE name = 's1'),
          'applied cancelled The order is cancelled', 'ORDER CANCEL: the order is cancelled');
SELECT is(pg_temp.reserved() || ' | ' || pg_temp.held(test.id('s1')), 'GB-1:0/100 GD-1:0/100 | ',
          'exactly what it held goes back');
SELECT is((SELECT used_count FROM orderly.coupons WHERE code = 'WELCOME'), 0, 'the coupon''s use is released');
SELECT is((SELECT string_agg(status, ',') FROM orderly.order_approvals WHERE order_id = test.id('s1')), 'skipped',
          'the waiting approval is closed');
SELECT is((SELECT from_status || '→' || to_status || ' ' || reason FROM orderly.order_status_history
           WHERE order_id = test.id('s1') ORDER BY id DESC LIMIT 1),
          'pending_approval→cancelled Customer changed plans', 'the change is in the history with its reason');
SELECT is((SELECT actor_user_id FROM orderly.audit_log WHERE action = 'order.cancel' AND entity_id = test.id('s1')::text),
          test.uid('rita'), 'and audited with its actor');
SELECT is(pg_temp.told('order.cancelled', test.id('s1')),
          ARRAY['buyer', 'rita', 'role:finance_manager', 'role:logistics', 'role:warehouse'],
          'order.cancelled: warehouse, logistics, finance, the creator and the customer, once each (nothing was being made)');
SELECT is(ARRAY[pg_temp.told('order.status', test.id('s1'))::text,
                (SELECT string_agg(subject, ',') FROM orderly.outbox WHERE order_id = test.id('s1') AND kind = 'order.cancelled')],
          ARRAY['{buyer,rita}', format('Order %s cancelled', test.id('s1'))],
          'an order cancelled before it was approved is a milestone for the customer too: pushed and e-mailed');
SELECT ok(test.replays('order_cancel', 'rita', jsonb_build_object('id', test.id('s1'), 'reason', 'Customer changed plans',
                                                                   'idempotency_key', 'cancel-s1'))
          AND test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('s1'), 'reason', 'Customer changed plans',
                                                                   'idempotency_key', 'cancel-s1')) = (SELECT doc FROM replies WHERE name = 's1'),
          'a retry with the same idempotency key gets the first reply and changes nothing');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"again"}') $$, test.id('s1')),
                 'OL409', format('order %s is cancelled already', test.id('s1')), 'a cancelled order is cancelled once');

-- Approved, by the customer itself: free, so it cancels ----------------------------------------------

-- A make-to-order line keeps an order approved until it is made.
INSERT INTO ids VALUES ('a', test.submitted('buyer', test.id('acme'), '[{"product":"CU","qty":1}]'));
SELECT is((test.call('order_cancel', 'buyer', jsonb_build_object('id', test.id('a'), 'quote', true)) ->> 'outcome'), 'cancel',
          'a customer''s quote of a free cancellation: it would cancel');
INSERT INTO replies SELECT 'a', test.call('order_cancel', 'buyer', jsonb_build_object('id', test.id('a'), 'reason', 'Ordered twice'));
SELECT is((SELECT doc ->> 'status' || ' ' || (doc ->> 'order_status') FROM replies WHERE name = 'a'), 'applied cancelled',
          'a customer cancels its own approved order while it is free');
SELECT is((SELECT array_agg(k ORDER BY k) FROM replies, jsonb_object_keys(doc) k WHERE name = 'a'),
          ARRAY['cancelled_value', 'currency', 'decided_at', 'decision_reason', 'fee', 'id', 'lines', 'message', 'open_amount', 'order',
                'order_status', 'payment_status', 'policy', 'reason', 'refund_due', 'requested_at', 'requested_by', 'status', 'whole_order'],
          'the keys a customer sees of a cancellation: not who decided, the approving role, the stock or the production');
SELECT is((SELECT array_agg(k ORDER BY k) FROM replies, jsonb_object_keys(doc -> 'lines' -> 0) k WHERE name = 'a'),
          ARRAY['kind', 'line', 'name', 'of', 'product', 'qty', 'shipped', 'sku', 'value', 'whole_line'], 'of each line');
SELECT is((SELECT array_agg(k ORDER BY k) FROM replies, jsonb_object_keys(doc -> 'policy') k WHERE name = 'a'),
          ARRAY['currency', 'fee_basis', 'fee_fixed', 'fee_max', 'fee_min', 'fee_percent', 'note', 'status'], 'of the policy');
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_array_elements(test.rows('inbox', 'buyer', '{}')) n, jsonb_object_keys(n -> 'payload') k
           WHERE n ->> 'kind' = 'order.cancelled' AND (n -> 'payload' ->> 'order')::bigint = test.id('a')),
          ARRAY['at', 'cancellation', 'currency', 'fee', 'lines', 'order', 'reason', 'refund_due', 'status', 'whole_order'],
          'and of its order.cancelled event: not the customer record; the reason, as in the cancellation (CANCEL LIST, ORDER SHOW)');

-- Ready: 5 %, at least 10 EUR, so a customer asks and staff decide ------------------------------------

INSERT INTO ids VALUES ('r', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":2},{"sku":"GB-1","qty":1}]'));
SELECT is(pg_temp.money(test.id('r')), 'ready due 210.00 open 210.00 refund 0.00 unpaid', 'an order ready to ship');
SELECT test.snapshot();
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'buyer', '{"id":%s,"lines":[2]}') $$, test.id('r')),
                 'OL400', 'reason is required', 'a cancellation needs a reason');
INSERT INTO replies SELECT 'r-ask', test.call('order_cancel', 'buyer', jsonb_build_object('id', test.id('r'), 'lines', '[2]'::jsonb,
                                                                                          'reason', 'Do not need the gizmo'));
SELECT is((SELECT doc ->> 'status' || ' fee ' || (doc ->> 'fee') || ': ' || (doc ->> 'message') FROM replies WHERE name = 'r-ask'),
          'requested fee 10.00: A cancellation request was sent; staff will decide on it',
          'a customer asks when the policy charges: the fee is 5 % of 10.00, raised to the minimum 10.00 and no more than the line');
SELECT is(pg_temp.reserved() || ' ' || pg_temp.money(test.id('r')), 'GB-1:1/100 GD-1:2/100 ready due 210.00 open 210.00 refund 0.00 unpaid',
          'a request changes nothing yet');
SELECT is(pg_temp.told('cancel.requested', test.id('r')), ARRAY['role:customer_service'], 'customer service is asked');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"all of it"}') $$, test.id('r')),
                 'OL409', format('order %s already has a cancellation request (%s) waiting for a decision', test.id('r'),
                                 (SELECT doc ->> 'id' FROM replies WHERE name = 'r-ask')),
                 'one request at a time');
SELECT throws_ok(format($$ SELECT test.call('cancel_reject', 'rita', '{"id":%s,"reason":"no"}') $$, test.id('r')),
                 'OL403', 'permission denied: cancel.decide', 'a sales rep does not decide');
INSERT INTO replies SELECT 'r-no', test.call('cancel_reject', 'cas', jsonb_build_object('id', test.id('r'), 'reason', 'Already packed'));
SELECT is((SELECT doc ->> 'status' || ' ' || (doc ->> 'decision_reason') FROM replies WHERE name = 'r-no'), 'rejected Already packed',
          'CANCEL REJECT: rejected, with why');
SELECT is(pg_temp.told('cancel.rejected', test.id('r')), ARRAY['buyer'], 'the customer who asked is told');
SELECT is((SELECT (doc ->> 'fee') || ' ' || (doc ->> 'stock_released') FROM replies WHERE name = 'r-no'), '0.00 {}',
          'a rejected request charged nothing and released nothing (its quote was 10.00 and a unit)');
-- A request staff made and the customer never heard of: its rejection is the requester's to hear.
INSERT INTO ids VALUES ('rs', test.submitted('rita', test.id('acme'), '[{"product":"CU","qty":1}]'));
SELECT test.call('production_start', 'pat', jsonb_build_object('order', test.id('rs'))) IS NOT NULL;
SELECT is(test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('rs'), 'reason', 'duplicate?')) ->> 'status', 'requested',
          'a sales rep asks (in production a sales manager decides)');
SELECT test.call('cancel_reject', 'sam', jsonb_build_object('id', test.id('rs'), 'reason', 'not a duplicate')) IS NOT NULL;
SELECT is(pg_temp.told('cancel.rejected', test.id('rs')), ARRAY['rita'], 'only the sales rep is told, not the customer');
SELECT throws_ok(format($$ SELECT test.call('cancel_approve', 'cas', '{"id":%s}') $$, test.id('r')),
                 'OL404', format('order %s has no cancellation request waiting for a decision', test.id('r')), 'a decided request is decided');

-- A waiting request fixes the order it was quoted on: no change but a note until it is decided
-- (a line grown would be cancelled at a fee on its new value; a line shrunk or removed would
-- make the request impossible to approve).
INSERT INTO ids VALUES ('g', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":2}]'));
INSERT INTO replies SELECT 'g-ask', test.call('order_cancel', 'buyer', jsonb_build_object('id', test.id('g'), 'lines', '[1]'::jsonb,
                                                                                          'reason', 'Not needed'));
SELECT throws_ok(format($$ SELECT test.call('order_amend', 'rita', '{"id":%s,"reason":"asked by phone","changes":[{"action":"set_line","line":1,"qty":10}]}') $$, test.id('g')),
                 'OL409', format('order %s has cancellation request %s waiting; it is decided (CANCEL APPROVE %s or CANCEL REJECT %s) before the order changes',
                                 test.id('g'), (SELECT doc ->> 'id' FROM replies WHERE name = 'g-ask'), test.id('g'), test.id('g')),
                 'a line is not grown while a cancellation request waits');
SELECT throws_ok(format($$ SELECT test.call('order_amend', 'rita', '{"id":%s,"reason":"x","changes":[{"action":"remove_line","line":1}]}') $$, test.id('g')),
                 'OL409', NULL, 'nor removed');
SELECT is(test.call('order_amend', 'rita', jsonb_build_object('id', test.id('g'), 'reason', 'phone call',
                                                              'changes', '[{"action":"note","text":"Customer called about the request"}]'::jsonb)) ->> 'status',
          'applied', 'a note is still added');
INSERT INTO replies SELECT 'g', test.call('cancel_approve', 'cas', jsonb_build_object('id', test.id('g')));
SELECT is((SELECT (a.doc ->> 'fee') || ' then ' || (g.doc ->> 'cancelled_value') || ' fee ' || (g.doc ->> 'fee')
           FROM replies a, replies g WHERE a.name = 'g-ask' AND g.name = 'g'),
          '10.00 then 200.00 fee 10.00', 'approved as quoted: the two gadgets for 10.00');

SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","lines":"2"}') $$, test.id('r')),
                 'OL400', 'lines must be a non-empty JSON array, like lines=[1,3] or lines=[{"line":2,"qty":1}]', 'lines is an array');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","lines":[9]}') $$, test.id('r')),
                 'OL404', format('order %s has no line 9', test.id('r')), 'an unknown line');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","lines":[1,1]}') $$, test.id('r')),
                 'OL400', 'line 1 is listed twice', 'a line listed twice');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","lines":[{"line":1,"qty":0}]}') $$, test.id('r')),
                 'OL400', NULL, 'a quantity of at least 1');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","lines":[{"line":1,"qty":3}]}') $$, test.id('r')),
                 'OL409', 'line 1: 2 ordered, 0 shipped, 2 still open; cannot cancel 3', 'no more than is open');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","fee":0}') $$, test.id('r')),
                 'OL400', NULL, 'an unknown argument is refused');

INSERT INTO replies SELECT 'r', test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('r'), 'reason', 'One is enough',
                                                                                      'lines', '[{"line":1,"qty":1}]'::jsonb));
SELECT is((SELECT doc ->> 'status' || ' fee ' || (doc ->> 'fee') || ' of ' || (doc ->> 'cancelled_value') || ' ' || (doc ->> 'order_status')
           FROM replies WHERE name = 'r'), 'applied fee 10.00 of 100.00 ready',
          'staff cancel one unit of line 1: 5 % of 100.00 is 5.00, raised to the minimum 10.00; the rest stays ready');
SELECT is(pg_temp.reserved() || ' | ' || pg_temp.held(test.id('r')), 'GB-1:1/100 GD-1:1/100 | 1:GD-1=1 2:GB-1=1',
          'one unit goes back; the order holds exactly what is still open');
SELECT is(pg_temp.money(test.id('r')), 'ready due 120.00 open 120.00 refund 0.00 unpaid', 'owed: 210.00 − 100.00 + the 10.00 fee');
SELECT is((SELECT kind || ' ' || amount || ' ' || currency FROM orderly.order_charges WHERE order_id = test.id('r')),
          'cancellation_fee 10.00 EUR', 'the fee is a charge on the order');
SELECT is((SELECT d -> 'totals' FROM (SELECT test.call('order_show', 'buyer', jsonb_build_object('id', test.id('r'))) d) x),
          '{"net": 210.00, "tax": 0.00, "due": 120.00, "total": 210.00, "charges": 10.00, "discount": 0.00, "subtotal": 210.00, "cancelled": 100.00}'::jsonb,
          'ORDER SHOW''s totals: as agreed, what was cancelled, the charges and what is due');
SELECT is((SELECT d -> 'lines' -> 0 ->> 'cancelled' FROM (SELECT test.call('order_show', 'buyer', jsonb_build_object('id', test.id('r'))) d) x),
          '1', 'and each line''s cancelled units');

-- In production and paid: 20 %, 50 to 5 000 EUR, decided by a sales manager; a refund is due -------------

INSERT INTO ids VALUES ('p', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":1},{"product":"CU","qty":1}]'));
SELECT test.call('production_start', 'pat', jsonb_build_object('order', test.id('p'))) IS NOT NULL;
SELECT test.call('production_issue', 'pat', jsonb_build_object('order', test.id('p'), 'kind', 'material', 'note', 'Leather late')) IS NOT NULL;
INSERT INTO replies SELECT 'pay-p', test.call('payment_record', 'fay', jsonb_build_object('order', test.id('p'), 'amount', 300,
                                                                                           'method', 'bank_transfer', 'reference', 'PAY-P'));
SELECT is((SELECT doc ->> 'payment_status' FROM replies WHERE name = 'pay-p'), 'paid', 'paid in full');
INSERT INTO replies SELECT 'p-ask', test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('p'), 'reason', 'Project stopped'));
SELECT is((SELECT doc ->> 'status' || ' ' || (doc ->> 'needs_approval_by') FROM replies WHERE name = 'p-ask'), 'requested sales_manager',
          'in production a sales rep''s cancellation is a request for a sales manager');
SELECT is(pg_temp.told('cancel.requested', test.id('p')), ARRAY['role:sales_manager'], 'who is asked');
SELECT throws_ok(format($$ SELECT test.call('cancel_approve', 'cas', '{"id":%s}') $$, test.id('p')),
                 'OL403', 'a cancellation of an order that is in_production is decided by role sales_manager',
                 'customer service may not decide it');
SELECT is((SELECT doc ->> 'fee' FROM replies WHERE name = 'p-ask'), '60.00', 'the request is quoted 60.00');
-- The policy is raised while the request waits.
UPDATE orderly.cancellation_policies SET fee_percent = 50 WHERE status = 'in_production' AND currency = 'EUR';
INSERT INTO replies SELECT 'p', test.call('cancel_approve', 'sam', jsonb_build_object('id', test.id('p'), 'note', 'ok, charge it'));
UPDATE orderly.cancellation_policies SET fee_percent = 20 WHERE status = 'in_production' AND currency = 'EUR';

-- A fee on the order's value: lines cannot be added while the request waits, so the quoted fee
-- stands.
UPDATE orderly.cancellation_policies SET fee_basis = 'order_value', fee_percent = 2, fee_min = NULL WHERE status = 'in_production' AND currency = 'EUR';
INSERT INTO ids VALUES ('ov', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":1},{"product":"CU","qty":1}]'));
SELECT test.call('production_start', 'pat', jsonb_build_object('order', test.id('ov'))) IS NOT NULL;
INSERT INTO replies SELECT 'ov-ask', test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('ov'), 'lines', '[1]'::jsonb,
                                                                                          'reason', 'One gadget less'));
SELECT throws_ok(format($$ SELECT test.call('order_amend', 'rita', '{"id":%s,"reason":"five more","changes":[{"action":"add_line","sku":"GD-1","qty":5}]}') $$, test.id('ov')),
                 'OL409', NULL, 'no line is added while the request waits');
INSERT INTO replies SELECT 'ov', test.call('cancel_approve', 'sam', jsonb_build_object('id', test.id('ov')));
UPDATE orderly.cancellation_policies SET fee_basis = 'cancelled_value', fee_percent = 20, fee_min = 50 WHERE status = 'in_production' AND currency = 'EUR';
SELECT is((SELECT (a.doc ->> 'fee') || ' then ' || (d.doc ->> 'fee') FROM replies a, replies d WHERE a.name = 'ov-ask' AND d.name = 'ov'),
          '6.00 then 6.00', 'quoted 2 % of the 300.00 order: 6.00');
SELECT is((SELECT doc ->> 'status' || ' fee ' || (doc ->> 'fee') || ' refund due ' || (doc ->> 'refund_due') || ' ' || (doc ->> 'order_status')
           FROM replies WHERE name = 'p'), 'applied fee 60.00 refund due 240.00 cancelled',
          'CANCEL APPROVE: 20 % of 300.00 is 60.00 as quoted (the policy raised to 50 % meanwhile charges no more); 240.00 of the 300.00 paid is due back');
SELECT is((SELECT doc ->> 'note' FROM replies WHERE name = 'p'), 'ok, charge it', 'staff see the approver''s note');
SELECT is((SELECT (r ? 'note')::text || ' ' || coalesce(r ->> 'decision_reason', '-') FROM jsonb_array_elements(test.rows('cancel_list', 'buyer',
              jsonb_build_object('order', test.id('p')))) r), 'false -',
          'the customer does not: it is internal');
SELECT is((SELECT string_agg(line_no || ':' || status, ' ') FROM orderly.production_lines WHERE order_id = test.id('p')), '2:cancelled',
          'production of the custom line stops');
SELECT is((SELECT resolution FROM orderly.production_issues WHERE order_id = test.id('p')), 'Order cancelled: Project stopped',
          'its open issue is closed');
SELECT is(pg_temp.money(test.id('p')), 'cancelled due 60.00 open 0.00 refund 240.00 refund_due', 'payment_status: refund_due');
SELECT is((SELECT e ->> 'event' FROM orderly.orders o, json_array_elements(orderly.order_timeline(o)) WITH ORDINALITY AS x(e, n)
           WHERE o.id = test.id('p') ORDER BY n DESC LIMIT 1), 'cancelled', 'its timeline ends with when it was cancelled');
SELECT is((SELECT r ->> 'total' || ' due ' || (r ->> 'due') FROM jsonb_array_elements(test.rows('order_list', 'rita', '{"status":"cancelled"}')) r
           WHERE (r ->> 'id')::bigint = test.id('p')),
          '300.00 due 60.00', 'ORDER LIST: a cancelled order keeps its total and owes its fee (due)');
SELECT is(pg_temp.told('order.cancelled', test.id('p')),
          ARRAY['buyer', 'rita', 'role:finance_manager', 'role:logistics', 'role:production_manager', 'role:warehouse'],
          'production is told too, each department once');
SELECT throws_ok(format($$ SELECT test.call('refund_record', 'rita', '{"order":%s,"amount":240,"reference":"RF-P"}') $$, test.id('p')),
                 'OL403', 'permission denied: payment.record', 'finance records refunds');
SELECT throws_ok(format($$ SELECT test.call('refund_record', 'fay', '{"order":%s,"amount":240.01,"reference":"RF-P"}') $$, test.id('p')),
                 'OL409', format('refund of 240.01 EUR is more than the refund due on order %s: 240.00 EUR', test.id('p')),
                 'never more than the refund due');
SELECT is(test.call('refund_record', 'fay', jsonb_build_object('order', test.id('p'), 'amount', 240, 'reference', 'RF-P')) ->> 'payment_status',
          'paid', 'REFUND RECORD: the fee is what stays paid');
SELECT is(pg_temp.money(test.id('p')), 'cancelled due 60.00 open 0.00 refund 0.00 paid', 'nothing more is due either way');
SELECT throws_ok(format($$ SELECT test.call('payment_refund', 'fay', '{"order":%s,"amount":60,"method":"bank_transfer","reference":"RF-P2"}') $$, test.id('p')),
                 'OL409', format('order %s is cancelled: a refund of 60 EUR is more than the refund due (0.00 EUR) and would make it owe money again', test.id('p')),
                 'PAYMENT REFUND does not give back the fee of a cancelled order (it would owe the fee again)');
SELECT ok(test.replays('refund_record', 'fay', jsonb_build_object('order', test.id('p'), 'amount', 240, 'reference', 'RF-P')),
          'the same refund again is the same refund (method and reference), the same reply');
-- The payment made before the cancellation keeps its figures as they stood then (V027).
SELECT is(test.call('payment_record', 'fay', jsonb_build_object('order', test.id('p'), 'amount', 300, 'method', 'bank_transfer',
                                                                'reference', 'PAY-P')),
          (SELECT doc FROM replies WHERE name = 'pay-p'),
          'the payment recorded again after the cancellation: the first reply, word for word');
SELECT is((SELECT string_agg((r ->> 'reference') || ' ' || (r ->> 'payment_status') || ' open ' || (r ->> 'open_amount'), ', ')
           FROM jsonb_array_elements(test.rows('payment_list', 'fay', jsonb_build_object('order', test.id('p')))) r),
          'PAY-P paid open 0.00, RF-P paid open 0.00',
          'PAYMENT LIST: each row as it stood right after it (the payment paid the order then, not "refund_due")');

-- Partly shipped: the rest is cancelled, 10 % + 15 EUR; the order goes on as shipped ------------------------

INSERT INTO ids VALUES ('q', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":3},{"sku":"GB-1","qty":2}]'));
SELECT test.call('shipment_create', 'wes', jsonb_build_object('order', test.id('q'), 'lines', '[{"line":1,"qty":1}]'::jsonb, 'carrier', 'dhl'))
       IS NOT NULL;
SELECT is(pg_temp.held(test.id('q')), '1:GD-1=2 2:GB-1=2', 'partly shipped: it holds what has not shipped');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'sam', '{"id":%s,"reason":"x","lines":[{"line":1,"qty":3}]}') $$, test.id('q')),
                 'OL409', 'line 1: 3 ordered, 1 shipped, 2 still open; cannot cancel 3', 'shipped units cannot be cancelled');
INSERT INTO replies SELECT 'q', test.call('order_cancel', 'sam', jsonb_build_object('id', test.id('q'), 'reason', 'Rest not needed'));
SELECT is((SELECT doc ->> 'fee' || ' of ' || (doc ->> 'cancelled_value') || ' ' || (doc ->> 'order_status') || ' whole ' || (doc ->> 'whole_order')
           FROM replies WHERE name = 'q'), '37.00 of 220.00 shipped whole false',
          'the unshipped rest (2 × 100.00 + 2 × 10.00) is cancelled for 10 % + 15.00; what shipped is the order now: shipped');
SELECT is(pg_temp.held(test.id('q')), '', 'it holds nothing more');
SELECT is(pg_temp.money(test.id('q')), 'shipped due 137.00 open 137.00 refund 0.00 unpaid', 'owed: 320.00 − 220.00 + 37.00');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'sam', '{"id":%s,"reason":"x"}') $$, test.id('q')),
                 'OL409', format('order %s has nothing left to cancel: what is not cancelled has shipped, and shipped or delivered lines cannot be cancelled (a return is another flow)', test.id('q')),
                 'a shipped order without a service left has nothing to cancel');

INSERT INTO ids VALUES ('d', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":2},{"sku":"GB-1","qty":1}]'));
INSERT INTO ids SELECT 'd-ship', (test.call('shipment_create', 'wes', jsonb_build_object('order', test.id('d'), 'lines', '[{"line":1,"qty":2}]'::jsonb,
                                                                                        'carrier', 'dhl')) ->> 'id')::bigint;
SELECT test.call('shipment_delivered', 'wes', jsonb_build_object('id', test.id('d-ship'))) IS NOT NULL;
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'sam', '{"id":%s,"reason":"x","lines":[1]}') $$, test.id('d')),
                 'OL409', 'line 1 has been delivered: delivered lines cannot be cancelled (a return is another flow)',
                 'a delivered line: refused, with what to do instead');
SELECT is((test.call('order_cancel', 'sam', jsonb_build_object('id', test.id('d'), 'reason', 'No gizmo', 'lines', '[2]'::jsonb))) ->> 'order_status',
          'delivered', 'its other line cancelled, everything left has shipped and was delivered: delivered');
SELECT is(pg_temp.money(test.id('d')), 'delivered due 210.00 open 210.00 refund 0.00 unpaid',
          'owed: 210.00 − 10.00 + a fee of 10 % + 15.00, capped at the 10.00 cancelled');

-- Never: drafts, other stages, other customers -------------------------------------------------------------

INSERT INTO ids SELECT 'draft', (test.call('order_draft', 'rita', jsonb_build_object('customer', test.id('acme'))) ->> 'id')::bigint;
-- A draft is discarded whole, free (V044); so is a rejected order.
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","quote":true}') $$, test.id('draft')),
                 'OL409', format('order %1$s is a draft: discarding it is free and needs nobody; ORDER CANCEL %1$s reason= does it', test.id('draft')),
                 'a draft: nothing to quote');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","lines":[{"line":1,"qty":1}]}') $$, test.id('draft')),
                 'OL400', NULL, 'nor lines to cancel: it goes whole');
SELECT is(test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('draft'), 'reason', 'not needed')) ->> 'status', 'cancelled',
          'ORDER CANCEL discards a draft');
SELECT is((SELECT from_status || '→' || to_status || ' ' || reason FROM orderly.order_status_history WHERE order_id = test.id('draft') ORDER BY id DESC LIMIT 1),
          'draft→cancelled not needed', 'in its history, with the reason');
SELECT ok(NOT EXISTS (SELECT 1 FROM orderly.order_cancellations WHERE order_id = test.id('draft')), 'no cancellation of anything ordered is recorded');
-- Every submission is routed at once (approved or awaiting approval), so an order rests as
-- submitted only if routing is ever deferred; its row charges nothing all the same.
INSERT INTO ids VALUES ('sub', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":1}]'));
UPDATE orderly.orders SET status = 'submitted' WHERE id = test.id('sub');
SELECT is((SELECT (d ->> 'outcome') || ' ' || (d ->> 'fee') || ' ' || (d -> 'policy' ->> 'status')
           FROM (SELECT test.call('order_cancel', 'buyer', jsonb_build_object('id', test.id('sub'), 'quote', true)) d) x),
          'cancel 0.00 submitted', 'submitted: free, and the customer may cancel it itself');
SELECT is((test.call('order_cancel', 'buyer', jsonb_build_object('id', test.id('sub'), 'reason', 'typo'))) ->> 'order_status', 'cancelled',
          'and does');
INSERT INTO ids VALUES ('held', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":1}]'));
SELECT test.call('order_hold', 'fay', jsonb_build_object('id', test.id('held'), 'reason', 'question')) IS NOT NULL;
SELECT is((test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('held'), 'quote', true)) -> 'policy' ->> 'status'), 'ready',
          'an order on hold is charged as at the status it was held from');
SELECT is((test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('held'), 'reason', 'not needed'))) ->> 'order_status', 'cancelled',
          'and cancelled so');
SELECT is((SELECT kind || ' ' || subject FROM orderly.outbox WHERE order_id = test.id('held') ORDER BY id DESC LIMIT 1),
          format('order.cancelled Order %s cancelled', test.id('held')), 'the customer''s e-mail is a cancellation''s (V045), not the status one');
SELECT ok((SELECT body ~ ('was cancelled \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)\.' || E'\n' || 'Cancellation fee: ' || (SELECT charges_total FROM orderly.orders WHERE id = test.id('held')) || ' EUR')
           FROM orderly.outbox WHERE order_id = test.id('held') ORDER BY id DESC LIMIT 1),
          'with its time as people read it and the fee it leaves owed');
SELECT is((SELECT string_agg(DISTINCT stage, ',') FROM analytics.cancellations WHERE stage IN ('on_hold', 'ready')), 'ready',
          'analytics.cancellations counts it at that status too, whose policy set its fee (on_hold has none)');
-- Units cancelled are said apart from those ordered: "2 ordered" of a line of 3 read as a line of 2.
INSERT INTO ids VALUES ('part', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":3}]'));
SELECT test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('part'), 'reason', 'one less', 'lines', '[{"line":1,"qty":1}]'::jsonb)) IS NOT NULL;
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","lines":[{"line":1,"qty":3}]}') $$, test.id('part')),
                 'OL409', 'line 1: 3 ordered, 1 cancelled, 0 shipped, 2 still open; cannot cancel 3', 'ORDER CANCEL says what was cancelled');
SELECT throws_ok(format($$ SELECT test.call('shipment_create', 'wes', '{"order":%s,"lines":[{"line":1,"qty":3}],"carrier":"dhl"}') $$, test.id('part')),
                 'OL409', 'line 1: 3 ordered, 1 cancelled, 0 shipped, 2 still to ship; cannot ship 3', 'and so does SHIPMENT CREATE');

-- Admins change the policy in SQL ------------------------------------------------------------------------------

SELECT is(admin.set_cancellation_policy('in_production', 30, 'order_value', 0, NULL, NULL, 'general_manager', 'custom') - 'id',
          jsonb_build_object('status', 'in_production', 'order_type', 'custom', 'currency', NULL, 'fee_percent', 30,
                             'fee_basis', 'order_value', 'fee_fixed', 0.00, 'fee_min', NULL, 'fee_max', NULL,
                             'approval_role', 'general_manager', 'note', NULL),
          'admin.set_cancellation_policy: a row for custom orders in production');
SELECT is((SELECT after ->> 'approval_role' FROM orderly.audit_log WHERE action = 'cancellation_policy.set' AND actor_kind = 'admin_sql'),
          'general_manager', 'audited as the admin''s');
SELECT is((SELECT string_agg(status || '/' || coalesce(order_type, '*') || '/' || coalesce(currency, '*'), ' ')
           FROM admin.cancellation_policies WHERE status = 'in_production'),
          'in_production/*/* in_production/*/EUR in_production/custom/*', 'admin.cancellation_policies lists the rows');
SELECT is(admin.set_cancellation_policy('in_production', 30, 'order_value', 0, NULL, NULL, 'general_manager', 'custom', note => '  ') ->> 'note',
          NULL, 'an empty note is no note');
SELECT throws_ok($$ SELECT admin.set_cancellation_policy('ready', 5, fee_fixed => 10) $$, 'OL400',
                 'a fixed fee, a minimum or a maximum is an amount: give its currency', 'amounts need a currency');
SELECT throws_ok($$ SELECT admin.set_cancellation_policy('delivered', 5) $$, 'OL409',
                 'an order that is delivered is not cancelled (only submitted, pending_approval, approved, in_production, ready, partially_shipped; and at shipped its services not yet performed)',
                 'a row for a status no order is cancelled from (it would never be read) is refused');
SELECT throws_ok($$ SELECT admin.set_cancellation_policy('draft', 5) $$, 'OL409', NULL, 'nor one for drafts, discarded free');
SELECT throws_ok($$ SELECT admin.set_cancellation_policy('on_hold', 1) $$, 'OL409',
                 'an order on hold is charged by the row of the status it was held from: set that one', 'nor for on_hold, whose row is never read');
SELECT throws_ok($$ SELECT admin.revoke_permission('sales_manager', 'cancel.decide') $$, 'OL409', NULL,
                 'cancel.decide is not taken from a role the policy names (its requests would wait for nobody)');
SELECT throws_ok($$ SELECT admin.set_cancellation_policy('ready', 5, approval_role => 'customer') $$, 'OL409',
                 'role "customer" lacks cancel.decide: grant it first (admin.grant_permission)', 'a role that could never decide is refused');
SELECT throws_ok($$ SELECT admin.set_cancellation_policy('ready', -5) $$, 'OL400',
                 'fee_percent must be 0 to 100 with at most 2 decimals (0: no percentage)', 'a negative percentage, in the function''s words');
SELECT throws_ok($$ SELECT admin.set_cancellation_policy('ready', NULL) $$, 'OL400', NULL, 'NULL is not 0 %');
SELECT throws_ok($$ SELECT admin.set_cancellation_policy('ready', 5, fee_min => 5.555, currency => 'EUR') $$, 'OL400', NULL,
                 'a third decimal is refused, not rounded');
SELECT throws_ok($$ SELECT admin.set_cancellation_policy('ready', 5, note => E'restock \u202Eeef') $$, 'OL400', NULL,
                 'a note with a direction override is refused');
SELECT ok(admin.remove_cancellation_policy('in_production', 'custom'), 'admin.remove_cancellation_policy');
SELECT ok(NOT EXISTS (SELECT 1 FROM orderly.cancellation_policies WHERE order_type = 'custom'), 'the row is gone');
SELECT is(admin.set_cancellation_policy('shipped', 0, approval_role => 'sales_manager') ->> 'status', 'shipped',
          'the shipped row (services not yet performed) is set like any other');
-- Without its row for every currency, an order in another one is told which rows there are.
INSERT INTO orderly.products (code, name, kind, base_price, currency) VALUES ('US1', 'US gadget', 'goods', 10, 'USD');
INSERT INTO orderly.skus (product_id, code, stock_on_hand) SELECT id, 'US1-1', 10 FROM orderly.products WHERE code = 'US1';
INSERT INTO ids VALUES ('usd', test.submitted('rita', test.id('acme'), '[{"sku":"US1-1","qty":1}]'));
SELECT ok(admin.remove_cancellation_policy('ready'), 'the row of ready for every currency removed (the EUR one is left)');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"quote":true}') $$, test.id('usd')), 'OL409',
                 format('order %s is ready: the cancellation policy''s rows for ready (any type in EUR) are for other orders than a standard order in USD, so it cannot be cancelled; an admin adds a row for it (admin.set_cancellation_policy)', test.id('usd')),
                 'an order in USD is told which rows there are and what to do');
SELECT test.call('order_hold', 'fay', jsonb_build_object('id', test.id('usd'), 'reason', 'question')) IS NOT NULL;
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"quote":true}') $$, test.id('usd')), 'OL409',
                 format('order %s is on_hold: the cancellation policy''s rows for ready (any type in EUR) are for other orders than a standard order in USD, so it cannot be cancelled; an admin adds a row for it (admin.set_cancellation_policy)', test.id('usd')),
                 'on hold, the rows named are those of the status it was held at');
SELECT is(admin.set_cancellation_policy('ready', 5, note => 'Released to the warehouse: restocking') ->> 'currency', NULL, 'and the row comes back');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row of this file names its actor');

-- While a request waits, what it asks for does not ship (the customer asked for it not to come):
-- the pick list leaves it out and SHIPMENT CREATE refuses it; the rest ships, and the request is
-- decided on what it asked for.
INSERT INTO ids VALUES ('gs', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":3},{"sku":"GB-1","qty":1}]'));
INSERT INTO replies SELECT 'gs-ask', test.call('order_cancel', 'buyer', jsonb_build_object('id', test.id('gs'), 'reason', 'Fewer',
                                                                                           'lines', '[{"line":1,"qty":2},{"line":2,"qty":1}]'::jsonb));
SELECT is((SELECT string_agg(line_no || ':' || qty || ' asked ' || cancel_requested, ', ' ORDER BY line_no)
           FROM orderly.pick_list WHERE order_id = test.id('gs')),
          '1:1 asked 2', 'PICK LIST: 1 of line 1 to pick (2 asked to be cancelled); line 2, all asked for, not at all');
SELECT throws_ok(format($$ SELECT test.call('shipment_create', 'wes', '{"order":%s,"lines":[{"line":1,"qty":2}],"carrier":"dhl"}') $$, test.id('gs')),
                 'OL409', format('line 1: 2 of its 3 open unit(s) are asked to be cancelled (request %s); they ship only if it is rejected: CANCEL APPROVE %s or CANCEL REJECT %s first',
                                 (SELECT doc ->> 'id' FROM replies WHERE name = 'gs-ask'), test.id('gs'), test.id('gs')),
                 'SHIPMENT CREATE refuses the units asked to be cancelled');
SELECT throws_ok(format($$ SELECT test.call('shipment_create', 'wes', '{"order":%s,"lines":[{"line":2,"qty":1}],"carrier":"dhl"}') $$, test.id('gs')),
                 'OL409', NULL, 'a line asked for whole does not ship either');
SELECT test.call('shipment_create', 'wes', jsonb_build_object('order', test.id('gs'), 'lines', '[{"line":1,"qty":1}]'::jsonb,
                                                              'carrier', 'dhl')) IS NOT NULL;
-- (Partly shipped, the policy row of partially_shipped decides who approves: a sales manager.)
INSERT INTO replies SELECT 'gs', test.call('cancel_approve', 'sam', jsonb_build_object('id', test.id('gs')));
SELECT is((SELECT string_agg((l ->> 'line') || ':' || (l ->> 'qty'), ' ') || ' ' || (doc ->> 'order_status')
           FROM replies, jsonb_array_elements(doc -> 'lines') l WHERE name = 'gs' GROUP BY doc),
          '1:2 2:1 shipped',
          'the unit not asked for shipped; what was asked for is cancelled, and the order is shipped');
SELECT is((SELECT (a.doc ->> 'fee')::numeric >= (g.doc ->> 'fee')::numeric FROM replies a, replies g WHERE a.name = 'gs-ask' AND g.name = 'gs'),
          true, 'for no more than was quoted');
-- Nor is a service asked to be cancelled performed meanwhile.
INSERT INTO ids VALUES ('sv', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":1},{"product":"SV","qty":1}]'));
SELECT is(test.call('order_cancel', 'buyer', jsonb_build_object('id', test.id('sv'), 'reason', 'We set it up ourselves', 'lines', '[{"line":2}]'::jsonb)) ->> 'status',
          'requested', 'the customer asks to cancel the setup');
SELECT throws_ok(format($$ SELECT test.call('service_done', 'pat', '{"order":%s}') $$, test.id('sv')), 'OL409',
                 format('line 2 is asked to be cancelled (request %s); it is performed only if the request is rejected: CANCEL APPROVE %s or CANCEL REJECT %s first',
                        (SELECT id FROM orderly.order_cancellations WHERE order_id = test.id('sv')), test.id('sv'), test.id('sv')),
                 'SERVICE DONE refuses a service asked to be cancelled');

SELECT * FROM finish();
ROLLBACK;
