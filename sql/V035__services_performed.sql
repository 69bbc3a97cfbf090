-- Orderly: a service line is performed (SERVICE DONE), and an order of services only is
-- delivered once every service of it is.
--
-- A service line was neither made nor shipped, so nothing ever marked it fulfilled: an order of
-- services only stayed `ready` for good (no shipment can carry it, production works on
-- make-to-order lines), and an order of goods and a service was delivered, and completed, with
-- the service never performed. production_lines now keeps a service line's performance too (a
-- row straight at 'done': started and finished when performed); an order whose lines that ship
-- are all delivered (or that has none) and whose services are all performed is delivered.
-- Only from ready: an order of services only is ready once released (prepaid: paid), and its
-- services are performed from then on, as goods ship.
INSERT INTO orderly.order_status_transitions (from_status, to_status, permission) VALUES
    ('ready', 'delivered', 'production.manage');

COMMENT ON TABLE orderly.production_lines IS
    'Make-to-order (custom) lines in production, started and finished, and service lines performed (done), with who and when';
