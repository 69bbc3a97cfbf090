-- orderly.* helpers that later api functions build on: argument readers, permission checks,
-- errors.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(59);

-- arg_text -------------------------------------------------------------------------------------

SELECT is(orderly.arg_text('{"sku": "PHN-128"}', 'sku'), 'PHN-128', 'arg_text: string');
SELECT is(orderly.arg_text('{"sku": 1042}', 'sku'), '1042', 'arg_text: a number is accepted as text');
SELECT is(orderly.arg_text('{}', 'sku'), NULL, 'arg_text: missing optional is null');
SELECT is(orderly.arg_text('{"sku": null}', 'sku'), NULL, 'arg_text: JSON null is null');
SELECT is(orderly.arg_text(NULL, 'sku'), NULL, 'arg_text: null arguments');
SELECT is(orderly.arg_text('{"note": ""}', 'note'), '', 'arg_text: empty optional string kept');
SELECT throws_ok($$SELECT orderly.arg_text('{}', 'sku', true)$$, 'OL400', 'sku is required', 'arg_text: required');
SELECT throws_ok($$SELECT orderly.arg_text('{"sku": "  "}', 'sku', true)$$, 'OL400', 'sku is required',
                 'arg_text: required and blank');
SELECT throws_ok($$SELECT orderly.arg_text('{"sku": [1]}', 'sku')$$, 'OL400', 'sku must be a string', 'arg_text: array');
SELECT throws_ok($$SELECT orderly.arg_text('[1, 2]', 'sku')$$, 'OL400', 'arguments must be a JSON object',
                 'arguments must be an object');

-- arg_bigint / arg_int -----------------------------------------------------------------------------

SELECT is(orderly.arg_bigint('{"id": 1042}', 'id'), 1042::bigint, 'arg_bigint: number');
SELECT is(orderly.arg_bigint('{"id": "1042"}', 'id'), 1042::bigint, 'arg_bigint: numeric string');
SELECT is(orderly.arg_bigint('{"id": " -7 "}', 'id'), -7::bigint, 'arg_bigint: signed, trimmed');
SELECT is(orderly.arg_bigint('{"id": 12.0}', 'id'), 12::bigint, 'arg_bigint: integral number');
SELECT is(orderly.arg_bigint('{"id": "9223372036854775807"}', 'id'), 9223372036854775807, 'arg_bigint: max');
SELECT is(orderly.arg_bigint('{}', 'id'), NULL, 'arg_bigint: missing optional');
SELECT is(orderly.arg_bigint('{"id": ""}', 'id'), NULL, 'arg_bigint: empty string is missing');
SELECT throws_ok($$SELECT orderly.arg_bigint('{}', 'id', true)$$, 'OL400', 'id is required', 'arg_bigint: required');
SELECT throws_ok($$SELECT orderly.arg_bigint('{"id": "12a"}', 'id')$$, 'OL400', 'id must be an integer', 'arg_bigint: junk');
SELECT throws_ok($$SELECT orderly.arg_bigint('{"id": 1.5}', 'id')$$, 'OL400', 'id must be an integer', 'arg_bigint: fraction');
SELECT throws_ok($$SELECT orderly.arg_bigint('{"id": "1e3"}', 'id')$$, 'OL400', 'id must be an integer', 'arg_bigint: exponent');
SELECT throws_ok($$SELECT orderly.arg_bigint('{"id": true}', 'id')$$, 'OL400', 'id must be an integer', 'arg_bigint: boolean');
SELECT throws_ok($$SELECT orderly.arg_bigint('{"id": "9223372036854775808"}', 'id')$$, 'OL400', 'id is out of range',
                 'arg_bigint: overflow');
SELECT is(orderly.arg_int('{"qty": "3"}', 'qty'), 3, 'arg_int: numeric string');
SELECT is(orderly.arg_int('{"qty": 3}', 'qty', true), 3, 'arg_int: number');
SELECT throws_ok($$SELECT orderly.arg_int('{"qty": 2147483648}', 'qty')$$, 'OL400', 'qty is out of range', 'arg_int: overflow');
SELECT throws_ok($$SELECT orderly.arg_int('{"qty": "three"}', 'qty')$$, 'OL400', 'qty must be an integer', 'arg_int: junk');

-- arg_bool / arg_numeric -------------------------------------------------------------------------

SELECT is(orderly.arg_bool('{"x": true}', 'x'), true, 'arg_bool: true');
SELECT is(orderly.arg_bool('{"x": false}', 'x'), false, 'arg_bool: false');
SELECT is(orderly.arg_bool('{"x": "TRUE"}', 'x'), true, 'arg_bool: "TRUE"');
SELECT is(orderly.arg_bool('{"x": "false"}', 'x'), false, 'arg_bool: "false"');
SELECT is(orderly.arg_bool('{"x": "yes"}', 'x'), true, 'arg_bool: "yes"');
SELECT is(orderly.arg_bool('{"x": 0}', 'x'), false, 'arg_bool: 0');
SELECT is(orderly.arg_bool('{}', 'x'), NULL, 'arg_bool: missing optional');
SELECT throws_ok($$SELECT orderly.arg_bool('{"x": "maybe"}', 'x')$$, 'OL400', 'x must be true or false', 'arg_bool: junk');
SELECT throws_ok($$SELECT orderly.arg_bool('{}', 'x', true)$$, 'OL400', 'x is required', 'arg_bool: required');
SELECT is(orderly.arg_numeric('{"price": "12.50"}', 'price'), 12.50, 'arg_numeric: string');
SELECT is(orderly.arg_numeric('{"price": 12.5}', 'price'), 12.5, 'arg_numeric: number');
SELECT throws_ok($$SELECT orderly.arg_numeric('{"price": "NaN"}', 'price')$$, 'OL400', 'price must be a number',
                 'arg_numeric: NaN refused');

-- arg_date ------------------------------------------------------------------------------------------

SELECT is(orderly.arg_date('{"on": " 2026-12-24 "}', 'on'), '2026-12-24'::date, 'arg_date: an ISO day');
CREATE FUNCTION pg_temp.date_refused(v text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM orderly.arg_date(jsonb_build_object('on', v), 'on');
    RETURN false;
EXCEPTION WHEN SQLSTATE 'OL400' THEN
    RETURN true;
END
$$;
SELECT is(ARRAY(SELECT v FROM unnest(ARRAY['today', 'infinity', '99999-01-01', 'Dec 24 2026', '2026-02-30', '2026-12-24T10:00:00Z']) v
                WHERE pg_temp.date_refused(v)),
          ARRAY['today', 'infinity', '99999-01-01', 'Dec 24 2026', '2026-02-30', '2026-12-24T10:00:00Z'],
          'arg_date: any other spelling PostgreSQL would take for a date is refused');
SELECT throws_ok($$SELECT orderly.arg_date('{"on": "today"}', 'on')$$, 'OL400', 'on must be a date like 2026-12-24',
                 'arg_date: the message names the argument');

-- arg_time ------------------------------------------------------------------------------------------

SELECT is(orderly.arg_time('{"at": "2026-01-03T10:00:00+01:00"}', 'at'), '2026-01-03T09:00:00Z'::timestamptz, 'arg_time: with an offset');
SELECT throws_ok($$SELECT orderly.arg_time('{"at": "2026-01-03T10:00:00+99:00"}', 'at')$$, 'OL400',
                 'at must be a date or time like 2025-01-31 or 2025-01-31T12:00:00Z', 'arg_time: an offset out of range names the argument');
SELECT throws_ok($$SELECT orderly.arg_time('{"at": "2026-02-30"}', 'at')$$, 'OL400',
                 'at must be a date or time like 2025-01-31 or 2025-01-31T12:00:00Z', 'arg_time: a day that does not exist');

-- Errors and permission checks -------------------------------------------------------------------

SELECT throws_ok($$SELECT orderly.fail('OL409', 'order is already approved')$$, 'OL409', 'order is already approved',
                 'fail raises the given code and message');
SELECT is(orderly.for_message(E'a\nb'), 'a b', 'for_message keeps messages on one line');
SELECT is(length(orderly.for_message(repeat('x', 500))), 64, 'for_message shortens long input');

DO $$ BEGIN PERFORM admin.create_user('ivy', 'ivy-secret-1', ARRAY['auditor']); END $$;
CREATE FUNCTION pg_temp.ivy() RETURNS bigint LANGUAGE sql AS $$ SELECT id FROM orderly.users WHERE username = 'ivy' $$;

SELECT is((orderly.require_permission(pg_temp.ivy(), 'audit.read')).username, 'ivy',
          'require_permission returns the actor when allowed');
SELECT throws_ok(format('SELECT orderly.require_permission(%s, %L)', pg_temp.ivy(), 'user.manage'), 'OL403',
                 'permission denied: user.manage', 'require_permission: OL403 without the permission');
SELECT throws_ok($$SELECT orderly.require_permission(-1, 'audit.read')$$, 'OL401', NULL, 'require_permission: unknown actor');
SELECT admin.lock_user('ivy');
SELECT throws_ok(format('SELECT orderly.require_permission(%s, %L)', pg_temp.ivy(), 'audit.read'), 'OL401', NULL,
                 'require_permission: locked actor');
SELECT admin.unlock_user('ivy');
SELECT admin.revoke_permission('auditor', 'audit.read');
SELECT throws_ok(format('SELECT orderly.require_permission(%s, %L)', pg_temp.ivy(), 'audit.read'), 'OL403', NULL,
                 'require_permission sees a revoked permission at once');
SELECT admin.grant_permission('auditor', 'audit.read');
SELECT lives_ok(format('SELECT orderly.require_permission(%s, %L)', pg_temp.ivy(), 'audit.read'),
                'and a granted one');

-- No role but the owner can call the helpers.
SELECT is_empty($$
    SELECT p.oid::regprocedure, r
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
         unnest(ARRAY['orderly_app', 'orderly_bi', 'orderly_admin']) AS r
    WHERE n.nspname = 'orderly' AND has_function_privilege(r, p.oid, 'EXECUTE')
$$, 'orderly helpers are executable by nobody but the owner');
SET LOCAL ROLE orderly_app;
SELECT throws_ok($$SELECT orderly.arg_text('{}', 'x')$$, '42501', NULL, 'orderly_app cannot call orderly helpers');
RESET ROLE;

-- hides_text: what would display as something other than it is (the protocol's TextRules) ---------
SELECT is(array_agg(orderly.hides_text(t) ORDER BY n),
          ARRAY[true, true, true, true, true, true, false, false, false],
          'hides_text: a bidi override, an annotation, a tag character, a deprecated format character, U+FEFF, U+2028 — not direction marks, joiners or emoji')
FROM unnest(ARRAY[E'a\u202Eb', E'gate 1\uFFF9gate 9\uFFFB', E'tag:\U000E0041', E'a\u206Ab', E'a\uFEFFb', E'a\u2028b',
                  E'\u05E9\u200F(1)', E'\U0001F468\u200D\U0001F469 \u0E01\u200B', 'Müller GmbH']) WITH ORDINALITY AS x(t, n);

-- orderly.is_language: ISO 639-1's 183 codes, every one of them (a list written over several lines
-- lost a code at each line end when a comma was missing: 'br' 'bs' read as 'brbs').
SELECT is((SELECT count(*)::integer FROM (SELECT chr(a) || chr(b) AS c FROM generate_series(97, 122) a, generate_series(97, 122) b) x
           WHERE orderly.is_language(x.c)), 183, 'is_language: the 183 ISO 639-1 codes');
SELECT is(ARRAY[orderly.is_language('hu'), orderly.is_language('ET'), orderly.is_language('xx'), orderly.is_language('deu')],
          ARRAY[true, true, false, false], 'Hungarian and Estonian are languages (any case); xx and three letters are not');
SELECT * FROM finish();
ROLLBACK;
