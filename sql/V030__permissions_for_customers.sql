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
