-- Orderly: read-only views for administrators (orderly_admin), so admins never need access to
-- the orderly tables themselves.
--
-- The views run with their owner's rights on tables, but functions they call are checked
-- against the reader, so they use plain subqueries rather than the orderly helpers.
-- CREATE OR REPLACE VIEW can only append columns: to rename, reorder or drop a column, add a
-- DROP VIEW IF EXISTS for it above its definition.
-- No view exposes users.password_hash.

CREATE OR REPLACE VIEW admin.users AS
SELECT u.id,
       u.username,
       u.display_name,
       ARRAY(SELECT r.name
             FROM orderly.user_roles ur JOIN orderly.roles r ON r.id = ur.role_id
             WHERE ur.user_id = u.id
             ORDER BY r.name COLLATE "C") AS roles,
       u.locked,
       u.locked_until,
       u.failed_attempts,
       u.last_login_at,
       u.created_at,
       u.customer_id,
       u.carrier
FROM orderly.users u;

COMMENT ON VIEW admin.users IS 'Users with their roles; locked is the admin lock. locked_until is no longer set: failed logins make the failing address wait instead (R__055_logins.sql)';
COMMENT ON COLUMN admin.users.failed_attempts IS 'Failed logins since the last successful login, unlock or password change';
COMMENT ON COLUMN admin.users.customer_id IS 'The customer this login orders for (linked by an admin); NULL: staff, a carrier, or not linked yet';
COMMENT ON COLUMN admin.users.carrier IS 'The carrier this login posts tracking events for (bound by an admin)';

CREATE OR REPLACE VIEW admin.roles AS
SELECT r.name,
       r.description,
       (SELECT count(*) FROM orderly.user_roles ur WHERE ur.role_id = r.id) AS user_count,
       ARRAY(SELECT rp.permission
             FROM orderly.role_permissions rp
             WHERE rp.role_id = r.id
             ORDER BY rp.permission COLLATE "C") AS permissions,
       r.created_at
FROM orderly.roles r;

COMMENT ON VIEW admin.roles IS 'Business roles, how many users hold each, and their permissions';

CREATE OR REPLACE VIEW admin.permissions AS
SELECT p.code,
       p.description,
       ARRAY(SELECT r.name
             FROM orderly.role_permissions rp JOIN orderly.roles r ON r.id = rp.role_id
             WHERE rp.permission = p.code
             ORDER BY r.name COLLATE "C") AS roles,
       p.for_customers
FROM orderly.permissions p;

COMMENT ON VIEW admin.permissions IS 'The permission catalog and the roles holding each permission';
COMMENT ON COLUMN admin.permissions.for_customers IS 'Whether a customer''s login may hold it (admin.set_permission_for_customers)';

CREATE OR REPLACE VIEW admin.role_permissions AS
SELECT r.name AS role,
       p.code AS permission,
       p.description
FROM orderly.role_permissions rp
JOIN orderly.roles r ON r.id = rp.role_id
JOIN orderly.permissions p ON p.code = rp.permission;

COMMENT ON VIEW admin.role_permissions IS 'One row per permission granted to a role';

-- actor_kind (V016) beside the other actor columns. Rows older than V016 have none in the table;
-- those with a user were a user's, and say so here; the rest stay NULL (an admin in SQL or the
-- system: actor_db_role may tell).
DROP VIEW IF EXISTS admin.audit_log;
CREATE OR REPLACE VIEW admin.audit_log AS
SELECT a.id, a.at,
       coalesce(a.actor_kind, CASE WHEN a.actor_user_id IS NOT NULL THEN 'user' END) AS actor_kind,
       a.actor_user_id, a.actor_db_role, a.action, a.entity, a.entity_id, a.before, a.after,
       (SELECT u.username FROM orderly.users u WHERE u.id = a.actor_user_id) AS actor_username
FROM orderly.audit_log a;

COMMENT ON VIEW admin.audit_log IS
    'Every state change: who (actor_kind user: actor_user_id; system: timers and the login throttle; admin_sql: the database login actor_db_role), when, what, before and after';
