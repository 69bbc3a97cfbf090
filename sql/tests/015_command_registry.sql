-- The command registry: every api command function has exactly one row and begins with
-- orderly.begin_command under that row's name; usage and positional names agree with the row's
-- arguments; every command refuses an argument it does not list; register_command refuses bad
-- rows; begin_command's own checks; the security review's misspelt-argument cases.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(30);

DO $$
BEGIN
    -- Every role, so that every command's permission is held and only its arguments are judged.
    PERFORM admin.create_user('everything', 'everything-secret-1', ARRAY(SELECT name FROM orderly.roles));
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

-- One loop over the registry, so that a command added later is held to this too.
CREATE FUNCTION pg_temp.bogus_argument_failures() RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    c        orderly.commands;
    failures text[] := '{}';
BEGIN
    FOR c IN SELECT * FROM orderly.commands ORDER BY name LOOP
        BEGIN
            PERFORM test.call(split_part(c.function, '.', 2), 'everything', '{"bogus_argument": 1}');
            failures := failures || (c.name || ': accepted');
        EXCEPTION WHEN OTHERS THEN
            IF SQLSTATE <> 'OL400' OR SQLERRM NOT LIKE 'unknown argument "bogus\_argument"%' THEN
                failures := failures || (c.name || ': ' || SQLSTATE || ' ' || SQLERRM);
            END IF;
        END;
    END LOOP;
    RETURN failures;
END $$;

SELECT is(pg_temp.bogus_argument_failures(), '{}',
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
                 'OL400', 'unknown argument "segement"; expected one of: name, kind, value, buy, get, product, category, segment, starts, ends, priority, exclusive',
                 'RULE CREATE ... segement=dealer is refused');
SELECT ok(test.unchanged() AND NOT EXISTS (SELECT 1 FROM orderly.pricing_rules WHERE name = 'Dealer20'),
          'and creates no rule');

-- COUPON CREATE code=ONCE rules=[<a rule>] max_use=1: was a coupon without a use limit.
SELECT throws_ok(format($$SELECT test.call('coupon_create', 'pm', '{"code": "ONCE", "rules": [%s], "max_use": 1}')$$, (SELECT id FROM rule)),
                 'OL400', 'unknown argument "max_use"; expected one of: code, rules, rule, starts, ends, max_uses, max_uses_per_customer',
                 'COUPON CREATE ... max_use=1 is refused');
SELECT ok(test.unchanged() AND NOT EXISTS (SELECT 1 FROM orderly.coupons WHERE lower(code) = 'once'),
          'and creates no coupon');

-- TAX SET country=DE remov=true rate=0: was German VAT set to 0.
SELECT throws_ok($$SELECT test.call('tax_set', 'pm', '{"country": "DE", "remov": true, "rate": 0}')$$,
                 'OL400', 'unknown argument "remov"; expected one of: country, region, rate, name, remove',
                 'TAX SET ... remov=true rate=0 is refused');
SELECT ok(test.unchanged() AND (SELECT rate FROM orderly.tax_rates WHERE country = 'DE' AND region IS NULL) = 19,
          'and DE VAT is still 19');

SELECT * FROM finish();
ROLLBACK;
