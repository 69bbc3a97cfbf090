-- The command registry: every api command function has exactly one row and begins with
-- orderly.begin_command under that row's name; usage and positional names agree with the row's
-- arguments; every command refuses an argument it does not list; register_command refuses bad
-- rows; begin_command's own checks; the security review's misspelt-argument cases; idempotency
-- keys: every command that changes something takes one (walked over the registry, tied to the
-- functions' volatility and to what the read-only ones really write), and the key mechanism.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(57);

DO $$
BEGIN
    -- Every role, so that every command's permission is held and only its arguments are judged.
    PERFORM admin.create_user('everything', 'everything-secret-1', ARRAY(SELECT name FROM orderly.roles WHERE name <> 'customer'));  -- but customer: a customer's login holds no staff role
    PERFORM admin.create_user('pm', 'pm-secret-1', ARRAY['admin']);            -- pricing.manage
    PERFORM admin.create_user('nobody', 'nobody-secret-1', '{}');
    PERFORM admin.create_user('gone', 'gone-secret-1', ARRAY['sales_rep']);
    PERFORM admin.lock_user('gone');
END
$$;

-- Each registered command with its function's source.
CREATE TEMP TABLE registered AS
SELECT c.name, c.function, p.oid AS fn_oid, p.prosrc
FROM orderly.commands c
LEFT JOIN pg_proc p ON p.oid = to_regprocedure(c.function || '(bigint,jsonb)');

-- Every api function a command could be: (actor bigint, args jsonb).
CREATE TEMP TABLE command_functions AS
SELECT p.oid AS fn_oid, p.oid::regprocedure AS fn, p.prosrc
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'api' AND p.pronargs = 2
  AND p.proargtypes[0] = 'bigint'::regtype AND p.proargtypes[1] = 'jsonb'::regtype;

-- A function and its row cannot disagree ------------------------------------------------------------

SELECT is_empty($$
    SELECT r.name, r.function FROM registered r
    WHERE r.fn_oid IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = r.fn_oid AND p.proretset AND p.prorettype = 'json'::regtype)
$$, 'every registered command''s function exists as (actor bigint, args jsonb) RETURNS SETOF json');

SELECT is_empty($$
    SELECT r.name FROM registered r
    WHERE r.prosrc !~ '^\s*DECLARE\s+\w+\s+orderly\.users\s*:=\s*orderly\.begin_command\('
       OR strpos(r.prosrc, format('orderly.begin_command(%L, ', r.name)) = 0
       OR length(r.prosrc) - length(replace(r.prosrc, 'orderly.begin_command(', '')) <> length('orderly.begin_command(')
$$, 'every command function''s first variable is orderly.begin_command under its own name, called once');

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'api'
      AND (strpos(p.prosrc, 'orderly.check_args(') > 0 OR strpos(p.prosrc, 'orderly.require_permission(') > 0)
$$, 'no api function checks its arguments or its permission itself (begin_command does; a second permission is has_permission)');

SELECT is_empty($$
    SELECT f.fn FROM command_functions f
    WHERE strpos(f.prosrc, 'orderly.actor(') > 0 OR f.prosrc ~ 'jsonb_object_keys\(\s*(\w+\.)?args\s*\)'
$$, 'no command function reads its actor or walks its argument names by hand');

SELECT is_empty($$
    SELECT f.fn FROM command_functions f
    WHERE (SELECT count(*) FROM registered r WHERE r.fn_oid = f.fn_oid) <> 1
$$, 'every api function taking (bigint, jsonb) is registered exactly once');

SELECT is(ARRAY[(SELECT count(*) FROM command_functions), (SELECT count(*) FROM api.command_registry())],
          ARRAY[(SELECT count(*) FROM orderly.commands), (SELECT count(*) FROM orderly.commands)],
          'as many command functions and api.command_registry documents as rows');

-- Usage and positional names are arguments ----------------------------------------------------------

SELECT is_empty($$
    SELECT c.name, m[1] FROM orderly.commands c, regexp_matches(c.usage, '([a-z_][a-z0-9_]*)=', 'g') AS m
    WHERE NOT EXISTS (SELECT 1 FROM orderly.command_arguments a WHERE a.command = c.name AND a.name = m[1])
$$, 'every key= of a usage is an argument of its command');

SELECT is_empty($$
    SELECT c.name, p FROM orderly.commands c, unnest(c.positional) AS p
    WHERE NOT EXISTS (SELECT 1 FROM orderly.command_arguments a WHERE a.command = c.name AND a.name = p)
$$, 'every positional name is an argument of its command');

-- Every command refuses an argument it does not list ------------------------------------------------

-- One loop over the registry, so that a command added later is held to this too: each command
-- called with args, and what came of it ('accepted', or the error's SQLSTATE and message).
CREATE FUNCTION pg_temp.call_every_command(who text, args jsonb)
RETURNS TABLE (name text, changes boolean, outcome text) LANGUAGE plpgsql AS $$
DECLARE
    c orderly.commands;
BEGIN
    FOR c IN SELECT * FROM orderly.commands x ORDER BY x.name LOOP
        name := c.name;
        changes := c.changes;
        BEGIN
            PERFORM test.call(split_part(c.function, '.', 2), who, args);
            outcome := 'accepted';
        EXCEPTION WHEN OTHERS THEN
            outcome := SQLSTATE || ' ' || SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END $$;

SELECT is(ARRAY(SELECT name || ': ' || outcome FROM pg_temp.call_every_command('everything', '{"bogus_argument": 1}')
                WHERE outcome NOT LIKE 'OL400 unknown argument "bogus\_argument"%'), '{}',
          'every command refuses bogus_argument with OL400 "unknown argument", even from a user holding every role');

-- register_command refuses bad rows -----------------------------------------------------------------

SELECT throws_ok($$SELECT orderly.register_command('ZZ PROBE', 'api.whoami', NULL, 'id:id!! q', 'ZZ PROBE', 'Probe.')$$,
                 'P0001', 'command ZZ PROBE: argument "id:id!!" is not name:type or name:type!',
                 'register_command: an argument that is not name:type[!]');
SELECT throws_ok($$SELECT orderly.register_command('ZZ PROBE', 'api.whoami', NULL, 'id:uuid', 'ZZ PROBE', 'Probe.')$$,
                 '23514', NULL, 'register_command: an unknown argument type');
SELECT throws_ok($$SELECT orderly.register_command('ZZ PROBE', 'api.no_such_function', NULL, '', 'ZZ PROBE', 'Probe.')$$,
                 'P0001', 'command ZZ PROBE: no function api.no_such_function(bigint, jsonb)',
                 'register_command: an unknown function');
SELECT throws_ok($$SELECT orderly.register_command('ZZ PROBE', 'api.whoami', NULL, 'id:id', 'ZZ PROBE', 'Probe.', '{code}')$$,
                 'P0001', 'command ZZ PROBE: every positional argument must be one of its arguments',
                 'register_command: a positional name that is not an argument');
SELECT throws_ok($$SELECT orderly.register_command('ZZ PROBE', 'api.whoami', 'no.such_permission', '', 'ZZ PROBE', 'Probe.')$$,
                 '23503', NULL, 'register_command: an unknown permission');
SELECT ok(NOT EXISTS (SELECT 1 FROM orderly.commands WHERE name = 'ZZ PROBE'), 'no refused row was written');

-- Registering again replaces the row and its whole argument list.
DO $$
BEGIN
    PERFORM orderly.register_command('ZZ PROBE', 'api.whoami', NULL, 'a:id! b:text', 'ZZ PROBE a= [b=]', 'Probe.');
    PERFORM orderly.register_command('ZZ PROBE', 'api.whoami', 'inbox.read', 'c:any', 'ZZ PROBE [c=]', 'Probe again.');
END
$$;
SELECT is((SELECT row(c.permission, c.usage, c.summary,
                      ARRAY(SELECT a.name || ':' || a.type || CASE WHEN a.required THEN '!' ELSE '' END
                            FROM orderly.command_arguments a WHERE a.command = c.name ORDER BY a.position))::text
           FROM orderly.commands c WHERE c.name = 'ZZ PROBE'),
          row('inbox.read', 'ZZ PROBE [c=]', 'Probe again.', ARRAY['c:any'])::text,
          'registering a command again replaces its row and its arguments');
DELETE FROM orderly.commands WHERE name = 'ZZ PROBE';

-- begin_command ---------------------------------------------------------------------------------------

SELECT throws_ok($$SELECT test.call('whoami', 'everything', '{"x": 1}')$$,
                 'OL400', 'unknown argument "x"; this command takes no arguments', 'WHOAMI takes no arguments');
SELECT throws_ok($$SELECT test.call('order_show', 'everything', '{"id": 1, "x": 1}')$$,
                 'OL400', 'unknown argument "x"; expected one of: id', 'ORDER SHOW names the arguments it takes');
SELECT throws_ok($$SELECT test.call('order_show', 'everything', '[1]')$$,
                 'OL400', 'arguments must be a JSON object', 'arguments are a JSON object');
SELECT throws_ok($$SELECT test.call('order_show', 'nobody', '{"id": 1}')$$,
                 'OL403', 'permission denied: order.read', 'the row''s permission is required');
SELECT throws_ok($$SELECT test.call('order_show', 'nobody', '{"bogus_argument": 1}')$$,
                 'OL403', 'permission denied: order.read', 'the permission is checked before the arguments');
SELECT throws_ok($$SELECT * FROM api.whoami(-1, '{}')$$, 'OL401', 'not authenticated', 'an unknown actor is OL401');
SELECT throws_ok($$SELECT test.call('order_list', 'gone', '{}')$$, 'OL401', 'account is locked',
                 'a locked actor is OL401');
SELECT throws_ok($$SELECT orderly.begin_command('ZZ NOT REGISTERED', test.uid('everything'), '{}')$$,
                 'P0001', 'command ZZ NOT REGISTERED is not registered', 'a command without a row is a defect');

-- The security review: misspelt arguments were ignored, now refused ------------------------------------

-- The state each call must leave as it was.
DO $$
BEGIN
    PERFORM test.call('tax_set', 'pm', '{"country": "DE", "rate": 19, "name": "DE VAT"}');
END
$$;
CREATE TEMP TABLE rule AS SELECT (test.call('rule_create', 'pm', '{"name": "Spring", "kind": "percent", "value": 10}') ->> 'id')::bigint AS id;
SELECT test.snapshot(ARRAY['orderly.pricing_rules', 'orderly.coupons', 'orderly.tax_rates', 'orderly.audit_log']);

-- RULE CREATE name=Dealer20 kind=percent value=20 segement=dealer: was a rule for every segment.
SELECT throws_ok($$SELECT test.call('rule_create', 'pm', '{"name": "Dealer20", "kind": "percent", "value": 20, "segement": "dealer"}')$$,
                 'OL400', 'unknown argument "segement"; expected one of: name, kind, value, buy, get, product, category, segment, currency, starts, ends, priority, exclusive, idempotency_key',
                 'RULE CREATE ... segement=dealer is refused');
SELECT ok(test.unchanged() AND NOT EXISTS (SELECT 1 FROM orderly.pricing_rules WHERE name = 'Dealer20'),
          'and creates no rule');

-- COUPON CREATE code=ONCE rules=[<a rule>] max_use=1: was a coupon without a use limit.
SELECT throws_ok(format($$SELECT test.call('coupon_create', 'pm', '{"code": "ONCE", "rules": [%s], "max_use": 1}')$$, (SELECT id FROM rule)),
                 'OL400', 'unknown argument "max_use"; expected one of: code, rules, rule, starts, ends, max_uses, max_uses_per_customer, idempotency_key',
                 'COUPON CREATE ... max_use=1 is refused');
SELECT ok(test.unchanged() AND NOT EXISTS (SELECT 1 FROM orderly.coupons WHERE lower(code) = 'once'),
          'and creates no coupon');

-- TAX SET country=DE remov=true rate=0: was German VAT set to 0.
SELECT throws_ok($$SELECT test.call('tax_set', 'pm', '{"country": "DE", "remov": true, "rate": 0}')$$,
                 'OL400', 'unknown argument "remov"; expected one of: country, region, rate, name, remove, idempotency_key',
                 'TAX SET ... remov=true rate=0 is refused');
SELECT ok(test.unchanged() AND (SELECT rate FROM orderly.tax_rates WHERE country = 'DE' AND region IS NULL) = 19,
          'and DE VAT is still 19');

-- Idempotency keys: every command that changes something takes one -----------------------------

-- The mark, the argument and the usage go together (register_command adds the argument and the
-- usage from the mark).
SELECT is_empty($$
    SELECT c.name FROM orderly.commands c
    WHERE c.changes <> ('idempotency_key' = ANY (c.argument_names))
       OR (c.changes AND (c.argument_names[cardinality(c.argument_names)] <> 'idempotency_key'
                          OR c.usage NOT LIKE '% [idempotency\_key=]'
                          OR NOT EXISTS (SELECT 1 FROM orderly.command_arguments a
                                         WHERE a.command = c.name AND a.name = 'idempotency_key'
                                           AND a.type = 'text' AND NOT a.required)))
$$, 'a command lists idempotency_key (optional, last, in its usage) exactly when it is marked as changing');

-- The mark is tied to the function: what only reads is STABLE (PostgreSQL then refuses a write
-- in its statements), everything else VOLATILE and marked. A new command that writes and is not
-- marked fails here, and so does a STABLE function marked as changing.
SELECT is_empty($$
    SELECT r.name, p.provolatile, c.changes
    FROM registered r JOIN orderly.commands c USING (name) JOIN pg_proc p ON p.oid = r.fn_oid
    WHERE p.provolatile <> CASE WHEN c.changes THEN 'v' ELSE 's' END
$$, 'a command''s function is VOLATILE exactly when the command is marked as changing, STABLE otherwise');

-- Every changing function follows the one pattern: replay first, every reply stored (one row).
SELECT is_empty($$
    SELECT r.name FROM registered r JOIN orderly.commands c USING (name)
    WHERE c.changes
      AND (r.prosrc !~ '^\s*DECLARE\s+u\s+orderly\.users\s*:=\s*orderly\.begin_command\([^;]*\);\s*v_replay\s+json\s*:=\s*orderly\.replay\(u,\s*(\w+\.)?args\);'
           OR substring(r.prosrc FROM '\mBEGIN\M(.*)$') !~ '^\s*IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;'
           OR EXISTS (SELECT 1 FROM regexp_matches(r.prosrc, 'RETURN\s+NEXT\s+(\S+)', 'g') m
                      WHERE m[1] <> 'v_replay;' AND m[1] <> 'orderly.remember(u,')
           OR r.prosrc ~* '\mRETURN\s+QUERY\M')
$$, 'every changing command: replay right after begin_command, and every reply (one row) through orderly.remember');

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.prosrc ~ 'orderly\.(replay|remember)\('
      AND p.oid NOT IN (SELECT r.fn_oid FROM registered r JOIN orderly.commands c USING (name) WHERE c.changes)
$$, 'nothing else replays or remembers: no read-only command, no helper');

-- What the functions do with the argument, walked over the registry like bogus_argument above.
SELECT is(ARRAY(SELECT name || ': ' || outcome FROM pg_temp.call_every_command('everything', '{"idempotency_key": "walk-1"}')
                WHERE (outcome LIKE 'OL400 unknown argument "idempotency\_key"%') = changes), '{}',
          'every changing command takes idempotency_key; every read-only one refuses it as an unknown argument');

-- Read-only commands write nothing: each one, called with arguments that work, leaves
-- PostgreSQL's count of written rows as it was. The list must name every command not marked as
-- changing, so a new read-only command is added here (and shown to write nothing).
DO $$
BEGIN
    PERFORM admin.load_demo_catalog();
    -- Every role but customer's (a customer login sees only its own customer, and has none).
    PERFORM admin.create_user('staff', 'staff-secret-1', ARRAY(SELECT name FROM orderly.roles WHERE name <> 'customer'));
END
$$;
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
INSERT INTO ids SELECT 'customer', (test.call('customer_create', 'staff',
    '{"name": "Walk GmbH", "email": "walk@example.com", "phone": "+4930555000"}') ->> 'id')::bigint;
SELECT test.call('address_add', 'staff', jsonb_build_object('customer', test.id('customer'), 'recipient', 'W. Alk',
    'phone', '+4930555001', 'line1', 'Weg 1', 'city', 'Berlin', 'region', 'BE', 'postal_code', '10115', 'country', 'DE')) IS NOT NULL;
INSERT INTO ids SELECT 'order', (test.call('order_create', 'staff', jsonb_build_object('customer', test.id('customer'),
    'lines', '[{"sku": "ACC-CABLE", "qty": 2}]'::jsonb, 'submit', true)) ->> 'id')::bigint;
INSERT INTO ids SELECT 'shipped', (test.call('order_create', 'staff', jsonb_build_object('customer', test.id('customer'),
    'lines', '[{"sku": "PHN-S2-128-BLK", "qty": 2}]'::jsonb, 'submit', true)) ->> 'id')::bigint;
INSERT INTO ids SELECT 'shipment', (test.call('shipment_create', 'staff', jsonb_build_object('order', test.id('shipped'),
    'lines', '[{"line": 1, "qty": 1}]'::jsonb, 'carrier', 'dhl')) ->> 'id')::bigint;

CREATE TEMP TABLE reading (command text PRIMARY KEY, args jsonb NOT NULL);
INSERT INTO reading VALUES
    ('WHOAMI', '{}'), ('INBOX', '{}'), ('CATALOG', '{}'), ('PRODUCT SHOW', '{"code": "PHN-X1"}'),
    ('PRODUCT PRICE', '{"code": "ACC-CABLE", "qty": 3, "ship_to": "DE"}'),
    ('CUSTOMER SHOW', jsonb_build_object('id', test.id('customer'))), ('CUSTOMER FIND', '{"q": "walk"}'),
    ('ORDER QUOTE', jsonb_build_object('customer', test.id('customer'), 'lines', '[{"sku": "ACC-CABLE", "qty": 1}]'::jsonb)),
    ('ORDER SHOW', jsonb_build_object('id', test.id('order'))), ('ORDER LIST', '{}'),
    ('PICK LIST', '{}'), ('WORK QUEUE', '{}'),
    ('SHIPMENT SHOW', jsonb_build_object('id', test.id('shipment'))), ('SHIPMENT LIST', jsonb_build_object('order', test.id('shipped'))),
    ('SHIPMENT ROUTE', jsonb_build_object('id', test.id('shipment'))),
    ('ORDER RISK', jsonb_build_object('id', test.id('order'))), ('RISK LIST', '{}'),
    ('APPROVAL SHOW', jsonb_build_object('order', test.id('order'))), ('APPROVAL QUEUE', '{}'), ('DELEGATE LIST', '{}'),
    ('PAYMENT LIST', jsonb_build_object('order', test.id('order'))), ('CANCEL LIST', '{}'), ('CHANGE LIST', '{}'),
    ('ORDER VERSIONS', jsonb_build_object('id', test.id('order'))), ('ORDER DIFF', jsonb_build_object('id', test.id('order'))),
    ('REPORT', '{"name": "sales"}'), ('AUDIT LIST', '{}');

SELECT set_eq($$SELECT command FROM reading$$, $$SELECT name FROM orderly.commands WHERE NOT changes$$,
              'the list below is every command not marked as changing');

CREATE FUNCTION pg_temp.read_only_writes() RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    r        record;
    n        bigint;
    failures text[] := '{}';
BEGIN
    FOR r IN SELECT x.command, x.args, c.function FROM reading x JOIN orderly.commands c ON c.name = x.command ORDER BY 1 LOOP
        n := test.writes();
        BEGIN
            PERFORM test.rows(split_part(r.function, '.', 2), 'staff', r.args);
            IF test.writes() <> n THEN
                failures := failures || (r.command || ': wrote ' || (test.writes() - n) || ' rows');
            END IF;
        EXCEPTION WHEN OTHERS THEN
            failures := failures || (r.command || ': ' || SQLSTATE || ' ' || SQLERRM);
        END;
    END LOOP;
    RETURN failures;
END $$;

SELECT is(pg_temp.read_only_writes(), '{}', 'every read-only command answers and writes nothing');
SELECT cmp_ok(test.writes(), '>', 0::bigint, 'while the calls that set them up did write (the count sees function writes)');

-- The mechanism (orderly.idempotent_start through begin_command, orderly.replay, orderly.remember) --

DO $$
BEGIN
    PERFORM admin.create_user('kim', 'kim-secret-1', ARRAY['production_manager']);   -- catalog.manage
END
$$;

-- STOCK ADJUST: applied twice, a retry would be visible in the stock.
CREATE TEMP TABLE replies (name text PRIMARY KEY, reply text);
INSERT INTO replies SELECT 'first', test.reply('stock_adjust', 'kim', '{"sku": "ACC-CABLE", "delta": 5, "idempotency_key": "adj-1"}');
SELECT is((SELECT stock_on_hand FROM orderly.skus WHERE code = 'ACC-CABLE'), 505, 'the first call adjusts the stock');
CREATE TEMP TABLE before_replay AS SELECT test.writes() AS n;
INSERT INTO replies SELECT 'again', test.reply('stock_adjust', 'kim', '{"sku": "ACC-CABLE", "delta": 5, "idempotency_key": "adj-1"}');
SELECT is((SELECT reply FROM replies WHERE name = 'again'), (SELECT reply FROM replies WHERE name = 'first'),
          'the same key and request: the first reply again, text for text');
SELECT is(ARRAY[(SELECT stock_on_hand FROM orderly.skus WHERE code = 'ACC-CABLE')::bigint, test.writes() - (SELECT n FROM before_replay)],
          ARRAY[505::bigint, 0], 'and nothing is written: the stock is adjusted once');
SELECT is((SELECT row(command, reply)::text FROM orderly.idempotency_keys WHERE user_id = test.uid('kim') AND key = 'adj-1'),
          row('STOCK ADJUST', (SELECT reply FROM replies WHERE name = 'first'))::text,
          'the key holds its command and the exact reply, in the command''s transaction');
SELECT throws_ok($$SELECT test.call('stock_adjust', 'kim', '{"sku": "ACC-CABLE", "delta": 6, "idempotency_key": "adj-1"}')$$,
                 'OL409', 'idempotency_key "adj-1" was already used for a different request',
                 'the same key with other arguments is a conflict');
SELECT throws_ok($$SELECT test.call('stock_set', 'kim', '{"sku": "ACC-CABLE", "on_hand": 5, "idempotency_key": "adj-1"}')$$,
                 'OL409', 'idempotency_key "adj-1" was already used for a different request',
                 'and so is the same key for another command');
SELECT is(test.call('stock_adjust', 'everything', '{"sku": "ACC-CABLE", "delta": 5, "idempotency_key": "adj-1"}') ->> 'on_hand',
          '510', 'keys are per user: another user''s "adj-1" is a request of its own');
SELECT is(test.call('stock_adjust', 'kim', '{"sku": "ACC-CABLE", "delta": 5}') ->> 'on_hand',
          '515', 'without a key the same request runs again');
SELECT throws_ok($$SELECT test.call('stock_adjust', 'kim', '{"sku": "ACC-CABLE", "delta": 5, "idempotency_key": "two words"}')$$,
                 'OL400', 'idempotency_key must be 1 to 200 visible characters without spaces', 'a key is checked');
SELECT throws_ok($$SELECT test.call('stock_adjust', 'kim', '{"sku": "NO-SUCH-SKU", "delta": 5, "idempotency_key": "adj-2"}')$$,
                 'OL404', NULL, 'a call that fails ...');
SELECT ok(NOT EXISTS (SELECT 1 FROM orderly.idempotency_keys WHERE user_id = test.uid('kim') AND key = 'adj-2'),
          '... leaves its key unused (it was claimed in the failed call''s transaction)');

-- Keys are forgotten after 24 hours; remember stores one reply per key.
UPDATE orderly.idempotency_keys SET created_at = now() - interval '25 hours' WHERE user_id = test.uid('kim') AND key = 'adj-1';
SELECT is(test.call('stock_adjust', 'kim', '{"sku": "ACC-CABLE", "delta": 1, "idempotency_key": "adj-1"}') ->> 'on_hand',
          '516', 'after 24 hours a key is forgotten and may be used again');
SELECT throws_ok($$SELECT orderly.remember((SELECT u FROM orderly.users u WHERE u.id = test.uid('kim')),
                                          '{"idempotency_key": "adj-1"}', '{"again": true}')$$,
                 'P0001', NULL, 'remember refuses a second reply for a key (a changing command answers with one row)');
SELECT is(orderly.remember((SELECT u FROM orderly.users u WHERE u.id = test.uid('kim')), '{}', '{"as" : "is"}')::text,
          '{"as" : "is"}', 'without a key remember just hands the reply back');

-- register_command: the argument comes from the mark, never from the list.
SELECT throws_ok($$SELECT orderly.register_command('ZZ PROBE', 'api.whoami', NULL, 'idempotency_key:text', 'ZZ PROBE', 'Probe.')$$,
                 'P0001', 'command ZZ PROBE: idempotency_key is not listed; changes => true adds it',
                 'register_command: idempotency_key is not listed by hand');

SELECT throws_ok($$ SELECT admin.purge_idempotency_keys(NULL) $$, 'OL400',
                 'older_than is required (keys are kept at least 24 hours)', 'purging with no age is refused, not a quiet 0');
-- '1 mon -31 days' is at most 0 days on any date (no month has more than 31), though it compares
-- as +1 day with interval's own 30-day months.
SELECT throws_ok($$ SELECT admin.purge_idempotency_keys('1 mon -31 days') $$, 'OL400',
                 'idempotency keys are kept at least 24 hours', 'an interval that is less than a day in calendar time is refused');
SELECT is(ARRAY(SELECT name FROM orderly.commands WHERE staff_only IS NOT NULL ORDER BY name), ARRAY['APPROVAL SHOW', 'AUDIT LIST', 'CUSTOMER CREATE', 'PICK LIST', 'REPORT', 'WORK QUEUE'],
          'the staff-only commands are rows of the registry (V029)');
SELECT is_empty($$
    SELECT f.fn FROM command_functions f WHERE f.prosrc ~ 'IF orderly\.own_customer\(u\) IS NOT NULL THEN\s+RAISE'
$$, 'no command function refuses a customer login by hand (begin_command reads staff_only)');
SELECT * FROM finish();
ROLLBACK;
