-- Data generator for benchmarks and analytics: `orderly-bench seed --customers N --orders M`.
-- Run as a superuser on a migrated database that has the demo catalog (orderlyd --demo).
-- Parameters arrive as settings (set_config with bound parameters; nothing is pasted in):
--   bench.customers     customers to create (each with one default address)
--   bench.created_by    username of the sales rep the orders are created by
--   bench.batch_orders  orders to create in one run of the @batch section
-- The part above "-- @batch" runs once; the part below once per batch, in the same session.
--
-- Orders are copies of template orders that api.order_create itself priced (as drafts: no stock
-- reserved, no approvals), so every order's lines, prices, tax and totals are consistent.

SET client_min_messages = warning;

DROP TABLE IF EXISTS pg_temp.seed_params, pg_temp.seed_customers, pg_temp.seed_templates, pg_temp.seed_orders;

CREATE TEMP TABLE seed_params AS
SELECT current_setting('bench.customers')::integer AS customers,
       (SELECT u.id FROM orderly.users u WHERE lower(u.username) = lower(current_setting('bench.created_by'))) AS actor,
       to_hex(txid_current()) || to_hex((random() * 65535)::integer) AS run;

DO $$
BEGIN
    IF (SELECT actor FROM seed_params) IS NULL THEN
        RAISE EXCEPTION 'no user named % (start orderlyd with --demo, or pass --created-by)',
            current_setting('bench.created_by');
    END IF;
END
$$;

-- Customers: segments (a quarter dealers), regions and countries; created over two years.
CREATE TEMP TABLE seed_customers (id bigint PRIMARY KEY, n integer NOT NULL);

WITH geo (k, region, country, addr_region, city, postal, dial) AS (
    VALUES (0, 'Berlin', 'DE', 'BE', 'Berlin', '10117', '+4930'),
           (1, 'Bavaria', 'DE', 'BY', 'München', '80331', '+4989'),
           (2, 'Île-de-France', 'FR', 'IDF', 'Paris', '75001', '+331'),
           (3, 'Vienna', 'AT', 'W', 'Wien', '1010', '+431'),
           (4, 'California', 'US', 'CA', 'San Francisco', '94103', '+1415'),
           (5, 'New York', 'US', 'NY', 'New York', '10001', '+1212')),
new_customers AS (
    INSERT INTO orderly.customers (name, email, phone, company, segment, region, created_by, created_at, updated_at)
    SELECT format('Bench Customer %s-%s', p.run, g),
           format('buyer-%s-%s@bench.example', p.run, g),
           geo.dial || lpad((g % 10000000)::text, 7, '0'),
           CASE WHEN g % 3 = 0 THEN NULL ELSE format('Bench Trading %s', g) END,
           CASE WHEN g % 4 = 0 THEN 'dealer' ELSE 'standard' END,
           geo.region, p.actor, t.at, t.at
    FROM seed_params p
    CROSS JOIN generate_series(1, p.customers) g
    JOIN geo ON geo.k = (g * 7919) % 6
    -- g * 0 makes the subquery depend on the row: uncorrelated, it would run once, and every
    -- customer would get the same date.
    CROSS JOIN LATERAL (SELECT now() - random() * interval '730 days' - interval '1 day' + g * interval '0' AS at) t
    RETURNING id, region)
INSERT INTO seed_customers (id, n)
SELECT id, row_number() OVER (ORDER BY id) FROM new_customers;

WITH geo (region, country, addr_region, city, postal, dial) AS (
    VALUES ('Berlin', 'DE', 'BE', 'Berlin', '10117', '+4930'),
           ('Bavaria', 'DE', 'BY', 'München', '80331', '+4989'),
           ('Île-de-France', 'FR', 'IDF', 'Paris', '75001', '+331'),
           ('Vienna', 'AT', 'W', 'Wien', '1010', '+431'),
           ('California', 'US', 'CA', 'San Francisco', '94103', '+1415'),
           ('New York', 'US', 'NY', 'New York', '10001', '+1212'))
INSERT INTO orderly.addresses (customer_id, label, recipient, phone, line1, city, region, postal_code, country, is_default,
                               created_at, updated_at)
SELECT c.id, 'main', format('Buyer %s', s.n), c.phone, format('Benchstraße %s', s.n), geo.city, geo.addr_region,
       geo.postal, geo.country, true, c.created_at, c.created_at
FROM seed_customers s
JOIN orderly.customers c ON c.id = s.id
JOIN geo ON geo.region = c.region;

-- Template orders: 60 drafts of 1 to 10 lines over the goods SKUs and services, priced by the
-- real order function for customers of every segment and country.
CREATE TEMP TABLE seed_templates (id bigint PRIMARY KEY, n integer NOT NULL);

WITH items AS (
    SELECT jsonb_build_object('sku', s.code) AS spec
    FROM orderly.skus s JOIN orderly.products p ON p.id = s.product_id
    WHERE s.active AND p.active AND p.kind = 'goods'
    UNION ALL
    SELECT jsonb_build_object('product', p.code)
    FROM orderly.products p WHERE p.active AND p.kind = 'service'),
made AS (
    SELECT (api.order_create(p.actor, jsonb_build_object(
               'customer', (SELECT s.id FROM seed_customers s WHERE s.n = 1 + (t * 37) % p.customers),
               'lines', (SELECT jsonb_agg(i.spec || jsonb_build_object('qty', 1 + (random() * 4)::integer))
                         FROM (SELECT spec FROM items ORDER BY random() + t * 0 LIMIT 1 + t % 10) i))))::jsonb ->> 'id' AS id
    FROM seed_params p CROSS JOIN generate_series(1, 60) t)
INSERT INTO seed_templates (id, n)
SELECT id::bigint, row_number() OVER (ORDER BY id::bigint) FROM made;

-- @batch
-- A bulk load: no triggers for this session's rows (status events, e-mails and notifications for
-- a history that never happened live; the foreign keys hold by construction). Superuser only.
SET session_replication_role = replica;
-- One batch of orders: a random template, a skewed random customer (some order far more than
-- others), a date in the last two years after the customer was created, and how far its life got:
-- a draft, rejected, cancelled after approval, or approved and on to ready, shipped, delivered,
-- completed, each step after a random while (the history has every step with its time, so that
-- the stage timings and on-time figures of the analytics have something to measure). Orders that
-- got far are at least three weeks old, so no step lies in the future.
DROP TABLE IF EXISTS pg_temp.seed_orders;

CREATE TEMP TABLE seed_orders AS
SELECT nextval(pg_get_serial_sequence('orderly.orders', 'id')) AS id,
       (SELECT t.id FROM seed_templates t WHERE t.n = x.tn) AS template_id,
       c.id AS customer_id,
       a.id AS ship_to_id,
       CASE WHEN x.stage >= 5 THEN least(greatest(c.created_at, now() - random() ^ 1.5 * interval '730 days'), now() - interval '21 days')
            ELSE greatest(c.created_at, now() - random() ^ 1.5 * interval '730 days') END AS created_at,
       CASE x.stage WHEN 0 THEN 'draft' WHEN 1 THEN 'rejected' WHEN 2 THEN 'cancelled' WHEN 3 THEN 'approved'
                    WHEN 4 THEN 'ready' WHEN 5 THEN 'shipped' WHEN 6 THEN 'delivered' ELSE 'completed' END AS status,
       x.stage,
       -- Hours each step took: approval, approved → ready (or → cancelled), ready → shipped,
       -- shipped → delivered, delivered → completed.
       interval '1 hour' * (1 + random() * 23) AS approval,
       interval '1 hour' * (random() * 72) AS making,
       interval '1 hour' * (random() * 48) AS picking,
       interval '1 hour' * (24 + random() * 96) AS transport,
       interval '1 hour' * (random() * 240) AS paying,
       CASE WHEN random() < 0.7 THEN 5 + (random() * 14)::integer END AS requested_in_days
FROM (SELECT 1 + floor(random() * (SELECT count(*) FROM seed_templates))::integer AS tn,
             1 + floor(random() ^ 2 * (SELECT customers FROM seed_params))::integer AS cn,
             (SELECT CASE WHEN r < 0.06 THEN 0 WHEN r < 0.10 THEN 1 WHEN r < 0.14 THEN 2 WHEN r < 0.18 THEN 3
                          WHEN r < 0.22 THEN 4 WHEN r < 0.28 THEN 5 WHEN r < 0.40 THEN 6 ELSE 7 END
              FROM (SELECT random() + g * 0 AS r) z) AS stage
      FROM generate_series(1, current_setting('bench.batch_orders')::integer) g) x
JOIN seed_customers s ON s.n = x.cn
JOIN orderly.customers c ON c.id = s.id
JOIN orderly.addresses a ON a.customer_id = c.id AND a.is_default;

INSERT INTO orderly.orders (id, customer_id, type, status, ship_to_id, currency, subtotal, discount_total, tax_total,
                            total, cancelled_total, priced_at, next_line_no, created_by, created_at, updated_at, submitted_by,
                            submitted_at, requested_date)
OVERRIDING SYSTEM VALUE
SELECT so.id, so.customer_id, t.type, so.status, so.ship_to_id, t.currency, t.subtotal, t.discount_total, t.tax_total,
       t.total, CASE WHEN so.status = 'cancelled' THEN t.total ELSE 0 END, so.created_at, t.next_line_no, p.actor,
       so.created_at, so.created_at + interval '2 hours',
       CASE WHEN so.status <> 'draft' THEN p.actor END,
       CASE WHEN so.status <> 'draft' THEN so.created_at + interval '1 hour' END,
       (so.created_at + so.requested_in_days * interval '1 day')::date
FROM seed_orders so
JOIN orderly.orders t ON t.id = so.template_id
CROSS JOIN seed_params p;

INSERT INTO orderly.order_lines (order_id, line_no, customer_id, spec, product_id, sku_id, qty, cancelled_qty, list_price, gross,
                                 discount, net, tax_rate, tax, is_override, pricing, tax_place, created_at, updated_at)
SELECT so.id, l.line_no, so.customer_id, l.spec, l.product_id, l.sku_id, l.qty, CASE WHEN so.status = 'cancelled' THEN l.qty ELSE 0 END,
       l.list_price, l.gross, l.discount, l.net, l.tax_rate, l.tax, false, l.pricing, l.tax_place, so.created_at, so.created_at
FROM seed_orders so
JOIN orderly.order_lines l ON l.order_id = so.template_id;

-- The history: each step the order took, at its time.
INSERT INTO orderly.order_status_history (order_id, customer_id, from_status, to_status, changed_by, changed_at, reason)
SELECT so.id, so.customer_id, h.from_status, h.to_status, p.actor, so.created_at + h.after, h.reason
FROM seed_orders so
CROSS JOIN seed_params p
JOIN LATERAL (VALUES (0, NULL, 'draft', interval '0', NULL),
                     (1, 'draft', 'submitted', interval '1 hour', NULL),
                     (2, 'submitted', 'pending_approval', interval '1 hour', NULL),
                     (3, 'pending_approval', CASE so.stage WHEN 1 THEN 'rejected' ELSE 'approved' END,
                      interval '1 hour' + so.approval, CASE so.stage WHEN 1 THEN 'seeded: price too high' END),
                     (4, 'approved', CASE so.stage WHEN 2 THEN 'cancelled' ELSE 'ready' END,
                      interval '1 hour' + so.approval + so.making, CASE so.stage WHEN 2 THEN 'seeded: customer cancelled' END),
                     (5, 'ready', 'shipped', interval '1 hour' + so.approval + so.making + so.picking, NULL),
                     (6, 'shipped', 'delivered', interval '1 hour' + so.approval + so.making + so.picking + so.transport, NULL),
                     (7, 'delivered', 'completed',
                      interval '1 hour' + so.approval + so.making + so.picking + so.transport + so.paying, NULL))
     AS h (k, from_status, to_status, after, reason)
  ON h.k = 0 OR (so.stage >= 1 AND h.k <= 3) OR (so.stage = 2 AND h.k = 4) OR (so.stage >= 4 AND h.k <= so.stage);

-- A cancelled order's cancellation, as ORDER CANCEL records it (free at approval).
INSERT INTO orderly.order_cancellations (order_id, customer_id, status, reason, plan, fee, currency, requested_by,
                                         requested_at, decided_by, decided_at)
SELECT so.id, so.customer_id, 'applied', 'seeded: customer cancelled',
       jsonb_build_object('order_status', 'approved', 'whole_order', true, 'cancelled_value', o.total, 'fee', 0, 'lines', '[]'::jsonb),
       0, o.currency, p.actor, so.created_at + interval '1 hour' + so.approval + so.making, p.actor,
       so.created_at + interval '1 hour' + so.approval + so.making
FROM seed_orders so
JOIN orderly.orders o ON o.id = so.id
CROSS JOIN seed_params p
WHERE so.stage = 2;

RESET session_replication_role;
