-- Payments (issue 12, item 3; R__180_payments.sql): PAYMENT RECORD / REFUND / LIST, idempotent by
-- (method, reference), over-payment refused with the open amount, the order's currency only,
-- approved orders only, a prepaid order released once paid, a delivered one completed, refunds
-- and payment_status, events and audit rows. Two recordings of one payment at the same time (one
-- row) are raced over TCP by the Swift tests.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(44);

SET CONSTRAINTS orderly.order_status_events IMMEDIATE;

DO $$
BEGIN
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('fay', 'fay-secret-1', ARRAY['finance_manager']);
    PERFORM admin.create_user('fred', 'fred-secret-1', ARRAY['finance_manager']);
    PERFORM admin.create_user('wally', 'wally-secret-1', ARRAY['warehouse']);
    PERFORM admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
    PERFORM admin.create_user('other', 'other-secret-1', ARRAY['customer']);
END
$$;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
INSERT INTO orderly.products (code, name, kind, base_price) VALUES ('PHN', 'Phone', 'goods', 100);
INSERT INTO orderly.skus (product_id, code, stock_on_hand) SELECT id, 'PHN-STD', 100 FROM orderly.products WHERE code = 'PHN';
INSERT INTO orderly.carriers (code, name) VALUES ('dhl', 'DHL');

INSERT INTO ids SELECT 'acme', (test.call('customer_create', 'rita', '{"name":"Acme","email":"acme@example.com","phone":"+4930100100"}') ->> 'id')::bigint;
SELECT test.call('address_add', 'rita', jsonb_build_object('customer', test.id('acme'), 'recipient', 'Dock', 'phone', '+4930100101',
                    'line1', 'Kai 1', 'city', 'Hamburg', 'region', 'HH', 'postal_code', '20095', 'country', 'DE'));
INSERT INTO ids SELECT 'zeta', (test.call('customer_create', 'rita', '{"name":"Zeta","email":"zeta@example.com","phone":"+4930100200"}') ->> 'id')::bigint;
SELECT admin.link_customer('buyer', test.id('acme'));
SELECT admin.link_customer('other', test.id('zeta'));
UPDATE orderly.customers SET payment_terms = 'prepaid' WHERE id = test.id('acme');

CREATE FUNCTION pg_temp.order(label text, qty integer, submit boolean DEFAULT true) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (test.call('order_create', 'rita', jsonb_build_object('customer', test.id('acme'),
                        'lines', jsonb_build_array(jsonb_build_object('product', 'PHN', 'qty', qty)), 'submit', submit)) ->> 'id')::bigint;
BEGIN
    INSERT INTO ids VALUES (label, v_id);
    RETURN v_id;
END
$$;
CREATE FUNCTION pg_temp.pay(label text, amount numeric, reference text, method text DEFAULT 'bank_transfer', who text DEFAULT 'fay')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT test.call('payment_record', who, jsonb_build_object('order', test.id(label), 'amount', amount, 'method', method,
                                                               'reference', reference))
$$;
CREATE FUNCTION pg_temp.status(label text) RETURNS text LANGUAGE sql AS $$
    SELECT status || '/' || orderly.payment_status(o) FROM orderly.orders o WHERE id = test.id(label)
$$;

SELECT pg_temp.order('pre', 3);          -- 300.00, prepaid: waits at approved
SELECT pg_temp.order('draft', 1, false);
SELECT pg_temp.order('pre2', 1);

-- Recording ---------------------------------------------------------------------------------------

SELECT is(pg_temp.status('pre'), 'approved/unpaid', 'a prepaid order waits, unpaid');
SELECT is(pg_temp.pay('pre', 100, 'BANK-0001') - 'id' - 'received_at' - 'recorded_at',
          jsonb_build_object('order', test.id('pre'), 'kind', 'payment', 'amount', 100.00, 'currency', 'EUR',
                             'method', 'bank_transfer', 'reference', 'BANK-0001', 'recorded_by', 'fay',
                             'order_paid', 100.00, 'order_refunded', 0, 'open_amount', 200.00, 'payment_status', 'partially_paid'),
          'PAYMENT RECORD: the payment with the order''s sums right after it');
SELECT is(pg_temp.status('pre'), 'approved/partially_paid', 'partly paid: still waiting');
SELECT is((SELECT amount_paid FROM orderly.orders WHERE id = test.id('pre')), 100.00, 'orders.amount_paid kept with the row');

-- The same payment twice: one row, the same reply, nothing written.
SELECT test.snapshot(ARRAY['orderly.payments', 'orderly.audit_log', 'orderly.notifications', 'orderly.order_status_history']);
SELECT is(test.reply('payment_record', 'fred', jsonb_build_object('order', test.id('pre'), 'amount', 100, 'method', 'bank_transfer',
                                                                   'reference', ' bank-0001 ')),
          test.reply('payment_record', 'fay', jsonb_build_object('order', test.id('pre'), 'amount', 100, 'method', 'bank_transfer',
                                                                  'reference', 'BANK-0001')),
          'recorded again (by a colleague, the reference typed in other case): the same reply, text for text');
SELECT ok(test.unchanged(), 'and no second row, audit row or event');
SELECT is((SELECT amount_paid FROM orderly.orders WHERE id = test.id('pre')), 100.00, 'nor a second amount');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":99,"method":"bank_transfer","reference":"BANK-0001"}') $$, test.id('pre')),
                 'OL409', format('bank_transfer payment "BANK-0001" is already recorded: 100.00 EUR for order %s', test.id('pre')),
                 'the same reference with another amount is a conflict');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":100,"method":"bank_transfer","reference":"BANK-0001"}') $$, test.id('pre2')),
                 'OL409', format('bank_transfer payment "BANK-0001" is already recorded: 100.00 EUR for order %s', test.id('pre')),
                 'so is the same reference for another order');
SELECT ok(test.unchanged(), 'and neither writes anything');
SELECT is((pg_temp.pay('pre', 10, 'BANK-0001', 'card')) ->> 'method', 'card', 'the same reference under another method is another payment');

-- Refusals.
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":190.01,"method":"cash","reference":"C-1"}') $$, test.id('pre')),
                 'OL409', format('payment of 190.01 EUR is more than the open amount of order %s: 190.00 EUR', test.id('pre')),
                 'over-payment is refused, naming the open amount');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":10,"method":"cash","reference":"C-2","currency":"USD"}') $$, test.id('pre')),
                 'OL400', format('order %s is in EUR: a payment is recorded in the order''s currency only', test.id('pre')),
                 'another currency is refused');
SELECT lives_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":1,"method":"cash","reference":"C-3","currency":"eur"}') $$, test.id('pre')),
                'the order''s own currency may be named');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":10,"method":"bitcoin","reference":"X"}') $$, test.id('pre')),
                 'OL400', 'method must be one of: bank_transfer, card, cash, cheque, other', 'an unknown method is refused');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":0.001,"method":"cash","reference":"X"}') $$, test.id('pre')),
                 'OL400', 'amount must be more than 0, with at most 2 decimals', 'so is a fraction of a cent');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":1,"method":"cash","reference":"X","received_at":"2999-01-01"}') $$, test.id('pre')),
                 'OL400', 'received_at is in the future', 'and a payment from the future');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":1,"method":"cash","reference":"X","received_at":"1900-01-01"}') $$, test.id('pre')),
                 'OL400', format('received_at (1900-01-01T00:00:00.000000Z) is before order %s was created (%s)', test.id('pre'),
                                 (SELECT (created_at AT TIME ZONE 'UTC')::date FROM orderly.orders WHERE id = test.id('pre'))),
                 'nor one from before the order existed');
-- Accepted, and rolled back, so that the amounts below stay as they are.
SELECT ok(test.accepted(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":1,"method":"cash","reference":"early","received_at":"%s"}') $$,
                                  test.id('pre'), (SELECT (created_at AT TIME ZONE 'UTC')::date FROM orderly.orders WHERE id = test.id('pre')))),
          'the morning of the day the order was created is fine');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":1e12,"method":"cash","reference":"X"}') $$, test.id('pre')),
                 'OL400', 'amount must be less than 1000000000000', 'a huge amount says what is wrong with it');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":1,"method":"cash","reference":"X"}') $$, test.id('draft')),
                 'OL409', format('order %s is draft: payments are recorded once it is approved', test.id('draft')),
                 'a draft takes no payment');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'rita', '{"order":%s,"amount":1,"method":"cash","reference":"X"}') $$, test.id('pre')),
                 'OL403', 'permission denied: payment.record', 'a sales rep records no payment');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":1,"method":"cash","reference":"X"}') $$, 0),
                 'OL404', 'order 0 not found', 'an unknown order');

-- Paid in full: the prepaid order is released -----------------------------------------------------

SELECT is(pg_temp.pay('pre', 189, 'BANK-0002') ->> 'payment_status', 'paid', 'the rest is paid');
SELECT is(pg_temp.status('pre'), 'ready/paid', 'and the prepaid order is released to the warehouse: ready');
SELECT is((SELECT array_agg(DISTINCT coalesce(u.username, 'role:' || n.recipient_role) ORDER BY coalesce(u.username, 'role:' || n.recipient_role))
           FROM orderly.notifications n LEFT JOIN orderly.users u ON u.id = n.recipient_user_id
           WHERE n.kind = 'payment.received' AND (n.payload ->> 'order')::bigint = test.id('pre')),
          ARRAY['rita', 'role:finance_manager'], 'payment.received goes to finance and the creator');
SELECT is((SELECT array_agg(n.payload ->> 'status' ORDER BY n.id) FROM orderly.notifications n
           WHERE n.kind = 'order.status' AND n.recipient_user_id = test.uid('buyer') AND (n.payload ->> 'order')::bigint = test.id('pre')),
          ARRAY['approved', 'ready'], 'the customer''s login hears of approval and of the release');
SELECT is((SELECT count(*)::integer FROM orderly.audit_log WHERE action = 'payment.record' AND entity_id = test.id('pre')::text
             AND actor_user_id = test.uid('fay')), 4, 'every payment is audited on the order, with who recorded it');

-- Delivered and paid: completed -------------------------------------------------------------------

UPDATE orderly.customers SET payment_terms = 'net_30' WHERE id = test.id('acme');
SELECT pg_temp.order('net2', 1);
SELECT is(pg_temp.status('net2'), 'ready/unpaid', 'a net order is ready unpaid');
INSERT INTO orderly.shipments (order_id, customer_id, carrier, status, delivered_at)
SELECT id, customer_id, 'dhl', 'delivered', now() FROM orderly.orders WHERE id = test.id('net2');
INSERT INTO orderly.shipment_lines (shipment_id, order_id, line_no, qty)
SELECT s.id, s.order_id, 1, 1 FROM orderly.shipments s WHERE s.order_id = test.id('net2');
SELECT is((orderly.advance(o, NULL)).status, 'delivered', 'shipped and delivered (simulated), not paid: delivered')
FROM orderly.orders o WHERE o.id = test.id('net2');
SELECT is(pg_temp.pay('net2', 100, 'BANK-0003') ->> 'open_amount', '0.00', 'paid after delivery');
SELECT is(pg_temp.status('net2'), 'completed/paid', 'delivered and paid: completed');
SELECT throws_ok(format($$ SELECT test.call('payment_record', 'fay', '{"order":%s,"amount":1,"method":"cash","reference":"X"}') $$, test.id('net2')),
                 'OL409', format('payment of 1 EUR is more than the open amount of order %s: 0.00 EUR', test.id('net2')),
                 'nothing more to pay');
SELECT throws_ok(format($$ SELECT test.call('payment_refund', 'fay', '{"order":%s,"amount":50,"method":"bank_transfer","reference":"RF-NET2"}') $$, test.id('net2')),
                 'OL409', format('order %s is completed: a refund of 50 EUR is more than the refund due (0.00 EUR) and would make it owe money again', test.id('net2')),
                 'nor anything to pay back: a refund would leave a completed order owing again');

-- Refunds ---------------------------------------------------------------------------------------

SELECT is(test.call('payment_refund', 'fay', jsonb_build_object('order', test.id('pre'), 'amount', 50, 'method', 'bank_transfer',
                                                                 'reference', 'RF-1')) ->> 'payment_status',
          'partially_refunded', 'a partial refund');
SELECT is(pg_temp.status('pre'), 'approved/partially_refunded',
          'the prepaid order, no longer paid in full, goes back to approved: off the pick list until it is paid');
SELECT throws_ok(format($$ SELECT test.call('payment_refund', 'fay', '{"order":%s,"amount":250.01,"method":"bank_transfer","reference":"RF-2"}') $$, test.id('pre')),
                 'OL409', format('refund of 250.01 EUR is more than order %s has paid and not had refunded: 250.00 EUR', test.id('pre')),
                 'never more than was paid and not refunded');
SELECT is(test.call('payment_refund', 'fay', jsonb_build_object('order', test.id('pre'), 'amount', 250, 'method', 'bank_transfer',
                                                                 'reference', 'RF-2')) ->> 'payment_status',
          'refunded', 'refunded in full');

-- PAYMENT LIST ----------------------------------------------------------------------------------

SELECT is((SELECT array_agg(r ->> 'kind' || ' ' || (r ->> 'amount') || ' → ' || (r ->> 'payment_status'))
           FROM jsonb_array_elements(test.rows('payment_list', 'wally', jsonb_build_object('order', test.id('pre')))) r),
          ARRAY['payment 100.00 → partially_paid', 'payment 10.00 → partially_paid', 'payment 1.00 → partially_paid',
                'payment 189.00 → paid', 'refund 50.00 → partially_refunded', 'refund 250.00 → refunded'],
          'PAYMENT LIST: oldest first, each with the order''s status after it');
SELECT is((SELECT array_agg(DISTINCT k ORDER BY k) FROM jsonb_array_elements(test.rows('payment_list', 'buyer', jsonb_build_object('order', test.id('pre')))) r,
                  jsonb_object_keys(r) k),
          ARRAY['amount', 'currency', 'id', 'kind', 'method', 'open_amount', 'order', 'order_paid', 'order_refunded', 'payment_status',
                'received_at', 'recorded_at', 'recorded_by', 'reference'],
          'the customer''s login sees its payments');
SELECT is((SELECT array_agg(DISTINCT r ->> 'recorded_by') FROM jsonb_array_elements(test.rows('payment_list', 'buyer', jsonb_build_object('order', test.id('pre')))) r),
          ARRAY['staff'], 'recorded by "staff", not by name');
SELECT throws_ok(format($$ SELECT test.rows('payment_list', 'other', '{"order":%s}') $$, test.id('pre')),
                 'OL404', format('order %s not found', test.id('pre')), 'another customer''s login sees nothing: not found');
SELECT is((SELECT array_agg(DISTINCT k ORDER BY k) FROM jsonb_array_elements(test.rows('inbox', 'buyer', '{}')) r,
                  jsonb_object_keys(r -> 'payload') k WHERE r ->> 'kind' = 'order.status'),
          ARRAY['at', 'order', 'status', 'status_label'], 'order.status to a customer login: its four keys');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row names its actor');

SELECT * FROM finish();
ROLLBACK;
