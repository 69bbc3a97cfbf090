-- Orderly: admin functions that manage users (run by humans in psql as members of orderly_admin).
--
-- Each function validates everything before writing anything, so a bad call changes nothing.
-- Every change writes orderly.audit_log and then notifies 'orderly_roles' (both through
-- orderly.user_changed) so that connected servers refresh the affected sessions. Calls that would change nothing (granting a role
-- already held, revoking one not held, locking a locked user) are no-ops with a NOTICE and
-- neither audit nor notify: scripts can be re-run safely.
-- Parameters are named as documented so admins may use named notation (display_name => ...);
-- inside the bodies they are qualified with the function name to avoid clashing with columns.

CREATE OR REPLACE FUNCTION admin.create_user(username text, password text, roles text[],
                                             display_name text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_display  text := nullif(btrim(create_user.display_name), '');
    v_role_ids bigint[] := '{}';
    v_role     text;
    v_id       bigint;
BEGIN
    PERFORM orderly.check_username(create_user.username);
    PERFORM orderly.check_password(create_user.password);
    PERFORM orderly.check_display_name(v_display);
    IF EXISTS (SELECT 1 FROM orderly.users u WHERE lower(u.username) = lower(create_user.username)) THEN
        RAISE EXCEPTION 'username "%" is already taken', create_user.username USING ERRCODE = 'OL409';
    END IF;
    FOREACH v_role IN ARRAY coalesce(create_user.roles, '{}') LOOP
        v_role_ids := v_role_ids || (orderly.role_by_name(v_role)).id;
    END LOOP;

    BEGIN
        INSERT INTO orderly.users (username, display_name, password_hash)
        VALUES (create_user.username, coalesce(v_display, create_user.username),
                orderly.hash_password(create_user.password))
        RETURNING id INTO v_id;
    EXCEPTION WHEN unique_violation THEN
        -- Lost a race with a concurrent create of the same name.
        RAISE EXCEPTION 'username "%" is already taken', create_user.username USING ERRCODE = 'OL409';
    END;

    INSERT INTO orderly.user_roles (user_id, role_id)
    SELECT DISTINCT v_id, r FROM unnest(v_role_ids) AS r;
    PERFORM orderly.check_customer_rights(ARRAY[v_id]);

    PERFORM orderly.user_changed('user.create', v_id, NULL);
    RETURN v_id;
END
$$;

-- Also clears the failed-login counter and any temporary lockout (not an admin lock): a new
-- password is a fresh start.
CREATE OR REPLACE FUNCTION admin.set_password(username text, password text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users;
    v_before jsonb;
BEGIN
    PERFORM orderly.check_password(set_password.password);
    u := orderly.user_for_update(set_password.username);
    v_before := orderly.user_snapshot(u.id);

    UPDATE orderly.users x
    SET password_hash = orderly.hash_password(set_password.password),
        failed_attempts = 0,
        locked_until = NULL,
        failures_reset_at = clock_timestamp(),
        updated_at = now()
    WHERE x.id = u.id;

    PERFORM orderly.user_changed('user.password', u.id, v_before, extra => '{"password_changed": true}');
END
$$;

CREATE OR REPLACE FUNCTION admin.grant_role(username text, role text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.user_for_update(grant_role.username);
    r        orderly.roles := orderly.role_by_name(grant_role.role);
    v_before jsonb := orderly.user_snapshot(u.id);
BEGIN
    INSERT INTO orderly.user_roles (user_id, role_id)
    VALUES (u.id, r.id)
    ON CONFLICT ON CONSTRAINT user_roles_pkey DO NOTHING;
    IF NOT FOUND THEN
        RAISE NOTICE 'user "%" already has role "%"', u.username, r.name;
        RETURN;
    END IF;

    PERFORM orderly.check_customer_rights(ARRAY[u.id]);
    PERFORM orderly.user_changed('user.role_grant', u.id, v_before, r.name);
END
$$;

-- Revoking a role the user does not hold is a no-op (NOTICE only), mirroring grant_role, so
-- that provisioning scripts are idempotent. Unknown users and roles are still OL404.
CREATE OR REPLACE FUNCTION admin.revoke_role(username text, role text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.user_for_update(revoke_role.username);
    r        orderly.roles := orderly.role_by_name(revoke_role.role);
    v_before jsonb := orderly.user_snapshot(u.id);
BEGIN
    DELETE FROM orderly.user_roles ur WHERE ur.user_id = u.id AND ur.role_id = r.id;
    IF NOT FOUND THEN
        RAISE NOTICE 'user "%" does not have role "%"', u.username, r.name;
        RETURN;
    END IF;

    PERFORM orderly.user_changed('user.role_revoke', u.id, v_before, r.name);
END
$$;

-- An admin lock has no expiry; only unlock_user lifts it.
CREATE OR REPLACE FUNCTION admin.lock_user(username text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.user_for_update(lock_user.username);
    v_before jsonb := orderly.user_snapshot(u.id);
BEGIN
    IF u.locked THEN
        RAISE NOTICE 'user "%" is already locked', u.username;
        RETURN;
    END IF;

    UPDATE orderly.users x SET locked = true, updated_at = now() WHERE x.id = u.id;

    PERFORM orderly.user_changed('user.lock', u.id, v_before);
END
$$;

-- Lifts both kinds of lock and forgets past failures (always audited: it resets counters even
-- when the user was not locked).
CREATE OR REPLACE FUNCTION admin.unlock_user(username text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.user_for_update(unlock_user.username);
    v_before jsonb := orderly.user_snapshot(u.id);
BEGIN
    UPDATE orderly.users x
    SET locked = false,
        locked_until = NULL,
        failed_attempts = 0,
        failures_reset_at = clock_timestamp(),
        updated_at = now()
    WHERE x.id = u.id;

    PERFORM orderly.user_changed('user.unlock', u.id, v_before);
END
$$;

-- One user per seeded role, named like the role, password "<role>-demo". Existing users are
-- left untouched (their password is not reset) but still listed.
CREATE OR REPLACE FUNCTION admin.create_demo_users()
RETURNS TABLE (username text, password text, role text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['admin', 'sales_rep', 'sales_supervisor', 'sales_manager',
                                  'finance_manager', 'production_manager', 'general_manager',
                                  'warehouse', 'logistics', 'customer_service', 'auditor', 'customer', 'carrier']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM orderly.users u WHERE lower(u.username) = v_role) THEN
            BEGIN
                PERFORM admin.create_user(v_role, v_role || '-demo', ARRAY[v_role],
                                          'Demo ' || initcap(replace(v_role, '_', ' ')));
            EXCEPTION WHEN SQLSTATE 'OL409' THEN
                -- Another server created it at the same moment; any other conflict (a customer
                -- role widened beyond customers' permissions, V030) is the admin's to see.
                IF NOT EXISTS (SELECT 1 FROM orderly.users u WHERE lower(u.username) = v_role) THEN
                    RAISE;
                END IF;
            END;
        END IF;
        username := v_role;
        password := v_role || '-demo';
        role := v_role;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Shown by \df+ admin.* in psql.
COMMENT ON FUNCTION admin.create_user(text, text, text[], text) IS 'Create a user with roles; returns the new id';
COMMENT ON FUNCTION admin.set_password(text, text) IS 'Set a password (8 characters to 72 bytes); clears failed logins';
COMMENT ON FUNCTION admin.grant_role(text, text) IS 'Give a user a role (no-op if held)';
COMMENT ON FUNCTION admin.revoke_role(text, text) IS 'Take a role from a user (no-op if not held)';
COMMENT ON FUNCTION admin.lock_user(text) IS 'Lock a user out until unlock_user';
COMMENT ON FUNCTION admin.unlock_user(text) IS 'Lift an admin lock or a failed-login lockout';
COMMENT ON FUNCTION admin.create_demo_users() IS 'Create one demo user per seeded role (password <role>-demo)';
