-- Amendments (issue 14, item 1; R__197_amendments.sql, V020__amendments.sql, the change rounds of
-- R__199_approval_decisions.sql): the constraint table, a customer's change while awaiting
-- approval (and a new round when the new total needs one), staff changes after approval (at
-- once, or waiting for a new approval round, approved or rejected), production's confirmation,
-- shipped units and produced lines refused, a new ship-to after a partial shipment, stock
-- reserved and released (never short), prices kept for untouched lines, versions and diffs,
-- abandoning, cancelling an order with a change waiting, notices per department, the keys a
-- customer sees.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(192);

SET CONSTRAINTS orderly.order_status_events IMMEDIATE;

DO $$
BEGIN
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('sam', 'sam-secret-1', ARRAY['sales_manager']);
    PERFORM admin.create_user('gus', 'gus-secret-1', ARRAY['general_manager']);
    PERFORM admin.create_user('fay', 'fay-secret-1', ARRAY['finance_manager']);
    PERFORM admin.create_user('pat', 'pat-secret-1', ARRAY['production_manager']);
    PERFORM admin.create_user('wes', 'wes-secret-1', ARRAY['warehouse']);
    PERFORM admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
END
$$;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
-- Untaxed: GD 100.00 (100 in stock), GB 10.00 (100 in stock), CU made to order at 200.00.
INSERT INTO orderly.products (code, name, kind, base_price) VALUES
    ('GD', 'Gadget', 'goods', 100), ('GB', 'Gizmo', 'goods', 10), ('CU', 'Custom case', 'custom', 200);
INSERT INTO orderly.skus (product_id, code, stock_on_hand) SELECT id, code || '-1', 100 FROM orderly.products WHERE code IN ('GD', 'GB');
INSERT INTO orderly.carriers (code, name) VALUES ('dhl', 'DHL');
-- A phone in two storage sizes (a variant group picks the SKU): 128 at 300.00, 256 at 400.00.
INSERT INTO orderly.products (code, name, kind, base_price) VALUES ('PH', 'Phone', 'goods', 300);
INSERT INTO orderly.option_groups (product_id, code, name, variant, required) SELECT id, 'storage', 'Storage', true, true FROM orderly.products WHERE code = 'PH';
INSERT INTO orderly.option_values (group_id, code, name, price_delta)
SELECT g.id, v.code, v.code || ' GB', v.delta FROM orderly.option_groups g, (VALUES ('128', 0), ('256', 100)) v (code, delta) WHERE g.code = 'storage';
INSERT INTO orderly.skus (product_id, code, stock_on_hand, options)
SELECT p.id, 'PH-' || v, 100, jsonb_build_object('storage', v) FROM orderly.products p, unnest(ARRAY['128', '256']) v WHERE p.code = 'PH';
INSERT INTO ids VALUES ('acme', test.customer('rita', 'Acme', '+4930100100'));
SELECT admin.link_customer('buyer', test.id('acme'));
INSERT INTO ids SELECT 'dock2', (test.call('address_add', 'rita', jsonb_build_object('customer', test.id('acme'), 'recipient', 'Dock 2',
    'phone', '+4930100102', 'line1', 'Kai 2', 'city', 'Hamburg', 'region', 'HH', 'postal_code', '20095', 'country', 'DE')) ->> 'id')::bigint;

-- Approvals: strategic orders by a sales manager, those of 1 000 or more by the general manager;
-- standard orders of 1 000 or more by a sales manager.
SELECT admin.create_approval_rule('Strategic', ARRAY['strategic']);
SELECT admin.add_approval_step('Strategic', 1, 'sales_manager', interval '1 day');
SELECT admin.create_approval_rule('Strategic large', ARRAY['strategic'], 1000, NULL, 10);
SELECT admin.add_approval_step('Strategic large', 1, 'general_manager', interval '1 day');
SELECT admin.create_approval_rule('Large', ARRAY['standard'], 1000);
SELECT admin.add_approval_step('Large', 1, 'sales_manager', interval '1 day');
SELECT admin.set_approval_limit('sales_manager', t, NULL) FROM unnest(ARRAY['standard', 'strategic']) t;
SELECT admin.set_approval_limit('general_manager', 'strategic', NULL);

CREATE FUNCTION pg_temp.held(order_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(r.line_no || ':' || k.code || '=' || r.qty, ' ' ORDER BY r.line_no, k.code), '')
    FROM orderly.stock_reservations r JOIN orderly.skus k ON k.id = r.sku_id
    WHERE r.order_id = held.order_id AND r.released_at IS NULL
$$;
-- Every SKU's reserved units equal what the open reservation rows of all orders hold.
CREATE FUNCTION pg_temp.stock_consistent() RETURNS boolean LANGUAGE sql AS $$
    SELECT bool_and(k.stock_reserved = coalesce((SELECT sum(r.qty) FROM orderly.stock_reservations r
                                                 WHERE r.sku_id = k.id AND r.released_at IS NULL), 0))
    FROM orderly.skus k
$$;
-- Each order's open reservation rows are exactly what its lines still need.
CREATE FUNCTION pg_temp.holds_open(order_id bigint) RETURNS boolean LANGUAGE sql AS $$
    SELECT orderly.open_stock_needs(order_id) = (
        SELECT coalesce(jsonb_agg(jsonb_build_object('line', r.line_no, 'sku_id', r.sku_id, 'qty', r.qty) ORDER BY r.line_no, r.sku_id), '[]')
        FROM orderly.stock_reservations r WHERE r.order_id = holds_open.order_id AND r.released_at IS NULL)
$$;
CREATE FUNCTION pg_temp.told(kind text, order_id bigint) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(coalesce(u.username, 'role:' || n.recipient_role) ORDER BY coalesce(u.username, 'role:' || n.recipient_role))
    FROM orderly.notifications n LEFT JOIN orderly.users u ON u.id = n.recipient_user_id
    WHERE n.kind = told.kind AND (n.payload ->> 'order')::bigint = told.order_id
$$;
CREATE FUNCTION pg_temp.amend(who text, order_label text, changes text, extra jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
    SELECT test.call('order_amend', who, jsonb_build_object('id', test.id(order_label), 'changes', changes::jsonb,
                                                            'reason', 'asked by phone') || extra)
$$;
CREATE FUNCTION pg_temp.header(order_label text) RETURNS text LANGUAGE sql AS $$
    SELECT status || ' v' || version || ' ' || total FROM orderly.orders WHERE id = test.id(order_label)
$$;

-- The constraint table ----------------------------------------------------------------------------

SELECT is((SELECT count(*)::integer FROM orderly.amendment_constraints), 56, 'the constraints as shipped: 56 rows');
SELECT set_eq($$ SELECT DISTINCT status FROM orderly.amendment_constraints WHERE party = 'customer' $$,
              ARRAY['submitted', 'pending_approval'], 'a customer changes its order while it is submitted or awaiting approval');
SELECT set_eq($$ SELECT status FROM orderly.amendment_constraints WHERE party = 'staff' AND action = 'set_line' $$,
              ARRAY['submitted', 'pending_approval', 'approved', 'in_production', 'ready', 'partially_shipped', 'on_hold'],
              'staff change lines until everything has shipped');
SELECT set_eq($$ SELECT status FROM orderly.amendment_constraints WHERE party = 'staff' AND action = 'note' $$,
              ARRAY['submitted', 'pending_approval', 'approved', 'in_production', 'ready', 'partially_shipped', 'on_hold',
                    'shipped', 'delivered'], 'and add notes until it is delivered');
SELECT throws_ok($$ INSERT INTO orderly.amendment_constraints (action, status, party) VALUES ('set_price', 'approved', 'staff') $$,
                 '23514', NULL, 'only the six actions');
SELECT throws_ok($$ INSERT INTO orderly.amendment_constraints (action, status, party) VALUES ('note', 'approved', 'carrier') $$,
                 '23514', NULL, 'for customers or staff');

-- A customer, while the order awaits approval ----------------------------------------------------------

INSERT INTO ids VALUES ('a', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":2}]', '{"type":"strategic"}'));
SELECT is(pg_temp.header('a'), 'pending_approval v1 200.00', 'a strategic order awaits a sales manager');
CREATE TEMP TABLE replies (name text PRIMARY KEY, doc jsonb);
INSERT INTO replies SELECT 'a1', pg_temp.amend('buyer', 'a', '[{"action":"set_line","line":1,"qty":3}]');
SELECT is((SELECT doc ->> 'status' || ' v' || (doc ->> 'version') || ' ' || (doc ->> 'total_before') || '→' || (doc ->> 'total_after')
           FROM replies WHERE name = 'a1'), 'applied v2 200.00→300.00', 'the customer adds a unit: applied at once, version 2');
SELECT is(pg_temp.held(test.id('a')), '1:GD-1=3', 'the extra unit is reserved');
SELECT is((SELECT doc -> 'diff' -> 'lines' FROM replies WHERE name = 'a1'),
          '[{"line": 1, "name": "Gadget", "change": "changed", "fields": {"net": {"to": 300.00, "from": 200.00}, "qty": {"to": 3, "from": 2}, "total": {"to": 300.00, "from": 200.00}}, "product": "GD"}]'::jsonb,
          'its diff: the quantity and the amounts, from and to');
SELECT is((SELECT array_agg(k ORDER BY k) FROM replies, jsonb_object_keys(doc) k WHERE name = 'a1'),
          ARRAY['currency', 'decided_at', 'decision_reason', 'diff', 'id', 'message', 'order', 'reason', 'reprice', 'requested_at',
                'requested_by', 'status', 'total_after', 'total_before', 'version', 'waiting_for'],
          'the keys a customer sees of a change: not who decided, not the stock it holds');
SELECT is((SELECT string_agg(round || ':' || status, ' ' ORDER BY round) FROM orderly.order_approvals WHERE order_id = test.id('a')),
          '1:pending', 'within the same rule and limits: the round goes on');
SELECT pg_temp.amend('buyer', 'a', '[{"action":"set_line","line":1,"qty":12}]') IS NOT NULL;
SELECT is((SELECT string_agg(round || ':' || status || ':' || role, ' ' ORDER BY round) FROM orderly.order_approvals WHERE order_id = test.id('a')),
          '1:skipped:sales_manager 2:pending:general_manager', 'over 1 000 a new round starts, for the rule that now applies');
SELECT is(pg_temp.told('approval.requested', test.id('a')), ARRAY['gus', 'sam'], 'its approver is asked (and was, for round 1)');
SELECT is(pg_temp.header('a') || ' ' || pg_temp.held(test.id('a')), 'pending_approval v3 1200.00 1:GD-1=12', 'version 3, 12 held');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sam', jsonb_build_object('id', %s)) $$, test.id('a')),
                 'OL409', format('order %s changed while you were deciding: round 2 is now asked (step 1 of 1, role general_manager); look at it again', test.id('a')),
                 'the sales manager, whose round the change replaced, is told the order changed (a conflict, not a lack of rights)');
SELECT is(pg_temp.told('order.changed', test.id('a')), ARRAY['buyer', 'buyer', 'rita', 'rita'],
          'before approval only the customer (its own author and login) and the order''s creator hear of changes, once per change');
SELECT ok(test.call('order_approve', 'gus', jsonb_build_object('id', test.id('a'))) IS NOT NULL, 'the new round is approved');
SELECT throws_ok(format($$ SELECT pg_temp.amend('buyer', 'a', '[{"action":"set_line","line":1,"qty":1}]') $$),
                 'OL409', format('order %s is ready: ask us to make this change (you may change an order yourself while it is submitted or pending_approval)', test.id('a')),
                 'once approved, a customer asks staff');

-- Staff, after approval: at once, or a new approval round --------------------------------------------------

INSERT INTO ids VALUES ('b', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":5}]'));
SELECT is(pg_temp.header('b'), 'ready v1 500.00', 'a standard order under 1 000: approved at once, ready');
INSERT INTO replies SELECT 'b1', pg_temp.amend('rita', 'b', '[{"action":"set_line","line":1,"qty":12}]');
SELECT is((SELECT doc ->> 'status' || ' ' || (doc ->> 'waiting_for') || ' ' || (doc ->> 'total_after') FROM replies WHERE name = 'b1'),
          'pending approval 1200.00', '1 200.00 needs the "Large" rule: the change waits for its own approval round');
SELECT is(pg_temp.header('b') || ' ' || pg_temp.held(test.id('b')), 'ready v1 500.00 1:GD-1=12',
          'the order goes on as it was, holding what the change needs');
SELECT is((SELECT doc -> 'reserved' FROM replies WHERE name = 'b1'), '{"GD-1": 7}'::jsonb, 'the reply says what the change holds');
SELECT is(pg_temp.told('approval.requested', test.id('b')), ARRAY['sam'], 'the sales manager is asked');
SELECT is((SELECT orders_awaiting_approval FROM admin.exchange_rates WHERE currency = 'EUR'),
          (SELECT count(*) FROM orderly.orders WHERE status = 'pending_approval' AND currency = 'EUR') + 1,
          'admin.exchange_rates counts the ready order whose change awaits approval too');
SELECT is((SELECT total FROM analytics.pending_approvals WHERE order_id = test.id('b')), 1200.00,
          'analytics.pending_approvals shows the total the change''s round is judged by, not the order''s old one');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'b', '[{"action":"requested_date","date":"%s"}]') $$, current_date + 365),
                 'OL409', format('order %s has change %s waiting for approval; it is decided, or abandoned with CHANGE ABANDON %s, before another',
                                 test.id('b'), (SELECT doc ->> 'id' FROM replies WHERE name = 'b1'), (SELECT doc ->> 'id' FROM replies WHERE name = 'b1')),
                 'one change waits at a time');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'rita', '{"id":%s}') $$, test.id('b')), 'OL403', NULL,
                 'whoever changed the order does not approve the change');
SELECT ok(test.call('order_approve', 'sam', jsonb_build_object('id', test.id('b'))) IS NOT NULL, 'the sales manager approves');
SELECT is(pg_temp.header('b') || ' ' || pg_temp.held(test.id('b')), 'ready v2 1200.00 1:GD-1=12', 'approved: applied, version 2');
SELECT is((SELECT string_agg(c.status || ' v' || c.version, ',') FROM orderly.order_changes c WHERE c.order_id = test.id('b')), 'applied v2',
          'the change is applied');
SELECT is(pg_temp.told('order.changed', test.id('b')), ARRAY['buyer', 'rita', 'role:finance_manager', 'role:warehouse'],
          'order.changed: warehouse (picking changes), finance (the total), the author and the customer; not logistics or production');

INSERT INTO ids VALUES ('c', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":6}]'));
SELECT pg_temp.amend('rita', 'c', '[{"action":"set_line","line":1,"qty":11}]') IS NOT NULL;
SELECT is(pg_temp.held(test.id('c')), '1:GD-1=11', 'waiting, it holds 11');
SELECT ok(test.call('order_reject', 'sam', jsonb_build_object('id', test.id('c'), 'reason', 'too many at once')) IS NOT NULL,
          'the sales manager rejects the change');
SELECT is(pg_temp.header('c') || ' ' || pg_temp.held(test.id('c')), 'ready v1 600.00 1:GD-1=6',
          'rejected: declined, the order stays as it was, its 6 units held and the 5 more given back');
SELECT is(pg_temp.told('change.declined', test.id('c')), ARRAY['buyer', 'rita'], 'the author and the customer hear why');
SELECT is((SELECT r -> 'payload' ->> 'reason' FROM jsonb_array_elements(test.rows('inbox', 'rita', '{}')) r
           WHERE r ->> 'kind' = 'change.declined' AND (r -> 'payload' ->> 'order')::bigint = test.id('c')),
          'too many at once', 'the author reads the approver''s reason');
SELECT is((SELECT jsonb_agg(r -> 'payload') FROM jsonb_array_elements(test.rows('inbox', 'buyer', '{}')) r
           WHERE r ->> 'kind' = 'change.declined' AND (r -> 'payload' ->> 'order')::bigint = test.id('c')),
          jsonb_build_array(jsonb_build_object('order', test.id('c'), 'change', (SELECT id FROM orderly.order_changes WHERE order_id = test.id('c')),
                                               'reason', 'not approved',
                                               'at', (SELECT orderly.json_time(decided_at) FROM orderly.order_changes WHERE order_id = test.id('c')))),
          'the customer reads "not approved": an approver''s reason is internal');
SELECT is(orderly.visible_doc('order_change', orderly.change_doc(c), c.customer_id) ->> 'decision_reason', 'not approved',
          'and so in the change''s document')
FROM orderly.order_changes c WHERE c.order_id = test.id('c');
SELECT pg_temp.amend('rita', 'c', '[{"action":"set_line","line":1,"qty":11}]') IS NOT NULL;
INSERT INTO replies SELECT 'c-abandon', test.call('change_abandon', 'rita', jsonb_build_object('id',
    (SELECT id FROM orderly.order_changes WHERE order_id = test.id('c') AND status = 'pending')));
SELECT is((SELECT doc ->> 'status' FROM replies WHERE name = 'c-abandon') || ' ' || pg_temp.held(test.id('c')), 'abandoned 1:GD-1=6',
          'CHANGE ABANDON: withdrawn, what it held given back');
SELECT is((SELECT doc ->> 'decision_reason' FROM replies WHERE name = 'c-abandon')
          || ' / ' || (orderly.visible_doc('order_change', orderly.change_doc(c), c.customer_id) ->> 'decision_reason'),
          'abandoned by rita / withdrawn by staff', 'staff read who withdrew it; the customer reads "withdrawn by staff", no username')
FROM orderly.order_changes c WHERE c.id = (SELECT (doc ->> 'id')::bigint FROM replies WHERE name = 'c-abandon');
SELECT is((SELECT string_agg(r ->> 'status', ' ' ORDER BY (r ->> 'round')::integer)
           FROM json_array_elements(orderly.approval_doc(test.id('c')) -> 'rounds') r),
          'rejected skipped', 'APPROVAL SHOW: the withdrawn change''s round is skipped, not pending');
SELECT throws_ok(format($$ SELECT test.call('order_approve', 'sam', '{"id":%s}') $$, test.id('c')),
                 'OL409', format('order %s has no approval step waiting: change %s it was for is abandoned', test.id('c'),
                                 (SELECT doc ->> 'id' FROM replies WHERE name = 'c-abandon')),
                 'approving it says the change was withdrawn, not that an older step was decided');
SELECT is(pg_temp.told('change.declined', test.id('c')), ARRAY['buyer', 'rita'], 'withdrawn by its own author: nobody more is told');
SELECT pg_temp.amend('rita', 'c', '[{"action":"set_line","line":1,"qty":11}]') IS NOT NULL;
SELECT test.call('change_abandon', 'sam', jsonb_build_object('id', (SELECT id FROM orderly.order_changes WHERE order_id = test.id('c') AND status = 'pending')))
       IS NOT NULL;
SELECT is((SELECT r -> 'payload' ->> 'reason' FROM jsonb_array_elements(test.rows('inbox', 'buyer', '{}')) r
           WHERE r ->> 'kind' = 'change.declined' AND (r -> 'payload' ->> 'order')::bigint = test.id('c') ORDER BY (r ->> 'id')::bigint DESC LIMIT 1),
          'withdrawn by staff', 'withdrawn by someone else (staff): its author and the customer hear of it, "withdrawn by staff"');
SELECT ok(pg_temp.stock_consistent(), 'every SKU''s reserved units are what the reservation rows hold');

-- Production confirms a change to a line being made; a made line never changes -------------------------

INSERT INTO ids VALUES ('d', test.submitted('rita', test.id('acme'), '[{"product":"CU","qty":1},{"sku":"GB-1","qty":1}]'));
SELECT test.call('production_start', 'pat', jsonb_build_object('order', test.id('d'))) IS NOT NULL;
INSERT INTO replies SELECT 'd1', pg_temp.amend('rita', 'd', '[{"action":"set_line","line":1,"qty":2}]');
SELECT is((SELECT doc ->> 'status' || ' ' || (doc ->> 'waiting_for') FROM replies WHERE name = 'd1'), 'pending production',
          'a line in production changes only once production confirms');
SELECT is(pg_temp.told('change.confirm', test.id('d')), ARRAY['role:production_manager'], 'production is asked');
SELECT is((SELECT r ->> 'id' FROM jsonb_array_elements(test.rows('change_list', 'pat', '{"status":"pending","waiting_for":"production"}')) r LIMIT 1),
          (SELECT doc ->> 'id' FROM replies WHERE name = 'd1'), 'CHANGE LIST status=pending waiting_for=production: production''s work list, newest first');
SELECT is((SELECT count(*) FROM jsonb_array_elements(test.rows('change_list', 'pat', '{"status":"pending"}')) r
           WHERE r ->> 'status' <> 'pending'), 0::bigint, 'status= lists that status only');
SELECT is((SELECT string_agg(DISTINCT coalesce(k, '-') || ' ' || (r ->> 'requested_by'), ',')
           FROM jsonb_array_elements(test.rows('change_list', 'buyer', jsonb_build_object('order', test.id('d')))) r
           LEFT JOIN LATERAL jsonb_object_keys(r) k ON k IN ('decided_by', 'reserved')),
          '- staff', 'a customer lists the changes of its order as its documents show them: staff, not a username; not who decided, not the stock held');
SELECT throws_ok($$ SELECT test.rows('change_list', 'pat', '{"status":"waiting"}') $$, 'OL400',
                 'status must be pending, applied, declined or abandoned', 'an unknown status is refused');
SELECT throws_ok($$ SELECT test.rows('change_list', 'pat', '{"status":"applied","waiting_for":"approval"}') $$, 'OL400', NULL,
                 'an applied change waits for nobody: waiting_for goes with pending only');
SELECT throws_ok($$ SELECT test.rows('change_list', 'buyer', '{"order":999999999}') $$, 'OL404', NULL, 'an order one may not see is NOT_FOUND');
SELECT throws_ok(format($$ SELECT test.call('change_confirm', 'rita', '{"id":%s}') $$, (SELECT doc ->> 'id' FROM replies WHERE name = 'd1')),
                 'OL403', 'permission denied: production.manage', 'only production confirms');
SELECT is(test.call('change_decline', 'pat', jsonb_build_object('id', (SELECT doc ->> 'id' FROM replies WHERE name = 'd1'), 'reason', 'cut already'))
          ->> 'status', 'declined', 'CHANGE DECLINE');
INSERT INTO replies SELECT 'd2', pg_temp.amend('rita', 'd', '[{"action":"set_line","line":1,"qty":2}]');
INSERT INTO replies SELECT 'd2-ok', test.call('change_confirm', 'pat', jsonb_build_object('id', (SELECT doc ->> 'id' FROM replies WHERE name = 'd2')));
SELECT is((SELECT doc ->> 'status' || ' v' || (doc ->> 'version') FROM replies WHERE name = 'd2-ok') || ' ' || pg_temp.header('d'),
          'applied v2 in_production v2 410.00', 'CHANGE CONFIRM: applied (410.00 needs no approval)');
SELECT is(pg_temp.told('order.changed', test.id('d')),
          ARRAY['buyer', 'rita', 'role:finance_manager', 'role:production_manager', 'role:warehouse'],
          'production hears of its make-to-order line, the warehouse (it picks the made item), finance of the total; not logistics');
SELECT test.call('production_done', 'pat', jsonb_build_object('order', test.id('d'))) IS NOT NULL;
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'd', '[{"action":"set_line","line":1,"qty":3}]') $$),
                 'OL409', 'line 1 has been produced: a produced line cannot change', 'a produced line cannot change');

-- A change still waiting when everything ships is declined then (it could not be applied) ---------------------

INSERT INTO ids VALUES ('ws', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":3}]'));
SELECT pg_temp.amend('rita', 'ws', '[{"action":"set_line","line":1,"qty":12}]') ->> 'status' = 'pending';
SELECT test.call('shipment_create', 'wes', jsonb_build_object('order', test.id('ws'), 'lines', '[{"line":1,"qty":3}]'::jsonb,
                                                                'carrier', 'dhl')) IS NOT NULL;
SELECT is((SELECT status || ': ' || decision_reason FROM orderly.order_changes WHERE order_id = test.id('ws')),
          'declined: the order became shipped before the change was decided; set_line is not allowed then',
          'the waiting change is declined when the order ships whole (approving it could only fail)');
SELECT is(pg_temp.held(test.id('ws')) || '|' || (SELECT count(*) FROM analytics.pending_approvals WHERE order_id = test.id('ws')), '|0',
          'the 9 more gadgets it held are given back, and no approval waits for it');
SELECT is(pg_temp.told('change.declined', test.id('ws')), ARRAY['buyer', 'rita'], 'its author and the customer hear why');
SELECT is((SELECT r -> 'payload' ->> 'reason' FROM jsonb_array_elements(test.rows('inbox', 'buyer', '{}')) r
           WHERE r ->> 'kind' = 'change.declined' AND (r -> 'payload' ->> 'order')::bigint = test.id('ws')),
          'the order became shipped before the change was decided; set_line is not allowed then',
          'Orderly''s own reason is the customer''s too');

-- A ready order that can no longer be released goes back to approved (V031) ---------------------------------

INSERT INTO ids VALUES ('r', test.submitted('rita', test.id('acme'), '[{"sku":"GB-1","qty":1}]', '{"type":"custom"}'));
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'b', '[{"action":"add_line","product":"CU","qty":1}]') $$), 'OL409',
                 'CU is made to order: a standard order takes no made-to-order line once submitted (production approves custom orders); order it on a custom order',
                 'a made-to-order line is not added to a standard order after submission (it would go round production''s approval)');
SELECT pg_temp.amend('rita', 'r', '[{"action":"add_line","product":"CU","qty":1}]') IS NOT NULL;
SELECT is(pg_temp.header('r') || ' ' || (SELECT reason FROM orderly.order_status_history WHERE order_id = test.id('r') ORDER BY id DESC LIMIT 1),
          'approved v2 210.00 a line is to be made first',
          'a make-to-order line added to a ready order: back to approved (no longer released), saying why');
SELECT test.call('production_start', 'pat', jsonb_build_object('order', test.id('r'))) IS NOT NULL;
SELECT test.call('production_done', 'pat', jsonb_build_object('order', test.id('r'))) IS NOT NULL;
SELECT is(pg_temp.header('r'), 'ready v2 210.00', 'production makes the new line (it could not start at ready), and the order is released again');
SELECT test.call('order_hold', 'sam', jsonb_build_object('id', test.id('r'), 'reason', 'customer called')) IS NOT NULL;
SELECT pg_temp.amend('rita', 'r', '[{"action":"add_line","product":"CU","qty":1}]') IS NOT NULL;
SELECT test.call('order_release', 'sam', jsonb_build_object('id', test.id('r'))) IS NOT NULL;
SELECT is(pg_temp.header('r') || ' ' || (SELECT count(*) FROM orderly.notifications WHERE kind = 'order.ready_to_ship'
                                              AND (payload ->> 'order')::bigint = test.id('r')),
          'approved v3 410.00 4', 'held at ready, a make-to-order line added meanwhile: released to approved, not announced ready again');

INSERT INTO ids VALUES ('prepay', test.customer('rita', 'Prepay', '+4930100190'));
UPDATE orderly.customers SET payment_terms = 'prepaid' WHERE id = test.id('prepay');
INSERT INTO ids VALUES ('p', test.submitted('rita', test.id('prepay'), '[{"sku":"GB-1","qty":2}]'));
SELECT test.call('payment_record', 'fay', jsonb_build_object('order', test.id('p'), 'amount', 20, 'method', 'bank_transfer', 'reference', 'P-1'))
       IS NOT NULL;
SELECT is(pg_temp.header('p'), 'ready v1 20.00', 'a prepaid order, paid: released');
SELECT pg_temp.amend('rita', 'p', '[{"action":"set_line","line":1,"qty":3}]') IS NOT NULL;
SELECT is(pg_temp.header('p') || ' ' || orderly.payment_status(o) || ' ' || (SELECT reason FROM orderly.order_status_history
                                                                               WHERE order_id = o.id ORDER BY id DESC LIMIT 1),
          'approved v2 30.00 partially_paid waiting for payment (prepaid)',
          'its total raised: back to approved, waiting for the difference (it was "Ready to ship" and not shippable)')
FROM orderly.orders o WHERE o.id = test.id('p');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'p', '[{"action":"set_line","line":1,"qty":1}]') $$), 'OL409',
                 format('line 1: taking 2 units off an order that is approved (it was ready) is a cancellation, and it costs a fee (cancellation policy): cancel them instead (ORDER CANCEL %s lines=[{"line":1,"qty":2}] reason=…; quote=true tells the fee)', test.id('p')),
                 'back at approved after it was ready (picked), it is judged as ready: raising the total first is no way round the fee');
SELECT throws_ok(format($$ SELECT test.call('shipment_create', 'wes', '{"order":%s,"lines":[{"line":1,"qty":3}],"carrier":"dhl"}') $$, test.id('p')),
                 'OL409', NULL, 'and it does not ship before the rest is paid');
SELECT test.call('payment_record', 'fay', jsonb_build_object('order', test.id('p'), 'amount', 10, 'method', 'bank_transfer', 'reference', 'P-2'))
       IS NOT NULL;
SELECT is(pg_temp.header('p'), 'ready v2 30.00', 'paid in full: released again');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'p', '[{"action":"set_line","line":1,"qty":1}]') $$), 'OL409',
                 format('line 1: taking 2 units off an order that is ready is a cancellation, and it costs a fee (cancellation policy): cancel them instead (ORDER CANCEL %s lines=[{"line":1,"qty":2}] reason=…; quote=true tells the fee)', test.id('p')),
                 'units taken off a ready order are a cancellation of them: a change does not go round its fee');
-- Where the policy lets units go for free, a change takes them off (the policy is rows).
CREATE TEMP TABLE saved_policies AS SELECT * FROM orderly.cancellation_policies;
UPDATE orderly.cancellation_policies SET fee_percent = 0, fee_fixed = 0, fee_min = NULL, approval_role = NULL
WHERE status IN ('ready', 'partially_shipped');
SELECT pg_temp.amend('rita', 'p', '[{"action":"set_line","line":1,"qty":1}]') IS NOT NULL;
SELECT is(pg_temp.header('p') || ' ' || orderly.payment_status(o), 'ready v3 10.00 refund_due',
          'its total lowered below what was paid: still released (more than paid is paid; the refund is finance''s)')
FROM orderly.orders o WHERE o.id = test.id('p');
SELECT is(pg_temp.told('order.ready_to_ship', test.id('p')), ARRAY['role:logistics', 'role:logistics', 'role:warehouse', 'role:warehouse'],
          'the warehouse and logistics are told at each release');

-- Shipping: shipped units stay; a new address for what has not shipped ---------------------------------------

INSERT INTO ids VALUES ('e', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":4},{"sku":"GB-1","qty":2}]'));
SELECT test.call('shipment_create', 'wes', jsonb_build_object('order', test.id('e'), 'lines', '[{"line":1,"qty":2}]'::jsonb, 'carrier', 'dhl'))
       IS NOT NULL;
UPDATE orderly.cancellation_policies x SET approval_role = s.approval_role, fee_percent = s.fee_percent
FROM saved_policies s WHERE s.id = x.id AND x.status = 'partially_shipped';
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'e', '[{"action":"remove_line","line":2}]') $$), 'OL409',
                 format('line 2: taking 2 units off an order that is partially_shipped is a cancellation, and it costs a fee and sales_manager decides it (cancellation policy): cancel them instead (ORDER CANCEL %s lines=[{"line":2,"qty":2}] reason=…; quote=true tells the fee)', test.id('e')),
                 'a line removed from a partly shipped order is a cancellation: its fee and its approval are not gone round');
UPDATE orderly.cancellation_policies x SET fee_percent = 0 WHERE x.status = 'partially_shipped';
SELECT throws_like(format($$ SELECT pg_temp.amend('rita', 'e', '[{"action":"set_line","line":2,"qty":1}]') $$),
                   '%is a cancellation, and sales_manager decides it (cancellation policy)%', 'free but decided by a role: refused too');
UPDATE orderly.cancellation_policies x SET approval_role = NULL WHERE x.status = 'partially_shipped';
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'e', '[{"action":"set_line","line":1,"qty":1}]') $$),
                 'OL409', 'line 1: 2 shipped; shipped units cannot be removed', 'below what shipped: refused');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'e', '[{"action":"remove_line","line":1}]') $$),
                 'OL409', 'line 1: 2 shipped; shipped units cannot be removed', 'a shipped line is not removed');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'e', '[{"action":"set_line","line":1,"qty":6}]') $$),
                 'OL409', format('line 1: 2 shipped; its price is fixed once part of it has shipped: cancel what is open of it (ORDER CANCEL %s lines=[{"line":1,"qty":…}]) or add a line', test.id('e')),
                 'nor its quantity changed (the line would be priced again, shipped units with it)');
INSERT INTO replies SELECT 'e1', pg_temp.amend('rita', 'e', format('[{"action":"ship_to","address":%s}]', test.id('dock2')));
SELECT is((SELECT doc -> 'diff' -> 'header' -> 'ship_to' ->> 'from' FROM replies WHERE name = 'e1'),
          (SELECT id FROM orderly.addresses WHERE customer_id = test.id('acme') AND is_default)::text,
          'a new ship-to after a partial shipment, from the default address');
SELECT is((SELECT doc -> 'diff' -> 'header' -> 'ship_to' ->> 'to' FROM replies WHERE name = 'e1'), test.id('dock2')::text,
          'the diff names the new address');
SELECT is(pg_temp.told('order.changed', test.id('e')), ARRAY['buyer', 'rita', 'role:logistics'], 'logistics hears of the address');
SELECT pg_temp.amend('rita', 'e', '[{"action":"remove_line","line":2}]') IS NOT NULL;
SELECT is(pg_temp.header('e') || ' ' || pg_temp.held(test.id('e')), 'partially_shipped v3 400.00 1:GD-1=2',
          'a line removed: its units given back; what is held is exactly what is still to ship');
SELECT ok(pg_temp.holds_open(test.id('e')) AND pg_temp.holds_open(test.id('b')) AND pg_temp.holds_open(test.id('d'))
          AND pg_temp.stock_consistent(), 'reservations equal the open quantities after every step');

INSERT INTO ids VALUES ('e2', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":1},{"sku":"GB-1","qty":1}]'));
SELECT test.call('shipment_create', 'wes', jsonb_build_object('order', test.id('e2'), 'lines', '[{"line":1,"qty":1}]'::jsonb, 'carrier', 'dhl'))
       IS NOT NULL;
SELECT pg_temp.amend('rita', 'e2', '[{"action":"remove_line","line":2}]') IS NOT NULL;
SELECT is(pg_temp.header('e2') || ' ' || pg_temp.held(test.id('e2')), 'shipped v2 100.00 ',
          'the last open line removed from a partly shipped order: everything left has shipped');

-- What shipped keeps its price: reprice=all (and a new tax place) leaves lines with shipped units alone.
INSERT INTO ids VALUES ('rp', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":2},{"sku":"GB-1","qty":2}]'));
SELECT test.call('shipment_create', 'wes', jsonb_build_object('order', test.id('rp'), 'lines', '[{"line":1,"qty":1}]'::jsonb, 'carrier', 'dhl'))
       IS NOT NULL;
UPDATE orderly.products SET base_price = base_price * 2 WHERE code IN ('GD', 'GB');
SELECT pg_temp.amend('rita', 'rp', format('[{"action":"requested_date","date":"%s"}]', current_date + 365), '{"reprice":"all"}') IS NOT NULL;
UPDATE orderly.products SET base_price = base_price / 2 WHERE code IN ('GD', 'GB');
SELECT is((SELECT string_agg(line_no || ':' || net, ' ' ORDER BY line_no) FROM orderly.order_lines WHERE order_id = test.id('rp')),
          '1:200.00 2:40.00', 'reprice=all after a price rise: the partly shipped line keeps its price, the other takes today''s');

-- A line part of which was cancelled is priced again for the units still ordered; what its
-- cancelled units are worth moves with it, so that only those units change what is owed.
INSERT INTO ids VALUES ('rc', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":4}]'));
SELECT test.call('order_cancel', 'rita', jsonb_build_object('id', test.id('rc'), 'reason', 'One less', 'lines', '[{"line":1,"qty":1}]'::jsonb)) IS NOT NULL;
UPDATE orderly.products SET base_price = base_price * 2 WHERE code = 'GD';
SELECT pg_temp.amend('rita', 'rc', format('[{"action":"requested_date","date":"%s"}]', current_date + 365), '{"reprice":"all"}') IS NOT NULL;
UPDATE orderly.products SET base_price = base_price / 2 WHERE code = 'GD';
SELECT is((SELECT l.net || ' ' || (o.cancelled_total = round((l.net + l.tax) / 4, 2))
           FROM orderly.orders o JOIN orderly.order_lines l ON l.order_id = o.id WHERE o.id = test.id('rc')),
          '800.00 true', 'reprice=all: the partly cancelled line at today''s price, its cancelled unit''s worth moved with it');
SELECT is((SELECT orderly.amount_owed(o) - o.charges_total = o.total - round(o.total / 4, 2) FROM orderly.orders o WHERE o.id = test.id('rc')),
          true, 'what is owed: the three units still ordered, at the new price (plus the fee)');

-- No line left is a cancellation, not a change (the same line set and then removed included).
INSERT INTO ids VALUES ('e3', test.submitted('rita', test.id('acme'), '[{"sku":"GB-1","qty":1},{"sku":"GD-1","qty":1}]'));
SELECT test.snapshot(ARRAY['orderly.order_changes', 'orderly.order_versions', 'orderly.order_lines', 'orderly.audit_log']);
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'e3', '[{"action":"remove_line","line":1},{"action":"remove_line","line":2}]') $$),
                 'OL409', format('order %s: this change would leave it without a line; cancel the order instead (ORDER CANCEL %s)',
                                 test.id('e3'), test.id('e3')),
                 'a change that removes every line is refused');
SELECT ok(test.unchanged() AND pg_temp.held(test.id('e3')) = '1:GB-1=1 2:GD-1=1', 'and nothing changed');

-- Not enough stock: all or nothing ------------------------------------------------------------------------

INSERT INTO ids VALUES ('f', test.submitted('rita', test.id('acme'), '[{"sku":"GB-1","qty":1},{"sku":"GD-1","qty":1}]'));
SELECT test.snapshot(ARRAY['orderly.order_changes', 'orderly.order_versions', 'orderly.order_lines', 'orderly.audit_log']);
SELECT throws_like(format($$ SELECT pg_temp.amend('rita', 'f', '[{"action":"set_line","line":2,"qty":2},{"action":"set_line","line":1,"qty":1000}]') $$),
                   'not enough stock for SKU GB-1: 999 more requested, % available', 'short: -CONFLICT like a submission');
SELECT ok(test.unchanged() AND pg_temp.held(test.id('f')) = '1:GB-1=1 2:GD-1=1', 'and nothing changed, not even the other line');

-- Prices: agreed prices stay, unless reprice=all ------------------------------------------------------------

INSERT INTO ids VALUES ('g', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":1},{"sku":"GB-1","qty":1}]'));
UPDATE orderly.products SET base_price = 120 WHERE code = 'GD';
SELECT ok(test.replays('order_amend', 'rita', jsonb_build_object('id', test.id('g'), 'reason', 'two gizmos', 'idempotency_key', 'g-1',
                                                                   'changes', '[{"action":"set_line","line":2,"qty":2}]'::jsonb)),
          'a retry with the same idempotency key gets the same reply and changes nothing');
SELECT is((SELECT string_agg(line_no || ':' || net, ' ' ORDER BY line_no) FROM orderly.order_lines WHERE order_id = test.id('g')),
          '1:100.00 2:20.00', 'the untouched line keeps its agreed 100.00, though the list price is now 120.00');
SELECT pg_temp.amend('rita', 'g', '[{"action":"add_line","sku":"GB-1","qty":1},{"action":"note","text":"Margin thin, keep quiet"}]') IS NOT NULL;
SELECT is((SELECT string_agg(line_no || ':' || net, ' ' ORDER BY line_no) FROM orderly.order_lines WHERE order_id = test.id('g')),
          '1:100.00 2:20.00 3:10.00', 'an added line is line 3, at today''s price');
SELECT pg_temp.amend('rita', 'g', format('[{"action":"requested_date","date":"%s"}]', current_date + 400), '{"reprice":"all"}') IS NOT NULL;
SELECT is((SELECT string_agg(line_no || ':' || net, ' ' ORDER BY line_no) FROM orderly.order_lines WHERE order_id = test.id('g')),
          '1:120.00 2:20.00 3:10.00', 'reprice=all: every line at today''s price');

SELECT is((SELECT array_agg((r ->> 'version') || ' ' || coalesce(r ->> 'total_before', '-') || '→' || (r ->> 'total_after') || ' ' || (r ->> 'reason')
                            ORDER BY (r ->> 'version')::int)
           FROM jsonb_array_elements(test.rows('order_versions', 'buyer', jsonb_build_object('id', test.id('g')))) r),
          ARRAY['1 -→110.00 submitted', '2 110.00→120.00 two gizmos', '3 120.00→130.00 asked by phone', '4 130.00→150.00 asked by phone'],
          'ORDER VERSIONS: four versions, each with why and the totals before and after');
SELECT is((SELECT array_agg(DISTINCT r ->> 'by') FROM jsonb_array_elements(test.rows('order_versions', 'buyer', jsonb_build_object('id', test.id('g')))) r),
          ARRAY['staff'], 'a customer sees staff as "staff"');
SELECT is((test.call('order_diff', 'rita', jsonb_build_object('id', test.id('g'), 'from', 1, 'to', 2)) -> 'lines' -> 0 -> 'fields' -> 'qty'),
          '{"from": 1, "to": 2}'::jsonb, 'ORDER DIFF from=1 to=2: line 2''s quantity');
SELECT is((SELECT jsonb_agg(l ->> 'change') FROM jsonb_array_elements(test.call('order_diff', 'rita', jsonb_build_object('id', test.id('g'), 'from', 2, 'to', 3)) -> 'lines') l),
          '["added"]'::jsonb, 'from 2 to 3: a line added');
SELECT is(jsonb_array_length(test.call('order_diff', 'rita', jsonb_build_object('id', test.id('g'), 'from', 2, 'to', 3)) -> 'notes'), 1,
          'and the note, for staff');
SELECT is(jsonb_array_length(test.call('order_diff', 'buyer', jsonb_build_object('id', test.id('g'), 'from', 2, 'to', 3)) -> 'notes'), 0,
          'not for the customer: it is internal');
SELECT is((test.call('order_diff', 'rita', jsonb_build_object('id', test.id('g'))) -> 'header' -> 'requested_date' ->> 'to'), (current_date + 400)::text,
          'without from/to: the last change');
SELECT throws_ok(format($$ SELECT test.call('order_diff', 'rita', '{"id":%s,"to":9}') $$, test.id('g')),
                 'OL404', format('order %s has versions 1 to 4', test.id('g')), 'an unknown version');

-- Refused input ----------------------------------------------------------------------------------------------

SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'g', '[{"action":"set_price","line":1}]') $$), 'OL400',
                 'unknown action "set_price"; actions: add_line, set_line, remove_line, ship_to, requested_date, note', 'an unknown action, named');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'g', '[]') $$), 'OL400', NULL, 'no actions');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'g', '[{"action":"set_line","line":9,"qty":1}]') $$),
                 'OL404', format('order %s has no line 9', test.id('g')), 'an unknown line');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'g', '[{"action":"set_line","line":1}]') $$),
                 'OL400', 'set_line takes "line" and one or more of qty, options, params', 'set_line needs something to set');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'g', '[{"action":"set_line","line":1,"colour":"red"}]') $$),
                 'OL400', 'set_line takes "line" and one or more of qty, options, params', 'a misspelt key is refused');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'g', '[{"action":"ship_to","address":999999}]') $$),
                 'OL404', 'unknown ship-to address 999999', 'an address of another customer, or none');
SELECT throws_ok(format($$ SELECT test.call('order_amend', 'rita', '{"id":%s,"changes":[{"action":"note","text":"x"}]}') $$, test.id('g')),
                 'OL400', 'reason is required', 'a change needs a reason');
SELECT throws_ok(format($$ SELECT pg_temp.amend('wes', 'g', '[{"action":"note","text":"x"}]') $$),
                 'OL403', 'permission denied: order.amend', 'the warehouse does not amend orders');

-- Admins change the constraints in SQL -------------------------------------------------------------------------

SELECT admin.set_amendment_constraint('set_line', 'ready', 'staff', false);
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'f', '[{"action":"set_line","line":1,"qty":2}]') $$),
                 'OL409', 'set_line is not allowed on an order that is ready (amendment constraints)', 'a forbidden action is refused');
SELECT admin.set_amendment_constraint('set_line', 'ready', 'staff', true);
SELECT throws_ok($$ SELECT admin.set_amendment_constraint('add_line', 'cancelled', 'staff', true) $$, 'OL409',
                 'add_line cannot be allowed on an order that is cancelled: the order is final',
                 'nothing is amended on a final order (a cancelled order''s stock is back on the shelf)');
SELECT throws_ok($$ SELECT admin.set_amendment_constraint('add_line', 'shipped', 'staff', true) $$, 'OL409',
                 'add_line cannot be allowed on an order that is shipped: everything has shipped; only a note may be added',
                 'once everything shipped, only notes');
SELECT throws_ok($$ SELECT admin.set_amendment_constraint('note', 'draft', 'customer', true) $$, 'OL409', NULL,
                 'a draft is changed with ORDER UPDATE, not amended');
SELECT throws_ok($$ SELECT admin.set_amendment_constraint('note', 'submitted', 'staff', NULL) $$, 'OL400', 'allowed must be true or false',
                 'NULL is neither allow nor forbid');
SELECT throws_ok($$ SELECT admin.set_amendment_constraint(NULL, 'submitted', 'staff', true) $$, 'OL400',
                 'action must be add_line, set_line, remove_line, ship_to, requested_date or note', 'a NULL action is refused in the function''s words');
SELECT is((SELECT statuses FROM admin.amendment_constraints WHERE action = 'set_line' AND party = 'staff'),
          ARRAY['submitted', 'pending_approval', 'approved', 'in_production', 'ready', 'partially_shipped', 'on_hold'],
          'allowed again; admin.amendment_constraints lists the statuses in lifecycle order');
SELECT is((SELECT count(*)::integer FROM orderly.audit_log WHERE action LIKE 'amendment_constraint.%' AND actor_kind = 'admin_sql'), 2,
          'both audited as the admin''s');

-- Cancelling an order with a change waiting ------------------------------------------------------------------

INSERT INTO ids VALUES ('h', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":2}]'));
SELECT pg_temp.amend('rita', 'h', '[{"action":"set_line","line":1,"qty":12}]') IS NOT NULL;
SELECT is(pg_temp.held(test.id('h')), '1:GD-1=12', 'a change waits for approval, holding 12');
SELECT test.call('order_cancel', 'sam', jsonb_build_object('id', test.id('h'), 'reason', 'customer gone')) IS NOT NULL;
SELECT is((SELECT status || ' ' || decision_reason FROM orderly.order_changes WHERE order_id = test.id('h')), 'abandoned order cancelled',
          'cancelling the order abandons the change');
SELECT is(pg_temp.held(test.id('h')) || '|' || pg_temp.header('h'), '|cancelled v1 240.00', 'and everything it held goes back');
SELECT is((SELECT string_agg(status, ',') FROM orderly.order_approvals WHERE order_id = test.id('h')), 'skipped',
          'its approval round is closed');
SELECT ok(pg_temp.stock_consistent(), 'the SKUs hold exactly what the orders hold');
SELECT is(pg_temp.told('change.declined', test.id('h')), ARRAY['buyer', 'rita'], 'its author and the customer hear why');
-- Part of an order cancelled: the change waiting on it is abandoned, and says why.
INSERT INTO ids VALUES ('hp', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":2},{"sku":"GB-1","qty":1}]'));
SELECT pg_temp.amend('rita', 'hp', '[{"action":"set_line","line":1,"qty":12}]') IS NOT NULL;
SELECT test.call('order_cancel', 'sam', jsonb_build_object('id', test.id('hp'), 'reason', 'no gizmo', 'lines', '[2]'::jsonb)) IS NOT NULL;
SELECT is((SELECT status || ': ' || decision_reason FROM orderly.order_changes WHERE order_id = test.id('hp')),
          'abandoned: part of the order was cancelled; ask for the change again if it still stands', 'not "order cancelled"');
SELECT is(pg_temp.told('change.declined', test.id('hp')), ARRAY['buyer', 'rita'], 'its author and the customer are told');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row of this file names its actor');

-- An address removed while an order ships there: the order keeps it and is still changed, but
-- not priced again until it has another (as a draft: pgTAP 140); a new choice of it is refused.
SELECT test.call('address_remove', 'rita', jsonb_build_object('id', test.id('dock2'))) IS NOT NULL;
SELECT lives_ok($$ SELECT pg_temp.amend('rita', 'e', '[{"action":"note","text":"call before delivery"}]') $$,
                'an order whose address was removed since is still changed');
SELECT is((SELECT ship_to_id FROM orderly.orders WHERE id = test.id('e')), test.id('dock2'), '… and keeps the address');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'e', '[{"action":"ship_to","address":%s}]') $$, test.id('dock2')),
                 'OL404', format('ship-to address %s was removed; give another (ship_to)', test.id('dock2')), 'a removed address is not chosen again');
SELECT throws_ok($$ SELECT pg_temp.amend('rita', 'e', '[{"action":"add_line","sku":"GB-1","qty":1}]') $$,
                 'OL404', format('ship-to address %s was removed; give another (ship_to)', test.id('dock2')), 'a line change needs a price: not at a removed address');
SELECT is(pg_temp.amend('rita', 'e', format('[{"action":"ship_to","address":%s},{"action":"add_line","sku":"GB-1","qty":1}]',
                                            (SELECT id FROM orderly.addresses WHERE customer_id = test.id('acme') AND is_default)))
          -> 'diff' -> 'lines' -> 0 ->> 'line', '3', 'with another address in the same change, it is priced');
-- Each line, the address and the date once per change: the last of two would win silently.
SELECT throws_ok($$ SELECT pg_temp.amend('rita', 'e', '[{"action":"set_line","line":3,"qty":3},{"action":"remove_line","line":3}]') $$,
                 'OL400', 'line 3 is listed twice in this change: give it once, as it should become', 'a line set, then removed: refused');
SELECT throws_ok($$ SELECT pg_temp.amend('rita', 'e', '[{"action":"set_line","line":3,"qty":3},{"action":"set_line","line":3,"qty":4}]') $$,
                 'OL400', 'line 3 is listed twice in this change: give it once, as it should become', 'a line set twice is refused');
SELECT throws_ok($$ SELECT pg_temp.amend('rita', 'e', '[{"action":"requested_date","date":null},{"action":"requested_date","date":null}]') $$,
                 'OL400', 'requested_date is given twice in this change', 'the date twice is refused');
-- An address a change waiting for approval would ship to is not removed before the change is decided.
INSERT INTO ids SELECT 'dock3', (test.call('address_add', 'rita', jsonb_build_object('customer', test.id('acme'), 'recipient', 'Dock 3',
    'phone', '+4930100103', 'line1', 'Kai 3', 'city', 'Hamburg', 'region', 'HH', 'postal_code', '20095', 'country', 'DE')) ->> 'id')::bigint;
INSERT INTO ids VALUES ('w', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":1}]'));
SELECT is(pg_temp.amend('rita', 'w', format('[{"action":"set_line","line":1,"qty":12},{"action":"ship_to","address":%s}]', test.id('dock3')))
          ->> 'waiting_for', 'approval', 'a change over the approval threshold, to a new address, waits for approval');
SELECT throws_ok(format($$ SELECT test.call('address_remove', 'rita', '{"id":%s}') $$, test.id('dock3')), 'OL409',
                 format('address %s is where order %s ships, or will with change %s, which waits for a decision: decide that first',
                        test.id('dock3'), test.id('w'), (SELECT max(id) FROM orderly.order_changes)),
                 'its address is not removed while the change waits');
-- A change with nothing a customer sees (an internal note alone) is not news for the customer's logins.
CREATE TEMP TABLE told_before AS SELECT pg_temp.told('order.changed', test.id('e')) AS t;
SELECT pg_temp.amend('rita', 'e', '[{"action":"note","text":"check the pallet","visibility":"internal"}]') IS NOT NULL;
SELECT is((SELECT array_length(pg_temp.told('order.changed', test.id('e')), 1) - array_length(t, 1) FROM told_before)
          || ' ' || (SELECT count(*) FROM unnest(pg_temp.told('order.changed', test.id('e'))) x WHERE x = 'buyer')
          - (SELECT count(*) FROM told_before, unnest(t) x WHERE x = 'buyer'),
          '1 0', 'an internal note alone: the creator is told, the customer''s login is not');
-- Nor the address of an order whose change waits (it would be repriced there when decided).
SELECT throws_ok(format($$ SELECT test.call('address_remove', 'rita', '{"id":%s}') $$,
                        (SELECT ship_to_id FROM orderly.orders WHERE id = test.id('w'))), 'OL409', NULL,
                 'the current address of an order with a change waiting is not removed either');
-- A change that raises an approved order's total is judged against the credit limit, as at approval.
INSERT INTO ids VALUES ('climit', test.customer('rita', 'Limited', '+4930100555'));
UPDATE orderly.customers SET credit_limit = 700, credit_currency = 'EUR' WHERE id = test.id('climit');
INSERT INTO ids VALUES ('cl', test.submitted('rita', test.id('climit'), '[{"sku":"GD-1","qty":4}]'));
SELECT is(pg_temp.header('cl'), 'ready v1 480.00', 'under its 700.00 limit: approved and ready');
SELECT is(pg_temp.amend('rita', 'cl', '[{"action":"set_line","line":1,"qty":6}]') ->> 'status', 'applied',
          'raised to 720.00 (no approval rule needs it): applied at once');
SELECT is((SELECT status || ' ' || hold_reason || ' from ' || held_from FROM orderly.orders WHERE id = test.id('cl')),
          'on_hold credit_limit from ready', 'over the credit limit: on hold for finance, off the pick list');
SELECT is(pg_temp.amend('rita', 'cl', '[{"action":"set_line","line":1,"qty":5}]') ->> 'status', 'applied', 'lowered to 600.00');
SELECT is((SELECT status FROM orderly.orders WHERE id = test.id('cl')), 'on_hold', 'a lower total releases nothing: finance does');

-- An address a placed order ships to is not changed under it (ADDRESS UPDATE): the change is a new
-- address; the order keeps the one it was agreed and taxed on; a draft moves to the new one.
INSERT INTO ids SELECT 'adr', (test.call('address_add', 'rita', jsonb_build_object('customer', test.id('acme'), 'recipient', 'Dock 4',
    'phone', '+4930100104', 'line1', 'Kai 4', 'city', 'Hamburg', 'region', 'HH', 'postal_code', '20095', 'country', 'DE')) ->> 'id')::bigint;
INSERT INTO ids VALUES ('adr-order', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":1}]', jsonb_build_object('ship_to', test.id('adr'))));
INSERT INTO ids SELECT 'adr-draft', (test.call('order_draft', 'rita', jsonb_build_object('customer', test.id('acme'), 'ship_to', test.id('adr'))) ->> 'id')::bigint;
INSERT INTO replies SELECT 'adr-up', test.call('address_update', 'buyer', jsonb_build_object('id', test.id('adr'), 'city', 'Paris',
    'region', 'IDF', 'postal_code', '75001', 'country', 'FR'));
SELECT isnt((SELECT (doc ->> 'id')::bigint FROM replies WHERE name = 'adr-up'), test.id('adr'),
            'ADDRESS UPDATE of an address a placed order ships to: a new address (the reply''s id)');
SELECT is((SELECT o.ship_to_id = test.id('adr') AND a.city = 'Hamburg' AND a.country = 'DE' AND a.removed_at IS NOT NULL
           FROM orderly.orders o JOIN orderly.addresses a ON a.id = o.ship_to_id WHERE o.id = test.id('adr-order')),
          true, 'the placed order still ships to Hamburg, the address it was agreed and taxed on (hidden from the address book)');
SELECT is((SELECT ship_to_id FROM orderly.orders WHERE id = test.id('adr-draft')), (SELECT (doc ->> 'id')::bigint FROM replies WHERE name = 'adr-up'),
          'a draft, priced live, moves to the new address');
SELECT is((SELECT doc ->> 'city' FROM replies WHERE name = 'adr-up'), 'Paris', 'the new address is the changed one');
SELECT is((SELECT (test.call('address_update', 'rita', jsonb_build_object('id', (doc ->> 'id')::bigint, 'city', 'Lyon')) ->> 'id')::bigint
           FROM replies WHERE name = 'adr-up'),
          (SELECT (doc ->> 'id')::bigint FROM replies WHERE name = 'adr-up'), 'an address no placed order uses is changed in place');
SELECT is((test.call('address_update', 'rita', jsonb_build_object('id', (SELECT ship_to_id FROM orderly.orders WHERE id = test.id('w')), 'label', 'dock three')) ->> 'id')::bigint,
          (SELECT ship_to_id FROM orderly.orders WHERE id = test.id('w')), 'a new label alone is changed in place, whoever ships there');

-- A manual price was authorised for one item and quantity: a change that is not by someone with
-- price.override does not carry it over (the customer, or a rep, at the order's price of 1.00).
INSERT INTO ids VALUES ('mp', test.submitted('sam', test.id('acme'), '[{"sku":"GD-1","qty":1,"unit_price":1,"reason":"friend"},{"sku":"GB-1","qty":1}]',
                                              '{"type":"strategic"}'));
SELECT is(pg_temp.header('mp'), 'pending_approval v1 11.00', 'a manual price of 1.00 for one gadget, awaiting approval');
SELECT throws_ok(format($$ SELECT pg_temp.amend('buyer', 'mp', '[{"action":"set_line","line":1,"qty":12}]') $$), 'OL403',
                 'line 1 has a manual price: changing it needs price.override (or remove it and add a line at today''s price)',
                 'the customer cannot buy twelve at the manual price');
SELECT admin.create_user('cora', 'cora-secret-1', ARRAY['customer_service']);
SELECT throws_ok(format($$ SELECT pg_temp.amend('cora', 'mp', '[{"action":"set_line","line":1,"options":{}}]') $$), 'OL403',
                 'line 1 has a manual price: changing it needs price.override (or remove it and add a line at today''s price)',
                 'nor customer service without price.override, in any of its fields');
SELECT is(pg_temp.amend('cora', 'mp', '[{"action":"set_line","line":2,"qty":2}]') ->> 'status', 'applied',
          'another line changes; the manual price stays where it was authorised');
SELECT is(pg_temp.amend('sam', 'mp', '[{"action":"set_line","line":1,"qty":2}]') ->> 'status', 'applied',
          'a holder of price.override changes it');

-- The shipped cancellation policy again.
DELETE FROM orderly.cancellation_policies;
INSERT INTO orderly.cancellation_policies OVERRIDING SYSTEM VALUE SELECT * FROM saved_policies;

-- Another variant for a ready line gives its picked units back: judged as taking them off.
INSERT INTO ids VALUES ('sw', test.submitted('rita', test.id('acme'), '[{"product":"PH","qty":2,"options":{"storage":"256"}}]'));
SELECT is(pg_temp.header('sw'), 'ready v1 800.00', 'two 256 GB phones, ready');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'sw', '[{"action":"set_line","line":1,"options":{"storage":"128"}}]') $$), 'OL409',
                 format('line 1: changing its item gives back its 2 units, and giving units back from an order that is ready is a cancellation, and it costs a fee (cancellation policy): cancel them instead (ORDER CANCEL %s lines=[{"line":1,"qty":2}] reason=…; quote=true tells the fee) and add a line with the new item', test.id('sw')),
                 'a cheaper variant swapped in at ready is not a free way round the restocking fee');

-- A change waiting for approval is not applied while a cancellation request waits (CANCEL APPROVE
-- abandons it; CANCEL REJECT lets it be decided).
INSERT INTO ids VALUES ('cr', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":5}]'));
SELECT pg_temp.amend('rita', 'cr', '[{"action":"set_line","line":1,"qty":12}]') ->> 'status' = 'pending';
SELECT is(test.call('order_cancel', 'buyer', jsonb_build_object('id', test.id('cr'), 'reason', 'Not needed')) ->> 'status', 'requested',
          'the customer asks to cancel (a fee at ready: a request)');
SELECT throws_like(format($$ SELECT test.call('order_approve', 'sam', '{"id":%s}') $$, test.id('cr')),
                   format('order %s has cancellation request %% waiting; it is decided (CANCEL APPROVE %s or CANCEL REJECT %s) before the order changes',
                          test.id('cr'), test.id('cr'), test.id('cr')),
                   'the change''s approval waits for the cancellation request to be decided');
SELECT test.call('cancel_reject', 'sam', jsonb_build_object('id', test.id('cr'), 'reason', 'Already agreed')) IS NOT NULL;
SELECT test.call('order_approve', 'sam', jsonb_build_object('id', test.id('cr'))) IS NOT NULL;
SELECT is((SELECT status || ' v' || version || ' ' || (SELECT qty FROM orderly.order_lines WHERE order_id = o.id AND line_no = 1)
           FROM orderly.orders o WHERE id = test.id('cr')), 'ready v2 12', 'rejected: the change is approved and applied');

-- A change the order moved past while it waited for approval is declined when approved, not
-- left blocking: one gadget fewer was free at approved; once production started it is a
-- cancellation.
INSERT INTO ids VALUES ('mv', test.submitted('rita', test.id('acme'), '[{"product":"CU","qty":1},{"sku":"GD-1","qty":3}]', '{"type":"strategic"}'));
SELECT test.call('order_approve', 'sam', jsonb_build_object('id', test.id('mv'))) IS NOT NULL;
SELECT is(pg_temp.amend('rita', 'mv', '[{"action":"set_line","line":2,"qty":2},{"action":"add_line","sku":"GD-1","qty":10}]') ->> 'waiting_for',
          'approval', 'over 1 000 needs the general manager: the change waits');
SELECT test.call('production_start', 'pat', jsonb_build_object('order', test.id('mv'))) IS NOT NULL;
SELECT lives_ok(format($$ SELECT test.call('order_approve', 'gus', '{"id":%s}') $$, test.id('mv')), 'the general manager approves');
SELECT is((SELECT status || ': ' || decision_reason FROM orderly.order_changes WHERE order_id = test.id('mv')),
          format('declined: it can no longer be applied: line 2: taking 1 unit off an order that is in_production is a cancellation, and it costs a fee and sales_manager decides it (cancellation policy): cancel them instead (ORDER CANCEL %s lines=[{"line":2,"qty":1}] reason=…; quote=true tells the fee)', test.id('mv')),
          'the change is declined, saying why (production started meanwhile)');
SELECT is(pg_temp.header('mv') || ' ' || pg_temp.held(test.id('mv')), 'in_production v1 560.00 2:GD-1=3',
          'the order is as it was, and the ten gadgets the change held are given back');
SELECT is(pg_temp.told('change.declined', test.id('mv')), ARRAY['buyer', 'rita'], 'its author and the customer hear why');
SELECT throws_ok(format($$ SELECT test.call('order_amend', 'rita', '{"id":%s,"reason":"x","changes":[{"action":"requested_date","date":null}]}') $$, test.id('mv')),
                 'OL409', format('this change leaves order %s as it is: nothing to apply', test.id('mv')),
                 'a change that changes nothing (no date, to no date) is refused: no version, no news, no editor');
UPDATE orderly.products SET base_price = base_price + 50 WHERE code = 'GD';
SELECT throws_ok(format($$ SELECT test.call('order_amend', 'rita', '{"id":%s,"reason":"x","changes":[{"action":"set_line","line":2,"qty":3}]}') $$, test.id('mv')),
                 'OL409', format('this change leaves order %s as it is: nothing to apply', test.id('mv')),
                 'a line asked as it is (its quantity) is not priced again at today''s price: nothing to apply');
SELECT throws_ok(format($$ SELECT test.call('order_amend', 'rita', '{"id":%s,"reason":"x","changes":[{"action":"set_line","line":2,"params":{}}]}') $$, test.id('mv')),
                 'OL409', format('this change leaves order %s as it is: nothing to apply', test.id('mv')),
                 'no parameters on an item without any is no change of item (it read as a swap, a cancellation with a fee)');
UPDATE orderly.products SET base_price = base_price - 50 WHERE code = 'GD';
SELECT ok(pg_temp.amend('rita', 'mv', jsonb_build_array(jsonb_build_object('action', 'requested_date', 'date', to_char(now() + interval '60 days', 'YYYY-MM-DD')))::text) IS NOT NULL,
          'and the next change is not blocked');

-- The order's own coupon, redeemed at submission, is applied as granted: used up by this very
-- order (one per customer) and expired since, it no longer blocked every change of its lines.
INSERT INTO orderly.pricing_rules (name, kind, value) VALUES ('Ten off with a coupon', 'percent', 10);
INSERT INTO orderly.coupons (code, ends_at, max_uses, max_uses_per_customer) VALUES ('ONCE10', now() + interval '1 hour', 100, 1);
INSERT INTO orderly.coupon_rules (coupon_id, rule_id)
SELECT c.id, r.id FROM orderly.coupons c, orderly.pricing_rules r WHERE c.code = 'ONCE10' AND r.name = 'Ten off with a coupon';
INSERT INTO ids VALUES ('cp', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":1}]', '{"coupon":"ONCE10"}'));
SELECT is(pg_temp.header('cp'), 'ready v1 108.00', 'submitted with the coupon: 10 % off');
SELECT is(pg_temp.amend('rita', 'cp', '[{"action":"set_line","line":1,"qty":2}]') ->> 'status', 'applied',
          'one per customer, used by this order: its lines still change');
SELECT is(pg_temp.header('cp'), 'ready v2 216.00', 'and the coupon still applies');
UPDATE orderly.coupons SET ends_at = now() - interval '1 minute', starts_at = now() - interval '2 hours' WHERE code = 'ONCE10';
SELECT is(pg_temp.amend('rita', 'cp', '[{"action":"set_line","line":1,"qty":3}]') ->> 'status', 'applied', 'expired since: the same');
SELECT is(pg_temp.header('cp'), 'ready v3 324.00', 'as granted at submission');
UPDATE orderly.coupons SET active = false WHERE code = 'ONCE10';
SELECT is(pg_temp.amend('rita', 'cp', '[{"action":"add_line","sku":"GB-1","qty":1}]') ->> 'status', 'applied', 'staff switch the coupon off; a line is added');
SELECT is((SELECT string_agg(line_no || ':' || discount, ' ' ORDER BY line_no) FROM orderly.order_lines WHERE order_id = test.id('cp')),
          '1:36.00 2:0.00', 'the new line takes no discount; the agreed line keeps its 10 %');

-- A product taken off sale stays on the orders that have it: they change as before (other lines,
-- the address and its tax, fewer of it, without it); only more of it, or it anew, is refused.
INSERT INTO ids VALUES ('off', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":10},{"sku":"GB-1","qty":3}]'));
UPDATE orderly.products SET active = false WHERE code = 'GB';
SELECT is(pg_temp.amend('rita', 'off', '[{"action":"add_line","sku":"PH-128","qty":1}]') ->> 'status', 'applied',
          'a line of another product is added to an order with a product taken off sale');
SELECT is(pg_temp.amend('rita', 'off', '[{"action":"set_line","line":2,"qty":2}]') ->> 'status', 'applied',
          'the product taken off sale: fewer of it');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'off', '[{"action":"set_line","line":2,"qty":5}]') $$), 'OL409',
                 'line 2: product GB is not available', 'more of it is refused');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'off', '[{"action":"add_line","sku":"GB-1","qty":1}]') $$), 'OL409',
                 'line 4: product GB is not available', 'and so is a new line of it');
INSERT INTO orderly.tax_rates (country, region, rate, name) VALUES ('DE', 'BY', 7, 'USt BY');
INSERT INTO ids SELECT 'munich', (test.call('address_add', 'rita', jsonb_build_object('customer', test.id('acme'), 'recipient', 'Lager',
    'phone', '+4989100100', 'line1', 'Ring 1', 'city', 'München', 'region', 'BY', 'postal_code', '80331', 'country', 'DE')) ->> 'id')::bigint;
SELECT is(pg_temp.amend('rita', 'off', format('[{"action":"ship_to","address":%s}]', test.id('munich'))) ->> 'status', 'applied',
          'a new address in another tax place re-prices every line, the one taken off sale too');
SELECT is((SELECT string_agg(line_no || ':' || (tax = round(net * 0.07, 2) AND tax > 0), ' ' ORDER BY line_no) FROM orderly.order_lines WHERE order_id = test.id('off')),
          '1:true 2:true 3:true', 'each taxed at the new place''s 7 %');
SELECT is(pg_temp.amend('rita', 'off', '[{"action":"remove_line","line":2}]') ->> 'status', 'applied', 'and it can be taken out');
SELECT ok(pg_temp.holds_open(test.id('off')) AND pg_temp.stock_consistent(), 'the stock follows every change');
UPDATE orderly.products SET active = true WHERE code = 'GB';
-- The same item asked for in other words (a line stored by SKU, changed with options) is as sold;
-- another variant of it is a new sale.
INSERT INTO ids VALUES ('off2', test.submitted('rita', test.id('acme'), '[{"sku":"PH-128","qty":4}]'));
UPDATE orderly.products SET active = false WHERE code = 'PH';
SELECT is(pg_temp.amend('rita', 'off2', '[{"action":"set_line","line":1,"qty":3,"options":{"storage":"128"}}]') ->> 'status', 'applied',
          'a line by SKU lowered with its own options: as sold');
SELECT throws_ok(format($$ SELECT pg_temp.amend('rita', 'off2', '[{"action":"set_line","line":1,"options":{"storage":"256"}}]') $$), 'OL409',
                 'line 1: product PH is not available', 'its other variant is a new sale, refused');
UPDATE orderly.products SET active = true WHERE code = 'PH';

-- A strategic order with a made-to-order line: production hears of it once approved, as of a
-- custom order (it had to poll WORK QUEUE).
INSERT INTO ids VALUES ('st', test.submitted('rita', test.id('acme'), '[{"product":"CU","qty":1}]', '{"type":"strategic"}'));
SELECT test.call('order_approve', 'sam', jsonb_build_object('id', test.id('st'))) IS NOT NULL;
SELECT is(pg_temp.told('order.approved', test.id('st')), ARRAY['role:finance_manager', 'role:production_manager'],
          'an approved strategic order with a line to make goes to production too');

-- An option value taken off sale while a change waits for approval: the approval declines the
-- change (a conflict, as for a product), instead of failing and leaving the round undecidable.
INSERT INTO orderly.option_groups (product_id, code, name, variant, required, multiple)
SELECT id, 'wrap', 'Gift wrap', false, false, false FROM orderly.products WHERE code = 'GD';
INSERT INTO orderly.option_values (group_id, code, name, price_delta)
SELECT g.id, 'paper', 'Paper', 1 FROM orderly.option_groups g WHERE g.code = 'wrap';
UPDATE orderly.skus SET stock_on_hand = stock_on_hand + 100 WHERE code = 'GD-1';
INSERT INTO ids VALUES ('wr', test.submitted('rita', test.id('acme'), '[{"sku":"GD-1","qty":5,"options":{"wrap":"paper"}}]'));
SELECT is(pg_temp.amend('rita', 'wr', '[{"action":"set_line","line":1,"qty":12}]') ->> 'waiting_for', 'approval', 'a raise waits for approval');
UPDATE orderly.option_values SET active = false WHERE code = 'paper';
SELECT test.call('order_approve', 'sam', jsonb_build_object('id', test.id('wr'))) IS NOT NULL;
SELECT is((SELECT status FROM orderly.order_changes WHERE order_id = test.id('wr') ORDER BY id DESC LIMIT 1), 'declined',
          'the approval declines the change whose option value was taken off sale');

SELECT * FROM finish();
ROLLBACK;
