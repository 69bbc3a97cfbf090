-- Production: PRODUCTION START / DONE / ISSUE / RESOLVE, who may, which lines, the order's
-- status (approved → in_production → ready; prepaid: ready once paid), times and who on every
-- step, audit rows, production.issue and order.ready_to_ship events, WORK QUEUE's production
-- state, idempotency.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(82);

DO $$
BEGIN
    PERFORM admin.load_demo_catalog();
    PERFORM admin.create_user('mona', 'mona-secret-1', ARRAY['sales_manager']);
    PERFORM admin.create_user('pat', 'pat-secret-1', ARRAY['production_manager']);
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('wes', 'wes-secret-1', ARRAY['warehouse']);
END
$$;
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
INSERT INTO ids SELECT 'acme', (test.call('customer_create', 'rita', '{"name":"Acme","email":"acme@example.com","phone":"+4930100100"}') ->> 'id')::bigint;
SELECT test.call('address_add', 'rita', jsonb_build_object('customer', test.id('acme'), 'recipient', 'Dock', 'phone', '+4930100101',
    'line1', 'Kai 1', 'city', 'Hamburg', 'region', 'HH', 'postal_code', '20095', 'country', 'DE')) IS NOT NULL;

-- What the payment functions do after recording a payment: advance, under the order's lock.
CREATE FUNCTION pg_temp.advanced(order_id bigint, who text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    o orderly.orders;
BEGIN
    SELECT * INTO o FROM orderly.orders x WHERE x.id = order_id FOR NO KEY UPDATE;
    RETURN (orderly.advance(o, test.uid(who))).status;
END $$;
CREATE FUNCTION pg_temp.status(order_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT status FROM orderly.orders WHERE id = order_id
$$;

-- Line 1 goods, lines 2 and 3 made to order, line 4 a service.
INSERT INTO ids SELECT 'a', test.submitted('rita', test.id('acme'), '[
    {"sku":"PHN-X1-128-BLK","qty":2},
    {"product":"CST-CASE","qty":1,"params":{"width_cm":20,"height_cm":10}},
    {"product":"CST-CASE","qty":2,"params":{"width_cm":15,"height_cm":8}},
    {"product":"SVC-SETUP","qty":1}]');
SELECT is(pg_temp.status(test.id('a')), 'approved', 'an order with make-to-order lines stays approved until they are made');

-- START ------------------------------------------------------------------------------------------

SELECT throws_ok(format($$ SELECT test.call('production_start', 'rita', '{"order":%s}') $$, test.id('a')),
                 'OL403', 'permission denied: production.manage', 'a sales rep cannot start production');
SELECT throws_ok(format($$ SELECT test.call('production_start', 'pat', '{"order":%s,"lines":[1]}') $$, test.id('a')),
                 'OL409', 'line 1 is a goods line; only make-to-order (custom) lines are produced', 'a goods line is not produced');
SELECT throws_ok(format($$ SELECT test.call('production_start', 'pat', '{"order":%s,"lines":[9]}') $$, test.id('a')),
                 'OL404', format('order %s has no line 9', test.id('a')), 'an unknown line');
SELECT throws_ok(format($$ SELECT test.call('production_start', 'pat', '{"order":%s,"lines":"2"}') $$, test.id('a')),
                 'OL400', NULL, 'lines must be an array of line numbers');

SELECT test.snapshot(ARRAY['orderly.production_lines', 'orderly.order_status_history']);
SELECT ok(test.unchanged(), 'refused starts write nothing');

CREATE TEMP TABLE replies (name text PRIMARY KEY, doc jsonb);
INSERT INTO replies SELECT 'start2', test.call('production_start', 'pat', jsonb_build_object('order', test.id('a'), 'lines', '[2]'::jsonb));
SELECT is((SELECT doc ->> 'status' FROM replies WHERE name = 'start2'), 'in_production', 'START: the order is in production');
SELECT is((SELECT jsonb_agg(l ->> 'production' ORDER BY (l ->> 'line')::int) FROM replies, jsonb_array_elements(doc -> 'lines') l WHERE name = 'start2'),
          '["in_production", "not_started"]'::jsonb, 'the reply lists each make-to-order line with its state');
SELECT is((SELECT doc -> 'lines' -> 0 ->> 'started_by' FROM replies WHERE name = 'start2'), 'pat', 'with who started it');
SELECT ok((SELECT started_by = test.uid('pat') AND started_at IS NOT NULL AND done_at IS NULL FROM orderly.production_lines
           WHERE order_id = test.id('a') AND line_no = 2), 'the production line is timestamped, with who');
SELECT is((SELECT from_status || '→' || to_status || ' by ' || changed_by FROM orderly.order_status_history
           WHERE order_id = test.id('a') ORDER BY id DESC LIMIT 1),
          'approved→in_production by ' || test.uid('pat'), 'the status change is in the history, by pat');
SELECT is((SELECT actor_user_id FROM orderly.audit_log WHERE action = 'production.start' AND entity_id = test.id('a')::text),
          test.uid('pat'), 'START is audited with its actor');
SELECT throws_ok(format($$ SELECT test.call('production_start', 'pat', '{"order":%s,"lines":[2]}') $$, test.id('a')),
                 'OL409', 'line 2 is already in production', 'a line is started once');
SELECT is((test.call('production_start', 'pat', jsonb_build_object('order', test.id('a'))) -> 'lines' -> 1 ->> 'production'),
          'in_production', 'START without lines starts every line not started');
SELECT throws_ok(format($$ SELECT test.call('production_start', 'pat', '{"order":%s}') $$, test.id('a')),
                 'OL409', format('order %s has no make-to-order line left to start', test.id('a')), 'nothing left to start');

-- WORK QUEUE ---------------------------------------------------------------------------------------

SELECT throws_ok(format($$ SELECT test.call('production_done', 'pat', '{"order":%s,"lines":[4]}') $$, test.id('a')),
                 'OL409', 'line 4 is a service line; only make-to-order (custom) lines are produced', 'a service line is not produced');
INSERT INTO replies SELECT 'done2', test.call('production_done', 'pat', jsonb_build_object('order', test.id('a'), 'lines', '[2]'::jsonb));
SELECT is((SELECT doc ->> 'status' FROM replies WHERE name = 'done2'), 'in_production', 'one line done: still in production');
SELECT ok((SELECT status = 'done' AND done_by = test.uid('pat') AND done_at >= started_at FROM orderly.production_lines
           WHERE order_id = test.id('a') AND line_no = 2), 'DONE: done, with when and who');
SELECT throws_ok(format($$ SELECT test.call('production_done', 'pat', '{"order":%s,"lines":[2]}') $$, test.id('a')),
                 'OL409', 'line 2 is already done', 'a line is finished once');

CREATE TEMP TABLE queue AS SELECT r::jsonb AS doc FROM api.work_queue(test.uid('pat'), '{}') r;
SELECT is((SELECT count(*)::int FROM queue WHERE (doc ->> 'order')::bigint = test.id('a')), 1, 'WORK QUEUE lists the order in production');
SELECT is((SELECT jsonb_agg(jsonb_build_array(i -> 'line', i -> 'production', i ? 'started_at', i -> 'done_by') ORDER BY (i ->> 'line')::int)
           FROM queue, jsonb_array_elements(doc -> 'items') i WHERE (doc ->> 'order')::bigint = test.id('a')),
          '[[2, "done", true, "pat"], [3, "in_production", true, null], [4, null, true, null]]'::jsonb,
          'each line with its production state and times (a service line has none)');
SELECT is((SELECT doc ->> 'status' FROM queue WHERE (doc ->> 'order')::bigint = test.id('a')), 'in_production', 'and the order''s status');
SELECT is((SELECT array_agg(production ORDER BY line_no) FROM analytics.production_queue WHERE order_id = test.id('a')),
          ARRAY['done', 'in_production', NULL], 'analytics.production_queue has the same states');

-- The rest done: ready, announced ------------------------------------------------------------------

SELECT is(test.call('production_done', 'pat', jsonb_build_object('order', test.id('a'))) ->> 'status', 'ready',
          'DONE without lines finishes the rest; every line done: ready');
SELECT is((SELECT from_status || '→' || to_status FROM orderly.order_status_history WHERE order_id = test.id('a') ORDER BY id DESC LIMIT 1),
          'in_production→ready', 'in the history');
SELECT is((SELECT array_agg(recipient_role ORDER BY recipient_role) FROM orderly.notifications
           WHERE kind = 'order.ready_to_ship' AND (payload ->> 'order')::bigint = test.id('a')),
          ARRAY['logistics', 'warehouse'], 'order.ready_to_ship goes to the warehouse and logistics');
SELECT is((SELECT count(*)::int FROM orderly.audit_log WHERE action = 'production.done' AND entity_id = test.id('a')::text
                                                        AND actor_user_id = test.uid('pat')), 2, 'each DONE is audited');
SELECT is((SELECT array_agg((i ->> 'line') || ':' || (i ->> 'kind')) FROM api.work_queue(test.uid('pat'), '{}') r,
                  jsonb_array_elements(r::jsonb -> 'items') i
           WHERE (r::jsonb ->> 'order')::bigint = test.id('a')),
          ARRAY['4:service'], 'a ready order''s made lines have left the work queue; its service stays until performed');
SELECT throws_ok(format($$ SELECT test.call('production_done', 'pat', '{"order":%s}') $$, test.id('a')),
                 'OL409', NULL, 'nothing is finished twice on a ready order');

-- Prepaid: ready only once paid ----------------------------------------------------------------------

INSERT INTO ids SELECT 'pre', (test.call('customer_create', 'rita', '{"name":"Prepay","email":"pre@example.com","phone":"+4930100300"}') ->> 'id')::bigint;
UPDATE orderly.customers SET payment_terms = 'prepaid' WHERE id = test.id('pre');
SELECT test.call('address_add', 'rita', jsonb_build_object('customer', test.id('pre'), 'recipient', 'Pre', 'phone', '+4930100301',
    'line1', 'Weg 2', 'city', 'Berlin', 'region', 'BE', 'postal_code', '10115', 'country', 'DE')) IS NOT NULL;
INSERT INTO ids SELECT 'b', test.submitted('rita', test.id('pre'), '[{"product":"CST-CASE","qty":1,"params":{"width_cm":20,"height_cm":10}}]');
SELECT test.call('production_start', 'pat', jsonb_build_object('order', test.id('b'))) IS NOT NULL;
SELECT is(test.call('production_done', 'pat', jsonb_build_object('order', test.id('b'))) ->> 'status', 'approved',
          'prepaid and unpaid: made, but not ready; nothing is in production any more');
SELECT is((SELECT reason FROM orderly.order_status_history WHERE order_id = test.id('b') ORDER BY id DESC LIMIT 1),
          'waiting for payment (prepaid)', 'the history says why');
SELECT is((SELECT count(*)::integer FROM orderly.production_queue WHERE order_id = test.id('b')), 0, 'and it has left the work queue');
UPDATE orderly.orders SET amount_paid = total WHERE id = test.id('b');
SELECT is(pg_temp.advanced(test.id('b'), 'pat'), 'ready', 'once paid it is ready (the payment''s advance)');

-- ISSUE and RESOLVE ------------------------------------------------------------------------------

INSERT INTO ids SELECT 'c', test.submitted('rita', test.id('acme'), '[{"product":"CST-CASE","qty":1,"params":{"width_cm":30,"height_cm":12}}]');
SELECT throws_ok(format($$ SELECT test.call('production_issue', 'pat', '{"order":%s,"kind":"sabotage","note":"x"}') $$, test.id('c')),
                 'OL400', 'kind must be material, equipment, quality or other', 'an unknown issue kind');
SELECT throws_ok(format($$ SELECT test.call('production_issue', 'pat', '{"order":%s,"kind":"material","note":"  "}') $$, test.id('c')),
                 'OL400', NULL, 'an issue needs a note');
SELECT throws_ok(format($$ SELECT test.call('production_issue', 'wes', '{"order":%s,"kind":"material","note":"x"}') $$, test.id('c')),
                 'OL403', NULL, 'the warehouse does not report production issues');
INSERT INTO replies SELECT 'issue', test.call('production_issue', 'pat', jsonb_build_object('order', test.id('c'), 'kind', 'material',
    'note', 'Leather delayed by the supplier', 'idempotency_key', 'issue-1'));
INSERT INTO ids SELECT 'issue', (doc ->> 'id')::bigint FROM replies WHERE name = 'issue';
SELECT is((SELECT jsonb_build_array(doc ->> 'kind', doc ->> 'opened_by', doc ->> 'resolved_at') FROM replies WHERE name = 'issue'),
          '["material", "pat", null]'::jsonb, 'ISSUE opens an issue, with who');
SELECT ok(test.replays('production_issue', 'pat', jsonb_build_object('order', test.id('c'), 'kind', 'material',
    'note', 'Leather delayed by the supplier', 'idempotency_key', 'issue-1')), 'ISSUE replays its idempotency key and writes nothing');
SELECT is((SELECT array_agg(coalesce(recipient_role, 'user:' || recipient_user_id) ORDER BY id) FROM orderly.notifications
           WHERE kind = 'production.issue' AND (payload ->> 'issue')::bigint = test.id('issue')),
          ARRAY['production_manager', 'user:' || test.uid('rita')], 'production.issue to the production managers and the order''s creator');
SELECT is((SELECT doc -> 'issues' -> 0 ->> 'note' FROM (SELECT r::jsonb AS doc FROM api.work_queue(test.uid('pat'), '{}') r) q
           WHERE (doc ->> 'order')::bigint = test.id('c')), 'Leather delayed by the supplier', 'WORK QUEUE shows the open issue');
SELECT is((SELECT actor_user_id FROM orderly.audit_log WHERE action = 'production.issue' AND entity_id = test.id('issue')::text),
          test.uid('pat'), 'the issue is audited');

SELECT is(test.call('production_resolve', 'pat', jsonb_build_object('id', test.id('issue'), 'note', 'Other supplier')) ->> 'resolution',
          'Other supplier', 'RESOLVE closes it with its resolution');
SELECT ok((SELECT resolved_by = test.uid('pat') AND resolved_at IS NOT NULL FROM orderly.production_issues WHERE id = test.id('issue')),
          'with when and who');
SELECT throws_ok(format($$ SELECT test.call('production_resolve', 'pat', '{"id":%s}') $$, test.id('issue')),
                 'OL409', NULL, 'an issue is resolved once');
SELECT throws_ok($$ SELECT test.call('production_resolve', 'pat', '{"id":999999}') $$,
                 'OL404', 'production issue 999999 not found', 'an unknown issue');

-- An issue is about production work: none on an order without it, and what is open closes when
-- the last of it is cancelled (it would keep the order among those at risk of being late).
INSERT INTO ids SELECT 'stock', test.submitted('rita', test.id('acme'), '[{"sku":"PHN-X1-128-BLK","qty":1}]');
SELECT throws_ok(format($$ SELECT test.call('production_issue', 'pat', '{"order":%s,"kind":"equipment","note":"x"}') $$, test.id('stock')),
                 'OL409', format('order %s has no production work: every line made to order is done or cancelled and every service performed (or it has none)', test.id('stock')),
                 'a stock-only order has no production issue (its customer was sent a delay e-mail)');
INSERT INTO ids SELECT 'mixed', test.submitted('rita', test.id('acme'), '[{"sku":"PHN-X1-128-BLK","qty":1},{"product":"CST-CASE","qty":1,"params":{"width_cm":20,"height_cm":10}}]');
INSERT INTO ids SELECT 'mixed-issue', (test.call('production_issue', 'pat', jsonb_build_object('order', test.id('mixed'), 'kind', 'material', 'note', 'No leather')) ->> 'id')::bigint;
SELECT is(test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('mixed'), 'reason', 'case not needed', 'lines', '[{"line":2}]'::jsonb)) ->> 'status',
          'applied', 'the made-to-order line is cancelled');
SELECT is((SELECT resolution FROM orderly.production_issues WHERE id = test.id('mixed-issue')),
          'Production cancelled: case not needed', 'its open issue is closed with it');
-- Removed by a change, or finished, the same.
INSERT INTO ids SELECT 'rm', test.submitted('rita', test.id('acme'), '[{"sku":"PHN-X1-128-BLK","qty":1},{"product":"CST-CASE","qty":1,"params":{"width_cm":20,"height_cm":10}}]');
INSERT INTO ids SELECT 'rm-issue', (test.call('production_issue', 'pat', jsonb_build_object('order', test.id('rm'), 'kind', 'quality', 'note', 'spec unclear')) ->> 'id')::bigint;
SELECT is(test.call('order_amend', 'mona', jsonb_build_object('id', test.id('rm'), 'reason', 'case dropped',
              'changes', '[{"action":"remove_line","line":2}]'::jsonb)) ->> 'status', 'applied', 'the made-to-order line is removed by a change');
SELECT is((SELECT resolution FROM orderly.production_issues WHERE id = test.id('rm-issue')),
          'Production removed by a change of the order', 'its issue is closed');
INSERT INTO ids SELECT 'fin', test.submitted('rita', test.id('acme'), '[{"product":"CST-CASE","qty":1,"params":{"width_cm":20,"height_cm":10}}]');
SELECT test.call('production_start', 'pat', jsonb_build_object('order', test.id('fin'))) IS NOT NULL;
INSERT INTO ids SELECT 'fin-issue', (test.call('production_issue', 'pat', jsonb_build_object('order', test.id('fin'), 'kind', 'material', 'note', 'glue late')) ->> 'id')::bigint;
SELECT test.call('production_done', 'pat', jsonb_build_object('order', test.id('fin'))) IS NOT NULL;
SELECT is((SELECT resolution FROM orderly.production_issues WHERE id = test.id('fin-issue')), 'Production finished',
          'finished, its issue is closed (it kept the order at risk for good)');

-- On hold: no new work, but what was under way and is finished is recorded ---------------------

INSERT INTO ids SELECT 'held', test.submitted('rita', test.id('acme'), '[{"product":"CST-CASE","qty":1,"params":{"width_cm":20,"height_cm":10}},
    {"product":"CST-CASE","qty":1,"params":{"width_cm":30,"height_cm":10}},{"product":"SVC-SETUP","qty":1}]');
SELECT test.call('production_start', 'pat', jsonb_build_object('order', test.id('held'), 'lines', '[1]'::jsonb)) IS NOT NULL;
SELECT is(test.call('order_hold', 'mona', jsonb_build_object('id', test.id('held'), 'reason', 'customer disputes the price')) ->> 'status',
          'on_hold', 'the order is held while line 1 is being made');
SELECT is((SELECT string_agg(line_no || ' ' || coalesce(production, 'service'), ', ' ORDER BY line_no) FROM orderly.production_queue WHERE order_id = test.id('held')),
          '1 in_production', 'the work queue keeps what is being made in sight (not the work not started)');
SELECT throws_ok(format($$ SELECT test.call('production_start', 'pat', '{"order":%s,"lines":[2]}') $$, test.id('held')),
                 'OL409', format('order %s is on_hold; production works on orders that are approved, in_production, partially_shipped', test.id('held')),
                 'no new work starts on a held order');
SELECT is(test.call('production_done', 'pat', jsonb_build_object('order', test.id('held'), 'lines', '[1]'::jsonb)) -> 'lines' -> 0 ->> 'production',
          'done', 'the line that was being made is recorded as done');
SELECT is(pg_temp.status(test.id('held')), 'on_hold', 'and the order stays held');
SELECT lives_ok(format($$ SELECT test.call('service_done', 'pat', '{"order":%s}') $$, test.id('held')),
                'a service performed all the same is recorded');

-- SERVICE DONE: a service is performed; it holds up no shipment, only the order's delivery --------

-- Order a (goods, two made cases, a setup service) is ready: its goods ship and are delivered.
INSERT INTO orderly.carriers (code, name) VALUES ('dhl', 'DHL') ON CONFLICT DO NOTHING;
SELECT test.call('shipment_create', 'wes', jsonb_build_object('order', test.id('a'), 'carrier', 'dhl',
    'lines', '[{"line":1,"qty":2},{"line":2,"qty":1},{"line":3,"qty":2}]'::jsonb)) IS NOT NULL;
UPDATE orderly.shipments SET status = 'delivered', delivered_at = now() WHERE order_id = test.id('a');
SELECT is(pg_temp.advanced(test.id('a'), 'wes'), 'shipped', 'the goods delivered, the setup not performed: still shipped, not delivered');
SELECT is((SELECT (q ->> 'fee') || ' ' || (q -> 'lines' -> 0 ->> 'line') || ' of ' || jsonb_array_length(q -> 'lines') || ' ' || (q -> 'policy' ->> 'status')
           FROM test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('a'), 'quote', true)) q),
          '0.00 4 of 1 shipped',
          'the setup may still be cancelled once the goods shipped (the policy row of shipped): it is all that is left');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","lines":[1]}') $$, test.id('a')),
                 'OL409', 'line 1 has been delivered: delivered lines cannot be cancelled (a return is another flow)', 'its goods not');
SELECT throws_ok(format($$ SELECT test.call('service_done', 'wes', '{"order":%s}') $$, test.id('a')),
                 'OL403', NULL, 'the warehouse does not record services');
SELECT throws_ok(format($$ SELECT test.call('service_done', 'pat', '{"order":%s,"lines":[1]}') $$, test.id('a')),
                 'OL409', 'line 1 is a goods line; SERVICE DONE is for service lines (make-to-order lines: PRODUCTION START and DONE)',
                 'a goods line is not a service');
INSERT INTO replies SELECT 'svc-a', test.call('service_done', 'pat', jsonb_build_object('order', test.id('a'), 'idempotency_key', 'svc-a'));
SELECT is((SELECT (doc ->> 'status') || ' ' || (doc -> 'services' -> 0 ->> 'line') || ' ' || (doc -> 'services' -> 0 ->> 'performed')
                  || ' ' || (doc -> 'services' -> 0 ->> 'performed_by') FROM replies WHERE name = 'svc-a'),
          'delivered 4 true pat', 'SERVICE DONE: the setup performed, by whom; goods delivered and services performed: delivered');
SELECT ok(test.replays('service_done', 'pat', jsonb_build_object('order', test.id('a'), 'idempotency_key', 'svc-a')), 'a retry is the same reply');
SELECT is((SELECT count(*)::int FROM api.work_queue(test.uid('pat'), '{}') r WHERE (r::jsonb ->> 'order')::bigint = test.id('a')), 0,
          'a performed service leaves the work queue');
SELECT is((SELECT count(*)::int FROM orderly.audit_log WHERE action = 'service.done' AND entity_id = test.id('a')::text), 1, 'audited once');

-- An order of services only is delivered once they are performed (it stayed ready for good).
INSERT INTO ids SELECT 's', test.submitted('rita', test.id('acme'), '[{"product":"SVC-SETUP","qty":2}]');
SELECT is(pg_temp.status(test.id('s')), 'ready', 'an order of services only is ready at approval (net terms)');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","lines":[{"line":1,"qty":3}]}') $$, test.id('s')),
                 'OL409', NULL, 'a service line cannot be cancelled beyond its units');
SELECT is((SELECT count(*)::integer FROM orderly.notifications WHERE kind = 'order.ready_to_ship' AND (payload ->> 'order')::bigint = test.id('s')),
          0, 'nothing of it ships: the warehouse and logistics are not told it is ready to ship');
SELECT is(test.call('service_done', 'pat', jsonb_build_object('order', test.id('s'))) ->> 'status', 'delivered',
          'its services performed: delivered');
SELECT is((SELECT array_agg(e ->> 'event' ORDER BY n) FROM json_array_elements(orderly.order_timeline(o)) WITH ORDINALITY AS x(e, n)),
          ARRAY['submitted', 'approved', 'delivered'], 'its timeline says when it was delivered (performed), without a shipment')
FROM orderly.orders o WHERE o.id = test.id('s');
SELECT throws_ok(format($$ SELECT test.call('service_done', 'pat', '{"order":%s}') $$, test.id('s')),
                 'OL409', format('order %s is delivered; services are performed for orders that are in_production, ready, partially_shipped or shipped', test.id('s')),
                 'nothing is performed twice');
UPDATE orderly.orders SET amount_paid = total WHERE id = test.id('s');
SELECT is(pg_temp.advanced(test.id('s'), 'pat'), 'completed', 'and completed once paid');

-- WORK QUEUE shows what is left of a service after a part of it was cancelled.
INSERT INTO ids SELECT 'sq', test.submitted('rita', test.id('acme'), '[{"product":"SVC-SETUP","qty":3}]');
SELECT test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('sq'), 'reason', 'Two are enough', 'lines', '[{"line":1,"qty":1}]'::jsonb)) IS NOT NULL;
SELECT is((SELECT (i ->> 'qty')::integer FROM api.work_queue(test.uid('pat'), '{}') r, jsonb_array_elements(r::jsonb -> 'items') i
           WHERE (r::jsonb ->> 'order')::bigint = test.id('sq')), 2, 'WORK QUEUE: the 2 setups still to perform, not the 3 ordered');

-- Prepaid: performed once paid, as goods ship once paid.
INSERT INTO ids SELECT 'sp', test.submitted('rita', test.id('pre'), '[{"product":"SVC-SETUP","qty":1}]');
SELECT is(pg_temp.status(test.id('sp')), 'approved', 'a prepaid order of services only waits for its payment');
SELECT throws_ok(format($$ SELECT test.call('service_done', 'pat', '{"order":%s}') $$, test.id('sp')),
                 'OL409', format('order %s is approved, not released yet: its services are performed once it is ready (its make-to-order lines made, and paid) or in production', test.id('sp')),
                 'its service is not performed before it is paid, and the refusal says what it waits for');
UPDATE orderly.orders SET amount_paid = total WHERE id = test.id('sp');
SELECT is(pg_temp.advanced(test.id('sp'), 'pat'), 'ready', 'paid: released');
SELECT is(test.call('service_done', 'pat', jsonb_build_object('order', test.id('sp'))) ->> 'status', 'completed',
          'performed: delivered, and (paid) completed');

-- A performed service is neither cancelled nor changed.
INSERT INTO ids SELECT 's2', test.submitted('rita', test.id('acme'), '[{"product":"SVC-SETUP","qty":1},{"sku":"PHN-X1-128-BLK","qty":1}]');
SELECT test.call('service_done', 'pat', jsonb_build_object('order', test.id('s2'))) IS NOT NULL;
SELECT is(pg_temp.status(test.id('s2')), 'ready', 'performed, but the phone has not shipped: still ready');
SELECT throws_ok(format($$ SELECT test.call('order_cancel', 'rita', '{"id":%s,"reason":"x","lines":[1]}') $$, test.id('s2')),
                 'OL409', 'line 1 has been performed: a performed service cannot be cancelled', 'a performed service is not cancelled');
SELECT throws_ok(format($$ SELECT test.call('order_amend', 'rita', '{"id":%s,"reason":"x","changes":[{"action":"set_line","line":1,"qty":2}]}') $$, test.id('s2')),
                 'OL409', 'line 1 has been performed: a performed service cannot change', 'nor changed');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row names its actor');

SELECT * FROM finish();
ROLLBACK;
