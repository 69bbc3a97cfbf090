-- Orderly: logging in (api.authenticate) and throttling failed logins, for orderlyd (orderly_app).
--
-- Failed logins are throttled in a way strangers cannot turn against users, and that tells
-- nobody whether a username exists:
-- - Everything is counted by the username AS TYPED (lower-cased), whether or not such a user
--   exists, so an unknown name and a real one are refused alike, at the same count, before
--   the same bcrypt work. An admin-locked account answers exactly like a wrong password.
-- - Per (username, client address): after free_failures failures within failure_window_s,
--   each further attempt from that address must wait first_delay_s (1 s), then twice, four
--   times as long, … up to max_delay_s after the last failure. Failures from one address never hold a user back at another.
-- - Per username, from all addresses: past account_failures failures every attempt waits a
--   little (first_delay_s doubling up to account_max_delay_s): enough to make a spread-out guessing
--   campaign slow, never a lockout; the admins are told once, when the ceiling is crossed.
-- - Per address, all usernames: past address_failures failures within the window, that
--   address may not try again until enough of them are older than the window.
-- A refusal comes before any password is hashed (cheap under attack), says how long to wait,
-- and is not itself a failure, so hammering never lengthens the wait past what it is.
--
-- A raised exception rolls back its transaction, so authenticate() cannot count its own
-- failures: the server calls record_auth_failure() in a separate transaction right after an
-- OL401 from authenticate(). A successful login forgets its own (username, address) failures;
-- admin.unlock_user (users.failures_reset_at) forgets a username's failures from everywhere.

-- The three-argument form, and the form with positional limits, became the policy form below.
DROP FUNCTION IF EXISTS api.authenticate(text, text, text);
DROP FUNCTION IF EXISTS api.authenticate(text, text, text, integer, interval);
DROP FUNCTION IF EXISTS api.record_auth_failure(text, text, integer, interval, interval);
DROP FUNCTION IF EXISTS api.address_failures(text, interval);
DROP FUNCTION IF EXISTS orderly.address_failures(text, interval, integer);

-- orderlyd passes its flags as one object; a key it does not send takes the default below, and
-- a key nobody knows is refused (a misspelt limit must not silently become the default).
CREATE OR REPLACE FUNCTION orderly.login_policy(policy jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    defaults constant jsonb := '{"free_failures": 5, "failure_window_s": 900, "first_delay_s": 1, "max_delay_s": 900,
                                 "address_failures": 50, "account_failures": 20, "account_max_delay_s": 10}';
    p jsonb := defaults || coalesce(policy, '{}');
    k text;
BEGIN
    FOR k IN SELECT jsonb_object_keys(p) LOOP
        IF NOT defaults ? k THEN
            RAISE EXCEPTION 'unknown login policy key "%"', orderly.for_message(k) USING ERRCODE = 'OL400';
        END IF;
        IF jsonb_typeof(p -> k) <> 'number' OR (p ->> k)::numeric < 1 OR (p ->> k)::numeric <> trunc((p ->> k)::numeric) THEN
            RAISE EXCEPTION 'login policy % must be a whole number of at least 1', k USING ERRCODE = 'OL400';
        END IF;
    END LOOP;
    RETURN p;
END
$$;

-- Seconds to wait before `failures` (counted so far) allow another attempt: none below `free`,
-- then `first`, twice that, four times, … at most `most`.
DROP FUNCTION IF EXISTS orderly.login_backoff(integer, integer, integer);
CREATE OR REPLACE FUNCTION orderly.login_backoff(failures integer, free integer, first integer, most integer) RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN $1 < $2 THEN 0 ELSE least($3::bigint * power(2, least($1 - $2, 40))::bigint, $4)::integer END
$$;

-- Whether (username, client_addr) may try a password now: the longest of the three waits, in
-- whole seconds (0: may try), and the refusal that goes with it. Counting stops early
-- (LIMIT): under a flood the question is only how far past a limit, and that must stay cheap.
CREATE OR REPLACE FUNCTION orderly.login_wait(username text, client_addr text, policy jsonb,
                                              OUT wait_s integer, OUT reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_name     text := lower(left(coalesce(login_wait.username, ''), 200));
    v_window   interval := make_interval(secs => (policy ->> 'failure_window_s')::integer);
    v_now      timestamptz := clock_timestamp();
    v_since    timestamptz;
    v_reset    timestamptz;
    v_free     integer := (policy ->> 'free_failures')::integer;
    v_ceiling  integer := (policy ->> 'account_failures')::integer;
    v_addr_max integer := (policy ->> 'address_failures')::integer;
    v_n        integer;
    v_last     timestamptz;
    v_until    timestamptz;
BEGIN
    wait_s := 0;
    -- Looked up for a real user and an unknown name alike, so that both take the same path.
    SELECT x.failures_reset_at INTO v_reset FROM orderly.users x WHERE lower(x.username) = v_name;
    v_since := greatest(v_now - v_window, v_reset);

    -- This username from this address.
    SELECT count(*), max(f.at) INTO v_n, v_last
    FROM (SELECT f.at FROM orderly.auth_failures f
          WHERE lower(f.username) = v_name AND f.client_addr IS NOT DISTINCT FROM login_wait.client_addr
            AND f.at > v_since
          ORDER BY f.at DESC LIMIT v_free + 31) f;
    v_until := v_last + make_interval(secs => orderly.login_backoff(v_n, v_free, (policy ->> 'first_delay_s')::integer, (policy ->> 'max_delay_s')::integer));
    IF v_until > v_now THEN
        wait_s := ceil(extract(epoch FROM v_until - v_now));
        reason := 'too many failed logins for this username from your address';
    END IF;

    -- This username from everywhere.
    SELECT count(*), max(f.at) INTO v_n, v_last
    FROM (SELECT f.at FROM orderly.auth_failures f
          WHERE lower(f.username) = v_name AND f.at > v_since
          ORDER BY f.at DESC LIMIT v_ceiling + 31) f;
    v_until := v_last + make_interval(secs => orderly.login_backoff(v_n, v_ceiling, (policy ->> 'first_delay_s')::integer,
                                                         (policy ->> 'account_max_delay_s')::integer));
    IF v_until > v_now AND ceil(extract(epoch FROM v_until - v_now)) > wait_s THEN
        wait_s := ceil(extract(epoch FROM v_until - v_now));
        reason := 'too many failed logins for this username';
    END IF;

    -- This address, any username: blocked until the oldest of its last address_failures
    -- failures leaves the window.
    IF login_wait.client_addr IS NOT NULL THEN
        SELECT min(f.at), count(*) INTO v_last, v_n
        FROM (SELECT f.at FROM orderly.auth_failures f
              WHERE f.client_addr = login_wait.client_addr AND f.at > v_now - v_window
              ORDER BY f.at DESC LIMIT v_addr_max) f;
        IF v_n >= v_addr_max AND ceil(extract(epoch FROM v_last + v_window - v_now)) > wait_s THEN
            wait_s := ceil(extract(epoch FROM v_last + v_window - v_now));
            reason := 'too many failed logins from your address';
        END IF;
    END IF;
END
$$;

-- Refuses a login that must wait (OL429, saying how long), as api.authenticate checks before the
-- password and api.login again before its answer.
CREATE OR REPLACE FUNCTION orderly.refuse_while_waiting(username text, client_addr text, policy jsonb) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_wait record := orderly.login_wait(username, client_addr, policy);
BEGIN
    IF v_wait.wait_s > 0 THEN
        RAISE EXCEPTION '%; try again in % s', v_wait.reason, v_wait.wait_s USING ERRCODE = 'OL429';
    END IF;
END
$$;

-- Unknown users, wrong passwords and admin-locked accounts get the same error after the same
-- bcrypt work, so neither the reply nor its timing tells which it was. A throttled attempt is
-- refused before any hashing, with the wait (OL429).
CREATE OR REPLACE FUNCTION api.authenticate(username text, password text, client_addr text,
                                            policy jsonb DEFAULT '{}') RETURNS json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users;
    v_ok     boolean;
BEGIN
    PERFORM orderly.refuse_while_waiting(authenticate.username, authenticate.client_addr, orderly.login_policy(authenticate.policy));

    SELECT * INTO u FROM orderly.users x WHERE lower(x.username) = lower(authenticate.username);
    -- A bcrypt hash of a random password, cost 10 like the real ones, for an unknown name.
    v_ok := orderly.password_matches(coalesce(authenticate.password, ''),
                                     coalesce(u.password_hash, '$2a$10$PhzlHJPTSajsTI28hzrlAuYHuFj1IiwqQeCu5eb/tPeAYghOGHLS.'));
    -- bcrypt would compare only the first 72 bytes of a longer password; no stored password
    -- is longer, so a longer one can never be right.
    IF u.id IS NULL OR NOT v_ok OR u.locked OR octet_length(authenticate.password) > 72 THEN
        RAISE EXCEPTION 'invalid username or password' USING ERRCODE = 'OL401';
    END IF;

    UPDATE orderly.users x
    SET failed_attempts = 0,
        locked_until = NULL,
        last_login_at = now()
    WHERE x.id = u.id;
    DELETE FROM orderly.auth_failures f
    WHERE lower(f.username) = lower(u.username) AND f.client_addr IS NOT DISTINCT FROM authenticate.client_addr;

    PERFORM orderly.audit(u.id, 'user.login', 'user', u.id::text, NULL,
                          jsonb_build_object('client_addr', authenticate.client_addr));
    -- The session document (what WHOAMI shows) and, for orderlyd only, the credential tag.
    RETURN orderly.json_extend(orderly.session_json(u), json_build_object('credential', orderly.credential_tag(u),
                                                                          'customer', orderly.own_customer(u) IS NOT NULL));
END
$$;

-- Counts one failed login (in its own transaction: the failing one rolled back) and prunes a
-- few failures older than a day or the window, so the table stays small without a timer.
-- When a real account crosses the account-wide ceiling, the admins are told (once: the user's
-- row is locked while counting, so two concurrent failures cannot both see the crossing). No
-- user acted (the client is anonymous): that audit row and notice are the system's.
CREATE OR REPLACE FUNCTION api.record_auth_failure(username text, client_addr text, policy jsonb DEFAULT '{}')
RETURNS json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_policy   jsonb := orderly.login_policy(record_auth_failure.policy);
    -- Usernames come straight from clients; a bounded copy is enough to count by.
    v_username text := left(coalesce(record_auth_failure.username, ''), 200);
    v_window   interval := make_interval(secs => (v_policy ->> 'failure_window_s')::integer);
    u          orderly.users;
    v_now      timestamptz;
    v_failures integer;
    v_wait     record;
BEGIN
    SELECT * INTO u FROM orderly.users x WHERE lower(x.username) = lower(v_username) FOR UPDATE;
    v_now := clock_timestamp();

    INSERT INTO orderly.auth_failures (username, client_addr, at)
    VALUES (v_username, record_auth_failure.client_addr, v_now);

    DELETE FROM orderly.auth_failures f
    WHERE f.id IN (SELECT o.id FROM orderly.auth_failures o
                   WHERE o.at < v_now - greatest(v_window, interval '1 day')
                   ORDER BY o.at LIMIT 100);

    IF u.id IS NOT NULL THEN
        UPDATE orderly.users x
        SET failed_attempts = x.failed_attempts + 1,
            last_failed_at = v_now
        WHERE x.id = u.id;

        SELECT count(*) INTO v_failures
        FROM orderly.auth_failures f
        WHERE lower(f.username) = lower(v_username)
          AND f.at > greatest(v_now - v_window, u.failures_reset_at);
        IF v_failures = (v_policy ->> 'account_failures')::integer THEN
            PERFORM orderly.audit(NULL, 'user.login_throttled', 'user', u.id::text, NULL,
                                  jsonb_build_object('failures', v_failures, 'client_addr', record_auth_failure.client_addr),
                                  actor_kind => 'system');
            PERFORM api.notify(NULL, 'admin', 'security.login_throttled',
                               jsonb_build_object('username', u.username, 'failures', v_failures,
                                                  'window_s', (v_policy ->> 'failure_window_s')::integer,
                                                  'addresses', (SELECT count(DISTINCT f.client_addr)
                                                                FROM orderly.auth_failures f
                                                                WHERE lower(f.username) = lower(v_username)
                                                                  AND f.at > greatest(v_now - v_window, u.failures_reset_at))),
                               NULL, 'system');
        END IF;
    END IF;

    v_wait := orderly.login_wait(v_username, record_auth_failure.client_addr, v_policy);
    RETURN json_build_object('wait_s', v_wait.wait_s);
END
$$;

-- AUTH as orderlyd sends it: api.authenticate, and on a wrong password the failure counted in the
-- same transaction. Checked apart (authenticate, then the failure in a transaction of its own
-- once the first rolled back), thirty AUTHs sent at once all passed the wait before the first
-- failure was counted, and each got its answer: eight guesses where five are free, four per
-- window where one is. Now the password is checked as before (in parallel: two hundred logins of
-- one user at once must not queue behind each other's bcrypt), and the answer is given under an
-- advisory lock per username, held to commit, after the wait is read again: each AUTH of the
-- name sees the failures counted before it, and past the free ones is told to wait whatever its
-- password was — so a burst learns no more than five answers.
-- A wrong password is answered, not raised (a raise would roll its count back):
-- {"refused": "OL401", "message": …}; a wait (OL429) and a bad policy (OL400) still raise.
CREATE OR REPLACE FUNCTION api.login(username text, password text, client_addr text, policy jsonb DEFAULT '{}')
RETURNS json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_msg  text;
    v_doc  json;
BEGIN
    BEGIN
        v_doc := api.authenticate(login.username, login.password, login.client_addr, login.policy);
    EXCEPTION WHEN SQLSTATE 'OL401' THEN
        GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT;
    END;
    PERFORM pg_advisory_xact_lock(hashtextextended('orderly.login:' || lower(left(coalesce(login.username, ''), 200)), 0));
    PERFORM orderly.refuse_while_waiting(login.username, login.client_addr, orderly.login_policy(login.policy));
    IF v_doc IS NOT NULL THEN
        RETURN v_doc;
    END IF;
    PERFORM api.record_auth_failure(login.username, login.client_addr, login.policy);
    RETURN json_build_object('refused', 'OL401', 'message', v_msg);
END
$$;
