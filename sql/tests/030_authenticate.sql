-- api.authenticate and login throttling (R__055_logins.sql), whoami, user_permissions (R__030_api_auth.sql).
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(90);

DO $$
BEGIN
    PERFORM admin.create_user('carol', 'carol-secret', ARRAY['sales_rep'], 'Carol Cole');
    PERFORM admin.create_user('dave', 'dave-secret', ARRAY['warehouse']);
    PERFORM admin.create_user('long72', repeat('p', 72), '{}');
END
$$;

-- What the seeds grant these roles, read from the grants themselves: later migrations give the
-- seeded roles more permissions, and the session documents must follow.
CREATE FUNCTION pg_temp.role_perms(VARIADIC roles text[]) RETURNS jsonb LANGUAGE sql AS $$
    SELECT coalesce(jsonb_agg(DISTINCT rp.permission ORDER BY rp.permission), '[]')
    FROM orderly.role_permissions rp JOIN orderly.roles r ON r.id = rp.role_id
    WHERE r.name = ANY (roles)
$$;

-- authenticate: success ------------------------------------------------------------------------

SELECT is(api.authenticate('carol', 'carol-secret', '10.0.0.1')::jsonb - 'credential',
          jsonb_build_object('user_id', test.uid('carol'), 'username', 'carol', 'display_name', 'Carol Cole',
                             'roles', '["sales_rep"]'::jsonb, 'permissions', pg_temp.role_perms('sales_rep'), 'customer', false),
          'authenticate returns the session document (and whether it is a customer''s login)');
SELECT is((SELECT array_agg(k ORDER BY ord) FROM json_object_keys(api.authenticate('carol', 'carol-secret', '10.0.0.1'))
           WITH ORDINALITY AS t(k, ord)),
          ARRAY['user_id', 'username', 'display_name', 'roles', 'permissions', 'credential', 'customer'],
          'keys in documented order: the session document, then the credential tag and the customer flag for orderlyd');
SELECT is(api.authenticate('carol', 'carol-secret', '10.0.0.1') ->> 'credential',
          left(encode(sha256(convert_to((SELECT password_hash FROM orderly.users WHERE username = 'carol'), 'UTF8')), 'hex'), 16),
          'the credential tag is a tag of the stored hash (never the hash)');
SELECT isnt(api.authenticate('carol', 'carol-secret', '10.0.0.1') ->> 'credential',
            (SELECT orderly.credential_tag(u) FROM orderly.users u WHERE username = 'dave'), 'each password its own tag');
SELECT ok(NOT (SELECT w::jsonb ? 'credential' FROM api.whoami(test.uid('carol'), '{}') AS w), 'WHOAMI does not show it');
DO $$
DECLARE
    before text := (SELECT orderly.credential_tag(u) FROM orderly.users u WHERE username = 'carol');
BEGIN
    PERFORM admin.set_password('carol', 'carol-secret');
    IF (SELECT orderly.credential_tag(u) FROM orderly.users u WHERE username = 'carol') = before THEN
        RAISE EXCEPTION 'the tag did not change';
    END IF;
END
$$;
SELECT pass('a new password, even the same one again, changes the tag');
SELECT ok(api.authenticate('CAROL', 'carol-secret', '10.0.0.1')::text !~ E'\n', 'username is case-insensitive, one line');
SELECT ok(api.authenticate('carol', 'carol-secret', '10.0.0.1')::text !~ '\$2a\$', 'no hash in the result');
SELECT ok((SELECT last_login_at IS NOT NULL FROM orderly.users WHERE username = 'carol'), 'last_login_at set');
SELECT is((SELECT action FROM orderly.audit_log ORDER BY id DESC LIMIT 1), 'user.login', 'login audited');
SELECT is((SELECT actor_user_id FROM orderly.audit_log ORDER BY id DESC LIMIT 1), test.uid('carol'),
          'audit: actor is the user');
SELECT is((SELECT after ->> 'client_addr' FROM orderly.audit_log ORDER BY id DESC LIMIT 1), '10.0.0.1',
          'audit: client address');
SELECT lives_ok($$SELECT api.authenticate('long72', repeat('p', 72), 'x')$$, 'a 72-byte password authenticates');

-- authenticate: refusals -------------------------------------------------------------------------

SELECT throws_ok($$SELECT api.authenticate('carol', 'wrong-password', '10.0.0.1')$$, 'OL401',
                 'invalid username or password', 'wrong password: OL401');
SELECT throws_ok($$SELECT api.authenticate('nobody', 'wrong-password', '10.0.0.1')$$, 'OL401',
                 'invalid username or password', 'unknown user: the same OL401 and message');
SELECT throws_ok($$SELECT api.authenticate(NULL, NULL, NULL)$$, 'OL401', 'invalid username or password', 'nulls: OL401');
SELECT throws_ok($$SELECT api.authenticate('carol', NULL, '10.0.0.1')$$, 'OL401', NULL, 'null password: OL401');
SELECT throws_ok($$SELECT api.authenticate('long72', repeat('p', 72) || 'x', 'x')$$, 'OL401', NULL,
                 'bytes past 72 are not ignored');

-- What a refused login says, with the number of seconds blanked: the same text for a real user
-- and an unknown name is the point of several tests below.
-- api.login: AUTH as orderlyd sends it (one login of a name at a time; the failure counted in the
-- same transaction, so a wrong password is answered, not raised).
SELECT is(api.login('carol', 'wrong-password', '10.7.0.1')::jsonb, '{"refused": "OL401", "message": "invalid username or password"}',
          'api.login: a wrong password is answered as a refusal');
SELECT is((SELECT count(*) FROM orderly.auth_failures WHERE username = 'carol' AND client_addr = '10.7.0.1'), 1::bigint,
          'and counted in the same transaction');
SELECT is(api.login('carol', 'carol-secret', '10.7.0.1')::jsonb ->> 'username', 'carol', 'the right password logs in');

CREATE FUNCTION pg_temp.refusal(username text, password text, addr text, policy jsonb DEFAULT '{}') RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM api.authenticate(username, password, addr, policy);
    RETURN 'logged in';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || regexp_replace(SQLERRM, '[0-9]+ s$', 'N s');
END
$$;
-- A failed login as the server reports it: the refusal, then the failure counted.
CREATE FUNCTION pg_temp.fail(username text, addr text, policy jsonb DEFAULT '{}') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r text := pg_temp.refusal(username, 'wrong-password', addr, policy);
BEGIN
    IF r LIKE 'OL401 %' THEN
        PERFORM api.record_auth_failure(username, addr, policy);
    END IF;
    RETURN r;
END
$$;

SELECT admin.lock_user('dave');
SELECT is(pg_temp.refusal('dave', 'dave-secret', '10.0.0.2'), 'OL401 invalid username or password',
          'an admin-locked account answers like a wrong password, even to the right one');
SELECT admin.unlock_user('dave');
SELECT lives_ok($$SELECT api.authenticate('dave', 'dave-secret', '10.0.0.2')$$, 'unlocked: logs in');

-- Throttling per (username, address) -------------------------------------------------------------

-- Waits start at a minute here (first_delay_s), not the default second: a test must not depend
-- on how fast a busy machine runs the next statement.
CREATE FUNCTION pg_temp.slow() RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"first_delay_s": 60, "max_delay_s": 3600}'::jsonb $$;
SELECT is(ARRAY(SELECT pg_temp.fail('carol', '10.0.0.3', pg_temp.slow()) FROM generate_series(1, 5)),
          array_fill('OL401 invalid username or password'::text, ARRAY[5]), 'five failures: each a plain OL401');
SELECT is(pg_temp.refusal('carol', 'carol-secret', '10.0.0.3', pg_temp.slow()),
          'OL429 too many failed logins for this username from your address; try again in N s',
          'after five, that address must wait, even with the right password');
SELECT ok((orderly.login_wait('carol', '10.0.0.3', orderly.login_policy(pg_temp.slow()))).wait_s BETWEEN 50 AND 60,
          'the first wait is first_delay_s');
SELECT ok((orderly.login_wait('carol', '10.0.0.3', orderly.login_policy('{}'))).wait_s <= 1, 'which is 1 s by default');
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', '10.0.0.4', pg_temp.slow())$$,
                'the user logs in from another address meanwhile');
SELECT ok((SELECT NOT locked AND locked_until IS NULL FROM orderly.users WHERE username = 'carol'),
          'nothing about the account is locked');

SELECT is(ARRAY(SELECT pg_temp.fail('nobody-here', '10.0.0.3', pg_temp.slow()) FROM generate_series(1, 5)),
          array_fill('OL401 invalid username or password'::text, ARRAY[5]), 'an unknown name: the same five OL401');
SELECT is(pg_temp.refusal('nobody-here', 'x', '10.0.0.3', pg_temp.slow()), pg_temp.refusal('carol', 'x', '10.0.0.3', pg_temp.slow()),
          'and then the same refusal as a real user: unknown and throttled are indistinguishable');
SELECT is((SELECT count(*)::int FROM orderly.auth_failures WHERE lower(username) = 'nobody-here'), 5,
          'counted the same way');

-- Growing waits, from failures placed in time.
INSERT INTO orderly.auth_failures (username, client_addr, at)
SELECT 'erin', '10.1.1.1', clock_timestamp() - interval '1 second' FROM generate_series(1, 8);
SELECT ok((orderly.login_wait('erin', '10.1.1.1', orderly.login_policy('{}'))).wait_s BETWEEN 6 AND 8,
          'eight failures: 2^(8-5) = 8 s after the last one');
INSERT INTO orderly.auth_failures (username, client_addr, at)
SELECT 'erin', '10.1.1.1', clock_timestamp() - interval '1 second' FROM generate_series(1, 40);
SELECT ok((orderly.login_wait('erin', '10.1.1.1', orderly.login_policy('{}'))).wait_s BETWEEN 890 AND 900,
          'however many: at most max_delay_s (900)');
SELECT ok((orderly.login_wait('erin', '10.1.1.1', orderly.login_policy('{"max_delay_s": 60}'))).wait_s BETWEEN 50 AND 60,
          'max_delay_s is a policy');
SELECT is((orderly.login_wait('erin', '10.1.1.1', orderly.login_policy('{"failure_window_s": 1}'))).wait_s, 0,
          'failures older than the window do not count');
SELECT is((orderly.login_wait('erin', '10.1.1.2', orderly.login_policy('{"account_failures": 1000}'))).wait_s, 0,
          'another address does not wait for them');

-- A success forgets its own address's failures only.
SELECT pg_temp.fail('carol', '10.0.0.6') FROM generate_series(1, 3);
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', '10.0.0.6')$$, 'three failures, then the right password');
SELECT is((SELECT count(*)::int FROM orderly.auth_failures WHERE username = 'carol' AND client_addr = '10.0.0.6'), 0,
          'a login forgets the failures of its (username, address)');
SELECT is((SELECT count(*)::int FROM orderly.auth_failures WHERE username = 'carol' AND client_addr = '10.0.0.3'), 5,
          'but not those from elsewhere');
SELECT is((SELECT failed_attempts FROM orderly.users WHERE username = 'carol'), 0, 'failed_attempts restarts at a login');

-- admin.unlock_user forgets a username's failures from everywhere.
SELECT admin.unlock_user('carol');
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', '10.0.0.3', pg_temp.slow())$$, 'unlock_user lifts every wait for the user');

-- The account-wide ceiling ----------------------------------------------------------------------

SELECT admin.create_user('frank', 'frank-secret', ARRAY['warehouse']);
CREATE FUNCTION pg_temp.slow_account() RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"first_delay_s": 60, "account_max_delay_s": 600}'::jsonb $$;
SELECT is(ARRAY(SELECT DISTINCT pg_temp.fail('frank', '10.2.0.' || i, pg_temp.slow_account()) FROM generate_series(1, 19) AS i),
          ARRAY['OL401 invalid username or password'], '19 failures from 19 addresses: no address waits');
SELECT is((SELECT count(*)::int FROM orderly.notifications WHERE kind = 'security.login_throttled'), 0, 'no alarm yet');
SELECT is(pg_temp.fail('frank', '10.2.0.20', pg_temp.slow_account()), 'OL401 invalid username or password', 'the twentieth');
SELECT is(pg_temp.refusal('frank', 'frank-secret', '10.3.0.1', pg_temp.slow_account()),
          'OL429 too many failed logins for this username; try again in N s',
          'past the ceiling, even a new address waits a little');
SELECT ok((orderly.login_wait('frank', '10.3.0.1', orderly.login_policy(pg_temp.slow_account()))).wait_s BETWEEN 50 AND 60,
          'first_delay_s at first');
INSERT INTO orderly.auth_failures (username, client_addr, at)
SELECT 'frank', '10.4.0.' || i, clock_timestamp() FROM generate_series(1, 20) AS i;
SELECT ok((orderly.login_wait('frank', '10.3.0.1', orderly.login_policy(pg_temp.slow_account()))).wait_s BETWEEN 590 AND 600,
          'never more than account_max_delay_s');
SELECT ok((orderly.login_wait('frank', '10.3.0.1', orderly.login_policy('{}'))).wait_s BETWEEN 9 AND 10,
          'which is 10 s by default: a slowdown, not a lockout');
SELECT is((SELECT count(*)::int FROM orderly.notifications
           WHERE kind = 'security.login_throttled' AND recipient_role = 'admin' AND payload ->> 'username' = 'frank'), 1,
          'the admins are told once, when the ceiling is crossed');
SELECT is((SELECT payload ->> 'addresses' FROM orderly.notifications WHERE kind = 'security.login_throttled'), '20',
          'with how many addresses took part');
SELECT is((SELECT count(*)::int FROM orderly.audit_log WHERE action = 'user.login_throttled' AND entity_id = test.uid('frank')::text), 1,
          'and it is audited');
SELECT is((SELECT array_agg(row(a.action, a.actor_kind, a.actor_user_id)::text ORDER BY a.id) FROM orderly.audit_log a
           WHERE (a.action = 'user.login_throttled' AND a.entity_id = test.uid('frank')::text)
              OR (a.entity = 'notification'
                  AND a.entity_id = (SELECT n.id::text FROM orderly.notifications n WHERE n.kind = 'security.login_throttled'))),
          ARRAY[row('user.login_throttled', 'system', NULL::bigint)::text, row('notification.create', 'system', NULL::bigint)::text],
          'as the system''s act, like its notice: the client was anonymous');
SELECT is(ARRAY(SELECT DISTINCT pg_temp.fail('no-such-frank', '10.5.0.' || i, pg_temp.slow_account()) FROM generate_series(1, 20) AS i),
          ARRAY['OL401 invalid username or password'], 'an unknown name: twenty plain failures');
SELECT is(pg_temp.refusal('no-such-frank', 'x', '10.3.0.1', pg_temp.slow_account()), pg_temp.refusal('frank', 'x', '10.3.0.1', pg_temp.slow_account()),
          'then the same slowdown as a real account');
SELECT is((SELECT count(*)::int FROM orderly.notifications WHERE kind = 'security.login_throttled'), 1,
          'nobody to tell about an unknown name');

-- Pruning ----------------------------------------------------------------------------------------

INSERT INTO orderly.auth_failures (username, client_addr, at)
SELECT 'ancient', '10.6.0.1', now() - interval '2 days' - i * interval '1 second' FROM generate_series(1, 150) AS i;
SELECT api.record_auth_failure('ancient', '10.6.0.1');
SELECT is((SELECT count(*)::int FROM orderly.auth_failures WHERE username = 'ancient'), 51,
          'each failure prunes up to 100 failures older than a day (the oldest first)');
SELECT api.record_auth_failure('ancient', '10.6.0.1');
SELECT is((SELECT count(*)::int FROM orderly.auth_failures WHERE username = 'ancient'), 2,
          'so the table cannot grow without end');

-- The policy -------------------------------------------------------------------------------------

SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', 'x', '{"free_failure": 5}')$$, 'OL400',
                 'unknown login policy key "free_failure"', 'a misspelt policy key is refused');
SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', 'x', '{"failure_window_s": 0}')$$, 'OL400',
                 'login policy failure_window_s must be a whole number of at least 1', 'a limit below 1 is refused');
SELECT throws_ok($$SELECT api.record_auth_failure('carol', 'x', '{"max_delay_s": "9"}')$$, 'OL400', NULL,
                 'a limit must be a number');
SELECT is(orderly.login_policy('{}'),
          '{"free_failures": 5, "failure_window_s": 900, "first_delay_s": 1, "max_delay_s": 900, "address_failures": 50, "account_failures": 20, "account_max_delay_s": 10}'::jsonb,
          'the defaults');

-- whoami and user_permissions --------------------------------------------------------------------

SELECT admin.unlock_user('dave');
SELECT is((SELECT count(*)::int FROM api.whoami(test.uid('dave'), '{}')), 1, 'whoami returns one row');
SELECT is((SELECT w::jsonb -> 'roles' FROM api.whoami(test.uid('dave'), NULL) AS w), '["warehouse"]'::jsonb,
          'whoami roles');
SELECT admin.grant_role('dave', 'auditor');
SELECT is((SELECT w::jsonb - 'server_time' FROM api.whoami(test.uid('dave'), '{}') AS w),
          jsonb_build_object('user_id', test.uid('dave'), 'username', 'dave', 'display_name', 'dave',
                             'roles', '["auditor", "warehouse"]'::jsonb,
                             'permissions', pg_temp.role_perms('auditor', 'warehouse')),
          'whoami reflects a role granted a moment ago');
SELECT throws_ok($$SELECT * FROM api.whoami(-1, '{}')$$, 'OL401', NULL, 'whoami: unknown actor');

SELECT is(api.user_permissions(test.uid('dave'))::jsonb,
          jsonb_build_object('user_id', test.uid('dave'), 'username', 'dave', 'locked', false, 'locked_until', NULL,
                             'roles', '["auditor", "warehouse"]'::jsonb,
                             'permissions', pg_temp.role_perms('auditor', 'warehouse'),
                             'credential', (SELECT orderly.credential_tag(u) FROM orderly.users u WHERE username = 'dave'),
                             'customer', false),
          'user_permissions document');
SELECT admin.revoke_role('dave', 'auditor');
SELECT is(api.user_permissions(test.uid('dave'))::jsonb -> 'permissions', pg_temp.role_perms('warehouse'),
          'user_permissions reflects a revoke');
SELECT admin.lock_user('dave');
SELECT is(api.user_permissions(test.uid('dave'))::jsonb -> 'locked', 'true'::jsonb, 'locked: admin lock');
SELECT throws_ok(format('SELECT * FROM api.whoami(%s, %L)', test.uid('dave'), '{}'), 'OL401', NULL, 'whoami: locked actor');
SELECT admin.unlock_user('dave');
UPDATE orderly.users SET locked_until = now() + interval '1 minute' WHERE username = 'dave';
-- A lockout after failed logins refuses new logins only: the user's open sessions go on.
SELECT is(api.user_permissions(test.uid('dave'))::jsonb -> 'locked', 'false'::jsonb, 'locked: not by a temporary lockout');
SELECT ok(api.user_permissions(test.uid('dave'))::jsonb ->> 'locked_until' IS NOT NULL, 'locked_until: the temporary lockout');
SELECT lives_ok(format('SELECT * FROM api.whoami(%s, %L)', test.uid('dave'), '{}'), 'whoami: a locked-out user''s open session goes on');
SELECT throws_ok($$SELECT api.user_permissions(-1)$$, 'OL404', NULL, 'user_permissions: unknown user');

-- Through the server's role ----------------------------------------------------------------------

SET LOCAL ROLE orderly_app;
SELECT is((api.authenticate('carol', 'carol-secret', '10.0.0.1')::jsonb ->> 'username'), 'carol',
          'orderly_app authenticates');
SELECT is((SELECT api.record_auth_failure('nobody-at-all', '10.0.0.8')::jsonb), '{"wait_s": 0}',
          'orderly_app records failures');
RESET ROLE;

-- Per-address limit ------------------------------------------------------------------------------

INSERT INTO orderly.auth_failures (username, client_addr, at)
SELECT 'someone' || i, '198.51.100.7', clock_timestamp() - interval '1 minute' FROM generate_series(1, 49) AS i;
SELECT is(api.authenticate('carol', 'carol-secret', '198.51.100.7')::jsonb ->> 'username', 'carol',
          '49 recent failures from an address: below the default limit of 50');
INSERT INTO orderly.auth_failures (username, client_addr, at) VALUES ('someone', '198.51.100.7', clock_timestamp() - interval '1 minute');
SELECT is(pg_temp.refusal('carol', 'carol-secret', '198.51.100.7'),
          'OL429 too many failed logins from your address; try again in N s',
          'at 50: OL429 even with the right password');
SELECT ok((orderly.login_wait('carol', '198.51.100.7', orderly.login_policy('{}'))).wait_s BETWEEN 780 AND 840,
          'until the oldest of them leaves the 15-minute window');
SELECT is(pg_temp.refusal('nobody-at-all', 'whatever-1', '198.51.100.7'), pg_temp.refusal('carol', 'carol-secret', '198.51.100.7'),
          'an unknown username gets the same refusal');
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', '198.51.100.8')$$, 'another address is not limited');
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', NULL)$$, 'no address: not limited');
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', '198.51.100.7', '{"address_failures": 51}')$$,
                'address_failures is a policy');
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', '198.51.100.7', '{"failure_window_s": 30}')$$,
                'failures older than the window do not count');

-- Proof that nothing is hashed: with hashing broken, a throttled attempt still gets its OL429.
-- (Last in this file: the rollback restores the function.)
CREATE OR REPLACE FUNCTION orderly.password_matches(password text, password_hash text) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hashed' USING ERRCODE = 'OLTST'; END $$;
SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', '10.0.0.1')$$, 'OLTST', 'hashed',
                 'probe: an unthrottled attempt reaches the hashing');
SELECT throws_ok($$SELECT api.authenticate('nobody-at-all', 'x', '10.0.0.1')$$, 'OLTST', 'hashed',
                 'so does one for an unknown name');
SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', '198.51.100.7')$$, 'OL429', NULL,
                 'a limited address is refused before any hashing (known user)');
SELECT throws_ok($$SELECT api.authenticate('nobody-at-all', 'x', '198.51.100.7')$$, 'OL429', NULL,
                 'a limited address is refused before any hashing (unknown user)');
SELECT throws_ok($$SELECT api.authenticate('frank', 'x', '10.9.0.1', '{"first_delay_s": 600, "account_max_delay_s": 6000}')$$, 'OL429', NULL,
                 'an account past its ceiling is refused before any hashing');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row of this file names its actor');

SELECT * FROM finish();
ROLLBACK;
