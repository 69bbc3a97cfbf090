-- Orderly: an order counts once per product in the sales rollups; the rollups are rebuilt.
--
-- sales_day_lines has a row per SKU: an order with two SKUs of one product counted once on each,
-- so per product (sales_weekly, sales_monthly, product_performance, REPORT products) it counted
-- twice and its average order value halved. product_orders counts it on one row of the product
-- (its first SKU's, by id): summed over a product's rows it is the orders that had the product.
-- The next refresh rebuilds every rollup from the orders (the backfill of a first start), which
-- also recomputes the stage and delivery months with this version's rules.
ALTER TABLE orderly.sales_day_lines ADD COLUMN product_orders integer NOT NULL DEFAULT 0;

COMMENT ON COLUMN orderly.sales_day_lines.product_orders IS
    'Orders counted for the product on this row (each order on one row of its product): sum it per product; orders is per SKU';

UPDATE orderly.analytics_state
SET refreshed_to = NULL, backfill_started_at = NULL, backfill_next = NULL, backfill_customer_next = NULL;

-- REPORT cancellations has no rate column (a rate does not add up across months):
-- analytics.cancellations has it, per month.
UPDATE orderly.reports
SET summary = 'Cancellations by the stage the order was at: how many, whole orders, what they were worth, the fees (the rate: analytics.cancellations)'
WHERE name = 'cancellations';
