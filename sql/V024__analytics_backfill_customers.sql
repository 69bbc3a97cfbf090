-- Orderly: the analytics backfill does customers after the days (issue 15).
--
-- A backfill run recomputed the customers of its orders with every one of their orders: at a
-- million orders the runs grew to 20 s and a day of 95 000 orders took 40 s (orderlyd's statement
-- timeout is 30 s, so the backfill would never have passed that day). Now the days go first
-- (sales and stage months only), then the customers in id order, a bounded number per run.
ALTER TABLE orderly.analytics_state
    ADD COLUMN backfill_customer_next bigint;

COMMENT ON COLUMN orderly.analytics_state.backfill_customer_next IS
    'During a backfill, once the days are done: the customer id after which the next run goes on';

ALTER TABLE orderly.analytics_settings
    ADD COLUMN backfill_customers integer NOT NULL DEFAULT 5000
        CONSTRAINT analytics_settings_backfill_customers_check CHECK (backfill_customers BETWEEN 1 AND 1000000);

COMMENT ON COLUMN orderly.analytics_settings.backfill_customers IS
    'During a backfill: how many customers one run recomputes (their whole history each)';
