-- What a customer login may see (issue 11; R__045_customer_view.sql): the keys of every document
-- a customer receives, listed exactly and recursively, on the demo data: the customer orders,
-- a colleague (a second login of the customer) and a sales manager change it, the customer
-- submits, a sales supervisor rejects, the colleague submits again, the supervisor approves, an
-- admin sends notices. No staff username or display name, approval rule, step, role, reason or
-- comment reaches the customer; staff documents stay whole.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(50);

-- The demo: a user per role (the customer login named "customer"), the catalog, the approval
-- rules, the demo customer with its address; and a colleague, a second login of that customer.
DO $$
BEGIN
    PERFORM admin.create_demo_users();
    PERFORM admin.load_demo_catalog();
    PERFORM admin.load_demo_approvals();
    PERFORM admin.create_user('colleague', 'colleague-secret-1', ARRAY['customer']);
    PERFORM admin.link_customer('colleague', admin.load_demo_customer());
END
$$;
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
INSERT INTO ids VALUES ('demo', admin.load_demo_customer());

-- Every key path of a document: "lines[].explanation[].step" (an array's elements under "[]").
CREATE FUNCTION pg_temp.paths(j jsonb, prefix text DEFAULT '') RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    k text;
    v jsonb;
BEGIN
    IF jsonb_typeof(j) = 'object' THEN
        FOR k, v IN SELECT e.key, e.value FROM jsonb_each(j) e LOOP
            RETURN NEXT prefix || k;
            RETURN QUERY SELECT pg_temp.paths(v, prefix || k || CASE WHEN jsonb_typeof(v) = 'object' THEN '.' ELSE '' END);
        END LOOP;
    ELSIF jsonb_typeof(j) = 'array' THEN
        FOR v IN SELECT e FROM jsonb_array_elements(j) e LOOP
            RETURN QUERY SELECT pg_temp.paths(v, prefix || '[]' || CASE WHEN jsonb_typeof(v) = 'object' THEN '.' ELSE '' END);
        END LOOP;
    END IF;
END
$$;
-- Every string value of a document.
CREATE FUNCTION pg_temp.strings(j jsonb) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT v #>> '{}' FROM jsonb_path_query(j, 'strict $.**') v WHERE jsonb_typeof(v) = 'string'
$$;
CREATE FUNCTION pg_temp.keys(j jsonb) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(DISTINCT p ORDER BY p), '{}') FROM pg_temp.paths(j) p
$$;
-- Names a customer must never read: every staff login's username and display name.
CREATE FUNCTION pg_temp.staff_names() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT username FROM orderly.users WHERE orderly.own_customer(users) IS NULL
    UNION SELECT display_name FROM orderly.users WHERE orderly.own_customer(users) IS NULL
$$;
-- Whatever of a customer's document is a staff name, or a piece of approval text.
CREATE FUNCTION pg_temp.leaks(j jsonb) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(DISTINCT s ORDER BY s), '{}') FROM (
        SELECT s FROM pg_temp.strings(j) s WHERE s IN (SELECT pg_temp.staff_names())
        UNION ALL
        SELECT t FROM unnest(ARRAY['margin too thin', 'checked by phone', 'Standard orders up to 10 000', 'sales_supervisor',
                                   'round 1', 'step(s)', 'postgres', 'goodwill']) t
        WHERE position(t IN j::text) > 0) x
$$;

-- The keys a customer may see in ORDER SHOW, and so in every reply that is an order.
CREATE FUNCTION pg_temp.order_keys() RETURNS text[] LANGUAGE sql AS $$
    SELECT ARRAY[
        'cancellations', 'coupon', 'created_at', 'created_by', 'currency', 'customer', 'customer.company', 'customer.email',
        'customer.id', 'customer.name', 'customer.phone', 'customer.segment', 'history', 'history[].at',
        'history[].by', 'history[].from', 'history[].to', 'id', 'lines', 'lines[].cancelled', 'lines[].components',
        'lines[].discount', 'lines[].explanation', 'lines[].explanation[].amount',
        'lines[].explanation[].buy', 'lines[].explanation[].delta', 'lines[].explanation[].exclusive',
        'lines[].explanation[].free_units', 'lines[].explanation[].get', 'lines[].explanation[].group',
        'lines[].explanation[].kind', 'lines[].explanation[].name', 'lines[].explanation[].place',
        'lines[].explanation[].place.address_id', 'lines[].explanation[].place.country',
        'lines[].explanation[].place.region', 'lines[].explanation[].priority', 'lines[].explanation[].qty',
        'lines[].explanation[].rate', 'lines[].explanation[].rule_id',
        'lines[].explanation[].source', 'lines[].explanation[].step', 'lines[].explanation[].text',
        'lines[].explanation[].unit', 'lines[].explanation[].unit_price', 'lines[].explanation[].value',
        'lines[].explanation[].variant', 'lines[].gross', 'lines[].kind', 'lines[].line',
        'lines[].list_price', 'lines[].name', 'lines[].net', 'lines[].options', 'lines[].options.accessories',
        'lines[].options.colour', 'lines[].options.storage', 'lines[].override', 'lines[].override_by',
        'lines[].params', 'lines[].product', 'lines[].qty', 'lines[].sku',
        'lines[].tax', 'lines[].tax_rate', 'notes', 'notes[].at', 'notes[].by', 'notes[].id', 'notes[].kind',
        'notes[].text', 'open_amount', 'paid', 'payment_status', 'payment_terms', 'payments', 'pending_change', 'priced_at', 'refund_due', 'refunded', 'requested_date', 'ship_to', 'ship_to.city', 'ship_to.country',
        'ship_to.customer', 'ship_to.default', 'ship_to.id', 'ship_to.label', 'ship_to.line1',
        'ship_to.line2', 'ship_to.phone', 'ship_to.postal_code', 'ship_to.recipient', 'ship_to.region',
        'ship_to.removed_at', 'shipments', 'status', 'status_label', 'submitted_at', 'submitted_by', 'timeline',
        'timeline[].at', 'timeline[].event', 'totals',
        'totals.cancelled', 'totals.charges', 'totals.discount', 'totals.due', 'totals.net', 'totals.subtotal', 'totals.tax', 'totals.total', 'type', 'version']
$$;

-- The flow -------------------------------------------------------------------------------------

INSERT INTO ids SELECT 'order', (test.call('order_draft', 'customer', jsonb_build_object('customer', test.id('demo'),
    'note', 'Ring at the gate')) ->> 'id')::bigint;
CREATE TEMP TABLE replies (name text PRIMARY KEY, doc jsonb);
INSERT INTO replies SELECT 'line_add', test.call('order_line_add', 'customer', jsonb_build_object('order', test.id('order'),
    'product', 'PHN-X1', 'qty', 2, 'options', '{"colour":"wht","storage":"256","accessories":["case"]}'::jsonb));
SELECT NULL FROM test.call('order_line_add', 'colleague', jsonb_build_object('order', test.id('order'), 'sku', 'ACC-CABLE', 'qty', 4));
-- A draft a sales rep prepared for the customer: its logins see it and may submit it as it is,
-- but not rewrite it unseen under the rep's name.
INSERT INTO ids SELECT 'prepared', (test.call('order_create', 'sales_rep', jsonb_build_object('customer', test.id('demo'),
    'lines', '[{"sku":"ACC-CABLE","qty":2}]'::jsonb)) ->> 'id')::bigint;
SELECT throws_ok(format($$ SELECT test.call('order_line_set', 'customer', '{"order":%s,"line":1,"qty":7}') $$, test.id('prepared')), 'OL403',
                 format('order %1$s was prepared by staff: submit it as it is (ORDER SUBMIT %1$s), or ask them to change it', test.id('prepared')),
                 'a customer does not change a draft staff prepared');
SELECT ok((test.call('order_show', 'customer', jsonb_build_object('id', test.id('prepared'))) ->> 'status') = 'draft', 'but sees it');
SELECT NULL FROM test.call('order_submit', 'customer', jsonb_build_object('id', test.id('prepared')));
SELECT is((SELECT payload ->> 'submitted_by' FROM orderly.notifications WHERE kind = 'order.submitted'
             AND recipient_user_id = test.uid('sales_rep') AND (payload ->> 'order')::bigint = test.id('prepared')),
          'customer', 'and submits it as it is: the sales rep who prepared it is told (order.submitted)');
SELECT NULL FROM test.call('order_line_add', 'sales_manager', jsonb_build_object('order', test.id('order'), 'product', 'SVC-SETUP',
    'qty', 1, 'unit_price', '20', 'reason', 'goodwill'));
INSERT INTO replies SELECT 'staff_note', test.call('order_note', 'sales_manager', jsonb_build_object('order', test.id('order'),
    'text', 'Double box', 'kind', 'packaging', 'visibility', 'customer'));
-- A staff note without visibility is internal: the customer never sees it.
SELECT NULL FROM test.call('order_note', 'sales_manager', jsonb_build_object('order', test.id('order'),
    'text', 'Margin is thin on this one', 'kind', 'general'));
INSERT INTO replies SELECT 'note', test.call('order_note', 'customer', jsonb_build_object('order', test.id('order'),
    'text', 'Side entrance', 'kind', 'delivery'));
SELECT throws_ok(format($$ SELECT test.call('order_note', 'customer', '{"order":%s,"text":"for staff only","visibility":"internal"}') $$,
                        test.id('order')),
                 'OL400', 'a customer''s note is visible to the customer: visibility=internal is for staff',
                 'a customer cannot write an internal note (refused, not silently made visible)');
-- Accepted, and rolled back (the notes below are counted).
SELECT ok(test.accepted(format($$ SELECT test.call('order_note', 'customer', '{"order":%s,"text":"ring twice","visibility":""}') $$, test.id('order'))),
          'an empty visibility is "not given", as every empty argument');
INSERT INTO replies SELECT 'submit', test.call('order_submit', 'customer', jsonb_build_object('id', test.id('order')));
SELECT NULL FROM test.call('order_reject', 'sales_supervisor', jsonb_build_object('id', test.id('order'), 'reason', 'margin too thin'));
SELECT NULL FROM test.call('order_submit', 'colleague', jsonb_build_object('id', test.id('order')));
SELECT NULL FROM test.call('order_approve', 'sales_supervisor', jsonb_build_object('id', test.id('order'), 'comment', 'checked by phone'));
SELECT NULL FROM admin.notify('user:customer', 'Prices 2027');
SELECT NULL FROM admin.notify('role:customer', 'Maintenance tonight');
INSERT INTO replies SELECT 'show', test.call('order_show', 'customer', jsonb_build_object('id', test.id('order')));
INSERT INTO replies SELECT 'staff_show', test.call('order_show', 'sales_manager', jsonb_build_object('id', test.id('order')));

SELECT is((SELECT status FROM orderly.orders WHERE id = test.id('order')), 'ready', 'the flow ran: the order is approved (and ready)');

-- ORDER SHOW -------------------------------------------------------------------------------------

SELECT is(pg_temp.keys((SELECT doc FROM replies WHERE name = 'show')), pg_temp.order_keys(),
          'ORDER SHOW for a customer: exactly these keys, no approval, no history reasons');
SELECT is(pg_temp.leaks((SELECT doc FROM replies WHERE name = 'show')), '{}',
          'ORDER SHOW for a customer: no staff name, approval reason, comment, rule or role');
SELECT is(ARRAY(SELECT h ->> 'by' FROM jsonb_array_elements((SELECT doc FROM replies WHERE name = 'show') -> 'history') h),
          ARRAY['customer', 'customer', 'customer', 'staff', 'colleague', 'colleague', 'staff', 'staff'],
          'the history names the customer''s own logins, and "staff" for everybody else');
SELECT is(ARRAY(SELECT n ->> 'by' FROM jsonb_array_elements((SELECT doc FROM replies WHERE name = 'show') -> 'notes') n),
          ARRAY['customer', 'staff', 'customer'], 'so do the notes, of every kind');
SELECT is(jsonb_path_query_array((SELECT doc FROM replies WHERE name = 'show'), '$.lines[*].override_by'),
          '[null, null, "staff"]', 'a manual price: "staff" set it (its reason is internal)');
SELECT is(jsonb_path_query_array((SELECT doc FROM replies WHERE name = 'show'), '$.lines[2].explanation[*] ? (@.step == "override")'),
          '[{"step": "override", "text": "manual price 20.00 per unit (tiers and discounts not applied)", "amount": -9.00,
             "unit_price": 20.00}]'::jsonb,
          'and its explanation gives the price without the reason, in the text too');
SELECT is((SELECT doc FROM replies WHERE name = 'show') ->> 'created_by' || ' ' || ((SELECT doc FROM replies WHERE name = 'show') ->> 'submitted_by'),
          'customer colleague', 'created_by and submitted_by: the customer''s logins by name');
SELECT is((SELECT doc FROM replies WHERE name = 'staff_show'),
          orderly.order_doc((SELECT o FROM orderly.orders o WHERE o.id = test.id('order')))::jsonb,
          'staff see the whole order document');
SELECT is(jsonb_path_query_array((SELECT doc FROM replies WHERE name = 'staff_show'), '$.history[*].by') ->> 3,
          'sales_supervisor', 'with the approver''s name');
SELECT ok((SELECT doc FROM replies WHERE name = 'staff_show') ? 'approval', 'and the approval state');

-- Replies to the draft commands, ORDER NOTE, ORDER SUBMIT, ORDER CREATE -----------------------------

SELECT is(ARRAY(SELECT unnest(pg_temp.keys((SELECT doc FROM replies WHERE name = 'line_add')))
                EXCEPT SELECT unnest(pg_temp.order_keys())), '{}',
          'a draft command''s reply to a customer: only keys ORDER SHOW may show');
SELECT is(ARRAY(SELECT unnest(pg_temp.keys((SELECT doc FROM replies WHERE name = 'submit')))
                EXCEPT SELECT unnest(pg_temp.order_keys())), '{}',
          'so is ORDER SUBMIT''s');
SELECT is(pg_temp.leaks((SELECT doc FROM replies WHERE name = 'submit')), '{}', 'and it names no approval rule');
SELECT is(pg_temp.keys((SELECT doc FROM replies WHERE name = 'note')), ARRAY['at', 'by', 'id', 'kind', 'text'],
          'ORDER NOTE for a customer: exactly these keys');
SELECT is((SELECT doc FROM replies WHERE name = 'staff_note') ->> 'by', 'sales_manager', 'staff see who wrote a note');

INSERT INTO replies SELECT 'create', test.call('order_create', 'customer', jsonb_build_object('customer', test.id('demo'),
    'lines', '[{"product":"SVC-SETUP","qty":1}]'::jsonb, 'submit', true, 'idempotency_key', 'demo-setup-1'));
SELECT is(pg_temp.leaks((SELECT doc FROM replies WHERE name = 'create')), '{}', 'ORDER CREATE submit=true: no approval rule named');
SELECT ok(NOT (SELECT doc FROM replies WHERE name = 'create') ? 'approval', 'nor the pending step');
SELECT is(test.call('order_create', 'customer', jsonb_build_object('customer', test.id('demo'),
              'lines', '[{"product":"SVC-SETUP","qty":1}]'::jsonb, 'submit', true, 'idempotency_key', 'demo-setup-1')),
          (SELECT doc FROM replies WHERE name = 'create'), 'a retry with its idempotency key replays the customer''s reply');

-- ORDER LIST and ORDER QUOTE -----------------------------------------------------------------------

SELECT is(pg_temp.keys(test.rows('order_list', 'customer', '{}')),
          ARRAY['[].created_at', '[].created_by', '[].currency', '[].customer', '[].customer_name', '[].due', '[].id', '[].lines',
                '[].requested_date', '[].status', '[].submitted_at', '[].total', '[].type'],
          'ORDER LIST for a customer: exactly these keys');
SELECT is(pg_temp.leaks(test.rows('order_list', 'customer', '{}')), '{}', 'ORDER LIST: no staff name');
SELECT is(pg_temp.keys(test.call('order_quote', 'customer', jsonb_build_object('customer', test.id('demo'),
              'lines', '[{"product":"ACC-CABLE","qty":4}]'::jsonb, 'coupon', 'WELCOME10'))), ARRAY[
    'coupon', 'coupon.applied', 'coupon.code', 'currency', 'customer', 'discount_total', 'lines',
    'lines[].components', 'lines[].discount', 'lines[].explanation', 'lines[].explanation[].amount',
    'lines[].explanation[].buy', 'lines[].explanation[].coupon', 'lines[].explanation[].exclusive',
    'lines[].explanation[].free_units', 'lines[].explanation[].get', 'lines[].explanation[].kind',
    'lines[].explanation[].name', 'lines[].explanation[].place', 'lines[].explanation[].place.address_id',
    'lines[].explanation[].place.country', 'lines[].explanation[].place.region',
    'lines[].explanation[].priority', 'lines[].explanation[].qty', 'lines[].explanation[].rate',
    'lines[].explanation[].rule_id', 'lines[].explanation[].source', 'lines[].explanation[].step',
    'lines[].explanation[].text', 'lines[].explanation[].unit', 'lines[].explanation[].value',
    'lines[].gross', 'lines[].kind', 'lines[].line', 'lines[].list_price', 'lines[].name', 'lines[].net',
    'lines[].options', 'lines[].override', 'lines[].params', 'lines[].product', 'lines[].qty', 'lines[].sku',
    'lines[].tax', 'lines[].tax_rate', 'priced_at', 'segment', 'ship_to', 'ship_to.address_id',
    'ship_to.country', 'ship_to.region', 'subtotal', 'tax', 'tax.name', 'tax.rate', 'tax.tax_rate_id',
    'tax.text', 'tax_total', 'total'],
          'ORDER QUOTE for a customer: exactly these keys (the pricing explanation is the customer''s too)');
SELECT is(test.call('order_quote', 'sales_rep', jsonb_build_object('customer', test.id('demo'),
              'lines', '[{"product":"ACC-CABLE","qty":4}]'::jsonb, 'coupon', 'WELCOME10')) - 'priced_at',
          test.call('order_quote', 'customer', jsonb_build_object('customer', test.id('demo'),
              'lines', '[{"product":"ACC-CABLE","qty":4}]'::jsonb, 'coupon', 'WELCOME10')) - 'priced_at',
          'a quote has nothing to hide today: staff and customer read the same');

-- CUSTOMER SHOW ---------------------------------------------------------------------------------

SELECT is(pg_temp.keys(test.call('customer_show', 'customer', jsonb_build_object('id', test.id('demo')))), ARRAY[
    'addresses', 'addresses[].city', 'addresses[].country', 'addresses[].customer', 'addresses[].default',
    'addresses[].id', 'addresses[].label', 'addresses[].line1', 'addresses[].line2', 'addresses[].phone',
    'addresses[].postal_code', 'addresses[].recipient', 'addresses[].region', 'addresses[].removed_at',
    'company', 'created_at', 'email', 'id', 'language', 'name', 'orders', 'orders.count', 'orders.drafts',
    'orders.last_order_at', 'orders.totals', 'orders.totals[].amount', 'orders.totals[].currency',
    'orders.totals[].orders', 'phone', 'region', 'segment', 'terms', 'terms.payment_terms', 'updated_at'],
          'CUSTOMER SHOW for a customer: exactly these keys (its payment terms, not its credit limit)');
SELECT is(pg_temp.leaks(test.call('customer_show', 'customer', jsonb_build_object('id', test.id('demo')))), '{}',
          'CUSTOMER SHOW: no staff name');

-- PRODUCT SHOW ---------------------------------------------------------------------------------

SELECT is(ARRAY(SELECT k FROM unnest(pg_temp.keys(test.call('product_show', 'customer', '{"code":"PHN-X1"}'))) k WHERE k LIKE 'skus%'),
          ARRAY['skus', 'skus[].active', 'skus[].available', 'skus[].options', 'skus[].options.colour', 'skus[].options.storage',
                'skus[].sku', 'skus[].sku_id'],
          'PRODUCT SHOW for a customer: each SKU''s available stock, not on hand and reserved (other customers'' orders, live)');
SELECT ok(test.call('product_show', 'sales_rep', '{"code":"PHN-X1"}') -> 'skus' -> 0 ?& ARRAY['on_hand', 'reserved', 'available'],
          'staff see all three');

-- INBOX and pushed events ------------------------------------------------------------------------

SELECT is(pg_temp.keys(test.rows('inbox', 'customer', '{}')),
          ARRAY['[].created_at', '[].id', '[].kind', '[].payload', '[].payload.at', '[].payload.currency', '[].payload.customer',
                '[].payload.from', '[].payload.message', '[].payload.order', '[].payload.status', '[].payload.status_label',
                '[].payload.total', '[].payload.type', '[].read', '[].recipient', '[].recipient.role', '[].recipient.user'],
          'INBOX for a customer: exactly these keys');
SELECT is((SELECT jsonb_object_agg(r ->> 'kind', ARRAY(SELECT jsonb_object_keys(r -> 'payload') ORDER BY 1))
           FROM jsonb_array_elements(test.rows('inbox', 'customer', '{}')) r WHERE r ->> 'kind' LIKE 'approval.%'),
          jsonb_build_object('approval.approved', ARRAY['currency', 'customer', 'order', 'total', 'type'],
                             'approval.rejected', ARRAY['currency', 'customer', 'order', 'total', 'type']),
          'approval events tell the customer its order, not who decided, at which step or why');
SELECT is(pg_temp.leaks(test.rows('inbox', 'customer', '{}')), '{}', 'INBOX: no staff name, reason or role');
SELECT is(ARRAY(SELECT r -> 'payload' ->> 'from' FROM jsonb_array_elements(test.rows('inbox', 'customer', '{}')) r
                WHERE r ->> 'kind' = 'admin.notice'), ARRAY['staff', 'staff'],
          'an admin''s notice comes from "staff", to the login or to the role customer');
SELECT is((SELECT jsonb_agg(f.event::jsonb - 'read' ORDER BY f.id DESC)
           FROM api.event_feed(0) f
           WHERE f.recipient_user_id = test.uid('customer') OR f.recipient_role = 'customer'),
          (SELECT jsonb_agg(r - 'read') FROM jsonb_array_elements(test.rows('inbox', 'customer', '{}')) r),
          'a pushed event is the customer''s INBOX row');
-- A role of customer permissions an admin made for customers' logins: its notices are the
-- customers' view too. A staff kind stored for the login (before api.notify refused it, or
-- while it was staff's) is not listed.
SELECT admin.create_role('buyers', 'the buying team');
SELECT admin.grant_role('customer', 'buyers');
SELECT admin.notify('role:buyers', 'New price list');
INSERT INTO orderly.notifications (recipient_user_id, kind, payload)
VALUES (test.uid('customer'), 'production.issue', '{"order": 1, "note": "die cracked"}');
SELECT is(ARRAY(SELECT coalesce(r -> 'recipient' ->> 'role', r -> 'recipient' ->> 'user') || ' ' || (r ->> 'kind') || ' '
                       || coalesce(r -> 'payload' ->> 'from', '-')
                FROM jsonb_array_elements(test.rows('inbox', 'customer', '{}')) r
                WHERE r -> 'recipient' ->> 'role' = 'buyers' OR r ->> 'kind' = 'production.issue'),
          ARRAY['buyers admin.notice staff'],
          'a notice to a customers'' role is from "staff"; a stored staff kind is not in a customer''s INBOX');
SELECT is(jsonb_array_length(test.rows('inbox', 'customer', '{"limit": 1}')), 1,
          'a page is never cut short by what a customer may not see (the newest row is the hidden one)');
SELECT ok((SELECT bool_and(f.event::jsonb -> 'payload' ? 'approved_by') FROM api.event_feed(0) f WHERE f.kind = 'order.approved'),
          'the finance manager''s event still names the approver');

-- order.status events (issue 12), raised at commit by a deferred trigger: flushed here -----------

SET CONSTRAINTS orderly.order_status_events IMMEDIATE;
SELECT is(ARRAY(SELECT r -> 'payload' ->> 'status' FROM jsonb_array_elements(test.rows('inbox', 'customer', '{}')) r
                WHERE r ->> 'kind' = 'order.status' AND (r -> 'payload' ->> 'order')::bigint = test.id('order') ORDER BY (r ->> 'id')::bigint),
          ARRAY['approved', 'ready'], 'the customer''s login hears every status change from approval on, none before');
SELECT is((SELECT array_agg(DISTINCT k ORDER BY k) FROM jsonb_array_elements(test.rows('inbox', 'customer', '{}')) r,
                  jsonb_object_keys(r -> 'payload') k WHERE r ->> 'kind' = 'order.status'),
          ARRAY['at', 'order', 'status', 'status_label'], 'order.status for a customer: exactly these keys');
SELECT is((SELECT count(*)::integer FROM jsonb_array_elements(test.rows('inbox', 'colleague', '{}')) r
           WHERE r ->> 'kind' = 'order.status' AND (r -> 'payload' ->> 'order')::bigint = test.id('order')), 2,
          'so does every other login of the customer');
SELECT is(pg_temp.leaks(test.rows('inbox', 'customer', '{}')), '{}', 'INBOX with status events: still no staff name');

-- The allow-list itself ----------------------------------------------------------------------------

SELECT is(orderly.visible_doc('order_history', '{"from":"draft","to":"submitted","by":"ann","secret":1,"reason":"x"}', 7)::jsonb,
          '{"from":"draft","to":"submitted","by":"staff"}', 'a key not on the list is left out: new keys stay hidden');
SELECT is(orderly.visible_doc('order_history', '{"from":"draft","secret":1}', NULL)::text, '{"from":"draft","secret":1}',
          'for staff (no own customer) the document is returned as it is');
SELECT is(orderly.visible_doc('order_note', '[{"id":1,"kind":"internal","text":"x","visibility":"customer"},{"id":2,"kind":"general","text":"y","visibility":"customer"},{"id":3,"kind":"general","text":"z","visibility":"internal"}]', 7)::jsonb,
          '[{"id":2,"kind":"general","text":"y"}]', 'a note of a kind not on the list is left out, and so is an internal note');
SELECT is(orderly.visible_doc('notification', '{"id":1,"kind":"order.approved","payload":{"approved_by":"fay"}}', 7)::jsonb,
          '{"id":1,"kind":"order.approved","payload":{}}', 'an event kind without a customer list shows an empty payload');
SELECT throws_ok($$ SELECT orderly.visible_doc('no_such_kind', '{}', 7) $$, NULL, 'no customer view of no_such_kind documents',
                 'a document kind without a list is a bug, not something to show');

-- A hold of the customer's own order: it hears of it once (order.status, its label), not a second
-- event with the hold's internal reason taken out.
SELECT NULL FROM test.call('order_hold', 'finance_manager', jsonb_build_object('id', test.id('order'), 'reason', 'check the margin'));
SELECT is((SELECT array_agg(n.kind ORDER BY n.kind) FROM orderly.notifications n
           WHERE n.recipient_user_id = test.uid('customer') AND (n.payload ->> 'order')::bigint = test.id('order')
             AND (n.kind = 'order.on_hold' OR n.payload ->> 'status' = 'on_hold')),
          ARRAY['order.status'], 'a hold reaches the customer who created the order once, as order.status');
SELECT * FROM finish();
ROLLBACK;
