-- What an admin's change to rules and limits leaves open (admin.approval_check), the orders
-- waiting now and whether anybody may decide them (admin.pending_approvals), the last step of
-- an active rule kept, and a stuck order routed again by the rules as they are now
-- (admin.reroute_approval).
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(38);

DO $$
BEGIN
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('sue', 'sue-secret-1', ARRAY['sales_supervisor']);
    PERFORM admin.create_user('mona', 'mona-secret-1', ARRAY['sales_manager']);
    PERFORM admin.create_user('fay', 'fay-secret-1', ARRAY['finance_manager']);
    PERFORM admin.create_user('pete', 'pete-secret-1', ARRAY['production_manager']);
    PERFORM admin.create_user('gina', 'gina-secret-1', ARRAY['general_manager']);
    PERFORM admin.load_demo_approvals();
END
$$;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
INSERT INTO orderly.products (code, name, kind, base_price) VALUES ('K', 'Thousand', 'service', 1000);
INSERT INTO ids VALUES ('acme', test.customer('rita', 'Acme', '+4930100100'));

CREATE FUNCTION pg_temp.submit(label text, k integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (test.call('order_create', 'rita', jsonb_build_object('customer', test.id('acme'), 'submit', true,
                              'lines', jsonb_build_array(jsonb_build_object('product', 'K', 'qty', k)))) ->> 'id')::bigint;
BEGIN
    INSERT INTO ids VALUES (label, v_id);
    RETURN v_id;
END
$$;
CREATE FUNCTION pg_temp.findings() RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(concat_ws(' ', finding, order_type, from_total, coalesce(to_total::text, '…'), rule, step, role)
                              ORDER BY finding, order_type, from_total, rule), '{}')
    FROM admin.approval_check
$$;

-- The check ---------------------------------------------------------------------------------------

SELECT is(pg_temp.findings(), '{}'::text[], 'the demo rules and limits leave nothing open');

SELECT throws_ok($$ SELECT admin.remove_approval_step('Standard orders up to 10 000', 1) $$, 'OL409',
                 'step 1 is the only step of active rule "Standard orders up to 10 000": without it the orders the rule matches would be approved at once; switch the rule off first (admin.set_approval_rule_active) or add a step',
                 'the only step of an active rule stays');
SELECT admin.set_approval_rule_active('Standard orders up to 10 000', false);
SELECT is(pg_temp.findings(), ARRAY['approved at once standard 0 10000.00'],
          'switched off: standard orders up to 10 000 are approved at once, and the check says so');
SELECT lives_ok($$ SELECT admin.remove_approval_step('Standard orders up to 10 000', 1) $$, 'an inactive rule''s step may go');
SELECT throws_ok($$ SELECT admin.set_approval_rule_active('Standard orders up to 10 000', true) $$, 'OL409',
                 'approval rule "Standard orders up to 10 000" has no steps: add one (admin.add_approval_step) before switching it on',
                 'and it is not switched on without one');
SELECT admin.add_approval_step('Standard orders up to 10 000', 1, 'sales_supervisor', interval '1 day', 'sales_manager');
SELECT admin.set_approval_rule_active('Standard orders up to 10 000', true);
SELECT is(pg_temp.findings(), '{}'::text[], 'back as it was');

SELECT admin.create_approval_rule('Big standard by a supervisor', ARRAY['standard'], 60000, 90000, 500);
SELECT is(pg_temp.findings(), ARRAY['no steps standard 60000.00 90000.00 Big standard by a supervisor'],
          'a rule just created has no steps: it routes nothing yet, and the check says so');
SELECT admin.add_approval_step('Big standard by a supervisor', 1, 'sales_supervisor', interval '1 day');
SELECT is(pg_temp.findings(), ARRAY['waits for nobody standard 60000.00 90000.00 Big standard by a supervisor 1 sales_supervisor'],
          'a step whose role''s limit (10 000) covers none of the rule''s totals');
SELECT is((SELECT detail FROM admin.approval_check), 'the standard limit of sales_supervisor is 10000.00', 'and why');

SELECT admin.set_approval_limit('sales_supervisor', 'standard', 75000);
SELECT is(pg_temp.findings(), ARRAY['waits for nobody standard 75000.01 90000.00 Big standard by a supervisor 1 sales_supervisor'],
          'a limit that covers part of the rule: the rest waits for nobody');
SELECT admin.set_approval_limit('sales_supervisor', 'standard', 10000);

-- A rule that rules ahead of it match whole never routes an order.
SELECT admin.create_approval_rule('Overlap small standard', ARRAY['standard'], 0, 10000, 100);
SELECT admin.add_approval_step('Overlap small standard', 1, 'sales_manager', interval '1 day');
SELECT admin.create_approval_rule('Overlap all custom', ARRAY['custom'], NULL, NULL, 50);
SELECT admin.add_approval_step('Overlap all custom', 1, 'sales_manager', interval '1 day');
SELECT is(ARRAY(SELECT concat_ws(' ', order_type, from_total, coalesce(to_total::text, '…'), rule) FROM admin.approval_check
                WHERE finding = 'never routes' ORDER BY rule),
          ARRAY['custom 0 … Overlap all custom', 'standard 0.00 10000.00 Overlap small standard'],
          'never routes: the standard one is the older rule''s range at the same priority; the custom one lies under two rules of higher priority that cover every total');
SELECT admin.set_approval_rule_active('Overlap small standard', false);
SELECT admin.set_approval_rule_active('Overlap all custom', false);

SELECT admin.lock_user('pete');
SELECT is(pg_temp.findings(), ARRAY['waits for nobody standard 60000.00 90000.00 Big standard by a supervisor 1 sales_supervisor'],
          'production''s only holder locked: its steps escalate to the general manager, so nothing more');
SELECT admin.unlock_user('pete');
SELECT admin.lock_user('sue');
SELECT is(pg_temp.findings(), ARRAY['nobody holds role standard 60000.00 90000.00 Big standard by a supervisor 1 sales_supervisor',
                                    'waits for nobody standard 60000.00 90000.00 Big standard by a supervisor 1 sales_supervisor'],
          'the supervisors'' only holder locked: the step without an escalation role waits for nobody');
SELECT admin.unlock_user('sue');

-- Orders waiting now ----------------------------------------------------------------------------------

SELECT pg_temp.submit('big', 70);
SELECT is((SELECT rule || ' ' || role || ' ' || decidable FROM admin.pending_approvals WHERE order_id = test.id('big')),
          'Big standard by a supervisor sales_supervisor false', 'the order is routed to the step nobody may decide, and the view says so');
SELECT ok((SELECT note LIKE 'no approval limit%' FROM admin.pending_approvals WHERE order_id = test.id('big')), 'with why');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sue', '{"id":%s}') $$, test.id('big')), 'OL403',
                 format('order %s total 70000.00 EUR is above the sales_supervisor limit of 10000.00 EUR for standard orders', test.id('big')),
                 'the supervisor may not approve it');
SELECT admin.change_approval_step('Big standard by a supervisor', 1, 'sales_manager', interval '1 day');
SELECT is(pg_temp.findings(), '{}'::text[], 'the admin fixes the rule');
SELECT is((SELECT role FROM admin.pending_approvals WHERE order_id = test.id('big')), 'sales_supervisor',
          'the round already running keeps its chain');
-- The note is as of now: a limit raised meanwhile makes the step decidable, and the note written
-- when it opened stuck says nothing any more.
SELECT admin.set_approval_limit('sales_supervisor', 'standard', 100000);
SELECT is((SELECT decidable || ' ' || coalesce(note, '-') FROM admin.pending_approvals WHERE order_id = test.id('big')), 'true -',
          'a limit raised: decidable, and no note says it is stuck');
SELECT admin.set_approval_limit('sales_supervisor', 'standard', 10000);

-- Rerouting ---------------------------------------------------------------------------------------------

SELECT throws_ok(format($$ SELECT admin.reroute_approval(%s, '  ') $$, test.id('big')), 'OL400',
                 'reason must be 1 to 500 characters on one line (it is kept in the order''s approval history)', 'a reason is needed');
SELECT throws_ok($$ SELECT admin.reroute_approval(999999, 'x') $$, 'OL404', 'unknown order 999999', 'an unknown order');
SELECT is(admin.reroute_approval(test.id('big'), 'rule fixed: managers approve big standard orders'),
          format('order %s: round 2 of rule "Big standard by a supervisor", step 1 of 1 (sales_manager)', test.id('big')),
          'rerouted: a new round by the rule as it is now');
SELECT is((SELECT string_agg(round || ':' || step_no || ':' || status || ':' || role, ' ' ORDER BY round, step_no)
           FROM orderly.order_approvals WHERE order_id = test.id('big')),
          '1:1:skipped:sales_supervisor 2:1:pending:sales_manager', 'the stuck step is skipped, the new one pending');
SELECT is((SELECT note FROM orderly.order_approvals WHERE order_id = test.id('big') AND round = 1),
          'rerouted by an admin: rule fixed: managers approve big standard orders', 'with the admin''s reason');
SELECT is((SELECT decidable FROM admin.pending_approvals WHERE order_id = test.id('big')), true, 'somebody may decide it now');

SELECT is((SELECT count(*)::integer FROM orderly.notifications n
           WHERE n.kind = 'approval.requested' AND (n.payload ->> 'order')::bigint = test.id('big') AND n.recipient_user_id = test.uid('mona')),
          1, 'the sales manager is told, as at submission');
SELECT is((SELECT action || ' ' || actor_kind || ' ' || (before ->> 'role') || ' ' || (after ->> 'rule')
           FROM orderly.audit_log WHERE action = 'approval.reroute'),
          'approval.reroute admin_sql sales_supervisor Big standard by a supervisor', 'audited as the admin''s, with both rounds');
SELECT lives_ok(format($$ SELECT test.call('order_approve', 'mona', '{"id":%s}') $$, test.id('big')), 'and the manager approves it');
SELECT throws_ok(format($$ SELECT admin.reroute_approval(%s, 'again') $$, test.id('big')), 'OL409',
                 format('order %s has no approval step pending (it is ready)', test.id('big')), 'nothing pending: nothing to reroute');

-- Who may decide is exactly who may: the only general manager changed the order, so nobody may
-- approve it, though the role and its limit are there.
INSERT INTO ids VALUES ('strat', (test.call('order_create', 'rita', jsonb_build_object('customer', test.id('acme'), 'submit', true, 'type', 'strategic',
                              'lines', '[{"product":"K","qty":1}]'::jsonb)) ->> 'id')::bigint);
SELECT is((SELECT rule || ' ' || decidable || ' ' || deciders::text FROM admin.pending_approvals WHERE order_id = test.id('strat')),
          'Strategic orders true {gina}', 'the general manager may decide it');
SELECT is(test.call('order_amend', 'gina', jsonb_build_object('id', test.id('strat'), 'reason', 'one more',
              'changes', '[{"action":"set_line","line":1,"qty":2}]'::jsonb)) ->> 'status', 'applied', 'she changes it');
SELECT is((SELECT decidable || ' ' || deciders::text FROM admin.pending_approvals WHERE order_id = test.id('strat')),
          'false {}', 'now nobody may (who changed an order does not approve it): the view says so');

-- No rule applies any more: approved, as at submission.
SELECT pg_temp.submit('mid', 20);
SELECT is((SELECT rule FROM admin.pending_approvals WHERE order_id = test.id('mid')), 'Standard orders 10 000 to 50 000', 'routed');
SELECT admin.set_approval_rule_active('Standard orders 10 000 to 50 000', false);
SELECT is(admin.reroute_approval(test.id('mid'), 'middle orders need no approval any more'),
          format('order %s: no approval rule applies now; it is ready', test.id('mid')), 'rerouted where no rule applies: approved');
SELECT is((SELECT reason FROM orderly.order_status_history WHERE order_id = test.id('mid') AND to_status = 'approved'),
          'no approval rule applies (rerouted by an admin)', 'the history says why');
SELECT is((SELECT count(*)::integer FROM orderly.notifications
           WHERE kind = 'order.approved' AND (payload ->> 'order')::bigint = test.id('mid') AND (payload ->> 'auto')::boolean),
          1, 'finance is told, as of an order no rule applied to');
SELECT is((SELECT count(*)::integer FROM admin.pending_approvals WHERE order_id = test.id('mid')), 0, 'nothing pending for it');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row of this file names its actor');

SELECT * FROM finish();
ROLLBACK;
