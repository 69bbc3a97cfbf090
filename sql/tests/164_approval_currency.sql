-- Approval in one currency (V039): rules' bounds and limits are in the approval currency, an
-- order in another is judged by its total at the exchange rate an admin set, and an order whose
-- currency has no rate is above every bound (the largest orders' chain, unlimited roles only).
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(41);

DO $$
BEGIN
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('sue', 'sue-secret-1', ARRAY['sales_supervisor']);
    PERFORM admin.create_user('mona', 'mona-secret-1', ARRAY['sales_manager']);
    PERFORM admin.create_user('fay', 'fay-secret-1', ARRAY['finance_manager']);
    PERFORM admin.create_user('gina', 'gina-secret-1', ARRAY['general_manager']);
    PERFORM admin.load_demo_approvals();
END
$$;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);

-- Services of 1000.00 in euros, dollars and yen, untaxed: totals are exact.
INSERT INTO orderly.products (code, name, kind, base_price, currency) VALUES
    ('KEUR', 'Thousand euros', 'service', 1000, 'EUR'),
    ('KUSD', 'Thousand dollars', 'service', 1000, 'USD'),
    ('KJPY', 'Thousand yen', 'service', 1000, 'JPY');
INSERT INTO ids VALUES ('acme', test.customer('rita', 'Acme', '+4930100100'));

-- Submits k thousand units of the product (a standard order created by rita).
CREATE FUNCTION pg_temp.submit(label text, product text, k integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (test.call('order_create', 'rita', jsonb_build_object('customer', test.id('acme'), 'submit', true,
                              'lines', jsonb_build_array(jsonb_build_object('product', product, 'qty', k)))) ->> 'id')::bigint;
BEGIN
    INSERT INTO ids VALUES (label, v_id);
    RETURN v_id;
END
$$;
CREATE FUNCTION pg_temp.rule(label text) RETURNS text LANGUAGE sql AS $$
    SELECT r.name FROM orderly.order_approvals a JOIN orderly.approval_rules r ON r.id = a.rule_id
    WHERE a.order_id = test.id(label) ORDER BY a.round DESC LIMIT 1
$$;

-- The settings and the admin functions ------------------------------------------------------------

SELECT is((SELECT currency FROM admin.approval_settings), 'EUR', 'approvals are in euros unless an admin says otherwise');
SELECT is(orderly.approval_value(12.34, 'EUR'), 12.34, 'an amount in the approval currency is itself');
SELECT is(orderly.approval_value(1000, 'USD'), NULL, 'no rate: the value is unknown');
SELECT throws_ok($$ SELECT admin.set_exchange_rate('USD', 0) $$, 'OL400',
                 'rate must be what one USD is worth in EUR: above 0 and below 1 000 000 000, with at most 10 decimals', 'a rate of 0');
SELECT throws_ok($$ SELECT admin.set_exchange_rate('USD', -1) $$, 'OL400',
                 'rate must be what one USD is worth in EUR: above 0 and below 1 000 000 000, with at most 10 decimals', 'a negative rate');
SELECT throws_ok($$ SELECT admin.set_exchange_rate('USD', NULL) $$, 'OL400',
                 'rate must be what one USD is worth in EUR: above 0 and below 1 000 000 000, with at most 10 decimals', 'no rate');
SELECT throws_ok($$ SELECT admin.set_exchange_rate('EUR', 1) $$, 'OL400', 'approvals are in EUR: it needs no rate',
                 'the approval currency itself');
SELECT throws_ok($$ SELECT admin.set_exchange_rate('XYZ', 1) $$, 'OL400',
                 'currency must be an ISO 4217 currency code like EUR or USD ("XYZ" is none)', 'no such currency');
SELECT throws_ok($$ SELECT admin.set_approval_currency('EUE') $$, 'OL400',
                 'currency must be an ISO 4217 currency code like EUR or USD ("EUE" is none)', 'nor as approval currency');
SELECT lives_ok($$ SELECT admin.set_exchange_rate('usd', 0.5) $$, 'an admin sets the dollar at half a euro');
SELECT is((SELECT action || ' ' || entity_id || ' ' || after::text FROM orderly.audit_log ORDER BY id DESC LIMIT 1),
          'exchange_rate.set USD/EUR {"rate": 0.5}', 'audited');
SELECT is(orderly.approval_value(1000.01, 'USD'), 500.01, 'converted and rounded to the cent');
SELECT set_eq($$ SELECT currency || ' ' || coalesce(rate::text, '-') FROM admin.exchange_rates $$,
              ARRAY['EUR 1', 'USD 0.5', 'JPY -'], 'the admin view: the approval currency, the rate set, the currency without one');

-- Routing by the value in euros ------------------------------------------------------------------

SELECT pg_temp.submit('usd15', 'KUSD', 15);
SELECT is(pg_temp.rule('usd15'), 'Standard orders up to 10 000', '15 000 dollars are 7 500 euros: the small orders'' rule');
SELECT pg_temp.submit('eur15', 'KEUR', 15);
SELECT is(pg_temp.rule('eur15'), 'Standard orders 10 000 to 50 000', '15 000 euros: the middle rule');
SELECT pg_temp.submit('usd120', 'KUSD', 120);
SELECT is(pg_temp.rule('usd120'), 'Large orders', '120 000 dollars are 60 000 euros: the large orders');
SELECT pg_temp.submit('jpy5', 'KJPY', 5);
SELECT is(pg_temp.rule('jpy5'), 'Large orders', '5 000 yen without a rate: above every bound');
SELECT is((SELECT string_agg(role, ' ' ORDER BY step_no) FROM orderly.order_approvals WHERE order_id = test.id('jpy5')),
          'sales_manager finance_manager production_manager', 'the large orders'' chain');

-- Limits by the value in euros ---------------------------------------------------------------------

SELECT lives_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s}') $$, test.id('usd15')),
                'the supervisor (limit 10 000 euros) approves 15 000 dollars');
SELECT is((SELECT status FROM orderly.order_approvals WHERE order_id = test.id('usd15')), 'approved', 'the step is approved');
SELECT pg_temp.submit('usd19', 'KUSD', 19);
SELECT lives_ok($$ SELECT admin.set_exchange_rate('USD', 0.92) $$, 'the dollar rises while the order waits');
SELECT is((SELECT action || ' ' || before::text || ' ' || after::text FROM orderly.audit_log ORDER BY id DESC LIMIT 1),
          'exchange_rate.set {"rate": 0.5} {"rate": 0.92}', 'the change is audited with the rate before');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s}') $$, test.id('usd19')),
                 'OL403', format('order %s total 19000.00 USD (17480.00 EUR) is above the sales_supervisor limit of 10000.00 EUR for standard orders',
                                 test.id('usd19')),
                 'the decision is judged at today''s rate, and says so in both currencies');

SELECT lives_ok(format($$ SELECT test.call('order_approve', 'mona', '{"id":%s}') $$, test.id('jpy5')),
                'an unlimited role decides the yen order''s first step');
SELECT admin.set_approval_limit('finance_manager', 'standard', 1000000);
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'fay', '{"id":%s}') $$, test.id('jpy5')),
                 'OL403', format('order %s total 5000.00 JPY (no exchange rate to EUR: above every limit) is above the finance_manager limit of 1000000.00 EUR for standard orders',
                                 test.id('jpy5')),
                 'a limited role may not approve an order of unknown value');
SELECT lives_ok($$ SELECT admin.set_exchange_rate('JPY', 0.0061) $$, 'the yen gets its rate');
SELECT lives_ok(format($$ SELECT test.call('order_approve', 'fay', '{"id":%s}') $$, test.id('jpy5')),
                'and 5 000 yen (30.50 euros) are within the limit');

-- A raise after approval is judged against the round that approved the order, at today's rate.
SELECT is(test.call('order_amend', 'rita', jsonb_build_object('id', test.id('usd15'), 'reason', 'one more',
              'changes', '[{"action":"set_line","line":1,"qty":16}]'::jsonb)) ->> 'status',
          'pending', '15 000 dollars approved by a supervisor at 0.50; at 0.92, 16 000 dollars (14 720 euros) need the middle rule''s approval');
SELECT test.call('change_abandon', 'rita', jsonb_build_object('id', (SELECT id FROM orderly.order_changes WHERE order_id = test.id('usd15') AND status = 'pending'))) IS NOT NULL;
SELECT lives_ok($$ SELECT admin.remove_exchange_rate('USD') $$, 'the dollar rate is removed');
SELECT is(test.call('order_amend', 'rita', jsonb_build_object('id', test.id('usd15'), 'reason', 'one more',
              'changes', '[{"action":"set_line","line":1,"qty":16}]'::jsonb)) ->> 'status',
          'pending', 'without a rate a raise is above every limit: approval again, not none');
SELECT test.call('change_abandon', 'rita', jsonb_build_object('id', (SELECT id FROM orderly.order_changes WHERE order_id = test.id('usd15') AND status = 'pending'))) IS NOT NULL;
SELECT admin.set_exchange_rate('USD', 0.92);

-- Only a round that approved counts: half of a rejected change round approves nothing.
SELECT pg_temp.submit('e5', 'KEUR', 5);
SELECT test.call('order_approve', 'sue', jsonb_build_object('id', test.id('e5'))) IS NOT NULL;
CREATE FUNCTION pg_temp.amend_e5(qty integer) RETURNS text LANGUAGE sql AS $$
    SELECT test.call('order_amend', 'rita', jsonb_build_object('id', test.id('e5'), 'reason', 'more',
                     'changes', jsonb_build_array(jsonb_build_object('action', 'set_line', 'line', 1, 'qty', qty)))) ->> 'status'
$$;
SELECT is(pg_temp.amend_e5(60), 'pending', '5 000 approved by a supervisor; 60 000 need the large orders'' chain');
SELECT test.call('order_approve', 'mona', jsonb_build_object('id', test.id('e5'))) IS NOT NULL;
SELECT test.call('order_reject', 'fay', jsonb_build_object('id', test.id('e5'), 'reason', 'credit risk')) IS NOT NULL;
SELECT is(pg_temp.amend_e5(60), 'pending', 'asked again after finance rejected it: the whole chain again, not applied on the sales manager''s half');
SELECT test.call('change_abandon', 'rita', jsonb_build_object('id', (SELECT id FROM orderly.order_changes WHERE order_id = test.id('e5') AND status = 'pending'))) IS NOT NULL;

-- The step's own role's limit counts, not its escalation role's (the step did not escalate).
SELECT admin.set_approval_limit('sales_supervisor', 'standard', 1000);
SELECT is(pg_temp.amend_e5(6), 'pending', 'the supervisor''s limit lowered to 1 000: 6 000 are approved again');
SELECT test.call('change_abandon', 'rita', jsonb_build_object('id', (SELECT id FROM orderly.order_changes WHERE order_id = test.id('e5') AND status = 'pending'))) IS NOT NULL;
SELECT admin.set_approval_limit('sales_supervisor', 'standard', 10000);

-- An approved change is applied at the total it was approved at, or not at all.
SELECT is(pg_temp.amend_e5(15), 'pending', '15 000: the middle rule''s sales manager decides');
UPDATE orderly.products SET base_price = 2000 WHERE code = 'KEUR';
SELECT test.call('order_approve', 'mona', jsonb_build_object('id', test.id('e5'))) IS NOT NULL;
SELECT is((SELECT status || ': ' || decision_reason FROM orderly.order_changes WHERE order_id = test.id('e5') ORDER BY id DESC LIMIT 1),
          'declined: it can no longer be applied: prices changed since it was asked: its total would be 30000.00 EUR, not the 15000.00 EUR it was asked and approved at; ask for it again',
          'the price doubled while it waited: declined, not applied at 30 000 on a 15 000 approval');
SELECT is((SELECT total FROM orderly.orders WHERE id = test.id('e5')), 5000.00, 'the order is as it was');
UPDATE orderly.products SET base_price = 1000 WHERE code = 'KEUR';

-- No rule for the largest orders of a type: an order of unknown value goes by the rule of its type
-- for the largest totals, not through unapproved.
SELECT admin.set_approval_rule_active('Large orders', false);
SELECT admin.remove_exchange_rate('JPY');
SELECT pg_temp.submit('jpy1', 'KJPY', 1);
SELECT is(pg_temp.rule('jpy1'), 'Standard orders 10 000 to 50 000', '1 000 yen without a rate and no rule above 50 000: the rule reaching highest');
SELECT admin.set_approval_rule_active('Large orders', true);

-- Another approval currency: the rates against euros stop applying ------------------------------------

SELECT lives_ok($$ SELECT admin.set_approval_currency('USD') $$, 'the company moves its approvals to dollars');
SELECT is((SELECT action || ' ' || before::text || ' ' || after::text FROM orderly.audit_log ORDER BY id DESC LIMIT 1),
          'approval_settings.change {"currency": "EUR"} {"currency": "USD"}', 'audited');
SELECT ok(orderly.approval_value(1000, 'USD') = 1000 AND orderly.approval_value(1000, 'EUR') IS NULL
          AND orderly.approval_value(1000, 'JPY') IS NULL,
          'dollars are themselves; euros and yen have no rate to dollars yet');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row of this file names its actor');

SELECT * FROM finish();
ROLLBACK;
