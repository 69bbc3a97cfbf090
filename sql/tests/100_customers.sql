-- Customers and addresses: validation and normalisation, one default address, who sees which
-- customer, FIND on its trigram indexes, linking a customer login, audit, grants.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(92);

DO $$
BEGIN
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('sam', 'sam-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('wally', 'wally-secret-1', ARRAY['warehouse']);
    PERFORM admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
END
$$;

CREATE FUNCTION pg_temp.find(who text, q text) RETURNS bigint[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg((r::jsonb ->> 'id')::bigint ORDER BY o), '{}')
    FROM api.customer_find(test.uid(who), jsonb_build_object('q', q)) WITH ORDINALITY AS t(r, o)
$$;
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);

-- Structure ------------------------------------------------------------------------------------

SELECT has_table('orderly', 'customers', 'orderly.customers exists');
SELECT has_table('orderly', 'addresses', 'orderly.addresses exists');
SELECT is((SELECT count(*)::integer FROM orderly.countries), 249, 'all 249 ISO 3166-1 countries are seeded');
SELECT has_column('orderly', 'users', 'customer_id', 'a login can be linked to a customer');
SELECT has_index('orderly', 'customers', 'customers_email_lower_key', 'e-mails are unique case-insensitively');
SELECT has_index('orderly', 'addresses', 'addresses_one_default_per_customer', 'one default address per customer');
SELECT has_index('orderly', 'customers', 'customers_name_c_idx', 'FIND reads names in order from an index');
SELECT has_index('orderly', 'customers', 'customers_phone_c_idx', 'FIND looks up phones and their prefixes in an index');

-- Create, normalise, validate -------------------------------------------------------------------

INSERT INTO ids SELECT 'acme', (test.call('customer_create', 'rita',
    '{"name":" Acme GmbH ","email":"Buyer@Acme.example","phone":"0049 (30) 1234-567","segment":"Wholesale"}') ->> 'id')::bigint;
SELECT is((SELECT row(name, email, phone, segment)::text FROM orderly.customers WHERE id = (SELECT id FROM ids WHERE name = 'acme')),
          row('Acme GmbH', 'Buyer@Acme.example', '+49301234567', 'wholesale')::text,
          'name trimmed, e-mail kept as typed, phone in E.164, segment lowercased');
SELECT is((SELECT action || ' by ' || actor_user_id FROM orderly.audit_log ORDER BY id DESC LIMIT 1),
          'customer.create by ' || test.uid('rita'), 'creation is audited with its actor');
INSERT INTO ids SELECT 'plain', (test.call('customer_create', 'rita',
    '{"name":"Plain","email":"plain@example.com","phone":"+4930777777"}') ->> 'id')::bigint;
SELECT is((SELECT segment FROM orderly.customers WHERE id = (SELECT id FROM ids WHERE name = 'plain')),
          'standard', 'the default segment is standard');

SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', '{"name":"X","email":"BUYER@acme.EXAMPLE","phone":"+4930999999"}') $$,
                 'OL409', 'a customer with e-mail BUYER@acme.EXAMPLE already exists', 'duplicate e-mail, any case → conflict');
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', '{"name":"X","email":"x@example.com","phone":"030 1234567"}') $$,
                 'OL400', 'phone must be an international phone number, like +49 30 1234567', 'a national number is refused');
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', '{"name":"X","email":"x@example.com","phone":"+0301234567"}') $$,
                 'OL400', NULL, 'a country code cannot start with 0');
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', '{"name":"X","email":"x@example.com","phone":"+1234567890123456"}') $$,
                 'OL400', NULL, 'more than 15 digits is not E.164');
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', '{"name":"X","email":"x@@example.com","phone":"+4930999999"}') $$,
                 'OL400', 'email must be an e-mail address, like anna@example.com', 'two @ is refused');
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', '{"name":"X","email":"x y@example.com","phone":"+4930999999"}') $$,
                 'OL400', NULL, 'a space in an e-mail is refused');
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', '{"name":"   ","email":"x@example.com","phone":"+4930999999"}') $$,
                 'OL400', 'name is required', 'a blank name is missing');
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', E'{"name":"two\\nlines","email":"x@example.com","phone":"+4930999999"}') $$,
                 'OL400', 'name must be 1 to 200 characters on one line', 'a name is one line');
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', '{"name":"\u00a0\u3164\u2060","email":"x@example.com","phone":"+4930999999"}') $$,
                 'OL400', 'name must have a character one can see', 'a name of no-break spaces, fillers and joiners reads as blank: refused');
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', '{"name":"X","email":"x@example.com","phone":"+4930999999","vip":true}') $$,
                 'OL400', 'unknown argument "vip"; expected one of: name, phone, email, company, segment, region, language, idempotency_key',
                 'an unknown argument is refused, not ignored');
SELECT throws_ok($$ SELECT test.call('customer_create', 'wally', '{"name":"X","email":"x@example.com","phone":"+4930999999"}') $$,
                 'OL403', 'permission denied: customer.manage', 'the warehouse cannot create customers');
SELECT is((SELECT count(*)::integer FROM orderly.customers), 2, 'no failed create left a row');

-- Update ---------------------------------------------------------------------------------------

SELECT is(test.call('customer_update', 'rita', jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'acme'),
          'company', 'Acme', 'region', 'Berlin')) ->> 'company', 'Acme', 'update sets the fields given');
SELECT is(test.call('customer_update', 'rita', jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'acme'),
          'company', '')) -> 'company', 'null'::jsonb, 'an empty company clears it');
SELECT is((SELECT region FROM orderly.customers WHERE id = (SELECT id FROM ids WHERE name = 'acme')), 'Berlin',
          'fields not given are kept');
SELECT is((SELECT before ->> 'company' || ' → ' || coalesce(after ->> 'company', 'null') FROM orderly.audit_log ORDER BY id DESC LIMIT 1),
          'Acme → null', 'updates are audited with before and after');
SELECT throws_ok(format($$ SELECT test.call('customer_update', 'rita', '{"id":%s,"email":"plain@EXAMPLE.com"}') $$,
                        (SELECT id FROM ids WHERE name = 'acme')),
                 'OL409', NULL, 'changing to another customer''s e-mail → conflict');

-- Addresses ------------------------------------------------------------------------------------

INSERT INTO ids SELECT 'berlin', (test.call('address_add', 'rita', jsonb_build_object('customer', (SELECT id FROM ids WHERE name = 'acme'),
    'recipient', 'Anna', 'phone', '+4930111111', 'line1', 'Hauptstr. 1', 'city', 'Berlin', 'region', 'BE',
    'postal_code', '10115', 'country', 'de', 'default', false)) ->> 'id')::bigint;
SELECT ok((SELECT is_default AND country = 'DE' FROM orderly.addresses WHERE id = (SELECT id FROM ids WHERE name = 'berlin')),
          'the first address is the default even with default=false; country uppercased');
INSERT INTO ids SELECT 'hamburg', (test.call('address_add', 'rita', jsonb_build_object('customer', (SELECT id FROM ids WHERE name = 'acme'),
    'recipient', 'Dock', 'phone', '+4940222222', 'line1', 'Kai 2', 'city', 'Hamburg', 'region', 'HH',
    'postal_code', '20095', 'country', 'DE', 'default', true)) ->> 'id')::bigint;
SELECT is((SELECT array_agg(id ORDER BY id) FROM orderly.addresses WHERE is_default),
          ARRAY[(SELECT id FROM ids WHERE name = 'hamburg')], 'default=true moves the default');
SELECT is((test.call('customer_show', 'rita', jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'acme'))) -> 'addresses' -> 0 ->> 'id')::bigint,
          (SELECT id FROM ids WHERE name = 'hamburg'), 'SHOW lists the default address first');
SELECT throws_ok(format($$ SELECT test.call('address_update', 'rita', '{"id":%s,"default":false}') $$, (SELECT id FROM ids WHERE name = 'hamburg')),
                 'OL409', NULL, 'the default is moved, never just switched off');
SELECT throws_ok(format($$ SELECT test.call('address_add', 'rita', '{"customer":%s,"recipient":"A","phone":"+4930111111","line1":"x","city":"B","region":"BE","postal_code":"10115","country":"XX"}') $$,
                        (SELECT id FROM ids WHERE name = 'acme')),
                 'OL400', 'country must be an ISO 3166-1 code, like DE or US', 'an unknown country code is refused');
SELECT throws_ok(format($$ SELECT test.call('address_add', 'rita', '{"customer":%s,"recipient":"A","phone":"+4930111111","line1":"x","region":"BE","postal_code":"10115","country":"DE"}') $$,
                        (SELECT id FROM ids WHERE name = 'acme')),
                 'OL400', 'city is required', 'a required address field is named');
SELECT is(test.call('address_remove', 'rita', jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'hamburg'))) ->> 'new_default',
          (SELECT id FROM ids WHERE name = 'berlin')::text, 'removing the default promotes the remaining address');
SELECT ok((SELECT removed_at IS NOT NULL AND NOT is_default FROM orderly.addresses WHERE id = (SELECT id FROM ids WHERE name = 'hamburg')),
          'a removed address is kept, hidden and not default');
SELECT throws_ok(format($$ INSERT INTO orderly.addresses (customer_id, recipient, phone, line1, city, region, postal_code, country, is_default)
                          VALUES (%s, 'A', '+4930111111', 'x', 'B', 'BE', '10115', 'DE', true) $$, (SELECT id FROM ids WHERE name = 'acme')), '23505', NULL,
                 'the unique index is the backstop against two defaults');

-- Who sees what --------------------------------------------------------------------------------

INSERT INTO ids SELECT 'rival', (test.call('customer_create', 'rita',
    '{"name":"Acme Rival","email":"rival@example.com","phone":"+4930555555"}') ->> 'id')::bigint;
SELECT is(pg_temp.find('rita', 'ACME'), ARRAY[(SELECT id FROM ids WHERE name = 'acme'), (SELECT id FROM ids WHERE name = 'rival')],
          'staff find every match, names starting with q first');
SELECT is(pg_temp.find('rita', 'rival@example.com'), ARRAY[(SELECT id FROM ids WHERE name = 'rival')], 'find by e-mail');
SELECT is(pg_temp.find('rita', '+49 30 555'), ARRAY[(SELECT id FROM ids WHERE name = 'rival')], 'find by phone as typed');
SELECT is(pg_temp.find('rita', '0049 30 555'), ARRAY[(SELECT id FROM ids WHERE name = 'rival')], 'and with 00 for +, as CUSTOMER CREATE takes it');
SELECT is(pg_temp.find('rita', '100%'), '{}'::bigint[], 'LIKE wildcards in q are literal');
SELECT is(pg_temp.find('buyer', 'acme'), '{}'::bigint[], 'an unlinked customer login sees no customer');
SELECT throws_ok(format($$ SELECT test.call('customer_show', 'buyer', '{"id":%s}') $$, (SELECT id FROM ids WHERE name = 'acme')),
                 'OL404', NULL, 'not even by id');

SELECT lives_ok(format($$ SELECT admin.link_customer('buyer', %s) $$, (SELECT id FROM ids WHERE name = 'acme')), 'an admin links the login');
SELECT is((SELECT after ->> 'customer_id' FROM orderly.audit_log WHERE action = 'user.link_customer'),
          (SELECT id FROM ids WHERE name = 'acme')::text, 'the link is audited');
SELECT is(pg_temp.find('buyer', 'acme'), ARRAY[(SELECT id FROM ids WHERE name = 'acme')], 'a linked login finds only its own customer');
SELECT throws_ok(format($$ SELECT test.call('customer_show', 'buyer', '{"id":%s}') $$, (SELECT id FROM ids WHERE name = 'rival')),
                 'OL404', NULL, 'another customer is not found, not forbidden');
SELECT throws_ok(format($$ SELECT test.call('customer_update', 'buyer', '{"id":%s,"segment":"vip"}') $$, (SELECT id FROM ids WHERE name = 'acme')),
                 'OL403', 'a customer account cannot change its segment', 'a customer cannot pick its own prices');
SELECT throws_ok(format($$ SELECT test.call('customer_update', 'buyer', '{"id":%s,"email":"nobody@nowhere.example"}') $$, test.id('acme')),
                 'OL403', 'a customer account cannot change its e-mail address; customer service changes it',
                 'nor its e-mail address: trying addresses would tell which ones other customers use');
SELECT throws_ok(format($$ SELECT test.call('customer_update', 'buyer', '{"id":%s,"email":"%s"}') $$, test.id('acme'),
                        (SELECT email FROM orderly.customers WHERE id = test.id('rival'))),
                 'OL403', 'a customer account cannot change its e-mail address; customer service changes it',
                 'the same answer for an address another customer uses');
SELECT ok(test.call('customer_update', 'buyer', jsonb_build_object('id', test.id('acme'), 'phone', '+4930555000',
                                                                  'email', (SELECT email FROM orderly.customers WHERE id = test.id('acme')))) IS NOT NULL,
          'its own address given again with other changes is fine');
SELECT throws_ok(format($$ SELECT test.call('customer_update', 'buyer', '{"id":%s,"name":"Rival AG"}') $$, test.id('acme')),
                 'OL403', 'a customer account cannot change its name or company; customer service changes them',
                 'nor its name: renamed after another customer, staff would pick the wrong account');
SELECT throws_ok(format($$ SELECT test.call('customer_update', 'buyer', '{"id":%s,"company":"Rival AG"}') $$, test.id('acme')),
                 'OL403', NULL, 'nor its company');
SELECT throws_ok($$ SELECT admin.link_customer('buyer', 999999) $$, 'OL404', 'customer 999999 not found', 'linking to nobody is refused');
-- A customer login holds nothing the customer role does not: no staff role on it, no staff login linked.
SELECT throws_ok($$ SELECT admin.grant_role('buyer', 'sales_rep') $$, 'OL409', NULL, 'a staff role for a linked login is refused');
SELECT ok(NOT EXISTS (SELECT 1 FROM orderly.user_roles ur JOIN orderly.roles r ON r.id = ur.role_id
                          WHERE ur.user_id = test.uid('buyer') AND r.name = 'sales_rep'), '… and not granted');
SELECT throws_ok(format($$ SELECT admin.link_customer('wally', %s) $$, test.id('acme')), 'OL409', NULL,
                 'a staff login is not linked to a customer');
SELECT lives_ok($$ SELECT admin.create_user('buyer2', 'buyer2-secret-1', '{}') $$, 'a login with no role…');
SELECT lives_ok($$ SELECT admin.grant_role('buyer2', 'customer') $$, '… may be given the customer role');
-- Nor through a role it holds, nor the customer role itself, nor by holding the customer role (V030).
SELECT admin.create_role('buyers', 'the buying team');
SELECT lives_ok($$ SELECT admin.grant_role('buyer', 'buyers') $$, 'a role of customer permissions is fine');
SELECT throws_ok($$ SELECT admin.grant_permission('buyers', 'payment.record') $$, 'OL409',
                 'user "buyer" would be a customer''s login holding payment.record, which are not for customers',
                 'a staff permission for a role a customer''s login holds is refused');
SELECT throws_ok($$ SELECT admin.grant_permission('customer', 'order.approve') $$, 'OL409',
                 'permission "order.approve" is not for customers: the role customer may not hold it',
                 'nor for the role customer');
SELECT throws_ok($$ SELECT admin.grant_role('wally', 'customer') $$, 'OL409', NULL,
                 'nor the role customer for a staff login (holding it makes a customer''s login)');
SELECT lives_ok($$ SELECT admin.grant_permission('buyers', 'catalog.read') $$, 'a permission for customers is fine');
SELECT is((SELECT count(*)::integer FROM orderly.role_permissions rp JOIN orderly.roles r ON r.id = rp.role_id
           WHERE r.name = 'buyers' AND rp.permission = 'catalog.read'), 1, '… and granted');
-- The changes that give rights lock different rows; they meet at one lock, held to commit: a grant
-- in another session waits while this transaction holds it (dblink; skipped without it).
SELECT orderly.check_customer_rights('{}');
CREATE TEMP TABLE rights_race (available boolean, waited boolean);
DO $$
DECLARE
    v_pid integer;
    v_waited boolean := false;
    v_until timestamptz := clock_timestamp() + interval '10 seconds';
BEGIN
    IF NOT test.other_session('rights_other') THEN
        INSERT INTO rights_race VALUES (false, NULL);
        RETURN;
    END IF;
    SELECT pid INTO v_pid FROM dblink('rights_other', 'SELECT pg_backend_pid()') AS t(pid integer);
    PERFORM dblink_send_query('rights_other', $q$ SELECT admin.grant_permission('auditor', 'catalog.manage') $q$);
    WHILE NOT v_waited AND clock_timestamp() < v_until LOOP
        PERFORM pg_sleep(0.05);
        v_waited := EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = v_pid AND l.locktype = 'advisory' AND NOT l.granted);
    END LOOP;
    PERFORM dblink_cancel_query('rights_other');
    PERFORM dblink_disconnect('rights_other');
    INSERT INTO rights_race VALUES (true, v_waited);
END
$$;
SELECT CASE WHEN (SELECT available FROM rights_race)
            THEN ok((SELECT waited FROM rights_race), 'a grant elsewhere waits for this transaction''s change of rights to end')
            ELSE skip('dblink is not installed', 1) END;
-- At REPEATABLE READ the check would read an old snapshot: refused (another session, dblink).
CREATE TEMP TABLE rights_rr (available boolean, message text);
DO $$
BEGIN
    IF NOT test.other_session('rights_rr') THEN
        INSERT INTO rights_rr VALUES (false, NULL);
        RETURN;
    END IF;
    PERFORM dblink_exec('rights_rr', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
    BEGIN
        PERFORM * FROM dblink('rights_rr', $q$ SELECT admin.create_user('rr', 'rr-secret-1', '{}')::text $q$) AS t(x text);
        INSERT INTO rights_rr VALUES (true, 'accepted');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO rights_rr VALUES (true, SQLERRM);
    END;
    PERFORM dblink_disconnect('rights_rr');
END
$$;
SELECT CASE WHEN (SELECT available FROM rights_rr)
            THEN is((SELECT message FROM rights_rr), 'change users'' rights at READ COMMITTED (the default), not repeatable read',
                    'rights are not changed at REPEATABLE READ')
            ELSE skip('dblink is not installed', 1) END;

-- CUSTOMER SHOW's order summary ------------------------------------------------------------------

-- Acme's orders: rita's two submitted ones, one in EUR and one in USD, and a draft; sam's and the
-- customer login's, in EUR. Untaxed services (no tax rate here): totals are the prices. No
-- approval rule exists here, so a submitted order is approved at once.
INSERT INTO orderly.products (code, name, kind, base_price, currency) VALUES
    ('SVC-EUR', 'Service in euros', 'service', 100, 'EUR'), ('SVC-USD', 'Service in dollars', 'service', 50, 'USD');
CREATE FUNCTION pg_temp.order_for_acme(who text, product text, qty integer, submit boolean) RETURNS void LANGUAGE sql AS $$
    SELECT NULL FROM test.call('order_create', who, jsonb_build_object('customer', test.id('acme'), 'submit', submit,
                                                                        'lines', jsonb_build_array(jsonb_build_object('product', product, 'qty', qty))))
$$;
SELECT pg_temp.order_for_acme('rita', 'SVC-EUR', 2, true);
SELECT pg_temp.order_for_acme('rita', 'SVC-USD', 1, true);
SELECT pg_temp.order_for_acme('rita', 'SVC-EUR', 7, false);
SELECT pg_temp.order_for_acme('sam', 'SVC-EUR', 1, true);
SELECT pg_temp.order_for_acme('buyer', 'SVC-EUR', 3, true);
-- One transaction, one now(): the customer login's order is made the newest by hand.
UPDATE orderly.orders SET created_at = now() + interval '1 hour' WHERE created_by = test.uid('buyer');
CREATE FUNCTION pg_temp.summary(who text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT (test.call('customer_show', who, jsonb_build_object('id', test.id('acme'))) -> 'orders') - 'last_order_at'
$$;

SELECT is(pg_temp.summary('rita'),
          '{"count":3,"drafts":1,"totals":[{"currency":"EUR","orders":1,"amount":200.00},{"currency":"USD","orders":1,"amount":50.00}]}',
          'a sales rep''s summary counts only the orders the rep created, each currency on its own');
SELECT is(pg_temp.summary('sam'), '{"count":1,"drafts":0,"totals":[{"currency":"EUR","orders":1,"amount":100.00}]}',
          'another rep gets none of rita''s totals');
SELECT is(test.call('customer_show', 'sam', jsonb_build_object('id', test.id('acme'))) -> 'orders' ->> 'last_order_at',
          orderly.json_time(now()), 'nor the date of a newer order the rep may not see');
SELECT is(pg_temp.summary('wally'),
          '{"count":5,"drafts":1,"totals":[{"currency":"EUR","orders":3,"amount":600.00},{"currency":"USD","orders":1,"amount":50.00}]}',
          'order.read_all: every order of the customer; euros and dollars are never added up');
SELECT is(pg_temp.summary('buyer'), pg_temp.summary('wally'), 'a customer login: all of its customer''s orders');
SELECT is(test.call('customer_show', 'sam', jsonb_build_object('id', test.id('rival'))) -> 'orders',
          jsonb_build_object('count', 0, 'drafts', 0, 'totals', '[]'::jsonb, 'last_order_at', NULL),
          'no orders: no totals at all');
-- What a cancellation leaves on an order (R__198: what was cancelled, a fee) and a rejection.
UPDATE orderly.orders SET cancelled_total = total, charges_total = 10 WHERE created_by = test.uid('sam');
UPDATE orderly.orders SET status = 'rejected' WHERE created_by = test.uid('buyer');
SELECT is(pg_temp.summary('wally'),
          '{"count":5,"drafts":1,"totals":[{"currency":"EUR","orders":2,"amount":210.00},{"currency":"USD","orders":1,"amount":50.00}]}',
          'amounts after cancellations (a cancelled order counts its fee); a rejected order is not counted');

-- Idempotency keys (the mechanism: 015_command_registry.sql) -------------------------------------

-- A create: a retry gets the first customer back instead of a duplicate-e-mail conflict.
SELECT ok(test.replays('customer_create', 'rita',
                       '{"name":"Once","email":"once@example.com","phone":"+4930123123","idempotency_key":"cust-1"}'),
          'CUSTOMER CREATE sent twice with one key: the first reply again, nothing written');
SELECT is((SELECT count(*)::integer FROM orderly.customers WHERE email = 'once@example.com'), 1, 'one customer was created');
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita',
                        '{"name":"Twice","email":"twice@example.com","phone":"+4930123124","idempotency_key":"cust-1"}') $$,
                 'OL409', 'idempotency_key "cust-1" was already used for a different request', 'the key with other arguments: conflict');
SELECT is(test.call('customer_create', 'sam',
                    '{"name":"Twice","email":"twice@example.com","phone":"+4930123124","idempotency_key":"cust-1"}') ->> 'name',
          'Twice', 'another user''s key of the same name is his own');

-- An update: the retry does not change the customer again, even after someone else did.
DO $$
BEGIN
    PERFORM test.call('customer_update', 'rita', jsonb_build_object('id', test.id('acme'), 'region', 'Potsdam',
                                                                    'idempotency_key', 'upd-1'));
    PERFORM test.call('customer_update', 'sam', jsonb_build_object('id', test.id('acme'), 'region', 'Leipzig'));
END
$$;
SELECT is(test.call('customer_update', 'rita', jsonb_build_object('id', test.id('acme'), 'region', 'Potsdam',
                                                                  'idempotency_key', 'upd-1')) ->> 'region',
          'Potsdam', 'CUSTOMER UPDATE retried: the first reply ...');
SELECT is((SELECT region FROM orderly.customers WHERE id = test.id('acme')), 'Leipzig', '... and the later change stands');
SELECT ok(test.replays('customer_update', 'rita', jsonb_build_object('id', test.id('acme'), 'region', 'Potsdam',
                                                                      'idempotency_key', 'upd-1')),
          'text for text, nothing written');

-- A removal: the retry replays instead of finding the address gone.
INSERT INTO ids SELECT 'office', (test.call('address_add', 'rita', jsonb_build_object('customer', test.id('acme'),
    'recipient', 'Office', 'phone', '+4930111112', 'line1', 'Nebenstr. 2', 'city', 'Berlin', 'region', 'BE',
    'postal_code', '10117', 'country', 'DE', 'idempotency_key', 'addr-1')) ->> 'id')::bigint;
SELECT ok(test.replays('address_remove', 'rita', jsonb_build_object('id', test.id('office'), 'idempotency_key', 'rm-1')),
          'ADDRESS REMOVE sent twice with one key: the first reply again, nothing written');
SELECT throws_ok(format($$ SELECT test.call('address_remove', 'rita', '{"id":%s}') $$, test.id('office')),
                 'OL404', NULL, 'while without a key the second removal finds no address');

-- The demo customer ------------------------------------------------------------------------------

SELECT admin.create_user('customer', 'customer-demo', ARRAY['customer']);
SELECT is(admin.load_demo_customer(), admin.load_demo_customer(), 'the demo customer is created once');
SELECT is((SELECT count(*)::integer FROM orderly.addresses a JOIN orderly.customers c ON c.id = a.customer_id
           WHERE c.email = 'orders@demo-customer.example' AND a.is_default), 1, 'with one default address');
SELECT is((SELECT customer_id FROM orderly.users WHERE username = 'customer'), admin.load_demo_customer(),
          'and the demo customer login orders for it');

-- FIND stays on its indexes --------------------------------------------------------------------

SET LOCAL enable_seqscan = off;
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    plan text := '';
BEGIN
    FOR line IN EXECUTE format($f$EXPLAIN SELECT id FROM orderly.customers c
        WHERE lower(c.name) LIKE %1$L OR lower(c.email) LIKE %1$L OR c.phone LIKE %1$L$f$, q) LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RETURN plan;
END
$$;
SELECT matches(pg_temp.plan_of('%acme%'), 'customers_name_trgm_idx(.|\n)*customers_email_trgm_idx(.|\n)*customers_phone_trgm_idx',
               'a substring search can use all three trigram indexes');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row of this file names its actor');

-- The language of the customer's e-mail (issue 13).
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', '{"name":"Lang","email":"lang@example.com","phone":"+4930111222","language":"deutsch"}') $$,
                 'OL400', 'language must be a two-letter ISO 639-1 code, like en or de', 'a language is a two-letter code');
SELECT throws_ok($$ SELECT test.call('customer_create', 'rita', '{"name":"Lang","email":"lang@example.com","phone":"+4930111222","language":"xx"}') $$,
                 'OL400', 'language must be a two-letter ISO 639-1 code, like en or de', 'and one ISO 639-1 has (xx is none)');
SELECT is(test.call('customer_create', 'rita', '{"name":"Lang","email":"lang@example.com","phone":"+4930111222","language":"DE"}') ->> 'language',
          'de', 'CUSTOMER CREATE language= sets the language of its e-mail');
SELECT * FROM finish();
ROLLBACK;
