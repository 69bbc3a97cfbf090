-- Orderly: which permissions a customer's login may hold.
--
-- A customer's login (linked to a customer, or holding the role customer) must never hold a
-- permission that lets it approve, price, pay, ship or otherwise act as staff on its own orders.
-- The rule was "within what the customer role holds", which an admin could widen without
-- noticing (granting the role, or a role a customer login holds, one more permission). Now each
-- permission says whether it is for customers; the admin functions that give a login rights or a
-- role permissions refuse to give a customer's login one that is not (orderly.check_customer_rights).
-- The permissions the customer role has shipped with are marked; an admin who means to give
-- customers another marks it first, in SQL, on purpose.

ALTER TABLE orderly.permissions ADD COLUMN for_customers boolean NOT NULL DEFAULT false;
UPDATE orderly.permissions SET for_customers = true
WHERE code IN ('catalog.read', 'customer.manage', 'customer.read', 'inbox.read', 'order.amend', 'order.cancel',
               'order.create', 'order.read', 'order.submit');
COMMENT ON COLUMN orderly.permissions.for_customers IS
    'Whether a customer''s login may hold it (through any role); admin functions refuse otherwise';

-- A database whose customer role (or a role a customer's login holds) was given more already
-- keeps it: the admin functions will refuse the next change to those logins or roles, and this
-- says which logins hold what, once, so that the admin can decide (revoke, or mark on purpose).
DO $$
DECLARE
    v record;
BEGIN
    FOR v IN
        SELECT u.username, string_agg(DISTINCT rp.permission, ', ' ORDER BY rp.permission) AS permissions
        FROM orderly.users u
        JOIN orderly.user_roles ur ON ur.user_id = u.id
        JOIN orderly.role_permissions rp ON rp.role_id = ur.role_id
        JOIN orderly.permissions p ON p.code = rp.permission
        WHERE NOT p.for_customers
          AND (u.customer_id IS NOT NULL
               OR EXISTS (SELECT 1 FROM orderly.user_roles x JOIN orderly.roles r ON r.id = x.role_id
                          WHERE x.user_id = u.id AND r.name = 'customer'))
        GROUP BY u.username ORDER BY u.username
    LOOP
        RAISE WARNING 'customer''s login "%" holds %, which are not for customers', v.username, v.permissions;
    END LOOP;
END
$$;

