-- Orderly: authentication and session-rights functions called by orderlyd (orderly_app).
--
-- A raised exception rolls back its transaction, so authenticate() cannot count its own
-- failures: the server calls record_auth_failure() in a separate transaction right after an
-- OL401 from authenticate(). Failures are counted per username inside a time window, from
-- the later of the window start and users.failures_reset_at.

-- The shape returned by AUTH and WHOAMI.
CREATE OR REPLACE FUNCTION orderly.session_json(u orderly.users) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'user_id', ($1).id,
        'username', ($1).username,
        'display_name', ($1).display_name,
        'roles', to_json(orderly.user_role_names(($1).id)),
        'permissions', to_json(orderly.user_permission_codes(($1).id)))
$$;

-- Recent failed logins from one address. at_most stops counting early: under a flood the
-- question is only "at the limit yet?", and that must stay cheap however many rows there are.
CREATE OR REPLACE FUNCTION orderly.address_failures(client_addr text, failure_window interval,
                                                    at_most integer DEFAULT NULL) RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer
    FROM (SELECT 1
          FROM orderly.auth_failures f
          WHERE f.client_addr = $1
            AND f.at > clock_timestamp() - $2
          LIMIT $3) recent
$$;

-- The three-argument form became this one (its calls still work through the defaults).
DROP FUNCTION IF EXISTS api.authenticate(text, text, text);

-- Unknown users and wrong passwords get the same error after the same bcrypt work, so
-- neither the message nor the timing tells whether a username exists. An address with too
-- many recent failures, and then a locked account, are refused before any hashing (cheap
-- under attack) with their own errors; the address comes first so that guessing usernames
-- from one place stops too.
CREATE OR REPLACE FUNCTION api.authenticate(username text, password text, client_addr text,
                                            max_address_failures integer DEFAULT 50,
                                            failure_window interval DEFAULT '15 minutes') RETURNS json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users;
BEGIN
    IF authenticate.max_address_failures IS NULL OR authenticate.max_address_failures < 1 THEN
        RAISE EXCEPTION 'max_address_failures must be at least 1' USING ERRCODE = 'OL400';
    END IF;
    IF authenticate.failure_window IS NULL OR authenticate.failure_window <= interval '0' THEN
        RAISE EXCEPTION 'failure_window must be positive' USING ERRCODE = 'OL400';
    END IF;
    IF orderly.address_failures(authenticate.client_addr, authenticate.failure_window,
                                authenticate.max_address_failures) >= authenticate.max_address_failures THEN
        RAISE EXCEPTION 'too many failed logins from this address; try again later' USING ERRCODE = 'OL429';
    END IF;

    SELECT * INTO u FROM orderly.users x WHERE lower(x.username) = lower(authenticate.username);
    IF u.id IS NULL THEN
        -- A bcrypt hash of a random password, cost 10 like the real ones.
        PERFORM orderly.password_matches(coalesce(authenticate.password, ''),
                                         '$2a$10$PhzlHJPTSajsTI28hzrlAuYHuFj1IiwqQeCu5eb/tPeAYghOGHLS.');
        RAISE EXCEPTION 'invalid username or password' USING ERRCODE = 'OL401';
    END IF;

    IF orderly.is_locked(u) THEN
        RAISE EXCEPTION 'account is locked' USING ERRCODE = 'OL429';
    END IF;

    -- bcrypt would compare only the first 72 bytes of a longer password; no stored password
    -- is longer, so a longer one can never be right.
    IF NOT orderly.password_matches(coalesce(authenticate.password, ''), u.password_hash)
       OR octet_length(authenticate.password) > 72 THEN
        RAISE EXCEPTION 'invalid username or password' USING ERRCODE = 'OL401';
    END IF;

    UPDATE orderly.users x
    SET failed_attempts = 0,
        locked_until = NULL,
        failures_reset_at = clock_timestamp(),
        last_login_at = now()
    WHERE x.id = u.id;

    PERFORM orderly.audit(u.id, 'user.login', 'user', u.id::text, NULL,
                          jsonb_build_object('client_addr', authenticate.client_addr));
    RETURN orderly.session_json(u);
END
$$;

CREATE OR REPLACE FUNCTION api.record_auth_failure(username text, client_addr text,
                                                   max_failures integer DEFAULT 5,
                                                   failure_window interval DEFAULT '15 minutes',
                                                   lock_for interval DEFAULT '15 minutes') RETURNS json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    -- Usernames come straight from clients; a bounded copy is enough to count by.
    v_username text := left(coalesce(record_auth_failure.username, ''), 200);
    u          orderly.users;
    v_now      timestamptz;
    v_failures integer;
    v_locked   boolean := false;
    v_before   jsonb;
BEGIN
    IF record_auth_failure.max_failures IS NULL OR record_auth_failure.max_failures < 1 THEN
        RAISE EXCEPTION 'max_failures must be at least 1' USING ERRCODE = 'OL400';
    END IF;
    IF record_auth_failure.failure_window IS NULL OR record_auth_failure.failure_window <= interval '0' THEN
        RAISE EXCEPTION 'failure_window must be positive' USING ERRCODE = 'OL400';
    END IF;
    IF record_auth_failure.lock_for IS NULL OR record_auth_failure.lock_for <= interval '0' THEN
        RAISE EXCEPTION 'lock_for must be positive' USING ERRCODE = 'OL400';
    END IF;

    -- Lock first so concurrent failures for one user are counted one after the other, and take
    -- the time only once the lock is held.
    SELECT * INTO u FROM orderly.users x WHERE lower(x.username) = lower(v_username) FOR UPDATE;
    v_now := clock_timestamp();

    INSERT INTO orderly.auth_failures (username, client_addr, at)
    VALUES (v_username, record_auth_failure.client_addr, v_now);

    SELECT count(*) INTO v_failures
    FROM orderly.auth_failures f
    WHERE lower(f.username) = lower(v_username)
      AND f.at > v_now - record_auth_failure.failure_window
      AND (u.failures_reset_at IS NULL OR f.at > u.failures_reset_at);

    IF u.id IS NOT NULL THEN
        v_before := orderly.user_snapshot(u.id);
        UPDATE orderly.users x
        SET failed_attempts = x.failed_attempts + 1,
            last_failed_at = v_now
        WHERE x.id = u.id;

        IF v_failures >= record_auth_failure.max_failures AND NOT coalesce(u.locked_until > now(), false) THEN
            -- Counting restarts after each lockout.
            UPDATE orderly.users x
            SET locked_until = v_now + record_auth_failure.lock_for,
                failures_reset_at = v_now
            WHERE x.id = u.id;
            PERFORM orderly.user_changed('user.lockout', u.id, v_before,
                                         extra => jsonb_build_object('failures', v_failures,
                                                                     'client_addr', record_auth_failure.client_addr));
        END IF;

        SELECT orderly.is_locked(x) INTO v_locked FROM orderly.users x WHERE x.id = u.id;
    END IF;

    RETURN json_build_object('locked', v_locked, 'failures', v_failures);
END
$$;

-- For per-address rate limiting by the server (authenticate applies its own limit as well).
CREATE OR REPLACE FUNCTION api.address_failures(client_addr text, failure_window interval DEFAULT '15 minutes')
RETURNS integer
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
    SELECT orderly.address_failures($1, $2)
$$;

-- Read live on every call: a role granted or revoked a moment ago shows immediately.
CREATE OR REPLACE FUNCTION api.whoami(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('WHOAMI', whoami.actor, whoami.args);
BEGIN
    RETURN NEXT orderly.session_json(u);
END
$$;

SELECT orderly.register_command('WHOAMI', 'api.whoami', NULL,
    arguments  => '',
    usage      => 'WHOAMI',
    summary    => 'Your username, display name, roles and permissions.');

-- What the server needs to refresh a session after NOTIFY orderly_roles. Does not raise for a
-- locked user (it reports locked: true) so that the server can end that session itself.
CREATE OR REPLACE FUNCTION api.user_permissions(user_id bigint) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users;
BEGIN
    SELECT * INTO u FROM orderly.users x WHERE x.id = user_permissions.user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown user' USING ERRCODE = 'OL404';
    END IF;
    RETURN json_build_object(
        'user_id', u.id,
        'username', u.username,
        -- An admin lock (the session must end), apart from a lockout after failed logins
        -- (which only refuses new logins).
        'locked', u.locked,
        'locked_until', u.locked_until,
        'roles', to_json(orderly.user_role_names(u.id)),
        'permissions', to_json(orderly.user_permission_codes(u.id)));
END
$$;
