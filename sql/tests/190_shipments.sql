-- Shipments: carriers (admin.set_carrier, admin.carriers, the demo ones), SHIPMENT CREATE's
-- guards (over-shipping, a make-to-order line not produced, a service line, prepaid and unpaid,
-- on hold, a draft, an inactive carrier), stock on hand and reserved going down exactly and the
-- reservations staying consistent, partially_shipped → shipped → delivered (→ completed when
-- paid), SHIPMENT SHOW / LIST (visibility, the customer's view, paging), SHIPMENT DELIVERED,
-- PICK LIST's open quantities, order.ready_to_ship, audit rows, idempotency.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(75);

DO $$
BEGIN
    PERFORM admin.load_demo_catalog();
    PERFORM admin.create_user('wes', 'wes-secret-1', ARRAY['warehouse']);
    PERFORM admin.create_user('lou', 'lou-secret-1', ARRAY['logistics']);
    PERFORM admin.create_user('pat', 'pat-secret-1', ARRAY['production_manager']);
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('sam', 'sam-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
END
$$;
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
CREATE FUNCTION pg_temp.status(order_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT status FROM orderly.orders WHERE id = order_id
$$;
CREATE FUNCTION pg_temp.stock(sku text) RETURNS text LANGUAGE sql AS $$
    SELECT stock_on_hand || '/' || stock_reserved FROM orderly.skus WHERE code = sku
$$;
CREATE FUNCTION pg_temp.ship(order_id bigint, lines jsonb, carrier text DEFAULT 'dhl', extra jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
    SELECT test.call('shipment_create', 'wes', jsonb_build_object('order', order_id, 'lines', lines, 'carrier', carrier) || extra)
$$;
-- stock_reserved of every SKU is what the unreleased reservations hold.
CREATE FUNCTION pg_temp.reservations_consistent() RETURNS boolean LANGUAGE sql AS $$
    SELECT NOT EXISTS (SELECT 1 FROM orderly.skus s
                       WHERE s.stock_reserved <> (SELECT coalesce(sum(r.qty), 0) FROM orderly.stock_reservations r
                                                  WHERE r.sku_id = s.id AND r.released_at IS NULL))
$$;

INSERT INTO ids VALUES ('acme', test.customer('rita', 'Acme', '+4930100100')), ('pre', test.customer('rita', 'Prepay', '+4930100200'));
UPDATE orderly.customers SET payment_terms = 'prepaid' WHERE id = test.id('pre');
SELECT admin.link_customer('buyer', test.id('acme'));

-- Carriers ---------------------------------------------------------------------------------------

SELECT is((SELECT array_agg(code ORDER BY code) FROM admin.carriers WHERE tracking_url_template LIKE 'https://%{tracking_no}%'),
          ARRAY['dhl', 'dpd', 'ups'], 'the demo carriers, each with an https tracking URL template');
SELECT is(admin.set_carrier('gls', 'GLS', 'https://gls-group.com/track/{tracking_no}') ->> 'name', 'GLS', 'admin.set_carrier adds a carrier');
SELECT is((SELECT actor_kind || ' ' || action FROM orderly.audit_log WHERE entity = 'carrier' AND entity_id = 'gls'),
          'admin_sql carrier.set', 'audited as the admin''s');
SELECT throws_ok($$ SELECT admin.set_carrier('gls', 'GLS', 'http://gls-group.com/{tracking_no}') $$, 'OL400', NULL,
                 'a tracking URL template must be https');
SELECT throws_ok($$ SELECT admin.set_carrier('gls', 'GLS', 'https://x/{tracking_no}"><script>') $$, 'OL400',
                 'tracking_url_template must be an https:// URL containing {tracking_no} (no quotes, spaces or angle brackets)',
                 'a template that would break out of a link in a customer''s e-mail is refused');
SELECT is(admin.set_carrier('ups2', 'UPS', 'https://www.ups.com/track?loc=en_US&tracknum={tracking_no}&requester=ST/') ->> 'code', 'ups2',
          'query strings and paths are fine');
SELECT throws_ok($$ SELECT admin.set_carrier('gls', 'GLS', 'https://gls-group.com@evil.example/{tracking_no}') $$, 'OL400',
                 'tracking_url_template may not hold a user or password before its host ("@"): it would hide the host it goes to',
                 'a user before the host (the link would go to evil.example, reading as gls-group.com) is refused');
SELECT is(admin.set_carrier('ups3', 'UPS', 'https://www.ups.com/track/{tracking_no}?by=ops@ups.com') ->> 'code', 'ups3',
          'an @ after the host is fine');
SELECT throws_ok($$ SELECT admin.set_carrier('gls', 'GLS', 'https://gls-group.com/track') $$, 'OL400', NULL,
                 'and contain {tracking_no}');
SELECT is(admin.set_carrier('gls', 'GLS', NULL, false) ->> 'active', 'false', 'set_carrier changes a carrier (here: inactive)');
SELECT is(admin.set_carrier('gls', 'GLS Germany') - 'code',
          jsonb_build_object('name', 'GLS Germany', 'tracking_url_template', 'https://gls-group.com/track/{tracking_no}', 'active', false),
          'a rename keeps what it leaves out: the template (shipments keep their tracking links) and inactive');
SELECT is(admin.set_carrier('gls', 'GLS Germany', '') ->> 'tracking_url_template', NULL, ''''' takes the template away');
SELECT throws_ok($$ SELECT admin.set_carrier('gls', E'GLS\u202Elive') $$, 'OL400', NULL,
                 'a carrier name with a direction override is refused (customers see it)');

-- The order: line 1 goods, line 2 a bundle (one phone, two cables), line 3 made to order, line 4 a service.
INSERT INTO ids SELECT 's', test.submitted('rita', test.id('acme'), '[
    {"sku":"PHN-X1-128-BLK","qty":3},
    {"product":"BND-X1-START","qty":1},
    {"product":"CST-CASE","qty":1,"params":{"width_cm":20,"height_cm":10}},
    {"product":"SVC-SETUP","qty":1}]');
SELECT is(ARRAY[pg_temp.status(test.id('s')), pg_temp.stock('PHN-X1-128-BLK'), pg_temp.stock('ACC-CABLE')],
          ARRAY['approved', '25/4', '500/2'], 'approved, four phones and two cables reserved');

-- Guards -----------------------------------------------------------------------------------------

SELECT test.snapshot(ARRAY['orderly.shipments', 'orderly.shipment_lines', 'orderly.audit_log']);
SELECT throws_ok(format($$ SELECT test.call('shipment_create', 'rita', '{"order":%s,"lines":[{"line":1,"qty":1}],"carrier":"dhl"}') $$, test.id('s')),
                 'OL403', 'permission denied: shipment.manage', 'a sales rep does not ship');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1,"qty":1}]', 'pigeon') $$, test.id('s')),
                 'OL404', 'carrier "pigeon" not found', 'an unknown carrier');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1,"qty":1}]', 'gls') $$, test.id('s')),
                 'OL409', 'carrier gls is not active', 'an inactive carrier');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1}]') $$, test.id('s')),
                 'OL400', NULL, 'each line needs a quantity');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1,"qty":0}]') $$, test.id('s')),
                 'OL400', NULL, 'of at least 1');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1,"qty":1},{"line":1,"qty":1}]') $$, test.id('s')),
                 'OL400', 'line 1 is listed twice', 'a line listed twice');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":7,"qty":1}]') $$, test.id('s')),
                 'OL404', format('order %s has no line 7', test.id('s')), 'an unknown line');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":4,"qty":1}]') $$, test.id('s')),
                 'OL409', 'line 4 is a service line: nothing ships', 'a service line does not ship');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":3,"qty":1}]') $$, test.id('s')),
                 'OL409', 'line 3 is made to order and not produced yet', 'a make-to-order line ships once produced');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1,"qty":4}]') $$, test.id('s')),
                 'OL409', 'line 1: 3 ordered, 0 shipped, 3 still to ship; cannot ship 4', 'never more than ordered');
SELECT ok(test.unchanged() AND pg_temp.stock('PHN-X1-128-BLK') = '25/4', 'refused shipments write nothing and move no stock');

-- A first, partial shipment ------------------------------------------------------------------------

CREATE TEMP TABLE replies (name text PRIMARY KEY, doc jsonb);
INSERT INTO replies SELECT 'first', pg_temp.ship(test.id('s'), '[{"line":1,"qty":2},{"line":2,"qty":1}]', 'dhl',
    '{"tracking_no":"JD0001","parcels":2,"service":"Express","idempotency_key":"ship-1"}');
INSERT INTO ids SELECT 'first', (doc ->> 'id')::bigint FROM replies WHERE name = 'first';
SELECT is((SELECT jsonb_build_array(doc ->> 'status', doc -> 'carrier' ->> 'name', doc ->> 'parcels', doc ->> 'shipped_by', doc ->> 'order_status')
           FROM replies WHERE name = 'first'),
          '["shipped", "DHL Paket", "2", "wes", "partially_shipped"]'::jsonb, 'SHIPMENT CREATE: shipped, by wes; the order partially shipped');
SELECT is((SELECT doc ->> 'tracking_url' FROM replies WHERE name = 'first'),
          'https://www.dhl.com/de-en/home/tracking/tracking-parcel.html?submit=1&tracking-id=JD0001', 'the tracking URL from the carrier''s template');
SELECT is((SELECT jsonb_agg(jsonb_build_array(l -> 'line', l -> 'qty')) FROM replies, jsonb_array_elements(doc -> 'lines') l WHERE name = 'first'),
          '[[1, 2], [2, 1]]'::jsonb, 'with its lines');
SELECT is(ARRAY[pg_temp.stock('PHN-X1-128-BLK'), pg_temp.stock('ACC-CABLE')], ARRAY['22/1', '498/0'],
          'on hand and reserved both go down: three phones (two, and one in the bundle), two cables');
SELECT ok(pg_temp.reservations_consistent(), 'stock_reserved is still the sum of the unreleased reservations');
SELECT is((SELECT array_agg(line_no || ':' || qty || ':' || (released_at IS NOT NULL) ORDER BY line_no, sku_id)
           FROM orderly.stock_reservations WHERE order_id = test.id('s')),
          ARRAY['1:1:false', '2:1:true', '2:2:true'], 'line 1 holds its last phone; the bundle''s rows are released');
SELECT ok(test.replays('shipment_create', 'wes', jsonb_build_object('order', test.id('s'), 'lines', '[{"line":1,"qty":2},{"line":2,"qty":1}]'::jsonb,
                       'carrier', 'dhl', 'tracking_no', 'JD0001', 'parcels', 2, 'service', 'Express', 'idempotency_key', 'ship-1')),
          'a retry with the idempotency key replays the reply and writes nothing');
SELECT is(pg_temp.stock('PHN-X1-128-BLK'), '22/1', 'so the stock moved once');
SELECT is((SELECT array_agg(action ORDER BY id) FROM orderly.audit_log WHERE actor_user_id = test.uid('wes')),
          ARRAY['order.stock_ship', 'shipment.create', 'outbox.queue', 'notification.create', 'notification.create', 'order.status'],
          'stock, shipment and status change audited, by wes, with the change''s e-mail and events to the creator and the customer');
SELECT is((SELECT from_status || '→' || to_status FROM orderly.order_status_history WHERE order_id = test.id('s') ORDER BY id DESC LIMIT 1),
          'approved→partially_shipped', 'in the status history');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1,"qty":2}]') $$, test.id('s')),
                 'OL409', 'line 1: 3 ordered, 2 shipped, 1 still to ship; cannot ship 2', 'what shipped counts: no over-shipping');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1,"qty":1}]', 'dhl', '{"tracking_no":"JD0001"}') $$, test.id('s')),
                 'OL409', 'carrier dhl already has a shipment with tracking number JD0001', 'a tracking number is used once per carrier');

-- PICK LIST: what is still to ship -------------------------------------------------------------------

CREATE FUNCTION pg_temp.pick(order_id bigint) RETURNS jsonb LANGUAGE sql AS $$
    SELECT coalesce((SELECT jsonb_agg(jsonb_build_array(i -> 'line', i -> 'sku', i -> 'qty', i -> 'line_open'))
                     FROM api.pick_list(test.uid('wes'), '{}') r, jsonb_array_elements(r::jsonb -> 'items') i
                     WHERE (r::jsonb ->> 'order')::bigint = order_id), '[]')
$$;
SELECT is(pg_temp.pick(test.id('s')), '[[1, "PHN-X1-128-BLK", 1, 1]]'::jsonb,
          'PICK LIST: the one phone still to ship; not the bundle (shipped), the case (not made) or the service');
SELECT test.call('production_start', 'pat', jsonb_build_object('order', test.id('s'))) IS NOT NULL;
SELECT is(test.call('production_done', 'pat', jsonb_build_object('order', test.id('s'))) ->> 'status', 'partially_shipped',
          'producing the case leaves a partially shipped order partially shipped');
SELECT is(pg_temp.pick(test.id('s')), '[[1, "PHN-X1-128-BLK", 1, 1], [3, null, 1, 1]]'::jsonb, 'the made case joins the pick list, without SKU');

-- The rest: shipped ------------------------------------------------------------------------------

INSERT INTO replies SELECT 'second', pg_temp.ship(test.id('s'), '[{"line":1,"qty":1},{"line":3,"qty":1}]', 'ups', '{"tracking_no":"1Z999"}');
INSERT INTO ids SELECT 'second', (doc ->> 'id')::bigint FROM replies WHERE name = 'second';
SELECT is((SELECT doc ->> 'order_status' FROM replies WHERE name = 'second'), 'shipped', 'everything shipped: the order is shipped');
SELECT is(ARRAY[pg_temp.stock('PHN-X1-128-BLK'), pg_temp.stock('ACC-CABLE')], ARRAY['21/0', '498/0'],
          'the last phone leaves stock and reservation; the case held no stock');
SELECT ok(pg_temp.reservations_consistent() AND NOT EXISTS (SELECT 1 FROM orderly.stock_reservations WHERE order_id = test.id('s') AND released_at IS NULL),
          'every reservation of the order is released, and the counters agree');
SELECT is(pg_temp.pick(test.id('s')), '[]'::jsonb, 'nothing left to pick');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1,"qty":1}]') $$, test.id('s')),
                 'OL409', NULL, 'a shipped order ships nothing more');

-- SHOW and LIST --------------------------------------------------------------------------------------

SELECT is((test.call('shipment_show', 'rita', jsonb_build_object('id', test.id('first'))) ->> 'tracking_no'), 'JD0001',
          'SHIPMENT SHOW for the order''s creator');
SELECT throws_ok(format($$ SELECT test.call('shipment_show', 'sam', '{"id":%s}') $$, test.id('first')),
                 'OL404', format('shipment %s not found', test.id('first')), 'not for a sales rep who cannot see the order');
CREATE TEMP TABLE buyer_view AS SELECT test.call('shipment_show', 'buyer', jsonb_build_object('id', test.id('first'))) AS doc;
SELECT is((SELECT doc ->> 'shipped_by' FROM buyer_view), 'staff', 'the customer sees "staff", not the clerk''s username');
SELECT is_empty($$ SELECT k FROM buyer_view, jsonb_object_keys(doc) k
                   WHERE k NOT IN ('id', 'order', 'order_status', 'status', 'carrier', 'service', 'tracking_no', 'tracking_url',
                                   'parcels', 'lines', 'shipped_at', 'shipped_by', 'delivered_at', 'signed_by',
                                   'tracking', 'eta', 'eta_source') $$,
                'a customer''s shipment carries only the listed keys');
SELECT is((SELECT array_agg((r::jsonb ->> 'id')::bigint) FROM api.shipment_list(test.uid('lou'), jsonb_build_object('order', test.id('s'))) r),
          ARRAY[test.id('second'), test.id('first')], 'SHIPMENT LIST order=: newest first');
SELECT is((SELECT array_agg((r::jsonb ->> 'id')::bigint) FROM api.shipment_list(test.uid('lou'), jsonb_build_object('after', test.id('second'))) r),
          ARRAY[test.id('first')], 'after= pages on');
SELECT is((SELECT array_agg((r::jsonb ->> 'id')::bigint) FROM api.shipment_list(test.uid('lou'), '{"carrier":"ups"}') r),
          ARRAY[test.id('second')], 'carrier= filters');
SELECT is((SELECT count(*)::int FROM api.shipment_list(test.uid('sam'), '{}')), 0, 'a sales rep lists only the shipments of orders they may see');
SELECT throws_ok($$ SELECT test.rows('shipment_list', 'lou', '{"status":"lost"}') $$, 'OL400', NULL, 'an unknown shipment status');

-- DELIVERED ----------------------------------------------------------------------------------------

SELECT throws_ok(format($$ SELECT test.call('shipment_delivered', 'wes', '{"id":%s,"at":"2999-01-01"}') $$, test.id('first')),
                 'OL400', 'at cannot be in the future', 'a delivery in the future');
SELECT throws_ok(format($$ SELECT test.call('shipment_delivered', 'rita', '{"id":%s}') $$, test.id('first')),
                 'OL403', NULL, 'a sales rep does not record deliveries');
SELECT is(test.call('shipment_delivered', 'lou', jsonb_build_object('id', test.id('first'), 'signed_by', 'J. Doe')) ->> 'signed_by',
          'J. Doe', 'SHIPMENT DELIVERED records who signed');
SELECT is(pg_temp.status(test.id('s')), 'shipped', 'one of two shipments delivered: still shipped');
SELECT throws_ok(format($$ SELECT test.call('shipment_delivered', 'lou', '{"id":%s}') $$, test.id('first')),
                 'OL409', NULL, 'a shipment is delivered once');
SELECT is(test.call('shipment_delivered', 'lou', jsonb_build_object('id', test.id('second'))) ->> 'order_status', 'shipped',
          'every shipment delivered, the setup service (line 4) not yet performed: still shipped');
SELECT is(test.call('service_done', 'pat', jsonb_build_object('order', test.id('s'))) ->> 'status', 'delivered',
          'the service performed: the order is delivered (not paid: not completed)');
SELECT is((SELECT count(*)::int FROM orderly.audit_log WHERE action = 'shipment.deliver' AND actor_user_id = test.uid('lou')), 2,
          'each delivery is audited');

-- Paid, then delivered: completed --------------------------------------------------------------------

INSERT INTO ids SELECT 't', test.submitted('rita', test.id('acme'), '[{"sku":"ACC-CABLE","qty":5}]');
SELECT is(pg_temp.status(test.id('t')), 'ready', 'a stock-only order is ready once approved');
SELECT is((SELECT array_agg(recipient_role ORDER BY recipient_role) FROM orderly.notifications
           WHERE kind = 'order.ready_to_ship' AND (payload ->> 'order')::bigint = test.id('t')),
          ARRAY['logistics', 'warehouse'], 'order.ready_to_ship to the warehouse and logistics');
UPDATE orderly.orders SET amount_paid = total WHERE id = test.id('t');
INSERT INTO ids SELECT 'third', (pg_temp.ship(test.id('t'), '[{"line":1,"qty":5}]') ->> 'id')::bigint;
SELECT is(test.call('shipment_delivered', 'wes', jsonb_build_object('id', test.id('third'), 'at', orderly.json_time(now()))) ->> 'order_status',
          'completed', 'delivered and paid: completed');
SELECT is((SELECT array_agg(to_status ORDER BY id) FROM orderly.order_status_history WHERE order_id = test.id('t') AND to_status IN ('shipped', 'delivered', 'completed')),
          ARRAY['shipped', 'delivered', 'completed'], 'through shipped and delivered');

-- Prepaid, on hold, draft ----------------------------------------------------------------------------

INSERT INTO ids SELECT 'p', test.submitted('rita', test.id('pre'), '[{"sku":"ACC-CABLE","qty":2}]');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1,"qty":2}]') $$, test.id('p')),
                 'OL409', NULL, 'a prepaid order does not ship before it is paid');
SELECT is(pg_temp.pick(test.id('p')), '[]'::jsonb, 'and is not on the pick list');
UPDATE orderly.orders SET amount_paid = total WHERE id = test.id('p');
SELECT is(pg_temp.ship(test.id('p'), '[{"line":1,"qty":1}]') ->> 'order_status', 'partially_shipped', 'paid, it ships');

INSERT INTO ids SELECT 'h', test.submitted('rita', test.id('acme'), '[{"sku":"ACC-CABLE","qty":2}]');
UPDATE orderly.orders SET status = 'on_hold', held_from = status, hold_reason = 'address question' WHERE id = test.id('h');
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1,"qty":1}]') $$, test.id('h')),
                 'OL409', format('order %s is on hold (address question): it ships once released', test.id('h')), 'an order on hold does not ship');
SELECT is(pg_temp.pick(test.id('h')), '[]'::jsonb, 'nor is it picked');

INSERT INTO ids SELECT 'd', (test.call('order_draft', 'rita', jsonb_build_object('customer', test.id('acme'))) ->> 'id')::bigint;
SELECT throws_ok(format($$ SELECT pg_temp.ship(%s, '[{"line":1,"qty":1}]') $$, test.id('d')),
                 'OL409', format('order %s is draft; only an approved order (in production, ready or partially shipped) ships', test.id('d')),
                 'a draft does not ship');

SELECT is((SELECT shipments::int FROM admin.carriers WHERE code = 'dhl'), 3, 'admin.carriers counts each carrier''s shipments');
SELECT ok(pg_temp.reservations_consistent(), 'at the end, too, every SKU''s reserved count is its unreleased reservations');
SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row names its actor');

SELECT * FROM finish();
ROLLBACK;
