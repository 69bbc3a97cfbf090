-- Customer terms and holds (issue 12, item 2; R__175_holds_and_terms.sql): CUSTOMER TERMS (finance
-- only, validated, audited; what staff and customers see of it), ORDER HOLD / ORDER RELEASE (from
-- the statuses the transition table allows, back to where the order was, a credit hold released
-- by finance without checking the limit again), with events and audit rows.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(30);

SET CONSTRAINTS orderly.order_status_events IMMEDIATE;

DO $$
BEGIN
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('mona', 'mona-secret-1', ARRAY['sales_manager']);
    PERFORM admin.create_user('fay', 'fay-secret-1', ARRAY['finance_manager']);
    PERFORM admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
END
$$;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
INSERT INTO orderly.products (code, name, kind, base_price) VALUES ('PHN', 'Phone', 'goods', 100);
INSERT INTO orderly.skus (product_id, code, stock_on_hand) SELECT id, 'PHN-STD', 100 FROM orderly.products WHERE code = 'PHN';
INSERT INTO ids SELECT 'acme', (test.call('customer_create', 'rita', '{"name":"Acme","email":"acme@example.com","phone":"+4930100100"}') ->> 'id')::bigint;
SELECT test.call('address_add', 'rita', jsonb_build_object('customer', test.id('acme'), 'recipient', 'Dock', 'phone', '+4930100101',
                    'line1', 'Kai 1', 'city', 'Hamburg', 'region', 'HH', 'postal_code', '20095', 'country', 'DE'));
SELECT admin.link_customer('buyer', test.id('acme'));
CREATE FUNCTION pg_temp.order(label text, qty integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (test.call('order_create', 'rita', jsonb_build_object('customer', test.id('acme'),
                        'lines', jsonb_build_array(jsonb_build_object('product', 'PHN', 'qty', qty)), 'submit', true)) ->> 'id')::bigint;
BEGIN
    INSERT INTO ids VALUES (label, v_id);
    RETURN v_id;
END
$$;
CREATE FUNCTION pg_temp.status(label text) RETURNS text LANGUAGE sql AS $$
    SELECT status || coalesce(' from ' || held_from || ': ' || hold_reason, '') FROM orderly.orders WHERE id = test.id(label)
$$;

-- CUSTOMER TERMS --------------------------------------------------------------------------------

SELECT pg_temp.order('first', 2);
SELECT is(test.call('customer_terms', 'fay', jsonb_build_object('id', test.id('acme'), 'payment_terms', 'NET_14', 'credit_limit', '250')),
          jsonb_build_object('customer', test.id('acme'), 'name', 'Acme', 'payment_terms', 'net_14', 'credit_limit', 250,
                             'credit_currency', 'EUR', 'open_balance', 200.00),
          'finance sets terms and a limit; the reply shows the open balance');
SELECT is((SELECT row(actor_user_id = test.uid('fay'), before ->> 'payment_terms', after ->> 'payment_terms', after ->> 'credit_limit')::text
           FROM orderly.audit_log WHERE action = 'customer.terms'), row(true, 'net_30', 'net_14', '250.00')::text,
          'audited with before and after');
SELECT throws_ok(format($$ SELECT test.call('customer_terms', 'mona', '{"id":%s,"credit_limit":"none"}') $$, test.id('acme')),
                 'OL403', 'permission denied: payment.record', 'sales may not give credit');
SELECT throws_ok(format($$ SELECT test.call('customer_terms', 'fay', '{"id":%s,"payment_terms":"net_0"}') $$, test.id('acme')),
                 'OL400', 'payment_terms must be prepaid or net_N (N days, 1 to 999), like net_30', 'terms are prepaid or net_N');
SELECT throws_ok(format($$ SELECT test.call('customer_terms', 'fay', '{"id":%s,"credit_limit":-1}') $$, test.id('acme')),
                 'OL400', 'credit_limit must be an amount of at least 0 with at most 2 decimals, or "none"', 'a limit is not negative');
SELECT throws_ok(format($$ SELECT test.call('customer_terms', 'fay', '{"id":%s,"credit_limit":10.001}') $$, test.id('acme')),
                 'OL400', 'credit_limit must be an amount of at least 0 with at most 2 decimals, or "none"',
                 'nor has a third decimal (refused, not rounded)');
SELECT throws_ok(format($$ SELECT test.call('customer_terms', 'fay', '{"id":%s,"credit_limit":1e20}') $$, test.id('acme')),
                 'OL400', 'credit_limit must be an amount of at least 0 with at most 2 decimals, or "none"',
                 'nor is too large for an amount (named, not a database error)');
SELECT throws_ok(format($$ SELECT test.call('customer_terms', 'fay', '{"id":%s,"credit_currency":"EUE"}') $$, test.id('acme')),
                 'OL400', 'credit_currency must be an ISO 4217 currency code like EUR or USD ("EUE" is none)', 'a credit limit in no currency');
SELECT throws_ok(format($$ SELECT test.call('customer_terms', 'fay', '{"id":%s}') $$, test.id('acme')),
                 'OL400', 'nothing to change: give payment_terms, credit_limit or credit_currency', 'something to change');
SELECT is(test.call('customer_show', 'rita', jsonb_build_object('id', test.id('acme'))) -> 'terms',
          '{"payment_terms":"net_14","credit_limit":250.00,"credit_currency":"EUR"}'::jsonb, 'staff see the terms in CUSTOMER SHOW');
SELECT is(test.call('customer_show', 'buyer', jsonb_build_object('id', test.id('acme'))) -> 'terms',
          '{"payment_terms":"net_14"}'::jsonb, 'the customer sees its payment terms, not its credit limit');

-- A credit hold, released by finance --------------------------------------------------------------

SELECT pg_temp.order('over', 1);
SELECT is(pg_temp.status('over'), 'on_hold from approved: credit_limit', '200 open + 100 > 250: on hold');
SELECT throws_ok(format($$ SELECT test.call('order_release', 'mona', '{"id":%s}') $$, test.id('over')),
                 'OL403', format('order %s is held over its customer''s credit limit: finance (payment.record) releases it', test.id('over')),
                 'a sales manager may hold and release, but not a credit hold');
SELECT is(test.call('order_release', 'fay', jsonb_build_object('id', test.id('over'), 'reason', 'paid by phone')) ->> 'status', 'ready',
          'finance releases it: back to approved and on to ready, the limit not checked again');
SELECT is((SELECT array_agg(from_status || '→' || to_status || ' ' || coalesce(reason, '-') ORDER BY id) FROM orderly.order_status_history
           WHERE order_id = test.id('over') AND id > (SELECT max(id) FROM orderly.order_status_history h WHERE h.order_id = test.id('over') AND h.to_status = 'on_hold')),
          ARRAY['on_hold→approved paid by phone', 'approved→ready -'], 'the history: released, then ready');

-- ORDER HOLD / RELEASE ------------------------------------------------------------------------------

SELECT is(test.call('order_hold', 'mona', jsonb_build_object('id', test.id('first'), 'reason', 'address check')) ->> 'status', 'on_hold',
          'ORDER HOLD from ready');
SELECT is(pg_temp.status('first'), 'on_hold from ready: address check', 'with its reason and where it was');
SELECT is((SELECT array_agg(coalesce(u.username, 'role:' || n.recipient_role) ORDER BY n.id) FROM orderly.notifications n
           LEFT JOIN orderly.users u ON u.id = n.recipient_user_id
           WHERE n.kind = 'order.on_hold' AND (n.payload ->> 'order')::bigint = test.id('first')),
          ARRAY['role:finance_manager', 'rita'], 'finance and the creator are told');
SELECT throws_ok(format($$ SELECT test.call('order_hold', 'mona', '{"id":%s,"reason":"again"}') $$, test.id('first')),
                 'OL409', format('order %s is already on hold (address check)', test.id('first')), 'not twice');
SELECT throws_ok(format($$ SELECT test.call('order_hold', 'rita', '{"id":%s,"reason":"x"}') $$, test.id('over')),
                 'OL403', 'permission denied: order.hold', 'a sales rep may not hold');
SELECT is(test.call('order_release', 'mona', jsonb_build_object('id', test.id('first'))) ->> 'status', 'ready', 'ORDER RELEASE: back to ready');
SELECT throws_ok(format($$ SELECT test.call('order_release', 'mona', '{"id":%s}') $$, test.id('first')),
                 'OL409', format('order %s is ready; only an order on hold can be released', test.id('first')), 'only what is on hold');

-- An order keeps the terms it was approved under (V028): a later change is for new orders.
SELECT test.call('customer_terms', 'fay', jsonb_build_object('id', test.id('acme'), 'payment_terms', 'net_30', 'credit_limit', 'none'))
       IS NOT NULL;
SELECT pg_temp.order('on_net', 1);
SELECT test.call('customer_terms', 'fay', jsonb_build_object('id', test.id('acme'), 'payment_terms', 'prepaid')) IS NOT NULL;
SELECT pg_temp.order('on_prepaid', 1);
SELECT is(ARRAY(SELECT status || ' ' || payment_terms || ' ' || orderly.order_releasable(o) FROM orderly.orders o
                WHERE id IN (test.id('on_net'), test.id('on_prepaid')) ORDER BY id),
          ARRAY['ready net_30 true', 'approved prepaid false'],
          'the order approved on net terms stays released after the customer moves to prepaid; a new one waits for payment');
SELECT test.call('customer_terms', 'fay', jsonb_build_object('id', test.id('acme'), 'payment_terms', 'net_30')) IS NOT NULL;
SELECT is((SELECT status || ' ' || orderly.order_releasable(o) FROM orderly.orders o WHERE id = test.id('on_prepaid')), 'approved false',
          'one approved prepaid still waits for its payment when the customer moves back to net terms');
SELECT is(ARRAY[test.call('order_show', 'buyer', jsonb_build_object('id', test.id('on_prepaid'))) ->> 'payment_terms',
                test.call('order_show', 'rita', jsonb_build_object('id', test.id('on_net'))) ->> 'payment_terms'],
          ARRAY['prepaid', 'net_30'], 'ORDER SHOW says the terms the order goes by, to staff and to the customer');
SELECT test.call('payment_record', 'fay', jsonb_build_object('order', test.id('on_prepaid'), 'amount', 100, 'method', 'card',
                                                             'reference', 'p-1')) IS NOT NULL;
SELECT is(pg_temp.status('on_prepaid'), 'ready', 'paid, it is released');

SELECT is((SELECT count(*) FILTER (WHERE h.to_status = 'approved') || ' approvals, '
                   || (SELECT count(*) FROM orderly.outbox x WHERE x.order_id = test.id('over') AND x.subject LIKE '%Confirmed') || ' e-mail'
           FROM orderly.order_status_history h WHERE h.order_id = test.id('over')),
          '2 approvals, 1 e-mail', 'an order approved again after a hold says "Confirmed" to the customer once');
-- Credit is judged one transaction at a time per customer: a check holds the customer's credit
-- lock to commit, so two orders raised at once are not each judged on the other's old total.
SELECT ok(orderly.over_credit_limit(o) IS NOT NULL, 'a credit check of one of Acme''s orders')
FROM orderly.orders o WHERE o.customer_id = test.id('acme') AND o.currency = 'EUR' ORDER BY o.id LIMIT 1;
SELECT is((SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = x'63726564'::integer::oid
           AND objid = test.id('acme')::oid AND pid = pg_backend_pid() AND granted), 1::bigint,
          'it holds Acme''s credit lock until commit');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row names its actor');

SELECT * FROM finish();
ROLLBACK;
