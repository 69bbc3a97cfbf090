-- api.authenticate, failure counting and lockout, whoami, user_permissions.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(70);

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

SELECT is(api.authenticate('carol', 'carol-secret', '10.0.0.1')::jsonb,
          jsonb_build_object('user_id', test.uid('carol'), 'username', 'carol', 'display_name', 'Carol Cole',
                             'roles', '["sales_rep"]'::jsonb, 'permissions', pg_temp.role_perms('sales_rep')),
          'authenticate returns the session document');
SELECT is((SELECT array_agg(k ORDER BY ord) FROM json_object_keys(api.authenticate('carol', 'carol-secret', '10.0.0.1'))
           WITH ORDINALITY AS t(k, ord)),
          ARRAY['user_id', 'username', 'display_name', 'roles', 'permissions'], 'keys in documented order');
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

SELECT admin.lock_user('dave');
SELECT throws_ok($$SELECT api.authenticate('dave', 'dave-secret', '10.0.0.2')$$, 'OL429', 'account is locked',
                 'admin-locked user: OL429 even with the right password');
SELECT admin.unlock_user('dave');
UPDATE orderly.users SET locked_until = now() + interval '10 minutes' WHERE username = 'dave';
SELECT throws_ok($$SELECT api.authenticate('dave', 'wrong-password', '10.0.0.2')$$, 'OL429', 'account is locked',
                 'temporarily locked user: OL429, before the password is checked');
UPDATE orderly.users SET locked_until = now() - interval '1 second' WHERE username = 'dave';
SELECT lives_ok($$SELECT api.authenticate('dave', 'dave-secret', '10.0.0.2')$$, 'an expired lockout no longer applies');
SELECT ok((SELECT locked_until IS NULL FROM orderly.users WHERE username = 'dave'), 'login clears the expired lockout');

-- record_auth_failure: windowed lockout ----------------------------------------------------------

SELECT is(api.record_auth_failure('carol', '10.0.0.3')::jsonb, '{"locked": false, "failures": 1}', 'failure 1');
SELECT is(api.record_auth_failure('Carol', '10.0.0.3')::jsonb, '{"locked": false, "failures": 2}', 'failure 2 (any case)');
SELECT is(api.record_auth_failure('carol', '10.0.0.3')::jsonb, '{"locked": false, "failures": 3}', 'failure 3');
SELECT is(api.record_auth_failure('carol', '10.0.0.4')::jsonb, '{"locked": false, "failures": 4}', 'failure 4');
SELECT is((SELECT failed_attempts FROM orderly.users WHERE username = 'carol'), 4, 'failed_attempts counts');
SELECT is(api.record_auth_failure('carol', '10.0.0.4')::jsonb, '{"locked": true, "failures": 5}', 'failure 5 locks');
SELECT ok((SELECT locked_until BETWEEN now() + interval '14 minutes' AND now() + interval '16 minutes'
           FROM orderly.users WHERE username = 'carol'), 'locked for 15 minutes');
SELECT ok((SELECT NOT locked FROM orderly.users WHERE username = 'carol'), 'a lockout is not an admin lock');
SELECT is((SELECT action FROM orderly.audit_log ORDER BY id DESC LIMIT 1), 'user.lockout', 'lockout audited');
SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', '10.0.0.1')$$, 'OL429', 'account is locked',
                 'a locked-out user cannot log in with the right password');
SELECT is((SELECT count(*)::int FROM orderly.auth_failures WHERE username ILIKE 'carol'), 5, 'every failure recorded');

SELECT admin.unlock_user('carol');
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', '10.0.0.1')$$, 'unlock_user lifts the lockout');
SELECT is(api.record_auth_failure('carol', '10.0.0.3')::jsonb, '{"locked": false, "failures": 1}',
          'counting restarts after a successful login');

-- Failures older than the window do not count.
INSERT INTO orderly.auth_failures (username, client_addr, at)
SELECT 'olduser', '10.9.9.9', now() - interval '1 hour' FROM generate_series(1, 10);
SELECT is(api.record_auth_failure('olduser', '10.9.9.9')::jsonb, '{"locked": false, "failures": 1}',
          'failures outside the window are ignored (unknown user: never locked)');
SELECT is(api.record_auth_failure('olduser', '10.9.9.9', 2, '2 hours')::jsonb, '{"locked": false, "failures": 12}',
          'a wider window counts them; an unknown user still is not locked');
SELECT is(api.record_auth_failure('dave', '10.0.0.5', 1, '1 minute', '1 hour')::jsonb, '{"locked": true, "failures": 1}',
          'max_failures and lock_for are parameters');
SELECT ok((SELECT locked_until > now() + interval '59 minutes' FROM orderly.users WHERE username = 'dave'), 'lock_for honoured');

SELECT throws_ok($$SELECT api.record_auth_failure('carol', 'x', 0)$$, 'OL400', NULL, 'max_failures must be positive');
SELECT throws_ok($$SELECT api.record_auth_failure('carol', 'x', 5, '0 seconds')$$, 'OL400', NULL, 'window must be positive');
SELECT throws_ok($$SELECT api.record_auth_failure('carol', 'x', 5, '1 minute', '-1 minute')$$, 'OL400', NULL,
                 'lock_for must be positive');

SELECT is(api.address_failures('10.9.9.9'), 2, 'address_failures counts recent failures from an address');
SELECT is(api.address_failures('10.9.9.9', '2 hours'), 12, 'within the given window');
SELECT is(api.address_failures('192.0.2.1'), 0, 'an address without failures');

-- whoami and user_permissions --------------------------------------------------------------------

SELECT admin.unlock_user('dave');
SELECT is((SELECT count(*)::int FROM api.whoami(test.uid('dave'), '{}')), 1, 'whoami returns one row');
SELECT is((SELECT w::jsonb -> 'roles' FROM api.whoami(test.uid('dave'), NULL) AS w), '["warehouse"]'::jsonb,
          'whoami roles');
SELECT admin.grant_role('dave', 'auditor');
SELECT is((SELECT w::jsonb FROM api.whoami(test.uid('dave'), '{}') AS w),
          jsonb_build_object('user_id', test.uid('dave'), 'username', 'dave', 'display_name', 'dave',
                             'roles', '["auditor", "warehouse"]'::jsonb,
                             'permissions', pg_temp.role_perms('auditor', 'warehouse')),
          'whoami reflects a role granted a moment ago');
SELECT throws_ok($$SELECT * FROM api.whoami(-1, '{}')$$, 'OL401', NULL, 'whoami: unknown actor');

SELECT is(api.user_permissions(test.uid('dave'))::jsonb,
          jsonb_build_object('user_id', test.uid('dave'), 'username', 'dave', 'locked', false, 'locked_until', NULL,
                             'roles', '["auditor", "warehouse"]'::jsonb,
                             'permissions', pg_temp.role_perms('auditor', 'warehouse')),
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
SELECT is((SELECT api.record_auth_failure('nobody-at-all', '10.0.0.8')::jsonb), '{"locked": false, "failures": 1}',
          'orderly_app records failures');
RESET ROLE;

-- authenticate: per-address limit ------------------------------------------------------------------

INSERT INTO orderly.auth_failures (username, client_addr, at)
SELECT 'someone' || i, '198.51.100.7', now() - interval '1 minute' FROM generate_series(1, 49) AS i;
SELECT is(api.authenticate('carol', 'carol-secret', '198.51.100.7')::jsonb ->> 'username', 'carol',
          '49 recent failures from an address: below the default limit of 50');
INSERT INTO orderly.auth_failures (username, client_addr, at) VALUES ('someone', '198.51.100.7', now() - interval '1 minute');
SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', '198.51.100.7')$$, 'OL429',
                 'too many failed logins from this address; try again later',
                 'at 50: OL429 even with the right password');
SELECT throws_ok($$SELECT api.authenticate('nobody-at-all', 'whatever-1', '198.51.100.7')$$, 'OL429',
                 'too many failed logins from this address; try again later',
                 'an unknown username gets the same OL429 (checked before the user is looked up)');
SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', '198.51.100.7', 50, '15 minutes')$$, 'OL429', NULL,
                 'the defaults are 50 in 15 minutes');
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', '198.51.100.8')$$, 'another address is not limited');
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', NULL)$$, 'no address: not limited');
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', '198.51.100.7', 51)$$, 'max_address_failures is a parameter');
SELECT lives_ok($$SELECT api.authenticate('carol', 'carol-secret', '198.51.100.7', 50, '30 seconds')$$,
                'failures older than failure_window do not count');
SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', '10.9.9.9', 12, '2 hours')$$, 'OL429', NULL,
                 'a wider window counts older failures');
SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', 'x', 0)$$, 'OL400',
                 'max_address_failures must be at least 1', 'max_address_failures must be positive');
SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', 'x', 5, '0 seconds')$$, 'OL400',
                 'failure_window must be positive', 'failure_window must be positive');
SELECT is(api.record_auth_failure('carol', '198.51.100.7')::jsonb ->> 'locked', 'false',
          'the address limit is separate from the per-user lockout');

-- Proof that nothing is hashed: with hashing broken, a limited address still gets its OL429.
-- (Last in this file: the rollback restores the function.)
CREATE OR REPLACE FUNCTION orderly.password_matches(password text, password_hash text) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hashed' USING ERRCODE = 'OLTST'; END $$;
SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', '10.0.0.1')$$, 'OLTST', 'hashed',
                 'probe: an unlimited address reaches the hashing');
SELECT throws_ok($$SELECT api.authenticate('carol', 'carol-secret', '198.51.100.7')$$, 'OL429', NULL,
                 'a limited address is refused before any hashing (known user)');
SELECT throws_ok($$SELECT api.authenticate('nobody-at-all', 'x', '198.51.100.7')$$, 'OL429', NULL,
                 'a limited address is refused before any hashing (unknown user)');

SELECT * FROM finish();
ROLLBACK;
