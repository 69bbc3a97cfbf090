-- After approval (issue 12; R__155_fulfilment_flow.sql and the lifecycle rows of V017): the
-- transition table (every allowed transition with the permission it needs, a sample of refused
-- ones and their -CONFLICT message), orderly.advance at approval (ready at once, prepaid waits,
-- the credit limit holds, finance is told), delivery driving the status, and the order.status
-- events with their audit rows.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(34);

-- Events are raised at commit (a deferred trigger, R__140_orders.sql): at once in this test.
SET CONSTRAINTS orderly.order_status_events IMMEDIATE;

DO $$
BEGIN
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('fay', 'fay-secret-1', ARRAY['finance_manager']);
    PERFORM admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
    PERFORM admin.create_user('nobody', 'nobody-secret-1', ARRAY[]::text[]);
    -- One user per permission a transition names, holding that permission alone.
    PERFORM admin.create_role('only_' || replace(p, '.', '_')), admin.grant_permission('only_' || replace(p, '.', '_'), p),
            admin.create_user('only-' || replace(p, '.', '-'), 'only-secret-1', ARRAY['only_' || replace(p, '.', '_')])
    FROM unnest(ARRAY['production.manage', 'shipment.manage', 'payment.record', 'order.hold']) p;
END
$$;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
INSERT INTO orderly.products (code, name, kind, base_price) VALUES ('PHN', 'Phone', 'goods', 100), ('K', 'Setup', 'service', 1000);
INSERT INTO orderly.skus (product_id, code, stock_on_hand) SELECT id, 'PHN-STD', 100 FROM orderly.products WHERE code = 'PHN';
INSERT INTO orderly.carriers (code, name, tracking_url_template) VALUES ('dhl', 'DHL', 'https://dhl.example/t/{tracking_no}');

CREATE FUNCTION pg_temp.customer(label text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (test.call('customer_create', 'rita', jsonb_build_object('name', label, 'email', label || '@example.com',
                                                                         'phone', '+4930100' || (100 + (SELECT count(*) FROM ids))::text)) ->> 'id')::bigint;
BEGIN
    PERFORM test.call('address_add', 'rita', jsonb_build_object('customer', v_id, 'recipient', 'Dock', 'phone', '+4930100101',
                      'line1', 'Kai 1', 'city', 'Hamburg', 'region', 'HH', 'postal_code', '20095', 'country', 'DE'));
    INSERT INTO ids VALUES (label, v_id);
    RETURN v_id;
END
$$;
-- An order of qty phones (100.00 each, untaxed) for the customer, submitted by rita.
CREATE FUNCTION pg_temp.order(label text, customer text, qty integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (test.call('order_create', 'rita', jsonb_build_object('customer', test.id(customer),
                        'lines', jsonb_build_array(jsonb_build_object('product', 'PHN', 'qty', qty)), 'submit', true)) ->> 'id')::bigint;
BEGIN
    INSERT INTO ids VALUES (label, v_id);
    RETURN v_id;
END
$$;
CREATE FUNCTION pg_temp.status(label text) RETURNS text LANGUAGE sql AS $$
    SELECT status FROM orderly.orders WHERE id = test.id(label)
$$;
CREATE FUNCTION pg_temp.told(kind text, label text) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(coalesce(u.username, 'role:' || n.recipient_role) ORDER BY coalesce(u.username, 'role:' || n.recipient_role))
    FROM orderly.notifications n LEFT JOIN orderly.users u ON u.id = n.recipient_user_id
    WHERE n.kind = told.kind AND (n.payload ->> 'order')::bigint = test.id(label)
$$;

SELECT pg_temp.customer('acme');
SELECT admin.link_customer('buyer', test.id('acme'));

-- The transition table ----------------------------------------------------------------------------

SELECT set_eq($$ SELECT from_status, to_status, permission FROM orderly.order_status_transitions
                 WHERE from_status IN ('approved', 'in_production', 'ready', 'partially_shipped', 'shipped', 'delivered', 'completed', 'on_hold')
                   -- → cancelled: 198_cancellation.sql
                   AND to_status <> 'cancelled' $$,
              $$ VALUES ('approved', 'in_production', 'production.manage'), ('approved', 'ready', 'production.manage'),
                        ('in_production', 'ready', 'production.manage'), ('approved', 'partially_shipped', 'shipment.manage'),
                        ('approved', 'shipped', 'shipment.manage'), ('in_production', 'partially_shipped', 'shipment.manage'),
                        ('ready', 'partially_shipped', 'shipment.manage'), ('ready', 'shipped', 'shipment.manage'),
                        ('ready', 'approved', 'order.hold'),
                        -- Made, waiting for a prepayment (V042).
                        ('in_production', 'approved', 'order.hold'),
                        ('partially_shipped', 'shipped', 'shipment.manage'), ('shipped', 'delivered', 'shipment.manage'),
                        ('delivered', 'completed', 'payment.record'),
                        -- An order of services only, once performed (V035).
                        ('ready', 'delivered', 'production.manage'),
                        ('approved', 'on_hold', 'order.hold'), ('in_production', 'on_hold', 'order.hold'),
                        ('ready', 'on_hold', 'order.hold'), ('partially_shipped', 'on_hold', 'order.hold'),
                        ('on_hold', 'approved', 'order.hold'), ('on_hold', 'in_production', 'order.hold'),
                        ('on_hold', 'ready', 'order.hold'), ('on_hold', 'partially_shipped', 'order.hold') $$,
              'after approval: these transitions, each with its permission');

SELECT pg_temp.order('probe', 'acme', 1);
-- Puts the probe order in from_s (on hold from to_s when from_s is on_hold) and asks
-- orderly.change_status to move it to to_s as who: 'ok' or the SQLSTATE and message.
CREATE FUNCTION pg_temp.try(from_s text, to_s text, who text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    o orderly.orders;
BEGIN
    UPDATE orderly.orders SET status = from_s,
        held_from = CASE WHEN from_s = 'on_hold' THEN to_s END, hold_reason = CASE WHEN from_s = 'on_hold' THEN 'probe' END
    WHERE id = test.id('probe') RETURNING * INTO o;
    BEGIN
        o := orderly.change_status(o, to_s, test.uid(who), 'probe');
        RETURN CASE WHEN o.status = to_s THEN 'ok' ELSE 'moved to ' || o.status END;
    EXCEPTION WHEN OTHERS THEN
        RETURN SQLSTATE || ' ' || SQLERRM;
    END;
END
$$;

SELECT is(ARRAY(SELECT t.from_status || '→' || t.to_status || ': ' || pg_temp.try(t.from_status, t.to_status, 'nobody')
                FROM orderly.order_status_transitions t
                WHERE t.from_status IN ('approved', 'in_production', 'ready', 'partially_shipped', 'shipped', 'delivered', 'on_hold')
                  AND t.to_status <> 'cancelled'
                  AND pg_temp.try(t.from_status, t.to_status, 'nobody') <> 'OL403 permission denied: ' || t.permission
                ORDER BY 1), '{}',
          'every transition after approval is refused to a user without its permission (OL403 naming it)');
SELECT is(ARRAY(SELECT t.from_status || '→' || t.to_status || ': ' || r.outcome
                FROM orderly.order_status_transitions t
                CROSS JOIN LATERAL (SELECT pg_temp.try(t.from_status, t.to_status, 'only-' || replace(t.permission, '.', '-')) AS outcome) r
                WHERE t.from_status IN ('approved', 'in_production', 'ready', 'partially_shipped', 'shipped', 'delivered', 'on_hold')
                  AND t.to_status <> 'cancelled' AND r.outcome <> 'ok'
                ORDER BY 1), '{}',
          'and made by a user holding that one permission and nothing else');
SELECT is((SELECT count(*)::integer FROM orderly.order_status_history WHERE order_id = test.id('probe') AND reason = 'probe'), 22,
          'each of the 22 lands in the status history');
SELECT is((SELECT count(*)::integer FROM orderly.audit_log WHERE action = 'order.status' AND entity_id = test.id('probe')::text
             AND after ->> 'reason' = 'probe' AND actor_kind = 'user' AND actor_user_id IS NOT NULL), 22,
          'and in the audit log, with its actor');
SELECT is((SELECT held_from || '/' || hold_reason FROM orderly.orders WHERE id = test.id('probe')), NULL,
          'leaving a hold clears where it was held from and why');
SELECT is(pg_temp.try('ready', 'on_hold', 'only-order-hold'), 'ok', 'ready → on_hold');
SELECT is((SELECT held_from || '/' || hold_reason FROM orderly.orders WHERE id = test.id('probe')), 'ready/probe',
          'a hold remembers where the order was and why, in the status''s UPDATE (orders_hold_check)');

-- A sample of refused transitions, for a user holding every permission: -CONFLICT naming the
-- current status and the allowed next ones.
SELECT admin.create_role('all_after_approval');
SELECT admin.grant_permission('all_after_approval', p) FROM unnest(ARRAY['production.manage', 'shipment.manage', 'payment.record', 'order.hold']) p;
SELECT admin.create_user('boss', 'boss-secret-1', ARRAY['all_after_approval']);
SELECT is(pg_temp.try('approved', 'completed', 'boss'),
          format('OL409 order %s is approved, which cannot become completed; from approved it can become: in_production, ready, partially_shipped, shipped, cancelled, on_hold', test.id('probe')),
          'approved → completed is refused, naming the way on');
SELECT is(pg_temp.try('ready', 'in_production', 'boss'),
          format('OL409 order %s is ready, which cannot become in_production; from ready it can become: approved, partially_shipped, shipped, delivered, cancelled, on_hold', test.id('probe')),
          'ready → in_production is refused (back only to approved, which orderly.advance makes: 197_amendments.sql)');
SELECT is(pg_temp.try('shipped', 'on_hold', 'boss'),
          format('OL409 order %s is shipped, which cannot become on_hold; from shipped it can become: delivered', test.id('probe')),
          'what has shipped cannot be held');
SELECT is(pg_temp.try('delivered', 'shipped', 'boss'),
          format('OL409 order %s is delivered, which cannot become shipped; from delivered it can become: completed', test.id('probe')),
          'delivered → shipped is refused');
SELECT is(pg_temp.try('completed', 'on_hold', 'boss'),
          format('OL409 order %s is completed, which cannot become on_hold; from completed it can become: nothing (it is final)', test.id('probe')),
          'completed is final');
SELECT is(pg_temp.try('on_hold', 'shipped', 'boss'),
          format('OL409 order %s is on_hold, which cannot become shipped; from on_hold it can become: approved, in_production, ready, partially_shipped, cancelled', test.id('probe')),
          'an order on hold goes back, not on');
UPDATE orderly.orders SET status = 'ready', held_from = NULL, hold_reason = NULL WHERE id = test.id('probe');
SELECT throws_ok(format($$ SELECT orderly.change_status(o, 'on_hold', %s, '  ') FROM orderly.orders o WHERE id = %s $$,
                        test.uid('boss'), test.id('probe')),
                 'OL400', format('order %s: a hold needs a reason', test.id('probe')), 'a hold needs a reason');

-- advance at approval -----------------------------------------------------------------------------

SELECT pg_temp.order('net', 'acme', 2);
SELECT is(pg_temp.status('net'), 'ready', 'a stock-only order on net terms is ready at once after approval');
SELECT is((SELECT array_agg(from_status || '→' || to_status || ' by ' || coalesce(orderly.username_of(changed_by), 'system') ORDER BY id)
           FROM orderly.order_status_history WHERE order_id = test.id('net') AND from_status IS NOT NULL),
          ARRAY['draft→submitted by rita', 'submitted→approved by rita', 'approved→ready by rita'],
          'each step in the history, made by the command that caused it');
SELECT is(pg_temp.told('order.status', 'net'), ARRAY['buyer', 'buyer', 'rita', 'rita'],
          'order.status to the creator and the customer''s login, for approved and for ready (not before)');

SELECT pg_temp.customer('prepay');
UPDATE orderly.customers SET payment_terms = 'prepaid' WHERE id = test.id('prepay');
SELECT pg_temp.order('pre', 'prepay', 1);
SELECT is(pg_temp.status('pre'), 'approved', 'a prepaid order waits at approved until it is paid (180_payments.sql pays it)');

-- The credit limit: open balance (approved, not completed orders) plus this order, in the credit currency.
SELECT pg_temp.customer('tight');
UPDATE orderly.customers SET credit_limit = 500 WHERE id = test.id('tight');
SELECT pg_temp.order('t1', 'tight', 2);
SELECT pg_temp.order('t2', 'tight', 3);
SELECT is(pg_temp.status('t1') || ' ' || pg_temp.status('t2'), 'ready ready', '200 and then 300 more: exactly at the limit of 500');
SELECT pg_temp.order('t3', 'tight', 1);
SELECT is((SELECT status || ' from ' || held_from || ': ' || hold_reason FROM orderly.orders WHERE id = test.id('t3')),
          'on_hold from approved: credit_limit', '100 more is over the limit: on hold, reason credit_limit');
SELECT is(pg_temp.told('order.on_hold', 't3'), ARRAY['rita', 'role:finance_manager'], 'finance and the creator are told');
SELECT is((SELECT payload - 'at' FROM orderly.notifications WHERE kind = 'order.on_hold' AND recipient_role = 'finance_manager'
             AND (payload ->> 'order')::bigint = test.id('t3')),
          jsonb_build_object('order', test.id('t3'), 'customer', 'tight', 'total', 100.00, 'currency', 'EUR',
                             'reason', 'credit_limit', 'held_from', 'approved'),
          'with the order, its customer, total and why');
SELECT is((SELECT row(actor_kind, orderly.username_of(actor_user_id))::text FROM orderly.audit_log
           WHERE action = 'order.status' AND entity_id = test.id('t3')::text AND after ->> 'status' = 'on_hold'),
          row('user', 'rita')::text, 'the automatic hold is audited, with the submitter as its actor');
-- The timeline shows when the order was first approved: a later return to approved (a hold released
-- an hour on; a ready order gone back, V031) does not move the milestone.
INSERT INTO orderly.order_status_history (order_id, customer_id, from_status, to_status, changed_by, changed_at, reason)
SELECT id, customer_id, 'on_hold', 'approved', test.uid('fay'), now() + interval '1 hour', 'timeline probe'
FROM orderly.orders WHERE id = test.id('t1');
SELECT is((SELECT (e ->> 'at')::timestamptz FROM orderly.orders o, json_array_elements(orderly.order_timeline(o)) e
           WHERE o.id = test.id('t1') AND e ->> 'event' = 'approved'),
          now(), 'the timeline''s approved is the first approval, not the last return to approved');
-- Its paid is when it was paid in full for good: paid, 10.00 refunded (owing again), 10.00 paid.
INSERT INTO orderly.payments (order_id, customer_id, kind, amount, currency, method, reference, received_at, owed)
SELECT o.id, o.customer_id, v.kind, v.amount, o.currency, 'bank_transfer', v.ref, v.at, 0
FROM orderly.orders o,
     (VALUES ('payment', (SELECT total FROM orderly.orders WHERE id = test.id('t1')), 'TL-1', now() - interval '3 hours'),
             ('refund', 10.00, 'TL-R', now() - interval '2 hours'),
             ('payment', 10.00, 'TL-2', now() - interval '1 hour')) v (kind, amount, ref, at)
WHERE o.id = test.id('t1');
UPDATE orderly.orders SET amount_paid = total + 10, amount_refunded = 10 WHERE id = test.id('t1');
SELECT is((SELECT (e ->> 'at')::timestamptz FROM orderly.orders o, json_array_elements(orderly.order_timeline(o)) e
           WHERE o.id = test.id('t1') AND e ->> 'event' = 'paid'),
          now() - interval '1 hour', 'the timeline''s paid is the payment after which it stayed paid, not the first that covered it');
UPDATE orderly.customers SET credit_currency = 'USD' WHERE id = test.id('tight');
SELECT pg_temp.order('t4', 'tight', 1);
SELECT is(pg_temp.status('t4'), 'ready', 'a limit in another currency is not compared with an order in EUR');

-- Delivery drives the status (shipments written directly here; SHIPMENT commands are R__190's) --

INSERT INTO orderly.shipments (order_id, customer_id, carrier, shipped_by) SELECT id, customer_id, 'dhl', test.uid('boss')
FROM orderly.orders WHERE id = test.id('net');
INSERT INTO orderly.shipment_lines (shipment_id, order_id, line_no, qty)
SELECT s.id, s.order_id, 1, 1 FROM orderly.shipments s WHERE s.order_id = test.id('net');
SELECT is((orderly.advance(o, test.uid('boss'))).status, 'partially_shipped', 'one of two phones shipped: partially_shipped')
FROM orderly.orders o WHERE o.id = test.id('net');
UPDATE orderly.shipment_lines SET qty = 2 WHERE order_id = test.id('net');
SELECT is((orderly.advance(o, NULL)).status, 'shipped', 'both: shipped (the system moving it on its own)')
FROM orderly.orders o WHERE o.id = test.id('net');
UPDATE orderly.shipments SET status = 'delivered', delivered_at = now() WHERE order_id = test.id('net');
SELECT is((orderly.advance(o, NULL)).status, 'delivered', 'every shipment delivered, not paid: delivered, not completed')
FROM orderly.orders o WHERE o.id = test.id('net');
-- A free order (nothing owed) completes once delivered: there is nothing to pay, so it reads paid.
SELECT pg_temp.order('free', 'acme', 1);
UPDATE orderly.orders SET total = 0, subtotal = 0, tax_total = 0 WHERE id = test.id('free');
INSERT INTO orderly.shipments (order_id, customer_id, carrier, shipped_by, status, delivered_at)
SELECT id, customer_id, 'dhl', test.uid('boss'), 'delivered', now() FROM orderly.orders WHERE id = test.id('free');
INSERT INTO orderly.shipment_lines (shipment_id, order_id, line_no, qty)
SELECT s.id, s.order_id, 1, 1 FROM orderly.shipments s WHERE s.order_id = test.id('free');
SELECT is((orderly.advance(o, NULL)).status, 'completed', 'a free order, delivered: completed')
FROM orderly.orders o WHERE o.id = test.id('free');
SELECT is(orderly.payment_status(o), 'paid', 'and paid, not "unpaid": there was never anything to pay')
FROM orderly.orders o WHERE o.id = test.id('free');
SELECT is((SELECT array_agg(actor_kind ORDER BY id) FROM orderly.audit_log
           WHERE entity_id = test.id('net')::text AND action = 'order.status' AND after ->> 'status' IN ('shipped', 'delivered')),
          ARRAY['system', 'system'], 'a change the system makes on its own is audited as the system''s');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row names its actor');

SELECT * FROM finish();
ROLLBACK;
