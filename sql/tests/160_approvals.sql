-- Approvals (issue #5): rules and limits as data, routing at submission (boundaries, types,
-- priority), chain order, limits per role and type, segregation of duties, rejection (stock,
-- coupon, reason) and resubmission rounds, reminders and escalation driven by "now",
-- delegation windows, who is notified, permissions, APPROVAL SHOW/QUEUE and the BI views.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(185);

DO $$
BEGIN
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('sam', 'sam-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('sue', 'sue-secret-1', ARRAY['sales_supervisor']);
    PERFORM admin.create_user('sid', 'sid-secret-1', ARRAY['sales_supervisor']);
    PERFORM admin.create_user('mona', 'mona-secret-1', ARRAY['sales_manager']);
    PERFORM admin.create_user('max', 'max-secret-1', ARRAY['sales_manager']);
    PERFORM admin.create_user('duo', 'duo-secret-1', ARRAY['sales_manager', 'finance_manager']);
    PERFORM admin.create_user('fay', 'fay-secret-1', ARRAY['finance_manager']);
    PERFORM admin.create_user('fred', 'fred-secret-1', ARRAY['finance_manager']);
    PERFORM admin.create_user('pete', 'pete-secret-1', ARRAY['production_manager']);
    PERFORM admin.create_user('gina', 'gina-secret-1', ARRAY['general_manager']);
    PERFORM admin.create_user('wally', 'wally-secret-1', ARRAY['warehouse']);
END
$$;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);

-- Services priced 1000.00 (K) and 0.01 (C), untaxed (no tax rate): totals are exact. A stocked
-- phone for the stock release.
INSERT INTO orderly.products (code, name, kind, base_price) VALUES
    ('K', 'Thousand', 'service', 1000), ('C', 'Cent', 'service', 0.01), ('PHN', 'Phone', 'goods', 100);
INSERT INTO orderly.skus (product_id, code, stock_on_hand) SELECT id, 'PHN-STD', 10 FROM orderly.products WHERE code = 'PHN';
INSERT INTO orderly.coupons (code, max_uses) VALUES ('SAVE', 5);

INSERT INTO ids SELECT 'acme', (test.call('customer_create', 'rita', '{"name":"Acme","email":"acme@example.com","phone":"+4930100100"}') ->> 'id')::bigint;
SELECT test.call('address_add', 'rita', jsonb_build_object('customer', test.id('acme'), 'recipient', 'Dock', 'phone', '+4930100101',
                    'line1', 'Kai 1', 'city', 'Hamburg', 'region', 'HH', 'postal_code', '20095', 'country', 'DE'));

-- Submits an order of `k` thousands and `c` cents of the given type, created by `who`.
CREATE FUNCTION pg_temp.submit(label text, who text, type text, k integer, c integer DEFAULT 0) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_lines jsonb := '[]';
    v_id    bigint;
BEGIN
    IF k > 0 THEN v_lines := v_lines || jsonb_build_array(jsonb_build_object('product', 'K', 'qty', k)); END IF;
    IF c > 0 THEN v_lines := v_lines || jsonb_build_array(jsonb_build_object('product', 'C', 'qty', c)); END IF;
    v_id := (test.call('order_create', who, jsonb_build_object('customer', test.id('acme'), 'type', type,
                                                                  'lines', v_lines, 'submit', true)) ->> 'id')::bigint;
    INSERT INTO ids VALUES (label, v_id);
    RETURN v_id;
END
$$;
CREATE FUNCTION pg_temp.status(label text) RETURNS text LANGUAGE sql AS $$
    SELECT status FROM orderly.orders WHERE id = test.id(label)
$$;
CREATE FUNCTION pg_temp.rule(label text) RETURNS text LANGUAGE sql AS $$
    SELECT r.name FROM orderly.order_approvals a JOIN orderly.approval_rules r ON r.id = a.rule_id
    WHERE a.order_id = test.id(label) ORDER BY a.round DESC LIMIT 1
$$;
-- Who got a notification of this kind about this order (and step), by username.
CREATE FUNCTION pg_temp.told(kind text, label text, step integer DEFAULT NULL) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(u.username ORDER BY u.username), '{}')
    FROM orderly.notifications n JOIN orderly.users u ON u.id = n.recipient_user_id
    WHERE n.kind = $1 AND (n.payload ->> 'order')::bigint = test.id($2)
      AND ($3 IS NULL OR (n.payload ->> 'step')::integer = $3)
$$;
CREATE FUNCTION pg_temp.queue(who text) RETURNS bigint[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg((r::jsonb ->> 'order')::bigint ORDER BY o), '{}')
    FROM api.approval_queue(test.uid(who), '{}') WITH ORDINALITY AS t(r, o)
$$;
CREATE FUNCTION pg_temp.soon() RETURNS text LANGUAGE sql AS $$ SELECT orderly.json_time(now() + interval '30 days') $$;
CREATE FUNCTION pg_temp.reminders(at timestamptz) RETURNS jsonb LANGUAGE sql AS $$
    SELECT coalesce(jsonb_agg(r::jsonb), '[]') FROM api.run_approval_reminders(at) r
$$;

-- Structure, permissions, admin functions ------------------------------------------------------------

SELECT has_table('orderly', 'order_approvals', 'order_approvals exists');
SELECT col_is_pk('orderly', 'approval_limits', ARRAY['role', 'order_type'], 'one limit per role and order type');
SELECT set_eq($$SELECT role FROM admin.role_permissions WHERE permission = 'order.approve'$$,
              ARRAY['sales_supervisor', 'sales_manager', 'finance_manager', 'production_manager', 'general_manager'],
              'the approving roles hold order.approve');
SELECT set_eq($$SELECT from_status || '→' || to_status || ':' || coalesce(permission, '-') FROM orderly.order_status_transitions
               WHERE from_status IN ('draft', 'submitted', 'pending_approval', 'rejected')
                 AND to_status <> 'cancelled'  -- 198_cancellation.sql$$,
              ARRAY['draft→submitted:order.submit', 'submitted→pending_approval:-', 'submitted→approved:-',
                    'pending_approval→approved:order.approve', 'pending_approval→rejected:order.approve',
                    'rejected→submitted:order.submit'], 'the approval transitions');

SELECT ok((SELECT sum(added) FROM admin.load_demo_approvals()) > 0, 'the demo approvals load');
SELECT is((SELECT sum(added)::integer FROM admin.load_demo_approvals()), 0, 'and loading them again adds nothing');
SELECT is((SELECT chain FROM admin.approval_rules WHERE name = 'Large orders'),
          'sales_manager → finance_manager → production_manager', 'the large-order chain, in order');
SELECT is((SELECT max_total FROM admin.approval_limits WHERE role = 'sales_supervisor' AND order_type = 'standard'), 10000.00,
          'a supervisor approves standard orders up to 10 000');
SELECT is((SELECT count(*)::integer FROM admin.approval_limits WHERE role = 'general_manager' AND unlimited), 3,
          'the general manager approves every type without limit');
SELECT admin.create_user('sleepy', 'sleepy-secret-1', ARRAY['sales_supervisor']);
SELECT admin.lock_user('sleepy');
SELECT is((SELECT users FROM admin.approval_limits WHERE role = 'sales_supervisor' AND order_type = 'standard'),
          (SELECT count(*) FROM orderly.user_roles ur JOIN orderly.roles r ON r.id = ur.role_id WHERE r.name = 'sales_supervisor') - 1,
          'admin.approval_limits counts the holders of the role who may approve: not a locked one');
SELECT is((SELECT max_reminders FROM admin.approval_settings), 2, 'two reminders before escalation by default');

SELECT throws_ok($$ SELECT admin.create_approval_rule('Odd', ARRAY['weird'], NULL, NULL, 1) $$, 'OL400', NULL, 'an unknown order type is refused');
SELECT throws_ok($$ SELECT admin.create_approval_rule('Odd', ARRAY['standard'], 10, 5, 1) $$, 'OL400', 'min_total must not be above max_total',
                 'min above max is refused');
SELECT throws_ok($$ SELECT admin.create_approval_rule('Large orders', ARRAY['standard'], NULL, NULL, 1) $$, 'OL409', NULL, 'rule names are unique');
SELECT throws_ok($$ SELECT admin.create_approval_rule('large ORDERS', ARRAY['standard'], NULL, NULL, 1) $$, 'OL409',
                 'approval rule "large ORDERS" exists already as "Large orders"', 'in any case');
SELECT throws_ok($$ SELECT admin.create_approval_rule('Odd', ARRAY['standard'], NULL, NULL, NULL) $$, 'OL400',
                 'priority must be a number (0 when left out)', 'a NULL priority is refused, as by change_approval_rule');
SELECT throws_ok($$ SELECT admin.add_approval_step('Nope', 1, 'sales_manager', '1 day') $$, 'OL404', NULL, 'an unknown rule');
SELECT throws_ok($$ SELECT admin.create_approval_rule(E'Large \u202Esredro', ARRAY['standard'], NULL, NULL, 1) $$, 'OL400', NULL,
                 'a rule name with a direction override is refused');
SELECT throws_ok($$ SELECT admin.change_approval_rule('Large orders', ARRAY['standard'], NULL, NULL, NULL) $$, 'OL400', NULL,
                 'change_approval_rule: a NULL priority is refused, not taken for 0');
SELECT throws_ok($$ SELECT admin.revoke_permission('sales_manager', 'order.approve') $$, 'OL409',
                 'role "sales_manager" decides approval steps or has approval limits: change those steps and limits first',
                 'order.approve is not taken from a role that decides steps (orders would wait for nobody)');
SELECT throws_ok($$ SELECT admin.add_approval_step('Large orders', 4, 'boss', '1 day') $$, 'OL404', 'unknown role "boss"', 'an unknown role');
SELECT throws_ok($$ SELECT admin.add_approval_step('Large orders', 7, 'general_manager', '1 day') $$, 'OL400', NULL, 'steps have no gaps');
SELECT throws_ok($$ SELECT admin.add_approval_step('Large orders', 4, 'warehouse', '1 day') $$, 'OL409', NULL,
                 'a role without order.approve cannot be a step');
SELECT throws_ok($$ SELECT admin.add_approval_step('Large orders', 4, 'general_manager', '0 seconds') $$, 'OL400', NULL, 'due_after must be positive');
SELECT throws_ok($$ SELECT admin.set_approval_limit('boss', 'standard', 5) $$, 'OL404', NULL, 'a limit for an unknown role');
SELECT throws_ok($$ SELECT admin.set_approval_limit('sales_manager', 'huge', 5) $$, 'OL400', NULL, 'a limit for an unknown type');
SELECT throws_ok($$ SELECT admin.set_approval_limit('sales_manager', 'standard', -1) $$, 'OL400', NULL, 'a negative limit');
SELECT lives_ok($$ SELECT admin.create_approval_rule('Probe', ARRAY['Custom', 'custom'], 1, 2, -5) $$, 'a valid rule');
SELECT is((SELECT order_types FROM orderly.approval_rules WHERE name = 'Probe'), ARRAY['custom'], 'order types are normalised');
SELECT ok(EXISTS (SELECT 1 FROM orderly.audit_log WHERE action = 'approval_rule.create' AND after ->> 'name' = 'Probe'
                  AND actor_kind = 'admin_sql' AND actor_user_id IS NULL AND actor_db_role = session_user),
          'creating a rule is audited, as an admin''s in SQL (the database login)');
SELECT throws_ok($$ SELECT admin.remove_approval_step('Large orders', 1) $$, 'OL409', NULL, 'only the last step can be removed');

-- Routing: boundaries, types, priority ------------------------------------------------------------

SELECT pg_temp.submit('s10000', 'rita', 'standard', 10);
SELECT pg_temp.submit('s10000.01', 'rita', 'standard', 10, 1);
SELECT pg_temp.submit('s50000', 'rita', 'standard', 50);
SELECT pg_temp.submit('s50000.01', 'rita', 'standard', 50, 1);
SELECT pg_temp.submit('c100', 'rita', 'custom', 0, 100);
SELECT pg_temp.submit('t100', 'rita', 'strategic', 0, 100);
SELECT pg_temp.submit('t60000', 'rita', 'strategic', 60);

SELECT is((SELECT total FROM orderly.orders WHERE id = test.id('s10000.01')), 10000.01, 'totals are exact');
SELECT is(pg_temp.status('s10000'), 'pending_approval', 'a matching rule: pending approval');
SELECT is(pg_temp.rule('s10000'), 'Standard orders up to 10 000', '10 000.00: max_total is inclusive');
SELECT is(pg_temp.rule('s10000.01'), 'Standard orders 10 000 to 50 000', '10 000.01: the next band');
SELECT is(pg_temp.rule('s50000'), 'Standard orders 10 000 to 50 000', '50 000.00: still the middle band');
SELECT is(pg_temp.rule('s50000.01'), 'Large orders', 'above 50 000: the large-order chain');
SELECT is(pg_temp.rule('c100'), 'Custom orders up to 50 000', 'a custom order: by type');
SELECT is(pg_temp.rule('t100'), 'Strategic orders', 'a strategic order: the general manager');
SELECT is(pg_temp.rule('t60000'), 'Strategic orders above 50 000', 'a strategic order above 50 000: the higher priority wins');
SELECT is((SELECT array_agg(role || ':' || status ORDER BY step_no) FROM orderly.order_approvals WHERE order_id = test.id('s50000.01')),
          ARRAY['sales_manager:pending', 'finance_manager:waiting', 'production_manager:waiting'],
          'one step per rule step: the first pending, the others waiting');
SELECT ok((SELECT due_at = now() + interval '1 day' AND steps = 3 AND round = 1 FROM orderly.order_approvals
           WHERE order_id = test.id('s50000.01') AND step_no = 1), 'step 1 is due after its interval');
SELECT is((SELECT array_agg(coalesce(from_status, '-') || '→' || to_status ORDER BY id) FROM orderly.order_status_history
           WHERE order_id = test.id('s10000')),
          ARRAY['-→draft', 'draft→submitted', 'submitted→pending_approval'], 'the history shows the routing');

SELECT admin.set_approval_rule_active('Custom orders up to 50 000', false);
SELECT pg_temp.submit('c200', 'rita', 'custom', 0, 200);
SELECT admin.set_approval_rule_active('Custom orders up to 50 000', true);
-- Approved, and moved on at once by orderly.advance: services only, nothing to make or wait for.
SELECT is(pg_temp.status('c200'), 'ready', 'no active rule: approved at once (and ready: nothing to make or pay first)');
SELECT is((SELECT reason FROM orderly.order_status_history WHERE order_id = test.id('c200') AND to_status = 'approved'),
          'no approval rule applies', 'and the history says why');
SELECT is((SELECT array_agg(recipient_role ORDER BY recipient_role) FROM orderly.notifications
           WHERE kind = 'order.approved' AND (payload ->> 'order')::bigint = test.id('c200')),
          ARRAY['finance_manager', 'production_manager'], 'finance (and production, for custom) hear of it');

-- Who is told --------------------------------------------------------------------------------------

SELECT is(pg_temp.told('approval.requested', 's10000'), ARRAY['sid', 'sue'], 'a supervisor step: both supervisors are told');
SELECT is(pg_temp.told('approval.requested', 's50000.01', 1), ARRAY['duo', 'max', 'mona'], 'a sales manager step: the sales managers');
SELECT is(pg_temp.told('approval.requested', 't100'), ARRAY['gina'], 'a strategic order: the general manager');
SELECT is((SELECT payload FROM orderly.notifications WHERE kind = 'approval.requested' AND recipient_user_id = test.uid('sue')
           AND (payload ->> 'order')::bigint = test.id('s10000')),
          jsonb_build_object('order', test.id('s10000'), 'customer', 'Acme', 'total', 10000.00, 'currency', 'EUR',
                             'type', 'standard', 'step', 1, 'of', 1, 'role', 'sales_supervisor',
                             'due_at', orderly.json_time(now() + interval '1 day')),
          'the approval.requested payload');

SELECT pg_temp.submit('m20000', 'mona', 'standard', 20);
SELECT is(pg_temp.told('approval.requested', 'm20000'), ARRAY['duo', 'max'], 'the creator is not told to approve their own order');

-- Over the limit or without one: routed, noted, nobody told.
SELECT admin.remove_approval_limit('sales_supervisor', 'standard');
SELECT pg_temp.submit('nolimit', 'rita', 'standard', 1);
SELECT is(pg_temp.status('nolimit'), 'pending_approval', 'no role may approve it: still routed');
SELECT matches((SELECT note FROM orderly.order_approvals WHERE order_id = test.id('nolimit')),
               '^no approval limit of role sales_supervisor', 'and the step says why it will stick');
SELECT is(pg_temp.told('approval.requested', 'nolimit'), '{}'::text[], 'nobody is told');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s}') $$, test.id('nolimit')),
                 'OL403', 'role sales_supervisor may not approve standard orders', 'no limit row: cannot approve');
SELECT admin.set_approval_limit('sales_supervisor', 'standard', 5000);
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s}') $$, test.id('s10000')),
                 'OL403', format('order %s total 10000.00 EUR is above the sales_supervisor limit of 5000.00 EUR for standard orders', test.id('s10000')),
                 'over the limit: refused');
SELECT ok(NOT (test.id('s10000') = ANY (pg_temp.queue('sue'))), 'and not in the queue');
SELECT admin.set_approval_limit('sales_supervisor', 'standard', 10000);
SELECT ok(test.id('s10000') = ANY (pg_temp.queue('sue')), 'within the limit again: in the queue');
SELECT is(pg_temp.queue('sue'), ARRAY[test.id('s10000'), test.id('nolimit')], 'the supervisor''s queue, oldest first');
SELECT is(pg_temp.queue('max'), ARRAY[test.id('s10000.01'), test.id('s50000'), test.id('s50000.01'), test.id('c100'),
                                      test.id('t60000'), test.id('m20000')],
          'a sales manager''s queue: their steps, their own orders left out');
SELECT is(pg_temp.queue('mona'), ARRAY[test.id('s10000.01'), test.id('s50000'), test.id('s50000.01'), test.id('c100'),
                                       test.id('t60000')], 'mona does not see the order she created');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s}') $$, test.id('s10000.01')),
                 'OL403', format('step 1 of order %s needs role sales_manager (or a delegation of it)', test.id('s10000.01')),
                 'a supervisor cannot approve a sales manager step');

-- Permissions ------------------------------------------------------------------------------------

SELECT throws_ok($$ SELECT test.call('approval_queue', 'wally', '{}') $$, 'OL403', 'permission denied: order.approve', 'the warehouse has no queue');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'wally', '{"id":%s}') $$, test.id('s10000')),
                 'OL403', 'permission denied: order.approve', 'the warehouse cannot approve');
SELECT throws_ok(format($$ SELECT test.call('order_reject', 'rita', '{"id":%s,"reason":"no"}') $$, test.id('s10000')),
                 'OL403', 'permission denied: order.approve', 'a sales rep cannot reject');
SELECT throws_ok($$ SELECT test.call('delegate', 'wally', jsonb_build_object('to', 'sue', 'until', pg_temp.soon())) $$, 'OL403', NULL, 'the warehouse cannot delegate');
SELECT is(test.call('approval_show', 'wally', jsonb_build_object('order', test.id('s10000'))) ->> 'status', 'pending_approval',
          'but may read the chain (order.read_all)');
SELECT throws_ok(format($$ SELECT test.call('approval_show', 'sam', '{"order":%s}') $$, test.id('s10000')),
                 'OL404', NULL, 'another sales rep''s order is not found');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s,"note":"x"}') $$, test.id('s10000')),
                 'OL400', NULL, 'unknown arguments are refused');

-- The three-manager chain ------------------------------------------------------------------------

SELECT throws_ok(format($$ SELECT test.call('order_approve', 'fred', '{"id":%s}') $$, test.id('s50000.01')),
                 'OL403', NULL, 'finance cannot go before the sales manager: chain order');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'duo', '{"id":%s,"step":2}') $$, test.id('s50000.01')),
                 'OL409', NULL, 'step= must be the current step');
SELECT is(test.call('order_approve', 'duo', jsonb_build_object('id', test.id('s50000.01'), 'comment', 'fine by sales'))
          -> 'rounds' -> 0 -> 'steps' -> 0 ->> 'decided_by', 'duo', 'the sales manager approves step 1; the reply is the chain');
SELECT is((SELECT array_agg(status ORDER BY step_no) FROM orderly.order_approvals WHERE order_id = test.id('s50000.01')),
          ARRAY['approved', 'pending', 'waiting'], 'step 2 is pending now');
SELECT is(pg_temp.told('approval.requested', 's50000.01', 2), ARRAY['fay', 'fred'],
          'finance is told when (and only when) it is their turn; duo, who approved step 1, is not');
SELECT is(pg_temp.told('approval.requested', 's50000.01', 3), '{}'::text[], 'production is not told yet');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'duo', '{"id":%s}') $$, test.id('s50000.01')),
                 'OL403', format('you already approved step 1 of order %s: another user must decide step 2', test.id('s50000.01')),
                 'one user never approves two steps of one order');
SELECT ok(test.replays('order_approve', 'fay', jsonb_build_object('id', test.id('s50000.01'), 'idempotency_key', 'fay-s2')),
          'finance approves step 2; her retry with the same idempotency key gets the same reply and decides nothing again');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'fred', '{"id":%s}') $$, test.id('s50000.01')),
                 'OL409', format('step 2 of order %s was already decided by fay (approved)', test.id('s50000.01')),
                 'the other finance manager, too late: a conflict, not a second decision');
SELECT is((SELECT count(*)::integer FROM orderly.order_approvals WHERE order_id = test.id('s50000.01') AND step_no = 2 AND decided_by IS NOT NULL), 1,
          'one decision stored');
SELECT is(pg_temp.told('approval.requested', 's50000.01', 3), ARRAY['pete'], 'production is told now');
SELECT is(pg_temp.status('s50000.01'), 'pending_approval', 'still pending until the last step');
SELECT is(test.call('order_approve', 'pete', jsonb_build_object('id', test.id('s50000.01'))) ->> 'status', 'ready',
          'the last step approves the order (and orderly.advance releases it: ready)');
SELECT is(pg_temp.told('approval.approved', 's50000.01'), ARRAY['rita'], 'the creator hears the outcome');
SELECT is((SELECT array_agg(recipient_role) FROM orderly.notifications WHERE kind = 'order.approved'
           AND (payload ->> 'order')::bigint = test.id('s50000.01')), ARRAY['finance_manager'],
          'finance is told for payment (production only for custom orders)');
SELECT is((SELECT array_agg(s ->> 'decided_by' ORDER BY (s ->> 'step')::int)
           FROM jsonb_array_elements(test.call('approval_show', 'rita', jsonb_build_object('order', test.id('s50000.01'))) -> 'rounds' -> 0 -> 'steps') s),
          ARRAY['duo', 'fay', 'pete'], 'APPROVAL SHOW: who decided each step');
SELECT is((test.call('approval_show', 'rita', jsonb_build_object('order', test.id('s50000.01'))) -> 'rounds' -> 0 -> 'steps' -> 0 ->> 'comment'),
          'fine by sales', 'with the comment');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'gina', '{"id":%s}') $$, test.id('s50000.01')),
                 'OL409', NULL, 'an approved order has nothing left to decide');
SELECT is((SELECT count(*)::integer FROM orderly.audit_log WHERE action = 'approval.approve' AND entity_id = test.id('s50000.01')::text), 3,
          'every decision is audited');

SELECT throws_ok(format($$ SELECT test.call('order_approve', 'mona', '{"id":%s}') $$, test.id('m20000')),
                 'OL403', format('you created order %s: another user must approve it', test.id('m20000')), 'the creator never approves');

SELECT lives_ok(format($$ SELECT test.call('order_approve', 'mona', '{"id":%s}') $$, test.id('c100')), 'custom: sales first');
SELECT lives_ok(format($$ SELECT test.call('order_approve', 'pete', '{"id":%s}') $$, test.id('c100')), 'then production');
SELECT is((SELECT array_agg(recipient_role ORDER BY recipient_role) FROM orderly.notifications WHERE kind = 'order.approved'
           AND (payload ->> 'order')::bigint = test.id('c100')), ARRAY['finance_manager', 'production_manager'],
          'an approved custom order goes to finance and production');

-- Rejection and resubmission ---------------------------------------------------------------------

INSERT INTO ids SELECT 'phones', (test.call('order_create', 'rita', jsonb_build_object('customer', test.id('acme'), 'coupon', 'SAVE',
    'lines', '[{"product":"PHN","qty":4}]'::jsonb, 'submit', true)) ->> 'id')::bigint;
SELECT is((SELECT stock_reserved FROM orderly.skus WHERE code = 'PHN-STD'), 4, 'submission reserved the phones');
SELECT is((SELECT used_count FROM orderly.coupons WHERE code = 'SAVE'), 1, 'and used the coupon');
SELECT is((SELECT array_agg(actor_user_id) FROM orderly.audit_log WHERE action = 'coupon.redeem'
           AND (after ->> 'order_id')::bigint = test.id('phones')), ARRAY[test.uid('rita')], 'its audit row names the submitter');
SELECT is((SELECT array_agg(DISTINCT a.actor_user_id) FROM orderly.audit_log a
           JOIN orderly.notifications n ON a.entity = 'notification' AND a.entity_id = n.id::text
           WHERE n.kind = 'approval.requested' AND (n.payload ->> 'order')::bigint = test.id('phones')),
          ARRAY[test.uid('rita')], 'the deciders'' notices are audited under the submitter');
SELECT throws_ok(format($$ SELECT test.call('order_reject', 'sue', '{"id":%s}') $$, test.id('phones')),
                 'OL400', 'reason is required', 'a rejection needs a reason');
SELECT throws_ok(format($$ SELECT test.call('order_reject', 'sue', '{"id":%s,"reason":"  "}') $$, test.id('phones')),
                 'OL400', 'reason is required', 'a blank reason is no reason');
SELECT is(test.call('order_reject', 'sue', jsonb_build_object('id', test.id('phones'), 'reason', 'four is too many')) ->> 'status',
          'rejected', 'rejected');
SELECT is((SELECT stock_reserved FROM orderly.skus WHERE code = 'PHN-STD'), 0, 'the stock is released');
SELECT is((SELECT used_count FROM orderly.coupons WHERE code = 'SAVE'), 0, 'and the coupon');
SELECT is((SELECT array_agg(actor_user_id) FROM orderly.audit_log WHERE action = 'coupon.release'
           AND (after ->> 'order_id')::bigint = test.id('phones')), ARRAY[test.uid('sue')], 'its audit row names who rejected');
SELECT is((SELECT array_agg(a.actor_user_id) FROM orderly.audit_log a
           JOIN orderly.notifications n ON a.entity = 'notification' AND a.entity_id = n.id::text
           WHERE n.kind = 'approval.rejected' AND (n.payload ->> 'order')::bigint = test.id('phones')),
          ARRAY[test.uid('sue')], 'the creator''s notice is audited under who rejected');
SELECT is((SELECT payload ->> 'reason' FROM orderly.notifications WHERE kind = 'approval.rejected' AND recipient_user_id = test.uid('rita')
           AND (payload ->> 'order')::bigint = test.id('phones')), 'four is too many', 'the creator is told why');
SELECT is((SELECT reason FROM orderly.order_status_history WHERE order_id = test.id('phones') AND to_status = 'rejected'),
          'four is too many', 'the reason is in the history');
SELECT lives_ok(format($$ SELECT test.call('order_line_set', 'rita', '{"order":%s,"line":1,"qty":2}') $$, test.id('phones')),
                'the creator changes the lines of the rejected order');
SELECT is(test.call('order_submit', 'rita', jsonb_build_object('id', test.id('phones'))) ->> 'status', 'pending_approval',
          'and submits it again');
SELECT is((SELECT array_agg(round || ':' || status ORDER BY round, step_no) FROM orderly.order_approvals WHERE order_id = test.id('phones')),
          ARRAY['1:rejected', '2:pending'], 'a new round; the first is kept');
SELECT is((SELECT array_agg(r ->> 'status' ORDER BY (r ->> 'round')::int)
           FROM jsonb_array_elements(test.call('approval_show', 'rita', jsonb_build_object('order', test.id('phones'))) -> 'rounds') r),
          ARRAY['rejected', 'pending'], 'APPROVAL SHOW lists both rounds');
SELECT is((SELECT stock_reserved FROM orderly.skus WHERE code = 'PHN-STD'), 2, 'the resubmission reserves again');
SELECT ok((SELECT 'rejected→submitted' = ANY (array_agg(from_status || '→' || to_status)) FROM orderly.order_status_history
           WHERE order_id = test.id('phones')), 'the history shows the resubmission');
SELECT lives_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s}') $$, test.id('phones')),
                'the rejecter of round 1 may decide round 2');

-- Reminders and escalation, driven by "now" --------------------------------------------------------
-- s10000: one sales_supervisor step due after 1 day, escalating to sales_manager.

SELECT is((SELECT count(*)::integer FROM jsonb_array_elements(pg_temp.reminders(now() + interval '23 hours'))), 0, 'nothing before it is due');
SELECT is((SELECT e - 'order' FROM jsonb_array_elements(pg_temp.reminders(now() + interval '1 day')) e
           WHERE (e ->> 'order')::bigint = test.id('s10000')),
          '{"kind":"approval.reminder","round":1,"step":1,"role":"sales_supervisor","reminder":1,"escalation_role":"sales_manager","recipients":["sue","sid"]}'::jsonb,
          'due: the first reminder, to the supervisors');
SELECT is(pg_temp.reminders(now() + interval '1 day'), '[]'::jsonb, 'the same now again sends nothing');
SELECT is((SELECT count(*)::integer FROM jsonb_array_elements(pg_temp.reminders(now() + interval '36 hours')) e
           WHERE (e ->> 'order')::bigint = test.id('s10000')), 0, 'nothing before the next interval');
SELECT is((SELECT (e ->> 'reminder')::int FROM jsonb_array_elements(pg_temp.reminders(now() + interval '2 days')) e
           WHERE (e ->> 'order')::bigint = test.id('s10000')), 2, 'one interval later: the second reminder');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'max', '{"id":%s}') $$, test.id('s10000')),
                 'OL403', format('step 1 of order %s needs role sales_supervisor; sales_manager may decide it once it has escalated', test.id('s10000')),
                 'the escalation role may not decide before the escalation');
SELECT is((SELECT e ->> 'kind' FROM jsonb_array_elements(pg_temp.reminders(now() + interval '3 days')) e
           WHERE (e ->> 'order')::bigint = test.id('s10000')), 'approval.escalated', 'after two reminders it escalates');
SELECT is(pg_temp.told('approval.escalated', 's10000'), ARRAY['duo', 'max', 'mona'], 'the escalation role is told');
SELECT is(pg_temp.told('approval.reminder', 's10000'), ARRAY['sid', 'sid', 'sue', 'sue'], 'the supervisors got both reminders');
SELECT is(pg_temp.reminders(now() + interval '3 days'), '[]'::jsonb, 'escalating is idempotent for the same now');
SELECT is((SELECT array_agg(row(action, actor_kind, actor_user_id)::text ORDER BY id) FROM orderly.audit_log
           WHERE action IN ('approval.reminder', 'approval.escalated') AND entity_id = test.id('s10000')::text),
          ARRAY[row('approval.reminder', 'system', NULL::bigint)::text, row('approval.reminder', 'system', NULL::bigint)::text,
                row('approval.escalated', 'system', NULL::bigint)::text],
          'the reminders and the escalation are audited as the system''s');
SELECT is((SELECT array_agg(DISTINCT row(a.actor_kind, a.actor_user_id)::text) FROM orderly.audit_log a
           JOIN orderly.notifications n ON a.entity = 'notification' AND a.entity_id = n.id::text
           WHERE n.kind IN ('approval.reminder', 'approval.escalated')),
          ARRAY[row('system', NULL::bigint)::text], 'and so are the notices they sent');
SELECT is((SELECT row(reminders_sent, escalated)::text FROM analytics.pending_approvals WHERE order_id = test.id('s10000')),
          row(2, true)::text, 'analytics.pending_approvals shows the reminders and the escalation');
SELECT ok(test.id('s10000') = ANY (pg_temp.queue('max')), 'the escalated step is in the escalation role''s queue');
SELECT is(test.call('order_approve', 'max', jsonb_build_object('id', test.id('s10000'))) ->> 'status', 'ready',
          'and the escalation role may decide it (approved, then ready)');
SELECT is((test.call('approval_show', 'rita', jsonb_build_object('order', test.id('s10000'))) -> 'rounds' -> 0 -> 'steps' -> 0)
          - 'decided_at' - 'pending_since' - 'due_at' - 'escalated_at',
          '{"step":1,"role":"sales_supervisor","status":"approved","decided_by":"max","comment":null,"reminders_sent":2,"escalation_role":"sales_manager","escalated":true,"delegation":null,"note":null}'::jsonb,
          'APPROVAL SHOW: reminders sent, escalated, decided by the escalation role');

-- Delegation windows -------------------------------------------------------------------------------

SELECT throws_ok($$ SELECT test.call('delegate', 'fay', jsonb_build_object('to', 'fay', 'until', pg_temp.soon())) $$, 'OL400', NULL, 'not to oneself');
SELECT throws_ok($$ SELECT test.call('delegate', 'fay', jsonb_build_object('to', 'nobody', 'until', pg_temp.soon())) $$, 'OL404', NULL, 'not to an unknown user');
SELECT throws_ok($$ SELECT test.call('delegate', 'fay', jsonb_build_object('to', 'rita', 'until', pg_temp.soon())) $$, 'OL409', NULL,
                 'not to someone who cannot approve');
SELECT throws_ok($$ SELECT test.call('delegate', 'fay', jsonb_build_object('to', 'sue', 'until', pg_temp.soon(), 'role', 'general_manager')) $$, 'OL403', NULL,
                 'not a role one does not hold');
SELECT throws_ok($$ SELECT test.call('delegate', 'fay', jsonb_build_object('to', 'sue', 'from', '2999-01-02', 'until', pg_temp.soon())) $$, 'OL400',
                 'until must be after from', 'until after from');
SELECT throws_ok($$ SELECT test.call('delegate', 'fay', '{"to":"sue"}') $$, 'OL400', 'until is required', 'until is required');

SELECT pg_temp.submit('big1', 'rita', 'standard', 60);
SELECT test.call('order_approve', 'mona', jsonb_build_object('id', test.id('big1')));
INSERT INTO ids SELECT 'fay>sue', (test.call('delegate', 'fay', jsonb_build_object('to', 'sue', 'role', 'finance_manager',
    'from', orderly.json_time(now() + interval '1 hour'), 'until', orderly.json_time(now() + interval '7 days'))) ->> 'id')::bigint;
SELECT ok(EXISTS (SELECT 1 FROM orderly.notifications WHERE kind = 'approval.delegated' AND recipient_user_id = test.uid('sue')),
          'the delegate is told');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s}') $$, test.id('big1')),
                 'OL403', NULL, 'before the window starts: refused');
UPDATE orderly.approval_delegations SET starts_at = now() - interval '1 hour' WHERE id = test.id('fay>sue');
SELECT is((SELECT r::jsonb -> 'via_delegation' ->> 'from' FROM api.approval_queue(test.uid('sue'), '{}') r
           WHERE (r::jsonb ->> 'order')::bigint = test.id('big1')), 'fay', 'inside the window: in the delegate''s queue, saying from whom');
SELECT is(test.call('order_approve', 'sue', jsonb_build_object('id', test.id('big1'))) -> 'rounds' -> 0 -> 'steps' -> 1 -> 'delegation' ->> 'from',
          'fay', 'inside the window: the delegate approves; APPROVAL SHOW names the delegation');
SELECT is((SELECT via_delegation_id FROM orderly.order_approvals WHERE order_id = test.id('big1') AND step_no = 2), test.id('fay>sue'),
          'the step records the delegation');
SELECT is(pg_temp.told('approval.requested', 'big1', 3), ARRAY['pete'], 'and the chain moves on');

SELECT pg_temp.submit('big2', 'sue', 'standard', 60);
SELECT test.call('order_approve', 'mona', jsonb_build_object('id', test.id('big2')));
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s}') $$, test.id('big2')),
                 'OL403', format('you created order %s: another user must approve it', test.id('big2')),
                 'a delegate never approves an order they created');

SELECT pg_temp.submit('big3', 'rita', 'standard', 60);
SELECT test.call('order_approve', 'mona', jsonb_build_object('id', test.id('big3')));
UPDATE orderly.approval_delegations SET ends_at = now() - interval '1 minute' WHERE id = test.id('fay>sue');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s}') $$, test.id('big3')),
                 'OL403', NULL, 'after until: refused');
INSERT INTO ids SELECT 'fred>sid', (test.call('delegate', 'fred', jsonb_build_object('to', 'sid', 'until', pg_temp.soon())) ->> 'id')::bigint;
SELECT ok(test.id('big3') = ANY (pg_temp.queue('sid')), 'a delegation of all of fred''s roles, from now: in sid''s queue');
SELECT admin.lock_user('fred');
SELECT is((SELECT active FROM admin.approval_delegations WHERE id = test.id('fred>sid')) || ' ' || (test.id('big3') = ANY (pg_temp.queue('sid'))),
          'false false', 'a locked delegator passes nothing on, and admin.approval_delegations says the delegation is not active');
SELECT admin.unlock_user('fred');
SELECT admin.revoke_role('fred', 'finance_manager');
SELECT is((SELECT active FROM admin.approval_delegations WHERE id = test.id('fred>sid')), false,
          'a delegator who lost their approving role passes nothing on either: not active');
SELECT admin.grant_role('fred', 'finance_manager');
SELECT admin.revoke_role('sid', 'sales_supervisor');
SELECT is((SELECT active FROM admin.approval_delegations WHERE id = test.id('fred>sid')), false,
          'nor a delegation to someone who no longer holds order.approve');
SELECT admin.grant_role('sid', 'sales_supervisor');
SELECT is((SELECT active FROM admin.approval_delegations WHERE id = test.id('fred>sid')), true, 'both restored: active again');
SELECT is((SELECT array_agg(r::jsonb ->> 'direction') FROM api.delegate_list(test.uid('fred'), '{}') r), ARRAY['given'], 'DELEGATE LIST: given');
SELECT is((SELECT array_agg(r::jsonb ->> 'from') FROM api.delegate_list(test.uid('sid'), '{}') r), ARRAY['fred'], 'DELEGATE LIST: received');
SELECT throws_ok(format($$ SELECT test.call('delegate_revoke', 'fay', '{"id":%s}') $$, test.id('fred>sid')),
                 'OL404', NULL, 'only its parties may revoke a delegation');
SELECT ok((test.call('delegate_revoke', 'fred', jsonb_build_object('id', test.id('fred>sid'))) ->> 'revoked_at') IS NOT NULL, 'revoked');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sid', '{"id":%s}') $$, test.id('big3')),
                 'OL403', NULL, 'after revoke: refused');
SELECT throws_ok(format($$ SELECT test.call('delegate_revoke', 'fred', '{"id":%s}') $$, test.id('fred>sid')),
                 'OL409', NULL, 'revoking twice is a conflict');
SELECT ok(EXISTS (SELECT 1 FROM orderly.audit_log WHERE action = 'approval.delegate_revoke' AND entity_id = test.id('fred>sid')::text),
          'the revocation is audited');
INSERT INTO ids SELECT 'fred>sid2', (test.call('delegate', 'fred', jsonb_build_object('to', 'sid', 'until', pg_temp.soon())) ->> 'id')::bigint;
SELECT ok((test.call('delegate_revoke', 'sid', jsonb_build_object('id', test.id('fred>sid2'))) ->> 'revoked_at') IS NOT NULL,
          'the delegate may end a delegation given to them');
SELECT is((SELECT n.payload ->> 'revoked_by' FROM orderly.notifications n
           WHERE n.kind = 'approval.delegation_revoked' AND n.recipient_user_id = test.uid('fred')
             AND (n.payload ->> 'id')::bigint = test.id('fred>sid2')),
          'sid', 'and the giver is told who ended it');

-- A role revoked mid-chain: the next decision is refused.
SELECT admin.revoke_role('fred', 'finance_manager');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'fred', '{"id":%s}') $$, test.id('big3')),
                 'OL403', NULL, 'a finance manager who lost the role cannot approve');

-- ORDER SHOW and the BI views ----------------------------------------------------------------------

SELECT is(test.call('order_show', 'rita', jsonb_build_object('id', test.id('big3'))) -> 'approval' ->> 'role', 'finance_manager',
          'ORDER SHOW carries the current approval step');
SELECT is(test.call('order_show', 'rita', jsonb_build_object('id', test.id('s10000'))) -> 'approval', 'null'::jsonb,
          'and null once nothing is pending');
SELECT is((SELECT decided::int FROM analytics.approval_turnaround WHERE rule_name = 'Large orders' AND step_no = 1), 4,
          'approval_turnaround counts decided steps per rule step');
SELECT is((SELECT rejection_rate FROM analytics.approval_turnaround WHERE rule_name = 'Standard orders up to 10 000'), 0.3333,
          'and the rejection rate');
SELECT is((SELECT median_time_to_decide FROM analytics.approval_turnaround WHERE rule_name = 'Large orders' AND step_no = 1), interval '0',
          'with the median time to decide');
SELECT ok((SELECT bool_and(description IS NOT NULL) FROM (
              SELECT col_description(c.oid, a.attnum) AS description
              FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
              WHERE c.oid IN ('analytics.approval_turnaround'::regclass, 'analytics.pending_approvals'::regclass)) d),
          'every column of the approval views is commented');
SET LOCAL ROLE orderly_bi;
SELECT lives_ok($$ SELECT * FROM analytics.pending_approvals, analytics.approval_turnaround $$, 'BI tools may read them');
RESET ROLE;

-- Segregation of duties: who changed or submitted an order never approves it -------------------

INSERT INTO ids SELECT 'edited', (test.call('order_create', 'rita', jsonb_build_object('customer', test.id('acme'),
    'lines', '[{"product":"K","qty":1}]'::jsonb)) ->> 'id')::bigint;
SELECT test.call('order_line_set', 'sue', jsonb_build_object('order', test.id('edited'), 'line', 1, 'qty', 2));
SELECT test.call('order_submit', 'sid', jsonb_build_object('id', test.id('edited')));
SELECT is(pg_temp.status('edited'), 'pending_approval', 'a colleague''s order, changed by one supervisor and submitted by another');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s}') $$, test.id('edited')),
                 'OL403', format('you changed or submitted order %s: another user must approve it', test.id('edited')),
                 'the one who changed it cannot approve it');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sid', '{"id":%s}') $$, test.id('edited')),
                 'OL403', NULL, 'nor the one who submitted it');
SELECT admin.create_user('nora', 'nora-secret-1', ARRAY['sales_supervisor', 'sales_rep']);
SELECT test.call('order_amend', 'nora', jsonb_build_object('id', test.id('edited'), 'reason', 'delivery note',
                                                          'changes', '[{"action":"note","text":"Call before delivery"}]'::jsonb)) IS NOT NULL;
SELECT lives_ok(format($$ SELECT test.call('order_approve', 'nora', '{"id":%s}') $$, test.id('edited')),
                'a note added by ORDER AMEND (as by ORDER NOTE) does not make its writer one who changed the order');
SELECT admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
SELECT admin.link_customer('buyer', test.id('acme'));
SELECT throws_ok(format($$ SELECT test.call('approval_show', 'buyer', '{"order":%s}') $$, test.id('edited')),
                 'OL403', NULL, 'approvals are internal: not for customer logins');

-- A round rejected at its first step skips the steps after it; once the order is submitted again,
-- a finance manager (whose step was skipped) trying to approve the new round's first step simply
-- lacks the role: no conflict with anyone (a change replacing a round is one: the case after).
SELECT admin.create_user('fiona', 'fiona-secret-1', ARRAY['finance_manager']);
SELECT pg_temp.submit('rejected3', 'rita', 'standard', 50, 1);
SELECT is(test.call('order_reject', 'duo', jsonb_build_object('id', test.id('rejected3'), 'reason', 'not now')) ->> 'status',
          'rejected', 'a three-step chain rejected at step 1');
SELECT is(test.call('order_submit', 'rita', jsonb_build_object('id', test.id('rejected3'))) ->> 'status', 'pending_approval',
          'and submitted again');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'fiona', '{"id":%s}') $$, test.id('rejected3')),
                 'OL403', format('step 1 of order %s needs role sales_manager (or a delegation of it)', test.id('rejected3')),
                 'finance, whose step of the rejected round was skipped, may not decide the sales manager''s step');

-- A change that replaces a round while its step 2 waits for finance: a finance manager approving
-- the new round's first step was about to decide the replaced one (a conflict); the production
-- manager, whose step was still waiting, simply lacks the role.
SELECT admin.create_approval_rule('Huge orders', ARRAY['standard'], 60000, NULL, 350);
SELECT admin.add_approval_step('Huge orders', 1, 'general_manager', '1 day');
SELECT pg_temp.submit('replaced3', 'rita', 'standard', 50, 1);
SELECT ok(test.call('order_approve', 'max', jsonb_build_object('id', test.id('replaced3'))) IS NOT NULL,
          'a sales manager approves step 1 of the three');
SELECT ok(test.call('order_amend', 'rita', jsonb_build_object('id', test.id('replaced3'), 'reason', 'bigger',
                                                             'changes', '[{"action":"set_line","line":1,"qty":70}]'::jsonb)) IS NOT NULL,
          'the order grows into another rule while finance''s step is pending');
SELECT is((SELECT string_agg(round || ':' || step_no || ':' || status || ':' || role, ' ' ORDER BY round, step_no)
           FROM orderly.order_approvals WHERE order_id = test.id('replaced3')),
          '1:1:approved:sales_manager 1:2:skipped:finance_manager 1:3:skipped:production_manager 2:1:pending:general_manager',
          'a new round for the rule that now applies');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'fiona', '{"id":%s}') $$, test.id('replaced3')),
                 'OL409', format('order %s changed while you were deciding: round 2 is now asked (step 1 of 1, role general_manager); look at it again', test.id('replaced3')),
                 'finance, whose pending step the change replaced: a conflict');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'pete', '{"id":%s}') $$, test.id('replaced3')),
                 'OL403', format('step 1 of order %s needs role general_manager (or a delegation of it)', test.id('replaced3')),
                 'production, whose step was still waiting: no race, no role');

-- Acting through a delegation: a delegate of the finance manager whose step the change replaced
-- gets the same conflict; a delegate of an order's creator may not approve it either.
SELECT admin.create_user('dora', 'dora-secret-1', ARRAY['sales_supervisor']);
SELECT ok(test.call('delegate', 'fiona', jsonb_build_object('to', 'dora', 'until', pg_temp.soon())) IS NOT NULL,
          'the finance manager delegates to dora');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'dora', '{"id":%s}') $$, test.id('replaced3')),
                 'OL409', format('order %s changed while you were deciding: round 2 is now asked (step 1 of 1, role general_manager); look at it again', test.id('replaced3')),
                 'her delegate, too: a conflict');
SELECT pg_temp.submit('mona2', 'mona', 'standard', 20);
SELECT ok(test.call('delegate', 'mona', jsonb_build_object('to', 'dora', 'until', pg_temp.soon())) IS NOT NULL,
          'a sales manager delegates to dora');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'dora', '{"id":%s}') $$, test.id('mona2')),
                 'OL403', format('order %s was created by mona, whose approval rights you hold: another user must approve it', test.id('mona2')),
                 'a delegate may not approve what the one who delegated created');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row of this file names its actor');

-- A rejected order not to be submitted again is discarded with ORDER CANCEL (V044).
SELECT pg_temp.submit('rejected4', 'rita', 'standard', 50, 1);
SELECT is(test.call('order_reject', 'duo', jsonb_build_object('id', test.id('rejected4'), 'reason', 'not now')) ->> 'status',
          'rejected', 'rejected');
SELECT is(test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('rejected4'), 'reason', 'customer went elsewhere')) ->> 'status',
          'cancelled', 'and discarded: cancelled, free');
SELECT is((SELECT count(*)::integer FROM orderly.notifications WHERE kind = 'order.status' AND (payload ->> 'order')::bigint = test.id('rejected4')
             AND payload ->> 'status' = 'cancelled'), 0, 'no news to anyone: nothing is ordered any more');
SELECT * FROM finish();
ROLLBACK;
