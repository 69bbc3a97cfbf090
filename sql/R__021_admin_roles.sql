-- Orderly: admin functions that manage business roles and the permission catalog.
--
-- Same conventions as R__020_admin_users.sql: validate first, audit and notify 'orderly_roles'
-- through orderly.role_changed (role-wide changes carry "role" and a null "username"), no-ops
-- only NOTICE.

-- Every role gets inbox.read, like the seeded ones: notifications may be addressed to a role,
-- and its members must be able to read them.
CREATE OR REPLACE FUNCTION admin.create_role(name text, description text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_description text := coalesce(btrim(create_role.description), '');
    v_id          bigint;
BEGIN
    IF create_role.name IS NULL OR create_role.name !~ '^[a-z][a-z0-9_]{1,62}$' THEN
        RAISE EXCEPTION 'invalid role name: use 2 to 63 lowercase letters, digits or "_", starting with a letter'
            USING ERRCODE = 'OL400';
    END IF;
    IF length(v_description) > 500 OR orderly.hides_text(v_description) THEN
        RAISE EXCEPTION 'description must be at most 500 characters, without control or direction-override characters' USING ERRCODE = 'OL400';
    END IF;
    IF EXISTS (SELECT 1 FROM orderly.roles r WHERE r.name = create_role.name) THEN
        RAISE EXCEPTION 'role "%" already exists', create_role.name USING ERRCODE = 'OL409';
    END IF;

    BEGIN
        INSERT INTO orderly.roles (name, description)
        VALUES (create_role.name, v_description)
        RETURNING id INTO v_id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'role "%" already exists', create_role.name USING ERRCODE = 'OL409';
    END;
    INSERT INTO orderly.role_permissions (role_id, permission) VALUES (v_id, 'inbox.read');

    PERFORM orderly.role_changed('role.create', v_id, NULL);
END
$$;

CREATE OR REPLACE FUNCTION admin.create_permission(code text, description text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_description text := coalesce(btrim(create_permission.description), '');
BEGIN
    IF create_permission.code IS NULL OR length(create_permission.code) > 64
       OR create_permission.code !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' THEN
        RAISE EXCEPTION 'invalid permission code: use lowercase words joined by dots, like "order.create"'
            USING ERRCODE = 'OL400';
    END IF;
    IF length(v_description) > 500 OR orderly.hides_text(v_description) THEN
        RAISE EXCEPTION 'description must be at most 500 characters, without control or direction-override characters' USING ERRCODE = 'OL400';
    END IF;

    INSERT INTO orderly.permissions (code, description)
    VALUES (create_permission.code, v_description)
    ON CONFLICT ON CONSTRAINT permissions_pkey DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'permission "%" already exists', create_permission.code USING ERRCODE = 'OL409';
    END IF;

    PERFORM orderly.audit(NULL, 'permission.create', 'permission', create_permission.code, NULL,
                          jsonb_build_object('code', create_permission.code, 'description', v_description),
                          actor_kind => 'admin_sql');
    PERFORM orderly.notify_roles('permission.create', NULL, NULL, NULL);
END
$$;

CREATE OR REPLACE FUNCTION admin.grant_permission(role text, permission text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    r        orderly.roles := orderly.role_for_update(grant_permission.role);
    v_before jsonb := orderly.role_snapshot(r.id);
BEGIN
    PERFORM orderly.check_permission_exists(grant_permission.permission);
    IF r.name = 'customer' AND NOT (SELECT p.for_customers FROM orderly.permissions p WHERE p.code = grant_permission.permission) THEN
        RAISE EXCEPTION 'permission "%" is not for customers: the role customer may not hold it', grant_permission.permission
            USING ERRCODE = 'OL409', HINT = 'orderly.permissions.for_customers says which permissions a customer''s login may hold';
    END IF;

    INSERT INTO orderly.role_permissions (role_id, permission)
    VALUES (r.id, grant_permission.permission)
    ON CONFLICT ON CONSTRAINT role_permissions_pkey DO NOTHING;
    IF NOT FOUND THEN
        RAISE NOTICE 'role "%" already has permission "%"', r.name, grant_permission.permission;
        RETURN;
    END IF;

    -- Every customer's login that holds the role (or, for the role customer, every one).
    PERFORM orderly.check_customer_rights(ARRAY(SELECT ur.user_id FROM orderly.user_roles ur WHERE ur.role_id = r.id));
    PERFORM orderly.role_changed('role.permission_grant', r.id, v_before);
END
$$;

-- Revoking a permission the role does not have is a no-op (NOTICE only), like revoke_role.
CREATE OR REPLACE FUNCTION admin.revoke_permission(role text, permission text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    r        orderly.roles := orderly.role_for_update(revoke_permission.role);
    v_before jsonb := orderly.role_snapshot(r.id);
BEGIN
    PERFORM orderly.check_permission_exists(revoke_permission.permission);
    -- add_approval_step and set_approval_limit refuse a role without order.approve: taking it
    -- away afterwards would leave orders waiting at a step nobody may decide.
    IF revoke_permission.permission = 'order.approve'
       AND (EXISTS (SELECT 1 FROM orderly.approval_rule_steps s WHERE r.name IN (s.role, s.escalation_role))
            OR EXISTS (SELECT 1 FROM orderly.approval_limits l WHERE l.role = r.name)) THEN
        RAISE EXCEPTION 'role "%" decides approval steps or has approval limits: change those steps and limits first', r.name
            USING ERRCODE = 'OL409';
    END IF;
    -- Likewise a cancellation policy row that names the role: its requests would wait for nobody.
    IF revoke_permission.permission = 'cancel.decide'
       AND EXISTS (SELECT 1 FROM orderly.cancellation_policies p WHERE p.approval_role = r.name) THEN
        RAISE EXCEPTION 'role "%" decides cancellations under the cancellation policy: change those rows first', r.name
            USING ERRCODE = 'OL409';
    END IF;

    DELETE FROM orderly.role_permissions rp
    WHERE rp.role_id = r.id AND rp.permission = revoke_permission.permission;
    IF NOT FOUND THEN
        RAISE NOTICE 'role "%" does not have permission "%"', r.name, revoke_permission.permission;
        RETURN;
    END IF;

    PERFORM orderly.role_changed('role.permission_revoke', r.id, v_before);
END
$$;

-- A role named to decide something (an approval step or its escalation, an approval limit, the
-- cancellation policy's approver) must exist and hold the permission to decide it: otherwise
-- what waits for it would wait for nobody. Returns the role's name.
CREATE OR REPLACE FUNCTION orderly.check_role_holds(name text, permission text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r orderly.roles := orderly.role_by_name(check_role_holds.name);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orderly.role_permissions rp WHERE rp.role_id = r.id AND rp.permission = check_role_holds.permission) THEN
        RAISE EXCEPTION 'role "%" lacks %: grant it first (admin.grant_permission)', r.name, check_role_holds.permission
            USING ERRCODE = 'OL409';
    END IF;
    RETURN r.name;
END
$$;

-- Marks a permission as one a customer's login may hold (V030), or takes the mark away. Taking it
-- away is refused while the role customer or any customer's login holds the permission (revoke
-- it first), so that the rule holds for every login at every moment, not only at the next grant.
CREATE OR REPLACE FUNCTION admin.set_permission_for_customers(permission text, for_customers boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_before boolean;
BEGIN
    IF for_customers IS NULL THEN
        RAISE EXCEPTION 'for_customers must be true or false' USING ERRCODE = 'OL400';
    END IF;
    PERFORM orderly.check_permission_exists(set_permission_for_customers.permission);
    SELECT p.for_customers INTO v_before FROM orderly.permissions p WHERE p.code = set_permission_for_customers.permission FOR UPDATE;
    IF v_before = for_customers THEN
        RETURN;
    END IF;
    UPDATE orderly.permissions p SET for_customers = set_permission_for_customers.for_customers
    WHERE p.code = set_permission_for_customers.permission;
    IF NOT for_customers THEN
        IF EXISTS (SELECT 1 FROM orderly.role_permissions rp JOIN orderly.roles r ON r.id = rp.role_id
                   WHERE r.name = 'customer' AND rp.permission = set_permission_for_customers.permission) THEN
            RAISE EXCEPTION 'the role customer holds "%": revoke it from the role first', set_permission_for_customers.permission
                USING ERRCODE = 'OL409';
        END IF;
        PERFORM orderly.check_customer_rights(ARRAY(
            SELECT ur.user_id FROM orderly.user_roles ur JOIN orderly.role_permissions rp ON rp.role_id = ur.role_id
            WHERE rp.permission = set_permission_for_customers.permission));
    END IF;
    PERFORM orderly.audit(NULL, 'permission.for_customers', 'permission', set_permission_for_customers.permission,
                          jsonb_build_object('for_customers', v_before), jsonb_build_object('for_customers', for_customers),
                          actor_kind => 'admin_sql');
END
$$;

COMMENT ON FUNCTION admin.set_permission_for_customers(text, boolean) IS
    'Mark a permission as one customers'' logins may hold, or take the mark away (refused while a customer login holds it; audited)';
COMMENT ON FUNCTION admin.create_role(text, text) IS 'Create a business role (gets inbox.read)';
COMMENT ON FUNCTION admin.create_permission(text, text) IS 'Add a permission code to the catalog';
COMMENT ON FUNCTION admin.grant_permission(text, text) IS 'Give a role a permission (no-op if held)';
COMMENT ON FUNCTION admin.revoke_permission(text, text) IS 'Take a permission from a role (no-op if not held)';
