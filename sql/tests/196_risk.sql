-- Delay risk and customer notices: each reason with its evidence, run_delay_checks raising once
-- per order and reason (again only after clearing), its recipients, the customer's view; the
-- outbox: milestone and delay e-mails queued once, rendered in the customer's language, claimed
-- with SKIP LOCKED and a lease, retried with backoff, given up after max attempts.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(82);
-- The status events (and their e-mail) at once, not at commit.
SET CONSTRAINTS orderly.order_status_events IMMEDIATE;

DO $$
BEGIN
    PERFORM admin.load_demo_catalog();
    PERFORM admin.create_user('wes', 'wes-secret-1', ARRAY['warehouse']);
    PERFORM admin.create_user('pat', 'pat-secret-1', ARRAY['production_manager']);
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('cs', 'cs-secret-1', ARRAY['customer_service']);
    PERFORM admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
END
$$;
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
INSERT INTO ids VALUES ('acme', test.customer('rita', 'Acme', '+4930100100'));
SELECT admin.link_customer('buyer', test.id('acme'));
CREATE FUNCTION pg_temp.submitted(lines jsonb, requested date) RETURNS bigint LANGUAGE sql AS $$
    SELECT test.submitted('rita', test.id('acme'), lines, jsonb_build_object('requested_date', requested))
$$;
CREATE FUNCTION pg_temp.reasons(order_id bigint, at timestamptz DEFAULT now()) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(reason ORDER BY reason), '{}') FROM orderly.orders_at_risk(at) WHERE orders_at_risk.order_id = $1
$$;
-- An order's cable reservation (its units) released, with `free` cables left free; and back, with 100 free.
CREATE FUNCTION pg_temp.release_cables(order_name text, units integer, free integer) RETURNS void LANGUAGE sql AS $$
    UPDATE orderly.stock_reservations SET released_at = now()
    WHERE order_id = test.id($1) AND sku_id = (SELECT id FROM orderly.skus WHERE code = 'ACC-CABLE');
    UPDATE orderly.skus SET stock_reserved = stock_reserved - $2, stock_on_hand = stock_reserved - $2 + $3 WHERE code = 'ACC-CABLE';
$$;
CREATE FUNCTION pg_temp.restore_cables(order_name text, units integer) RETURNS void LANGUAGE sql AS $$
    UPDATE orderly.stock_reservations SET released_at = NULL WHERE order_id = test.id($1);
    UPDATE orderly.skus SET stock_reserved = stock_reserved + $2, stock_on_hand = stock_reserved + $2 + 100 WHERE code = 'ACC-CABLE';
$$;

-- A custom order wanted tomorrow: production alone is expected to take 5 days.
INSERT INTO ids SELECT 'late', pg_temp.submitted('[{"product":"CST-CASE","qty":1,"params":{"width_cm":20,"height_cm":10}}]',
                                                 current_date + 1);
SELECT is(pg_temp.reasons(test.id('late')), ARRAY['late_stage'], 'late_stage: wanted sooner than the stages ahead take');
SELECT is((SELECT evidence -> 'remaining' -> 0 ->> 'source' FROM orderly.orders_at_risk(now()) WHERE order_id = test.id('late')),
          'sla', 'with too little history, the stage SLAs are the expectation');
SELECT ok((SELECT (evidence ->> 'expected_by')::timestamptz > now() + interval '4 days' FROM orderly.orders_at_risk(now())
           WHERE order_id = test.id('late')), 'the evidence says when it is expected');
SELECT is((SELECT array_agg(k ORDER BY k) FROM orderly.orders_at_risk(now()) r, jsonb_object_keys(r.evidence) k
           WHERE r.order_id = test.id('late')), ARRAY['expected_by', 'remaining', 'requested_date'], 'late_stage evidence keys');
SELECT is((SELECT array_agg(x ->> 'stage' ORDER BY i) FROM orderly.orders_at_risk(now()) r,
                  jsonb_array_elements(r.evidence -> 'remaining') WITH ORDINALITY AS e(x, i) WHERE r.order_id = test.id('late')),
          ARRAY['approved', 'in_production', 'ready', 'shipped'], 'the stages ahead, in order, production while the line is not made');
-- A stock order (with a service to perform) with no requested date is not at risk.
INSERT INTO ids SELECT 'calm', pg_temp.submitted('[{"sku":"ACC-CABLE","qty":1},{"product":"SVC-SETUP","qty":1}]', NULL);
SELECT is(pg_temp.reasons(test.id('calm')), '{}'::text[], 'an order without a requested date and with its stock is not at risk');
UPDATE orderly.skus SET stock_on_hand = stock_reserved WHERE code = 'ACC-CABLE';
SELECT is(pg_temp.reasons(test.id('calm')), '{}'::text[], 'a line its reservation covers is not short, even with no free stock left');
-- stock_short: the line's reservation is gone and no free stock is left to cover it.
SELECT pg_temp.release_cables('calm', 1, 0);
SELECT is(pg_temp.reasons(test.id('calm')), ARRAY['stock_short'], 'stock_short: a line not covered by its reservation nor by free stock');
SELECT is((SELECT evidence -> 0 ->> 'sku' FROM orderly.orders_at_risk(now()) WHERE order_id = test.id('calm') AND reason = 'stock_short'),
          'ACC-CABLE', 'with the SKU as evidence');
SELECT is((SELECT evidence FROM orderly.orders_at_risk(now()) WHERE order_id = test.id('calm') AND reason = 'stock_short'),
          '[{"line":1,"sku":"ACC-CABLE","needed":1,"available":0,"open":1,"reserved":0}]'::jsonb,
          'stock_short evidence: the units needed beyond the reservation and the SKU''s free stock');
SELECT pg_temp.restore_cables('calm', 1);
-- A bundle holds its components: short by a component, in the component's units.
INSERT INTO ids SELECT 'set', pg_temp.submitted('[{"product":"BND-X1-START","qty":2}]', NULL);
SELECT is(pg_temp.reasons(test.id('set')), '{}'::text[], 'a bundle whose components are reserved is not short');
SELECT pg_temp.release_cables('set', 4, 3);
SELECT is((SELECT evidence FROM orderly.orders_at_risk(now()) WHERE order_id = test.id('set') AND reason = 'stock_short'),
          '[{"line":1,"sku":"ACC-CABLE","needed":4,"available":3,"open":4,"reserved":0}]'::jsonb,
          'stock_short: a bundle short of a component (2 sets of 2 cables, 3 free)');
SELECT pg_temp.restore_cables('set', 4);
-- A cancelled set takes nothing: what is open is scaled from the units ordered less cancelled.
SELECT is(test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('set'), 'reason', 'One set is enough',
                                                               'lines', '[{"line":1,"qty":1}]'::jsonb)) ->> 'status',
          'applied', 'one of the two sets is cancelled');
SELECT is(pg_temp.reasons(test.id('set')), '{}'::text[], 'the set still open is reserved: not short');
SELECT pg_temp.release_cables('set', 2, 1);
SELECT is((SELECT evidence FROM orderly.orders_at_risk(now()) WHERE order_id = test.id('set') AND reason = 'stock_short'),
          '[{"line":1,"sku":"ACC-CABLE","needed":2,"available":1,"open":2,"reserved":0}]'::jsonb,
          'stock_short after a cancellation: the one set still open needs 2 cables (1 free)');
SELECT pg_temp.restore_cables('set', 2);
-- production_issue
SELECT test.call('production_issue', 'pat', jsonb_build_object('order', test.id('calm'), 'kind', 'material', 'note', 'resin late')) IS NOT NULL;
SELECT is(pg_temp.reasons(test.id('calm')), ARRAY['production_issue'], 'production_issue: an open issue');
SELECT is((SELECT (evidence -> 0) - 'issue' - 'opened_at' FROM orderly.orders_at_risk(now()) WHERE order_id = test.id('calm')),
          '{"kind":"material","note":"resin late"}'::jsonb, 'with the issue as evidence');
-- transport
INSERT INTO ids SELECT 'far', pg_temp.submitted('[{"sku":"ACC-CABLE","qty":1}]', current_date + 30);
INSERT INTO ids SELECT 'ship', (test.call('shipment_create', 'wes', jsonb_build_object('order', test.id('far'),
    'lines', '[{"line":1,"qty":1}]'::jsonb, 'carrier', 'dhl', 'tracking_no', 'RK1')) ->> 'id')::bigint;
UPDATE orderly.shipments SET tracking_code = 'exception', tracking_at = now() WHERE id = test.id('ship');
SELECT is(pg_temp.reasons(test.id('far')), ARRAY['transport'], 'transport: a carrier exception on an open shipment');
SELECT is((SELECT (evidence -> 0 ->> 'shipment')::bigint || ' ' || (evidence -> 0 ->> 'tracking_code') FROM orderly.orders_at_risk(now())
           WHERE order_id = test.id('far')), test.id('ship') || ' exception', 'with the shipment and its tracking as evidence');
UPDATE orderly.shipments SET tracking_code = 'in_transit', carrier_eta = now() + interval '40 days' WHERE id = test.id('ship');
SELECT is(pg_temp.reasons(test.id('far')), ARRAY['late_stage', 'transport'], 'and a carrier ETA after the requested date (late too)');
UPDATE orderly.shipments SET carrier_eta = now() + interval '2 days' WHERE id = test.id('ship');
SELECT is(pg_temp.reasons(test.id('far')), '{}'::text[], 'an ETA in time: no risk');
-- The clock is an argument: in time today, late if it is still waiting in eight days.
INSERT INTO ids SELECT 'soon', pg_temp.submitted('[{"sku":"ACC-CABLE","qty":1}]', current_date + 10);
SELECT is(pg_temp.reasons(test.id('soon')), '{}'::text[], 'wanted in 10 days, the stages ahead take 4: in time');
SELECT is(pg_temp.reasons(test.id('soon'), now() + interval '8 days'), ARRAY['late_stage'],
          'still waiting eight days on: late (the time already spent in a stage counts)');

-- The timer -----------------------------------------------------------------------------------------

SELECT test.snapshot(ARRAY['orderly.outbox']);
-- Another server's pass holds the lock (a second session, by dblink): this one does nothing.
CREATE TEMP TABLE lock_test (available boolean, rows bigint);
DO $$
BEGIN
    IF NOT test.other_session('risk_other') THEN
        INSERT INTO lock_test VALUES (false, NULL);
        RETURN;
    END IF;
    PERFORM * FROM dblink('risk_other', $q$ SELECT pg_advisory_lock(x'6f726465'::integer, x'64656c61'::integer) $q$) AS t(x text);
    INSERT INTO lock_test SELECT true, count(*) FROM api.run_delay_checks(now());
    PERFORM dblink_disconnect('risk_other');
END
$$;
SELECT CASE WHEN (SELECT available FROM lock_test)
            THEN is((SELECT rows FROM lock_test), 0::bigint, 'while another runner holds the lock, a run returns nothing')
            ELSE skip('dblink is not installed', 1) END;
SELECT is((SELECT count(*) FROM orderly.delay_warnings), 0::bigint, 'and raised nothing');
CREATE TEMP TABLE run1 AS SELECT r::jsonb AS r FROM api.run_delay_checks(now()) r;
SELECT is((SELECT array_agg((r ->> 'order')::bigint || ' ' || (r ->> 'reason') ORDER BY r ->> 'order') FROM run1 WHERE r ->> 'kind' = 'raised'),
          ARRAY[test.id('late') || ' late_stage', test.id('calm') || ' production_issue'],
          'run_delay_checks raises the two warnings due');
SELECT is((SELECT array_agg(x ORDER BY x) FROM run1, jsonb_array_elements_text(r -> 'recipients') x
           WHERE (r ->> 'order')::bigint = test.id('late')),
          ARRAY['customer_service', 'production_manager', 'rita'], 'its rows name the recipients (the stage owner of approved)');
SELECT is((SELECT count(*) FROM orderly.audit_log WHERE action = 'delay.warning' AND actor_kind = 'system' AND actor_user_id IS NULL),
          2::bigint, 'each warning is audited, by the system');
SELECT is((SELECT array_agg(k ORDER BY k) FROM orderly.notifications n, jsonb_object_keys(n.payload) k
           WHERE n.kind = 'delay.warning' AND n.recipient_role = 'customer_service' AND (n.payload ->> 'order')::bigint = test.id('calm')),
          ARRAY['at', 'customer', 'customer_name', 'description', 'evidence', 'order', 'reason', 'requested_date', 'status'],
          'delay.warning says what, why and since when');
SELECT is((SELECT count(*) FROM api.run_delay_checks(now())), 0::bigint, 'a second run raises nothing');
SELECT is((SELECT array_agg(x ORDER BY x) FROM (SELECT coalesce(recipient_role, orderly.username_of(recipient_user_id)) AS x
           FROM orderly.notifications WHERE kind = 'delay.warning' AND (payload ->> 'order')::bigint = test.id('calm')) y),
          ARRAY['customer_service', 'rita', 'warehouse'], 'to the creator, the role owning the stage and customer service');
SELECT is((SELECT array_agg(k ORDER BY k) FROM orderly.notifications n,
                  jsonb_object_keys(orderly.notification_doc(n) -> 'payload') k
           WHERE n.kind = 'order.delay' AND (n.payload ->> 'order')::bigint = test.id('calm')
             AND n.recipient_user_id = test.uid('buyer')),
          ARRAY['at', 'order', 'reason_text', 'requested_date'], 'the customer''s login is told, in customer keys only');
SELECT is((SELECT count(*) FROM orderly.outbox WHERE kind = 'order.delay'), 2::bigint, 'and an e-mail per warning is queued');
SELECT is((SELECT subject FROM orderly.outbox WHERE kind = 'order.delay' AND order_id = test.id('calm')),
          format('Order %s may be late', test.id('calm')), 'rendered from its template');
SELECT is((SELECT split_part(body, E'\n', 3) || ' ' || split_part(body, E'\n', 4) FROM orderly.outbox WHERE kind = 'order.delay' AND order_id = test.id('calm')),
          format('we are sorry: your order %s may arrive later than planned. Making your order is taking longer than planned.', test.id('calm')),
          'the e-mail reads right whether or not the order has a requested date');
UPDATE orderly.customers SET language = 'de' WHERE id = test.id('acme');
SELECT is(orderly.reason_text((SELECT r FROM orderly.risk_reasons r WHERE code = 'production_issue'), test.id('acme')),
          'Die Fertigung Ihrer Bestellung dauert länger als geplant.', 'a German customer is told why in German');
SAVEPOINT no_german_template;
DELETE FROM orderly.message_templates WHERE kind = 'order.delay' AND language = 'de';
SELECT is(orderly.reason_text((SELECT r FROM orderly.risk_reasons r WHERE code = 'production_issue'), test.id('acme'), 'order.delay'),
          'Making your order is taking longer than planned.', 'in an e-mail in English (no German template), the reason is English too');
ROLLBACK TO SAVEPOINT no_german_template;
UPDATE orderly.customers SET language = 'fr' WHERE id = test.id('acme');
SELECT is(orderly.reason_text((SELECT r FROM orderly.risk_reasons r WHERE code = 'production_issue'), test.id('acme')),
          'Making your order is taking longer than planned.', 'and in English where there is no text in its language');
UPDATE orderly.customers SET language = 'en' WHERE id = test.id('acme');
-- Resolved: cleared; back: raised again.
UPDATE orderly.production_issues SET resolved_at = now(), resolution = 'arrived' WHERE order_id = test.id('calm');
SELECT is((SELECT array_agg(r::jsonb ->> 'kind') FROM api.run_delay_checks(now()) r), ARRAY['cleared'], 'a reason gone clears its warning');
SELECT is((SELECT cleared_at FROM orderly.delay_warnings WHERE order_id = test.id('calm')), now(), 'cleared as of "now"');
SELECT test.call('production_issue', 'pat', jsonb_build_object('order', test.id('calm'), 'kind', 'equipment', 'note', 'press down')) IS NOT NULL;
SELECT is((SELECT array_agg(r::jsonb ->> 'kind') FROM api.run_delay_checks(now()) r), ARRAY['raised'], 'and a reason back is raised again');
SELECT is((SELECT count(*) FROM orderly.delay_warnings WHERE order_id = test.id('calm')), 2::bigint, 'two warnings, one cleared');
SELECT throws_ok(format($$ INSERT INTO orderly.delay_warnings (order_id, reason, evidence, raised_at) VALUES (%s, 'production_issue', '[]', now()) $$, test.id('calm')),
                 '23505', NULL, 'never two open warnings for one order and reason');

-- Commands
SELECT is(test.call('order_risk', 'cs', jsonb_build_object('id', test.id('calm'))) -> 'reasons' -> 0 ->> 'reason', 'production_issue',
          'ORDER RISK explains the reasons now');
SELECT ok(test.call('order_risk', 'cs', jsonb_build_object('id', test.id('calm'))) -> 'reasons' -> 0 ->> 'warned_since' IS NOT NULL,
          'and since when it was warned');
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(test.call('order_risk', 'cs', jsonb_build_object('id', test.id('calm')))) k),
          ARRAY['at_risk', 'expected_by', 'order', 'reasons', 'requested_date', 'status'], 'ORDER RISK''s document');
SELECT is(test.call('order_risk', 'cs', jsonb_build_object('id', test.id('soon'))) -> 'at_risk', 'false'::jsonb,
          'an order in time is not at risk');
SELECT ok((test.call('order_risk', 'cs', jsonb_build_object('id', test.id('soon'))) ->> 'expected_by')::timestamptz < (current_date + 10)::timestamptz,
          'and says when it is expected');
SELECT is((SELECT array_agg((r ->> 'order')::bigint) FROM jsonb_array_elements(test.rows('risk_list', 'cs', '{"limit":1}')) r),
          ARRAY[test.id('late')], 'RISK LIST pages by order');
SELECT is((SELECT array_agg((r ->> 'order')::bigint || ':' || (r ->> 'reasons'))
           FROM jsonb_array_elements(test.rows('risk_list', 'cs', jsonb_build_object('after', test.id('late')))) r),
          ARRAY[test.id('calm') || ':["production_issue"]'], 'after= gives the next page, with the reasons');
SELECT throws_ok($$ SELECT test.rows('risk_list', 'cs', '{"reason":"weather"}') $$, 'OL400', NULL, 'an unknown reason is refused');
SELECT is((SELECT array_agg((r ->> 'order')::bigint) FROM jsonb_array_elements(test.rows('risk_list', 'cs', '{"reason":"late_stage"}')) r),
          ARRAY[test.id('late')], 'RISK LIST reason= filters');
SELECT throws_ok(format($$ SELECT test.call('order_risk', 'buyer', '{"id":%s}') $$, test.id('calm')), 'OL403', NULL,
                 'a customer login may not read risks');
SELECT admin.create_user('carl', 'carl-secret-1', ARRAY['carrier']) IS NOT NULL;
SELECT throws_ok($$ SELECT test.rows('risk_list', 'carl', '{}') $$, 'OL403', NULL, 'nor a login without risk.read');

-- BI reads the view with its own login's rights.
SELECT set_config('risk.calm', test.id('calm')::text, true);
SET LOCAL ROLE orderly_bi;
CREATE TEMP TABLE bi_view AS
SELECT array_agg(reason ORDER BY reason) AS reasons FROM analytics.orders_at_risk
WHERE order_id = current_setting('risk.calm')::bigint;
RESET ROLE;
SELECT is((SELECT reasons FROM bi_view), ARRAY['production_issue'], 'a BI login reads analytics.orders_at_risk');

-- With three examples or more in the history, a stage is expected to take its median time.
INSERT INTO orderly.order_status_history (order_id, customer_id, to_status, changed_at)
SELECT test.id('calm'), test.id('acme'), v.s, now() - interval '20 days' + v.d
FROM (VALUES ('ready', interval '0'), ('pending_approval', interval '6 hours'), ('ready', interval '1 day'),
             ('pending_approval', interval '30 hours'), ('ready', interval '2 days'), ('pending_approval', interval '54 hours')) AS v (s, d);
SELECT is(orderly.stage_durations_doc(now()) -> 'ready', '{"expected":"06:00:00","source":"history"}'::jsonb,
          'a stage with enough history takes its median');
SELECT is((SELECT x ->> 'source' FROM orderly.orders_at_risk(now() + interval '8 days') r, jsonb_array_elements(r.evidence -> 'remaining') x
           WHERE r.order_id = test.id('soon') AND x ->> 'stage' = 'ready'), 'history', 'and the evidence says where it came from');

-- The outbox -------------------------------------------------------------------------------------------

SELECT is(orderly.render_template('Dear {{customer}}, order {{order}}{{missing}}.', '{"customer":"{{order}} Ltd","order":7}'),
          'Dear {{order}} Ltd, order 7.', 'templates: placeholders replaced once, a value''s braces left alone, a missing one empty');
UPDATE orderly.customers SET email = 'odd<x>@acme.example' WHERE id = test.id('acme');
SELECT is(orderly.queue_customer_email('order.delay', (SELECT o FROM orderly.orders o WHERE id = test.id('far')), '{}', 'test:odd'), NULL,
          'an address SMTP cannot carry is not queued');
SELECT is((SELECT action FROM orderly.audit_log ORDER BY id DESC LIMIT 1), 'outbox.skipped', 'and the skip is audited');
UPDATE orderly.customers SET email = 'acme@example.com' WHERE id = test.id('acme');

SELECT is((SELECT count(*) FROM orderly.outbox WHERE kind = 'order.status' AND order_id = test.id('far') AND subject LIKE '%Partially shipped%'
                                                      OR kind = 'order.status' AND order_id = test.id('far') AND subject LIKE '%Shipped%'),
          1::bigint, 'a milestone (shipped) is e-mailed once');
UPDATE orderly.customers SET language = 'de' WHERE id = test.id('acme');
SELECT isnt(orderly.queue_customer_email('order.delay', (SELECT o FROM orderly.orders o WHERE id = test.id('far')), '{"reason":"x"}', 'test:de'),
            NULL, 'a notice is queued');
SELECT is((SELECT subject FROM orderly.outbox WHERE dedupe_key = 'test:de'), format('Bestellung %s verzögert sich möglicherweise', test.id('far')),
          'in the customer''s language');
SELECT is(orderly.queue_customer_email('order.delay', (SELECT o FROM orderly.orders o WHERE id = test.id('far')), '{}', 'test:de'), NULL,
          'the same fact twice is queued once');
-- Admins set the wording of other languages (a French label, a French reason), not English's.
SELECT admin.set_customer_wording('status.shipped', 'FR', ' Expédiée ');
SELECT admin.set_risk_reason_text('transport', 'fr', 'La livraison de votre commande est retardée.');
SELECT is((SELECT string_agg(key || '/' || language || '=' || text, ' ') FROM admin.customer_wording WHERE language = 'fr')
          || ' ' || (SELECT customer_text FROM admin.risk_reason_texts WHERE reason = 'transport' AND language = 'fr'),
          'status.shipped/fr=Expédiée La livraison de votre commande est retardée.', 'admin.set_customer_wording and admin.set_risk_reason_text');
SELECT throws_ok($$ SELECT admin.set_customer_wording('status.teleported', 'fr', 'x') $$, 'OL400',
                 'key must be tracking_link, cancellation_fee or status.<status>, like status.shipped', 'an unknown key is refused');
SELECT throws_ok($$ SELECT admin.set_customer_wording('tracking_link', 'en', 'Follow:') $$, 'OL409', NULL, 'English is built in');
SELECT throws_ok($$ SELECT admin.set_risk_reason_text('weather', 'fr', 'x') $$, 'OL400', NULL, 'an unknown reason is refused');
SELECT admin.set_customer_wording('status.shipped', 'fr', NULL);
SELECT is((SELECT count(*) FROM admin.customer_wording WHERE language = 'fr'), 0::bigint, 'NULL removes a row (English then)');
SELECT is((SELECT count(*) FROM orderly.audit_log WHERE action IN ('customer_wording.set', 'risk_reason_text.set')), 3::bigint, 'each change audited');

-- A milestone e-mail in German says the status in German (orderly.customer_wording, V038).
UPDATE orderly.skus SET stock_on_hand = stock_on_hand + 10 WHERE code = 'ACC-CABLE';
INSERT INTO ids SELECT 'de1', pg_temp.submitted('[{"sku":"ACC-CABLE","qty":1}]', NULL);
SELECT is((SELECT subject || ' | ' || split_part(body, E'\n', 3) FROM orderly.outbox WHERE order_id = test.id('de1') AND kind = 'order.status'
           ORDER BY id LIMIT 1) ~ ('^Bestellung ' || test.id('de1') || ': Bestätigt \| Ihre Bestellung ' || test.id('de1') || ' hat den Status: Bestätigt \('),
          true, 'a German milestone e-mail says the status in German');
UPDATE orderly.outbox SET next_attempt_at = now() - interval '1 minute';
SELECT is((SELECT count(*) FROM api.outbox_claim('a', now(), interval '5 minutes', 100))
          + (SELECT count(*) FROM api.outbox_claim('b', now(), interval '5 minutes', 100)),
          (SELECT count(*) FROM orderly.outbox), 'two claims share the rows, none twice');
SELECT is((SELECT count(*) FROM api.outbox_claim('b', now() + interval '6 minutes', interval '5 minutes', 100)),
          (SELECT count(*) FROM orderly.outbox), 'an expired claim may be claimed again');
SELECT is((api.outbox_result((SELECT min(id) FROM orderly.outbox), 'a', now(), NULL, 3, interval '1 minute')::jsonb ->> 'state'),
          'not_claimed', 'only the claim''s holder records the outcome');
SELECT is((SELECT string_agg(api.outbox_result(id, 'b', now(), 'relay down', 5, interval '1 minute')::jsonb ->> 'state', ',')
           FROM (SELECT id FROM orderly.outbox ORDER BY id LIMIT 1) x), 'pending', 'a failure is retried later');

SELECT throws_ok($$ SELECT admin.set_message_template('order.shiped', 'en', 'Shipped', 'x') $$, 'OL400',
                 'no e-mail is sent for "order.shiped"; templates are for: order.cancelled, order.delay, order.status',
                 'a template for a kind that is never e-mailed (a typo) is refused');
SELECT lives_ok($$ SELECT admin.set_message_template('order.delay', 'fr', 'Commande {{order}} en retard', 'x') $$,
                'a new language for a kind that is e-mailed is fine');
SELECT throws_like($$ SELECT admin.set_message_template('order.status', 'fr', 'Commande {{Order}}', 'Statut : {{status_lable}}') $$,
                   'unknown placeholder(s) {{%status_lable%}} for order.status; a order.status template may use: {{order}}, {{customer}}, {{status}}, {{status_label}}, {{at}}, {{tracking}}',
                   'a misspelt placeholder (sent as nothing) is refused, naming the ones there are');
SELECT throws_ok($$ SELECT admin.set_message_template('order.status', 'french', 'Commande', 'x') $$, 'OL400',
                 'language must be a two-letter ISO 639-1 code (en, de, fr, …)', 'a language is two letters, in the function''s words');
SELECT is((SELECT placeholders FROM admin.message_templates WHERE kind = 'order.delay' AND language = 'en'),
          ARRAY['order', 'customer', 'reason', 'requested_date'], 'admin.message_templates shows each template with its placeholders');
SELECT ok(admin.remove_message_template('order.delay', 'FR'), 'admin.remove_message_template removes a language');
SELECT throws_ok($$ SELECT admin.remove_message_template('order.delay', 'en') $$, 'OL409', NULL, 'but not English, the fallback');
SELECT * FROM finish();
ROLLBACK;
