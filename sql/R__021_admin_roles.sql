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
    IF length(v_description) > 500 THEN
        RAISE EXCEPTION 'description must be at most 500 characters' USING ERRCODE = 'OL400';
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
    IF length(v_description) > 500 THEN
        RAISE EXCEPTION 'description must be at most 500 characters' USING ERRCODE = 'OL400';
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

    DELETE FROM orderly.role_permissions rp
    WHERE rp.role_id = r.id AND rp.permission = revoke_permission.permission;
    IF NOT FOUND THEN
        RAISE NOTICE 'role "%" does not have permission "%"', r.name, revoke_permission.permission;
        RETURN;
    END IF;

    PERFORM orderly.role_changed('role.permission_revoke', r.id, v_before);
END
$$;

COMMENT ON FUNCTION admin.create_role(text, text) IS 'Create a business role (gets inbox.read)';
COMMENT ON FUNCTION admin.create_permission(text, text) IS 'Add a permission code to the catalog';
COMMENT ON FUNCTION admin.grant_permission(text, text) IS 'Give a role a permission (no-op if held)';
COMMENT ON FUNCTION admin.revoke_permission(text, text) IS 'Take a permission from a role (no-op if not held)';
