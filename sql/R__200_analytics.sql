-- Orderly: sales, customer behaviour and order efficiency (issue 15): the rollups, the timer that
-- keeps them, the views BI tools read (schema analytics) and REPORT. Tables: V021__analytics.sql.
--
-- What counts as a sale: an order that was approved and is not cancelled or rejected, on the day
-- it was created (UTC), in its currency (money is never summed across currencies), its lines'
-- units less those cancelled (a partly cancelled line counts what is left, its amounts in
-- proportion). Sales are attributed to the customer's region and segment as they are now.
--
-- Freshness: api.refresh_analytics(now) — orderlyd's timer (--analytics-interval, 30 s by
-- default) or pg_cron — recomputes the days, customers and months touched by what changed since
-- its last run: the orders and customers named in the audit log since then (every change writes
-- one, in its own transaction), less a margin for transactions that were still running
-- (analytics_settings.refresh_margin; their rows carry their start time), and, for transactions
-- longer than the margin, every audit row after the last id a run saw and the ids it found
-- missing below it once they commit (V043: the gaps, kept as the event feed keeps them, R__050;
-- orderly.audit takes its transaction id before its row's id for it). Recomputing a day is
-- idempotent, so looking at a change twice costs a little time and nothing else. The orders'
-- transactions pay nothing for it beyond one index on the status history's time.
--
-- Views are plain SQL over tables (functions a view calls are checked against its reader, and
-- orderly_bi may execute none), each with COMMENTs on it and every column.

-- Sales lines -------------------------------------------------------------------------------------

-- Whether an order counts as a sale: it was approved, and is not (or no longer) cancelled or
-- rejected. No SET search_path (every name is qualified), so that it is inlined.
CREATE OR REPLACE FUNCTION orderly.counts_as_sale(status text, order_id bigint) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT $1 NOT IN ('draft', 'submitted', 'pending_approval', 'rejected', 'cancelled')
       AND EXISTS (SELECT 1 FROM orderly.order_status_history h WHERE h.order_id = $2 AND h.to_status = 'approved')
$$;

-- The counted lines of the orders created on the given days. No SET search_path (every name is
-- qualified), so that it is inlined into the refresh's statements.
CREATE OR REPLACE FUNCTION orderly.sales_lines(days date[])
RETURNS TABLE (day date, order_id bigint, customer_id bigint, region text, segment text, currency char(3),
               product_id bigint, sku_id bigint, category_id bigint, units integer,
               gross numeric, discount numeric, net numeric, tax numeric)
LANGUAGE sql STABLE
AS $$
    SELECT (o.created_at AT TIME ZONE 'UTC')::date, o.id, o.customer_id, coalesce(c.region, 'unknown'), c.segment, o.currency,
           l.product_id, coalesce(l.sku_id, 0), p.category_id, l.qty - l.cancelled_qty,
           -- A partly cancelled line: its units still ordered, in proportion, and net plus tax
           -- exactly what the order still counts (its total less what the cancelled units were
           -- worth, round(worth × cancelled / qty): R__198_cancellation.sql), the tax taking the
           -- cent; gross less discount is net, as on the line.
           round(l.gross * (l.qty - l.cancelled_qty) / l.qty, 2),
           round(l.gross * (l.qty - l.cancelled_qty) / l.qty, 2) - round(l.net * (l.qty - l.cancelled_qty) / l.qty, 2),
           round(l.net * (l.qty - l.cancelled_qty) / l.qty, 2),
           l.net + l.tax - round((l.net + l.tax) * l.cancelled_qty / l.qty, 2) - round(l.net * (l.qty - l.cancelled_qty) / l.qty, 2)
    FROM orderly.orders o
    JOIN orderly.customers c ON c.id = o.customer_id
    JOIN orderly.order_lines l ON l.order_id = o.id AND l.qty > l.cancelled_qty
    JOIN orderly.products p ON p.id = l.product_id
    WHERE o.created_at >= (SELECT min(d) FROM unnest($1) d)::timestamp AT TIME ZONE 'UTC'
      AND o.created_at < ((SELECT max(d) FROM unnest($1) d) + 1)::timestamp AT TIME ZONE 'UTC'
      AND (o.created_at AT TIME ZONE 'UTC')::date = ANY ($1)
      AND orderly.counts_as_sale(o.status, o.id)
$$;

-- The refresh --------------------------------------------------------------------------------------

-- Sales of the given days, recomputed from the orders.
CREATE OR REPLACE FUNCTION orderly.refresh_sales_days(days date[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM orderly.sales_day_lines x WHERE x.day = ANY (days);
    DELETE FROM orderly.sales_day_orders x WHERE x.day = ANY (days);
    -- One pass over the lines, both grains (a data-modifying CTE).
    -- first_sku: the row of the product an order is counted on (product_orders, V032).
    WITH s AS (SELECT x.*, x.sku_id = min(x.sku_id) OVER (PARTITION BY x.order_id, x.product_id) AS first_sku
               FROM orderly.sales_lines(days) x),
    per_product AS (
        INSERT INTO orderly.sales_day_lines (day, product_id, sku_id, region, segment, currency, orders, product_orders, units,
                                             gross, discount, net, tax)
        SELECT s.day, s.product_id, s.sku_id, s.region, s.segment, s.currency, count(DISTINCT s.order_id),
               count(DISTINCT s.order_id) FILTER (WHERE s.first_sku), sum(s.units),
               sum(s.gross), sum(s.discount), sum(s.net), sum(s.tax)
        FROM s GROUP BY s.day, s.product_id, s.sku_id, s.region, s.segment, s.currency)
    INSERT INTO orderly.sales_day_orders (day, region, segment, currency, orders, units, gross, discount, net, tax)
    SELECT s.day, s.region, s.segment, s.currency, count(DISTINCT s.order_id), sum(s.units),
           sum(s.gross), sum(s.discount), sum(s.net), sum(s.tax)
    FROM s GROUP BY s.day, s.region, s.segment, s.currency;
END
$$;

-- How the given customers buy, recomputed from their counted orders.
CREATE OR REPLACE FUNCTION orderly.refresh_customers(customers bigint[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM orderly.customer_stats x WHERE x.customer_id = ANY (customers);
    INSERT INTO orderly.customer_stats (customer_id, currency, orders, first_order_at, last_order_at, monetary, mean_days_between,
                                        favourite_category_id)
    SELECT t.customer_id, t.currency, count(*), min(t.created_at), max(t.created_at), sum(t.worth),
           CASE WHEN count(*) > 1 THEN round((extract(epoch FROM max(t.created_at) - min(t.created_at)) / 86400 / (count(*) - 1))::numeric, 2) END,
           (SELECT p.category_id
            FROM orderly.orders o JOIN orderly.order_lines l ON l.order_id = o.id JOIN orderly.products p ON p.id = l.product_id
            WHERE o.customer_id = t.customer_id AND o.currency = t.currency AND o.id = ANY (array_agg(t.id)) AND p.category_id IS NOT NULL
            GROUP BY p.category_id ORDER BY sum(l.net * (l.qty - l.cancelled_qty) / l.qty) DESC, p.category_id LIMIT 1)
    -- What its orders are worth: tax included, cancelled units out, fees not counted.
    FROM (SELECT o.id, o.customer_id, o.currency, o.created_at, o.total - o.cancelled_total AS worth
          FROM orderly.orders o
          WHERE o.customer_id = ANY (customers) AND orderly.counts_as_sale(o.status, o.id)) t
    GROUP BY t.customer_id, t.currency;
END
$$;

-- The orders paid in full in month m (the first day): when they were approved and when they were
-- paid in full. Paid in full: at the payment (or refund) after which what was paid less what was
-- refunded, in the order they were recorded, covers what the order owes now, and stays so; an
-- order whose last payment or refund leaves it owing is not paid. analytics.order_stage_times
-- says the same for every order (a view calls no function: orderly_bi may execute none); this is
-- one month's, for the rollup.
CREATE OR REPLACE FUNCTION orderly.payment_times(m date) RETURNS TABLE (order_id bigint, approved_at timestamptz, paid_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o.id, a.at, x.paid_at
    FROM (SELECT DISTINCT p.order_id FROM orderly.payments p
          WHERE p.received_at >= $1::timestamp AT TIME ZONE 'UTC'
            AND p.received_at < ($1 + interval '1 month')::timestamp AT TIME ZONE 'UTC') t
    JOIN orderly.orders o ON o.id = t.order_id
    CROSS JOIN LATERAL (SELECT min(y.received_at) FILTER (WHERE y.id > coalesce(y.last_below, 0)) AS paid_at
                        FROM (SELECT r.id, r.received_at,
                                     max(r.id) FILTER (WHERE r.running < o.total - o.cancelled_total + o.charges_total) OVER () AS last_below
                              FROM (SELECT p.id, p.received_at,
                                           sum(CASE p.kind WHEN 'payment' THEN p.amount ELSE -p.amount END) OVER (ORDER BY p.id) AS running
                                    FROM orderly.payments p WHERE p.order_id = o.id) r) y) x
    CROSS JOIN LATERAL (SELECT min(h.changed_at) AS at FROM orderly.order_status_history h
                        WHERE h.order_id = o.id AND h.to_status = 'approved') a
    WHERE x.paid_at >= $1::timestamp AT TIME ZONE 'UTC' AND x.paid_at < ($1 + interval '1 month')::timestamp AT TIME ZONE 'UTC'
      AND a.at IS NOT NULL
$$;

-- Stage timings and deliveries of the given months (the first day of each), recomputed.
CREATE OR REPLACE FUNCTION orderly.refresh_months(months date[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m date;
BEGIN
    FOREACH m IN ARRAY months LOOP
        DELETE FROM orderly.stage_month_stats x WHERE x.month = m;
        -- A visit to a stage ends with the order's next status change: the visits that ended in m.
        INSERT INTO orderly.stage_month_stats (month, stage, visits, p50_seconds, p90_seconds, mean_seconds, total_seconds)
        SELECT m, v.stage, count(*),
               round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v.seconds)::numeric, 1),
               round(percentile_cont(0.9) WITHIN GROUP (ORDER BY v.seconds)::numeric, 1),
               round(avg(v.seconds)::numeric, 1), round(sum(v.seconds)::numeric, 1)
        FROM (SELECT prev.to_status AS stage, extract(epoch FROM nxt.changed_at - prev.changed_at) AS seconds
              FROM orderly.order_status_history nxt
              CROSS JOIN LATERAL (SELECT h.to_status, h.changed_at FROM orderly.order_status_history h
                                  WHERE h.order_id = nxt.order_id AND h.id < nxt.id ORDER BY h.id DESC LIMIT 1) prev
              WHERE nxt.changed_at >= m::timestamp AT TIME ZONE 'UTC'
                AND nxt.changed_at < (m + interval '1 month')::timestamp AT TIME ZONE 'UTC'
              UNION ALL
              -- Payment, not a status: from approval until paid in full, counted in the month of
              -- the payment that completed it.
              -- Paid before approval (a payment dated back, a prepayment): no time waiting.
              SELECT 'payment', extract(epoch FROM greatest(p.paid_at, p.approved_at) - p.approved_at)
              FROM orderly.payment_times(m) p) v
        GROUP BY v.stage;

        DELETE FROM orderly.delivery_month_stats x WHERE x.month = m;
        INSERT INTO orderly.delivery_month_stats (month, delivered, with_date, on_time)
        SELECT m, count(*), count(*) FILTER (WHERE d.requested_date IS NOT NULL),
               count(*) FILTER (WHERE d.requested_date IS NOT NULL AND (d.delivered_at AT TIME ZONE 'UTC')::date <= d.requested_date)
        -- On time by when the last shipment was signed for (SHIPMENT DELIVERED at=, a carrier's
        -- event time), not when that was recorded; the month is the recording's.
        FROM (SELECT o.requested_date,
                     coalesce((SELECT max(s.delivered_at) FROM orderly.shipments s WHERE s.order_id = o.id), h.changed_at) AS delivered_at
              FROM orderly.order_status_history h JOIN orderly.orders o ON o.id = h.order_id
              WHERE h.to_status = 'delivered'
                AND h.changed_at >= m::timestamp AT TIME ZONE 'UTC'
                AND h.changed_at < (m + interval '1 month')::timestamp AT TIME ZONE 'UTC') d
        HAVING count(*) > 0;
    END LOOP;
END
$$;

-- The timer's work (orderlyd every --analytics-interval seconds, or pg_cron): what changed since the
-- last run, less the margin, is recomputed; one caller at a time (the others return at once).
-- Returns what it did.
CREATE OR REPLACE FUNCTION api.refresh_analytics(now timestamptz DEFAULT now()) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_now       timestamptz := refresh_analytics.now;
    v_started   timestamptz := clock_timestamp();
    st          orderly.analytics_state;
    v_from      timestamptz;
    v_orders    bigint[] := '{}';
    v_customers bigint[] := '{}';
    v_moved     bigint[];
    v_days      date[] := '{}';
    v_months    date[] := '{}';
    -- How far the rollups hold after this run (NULL: still backfilling).
    v_to        timestamptz;
    -- The first day after this backfill run's days.
    v_end       date;
    v_per_run   integer;
    -- Audit rows since the last run by id, and the gaps (V043).
    v_seen      bigint;
    v_new_gaps  bigint[];
    v_gaps      jsonb;
    v_xmin      xid8;
    v_horizon   text;
    v_late      bigint[];
BEGIN
    -- "orde", "anal": one refresh at a time across servers; a second caller has nothing to add.
    IF NOT pg_try_advisory_xact_lock(x'6f726465'::integer, x'616e616c'::integer) THEN
        RETURN json_build_object('skipped', true);
    END IF;
    SELECT * INTO st FROM orderly.analytics_state;
    v_from := st.refreshed_to - (SELECT s.refresh_margin FROM orderly.analytics_settings s);

    IF st.refreshed_to IS NULL AND st.backfill_customer_next IS NOT NULL THEN
        -- Backfilling, second part: analytics_settings.backfill_customers (5 000) customers per
        -- run, in id order (their whole history).
        v_per_run := (SELECT s.backfill_customers FROM orderly.analytics_settings s);
        v_customers := ARRAY(SELECT c.id FROM orderly.customers c WHERE c.id > st.backfill_customer_next ORDER BY c.id LIMIT v_per_run);
        IF cardinality(v_customers) < v_per_run THEN
            -- The last of them: the backfill is done.
            v_to := st.backfill_started_at;
            st.backfill_started_at := NULL;
            st.backfill_customer_next := NULL;
        ELSE
            st.backfill_customer_next := v_customers[cardinality(v_customers)];
        END IF;
    ELSIF st.refreshed_to IS NULL THEN
        -- Backfilling, first part: the sales and stage months of the next 31 days of history per
        -- run, oldest first, but no more days than hold 20 000 orders (a run must stay well
        -- inside orderlyd's statement timeout; a day is done whole). Then the customers. Changes
        -- made meanwhile are caught afterwards: the incremental runs start from when the
        -- backfill started.
        IF st.backfill_started_at IS NULL THEN
            st.backfill_started_at := v_now;
            st.backfill_next := coalesce((SELECT min(o.created_at AT TIME ZONE 'UTC')::date FROM orderly.orders o),
                                         (v_now AT TIME ZONE 'UTC')::date);
        END IF;
        v_end := least(st.backfill_next + 31,
                       coalesce((SELECT (o.created_at AT TIME ZONE 'UTC')::date FROM orderly.orders o
                                 WHERE o.created_at >= st.backfill_next::timestamp AT TIME ZONE 'UTC'
                                 ORDER BY o.created_at OFFSET 20000 LIMIT 1), st.backfill_next + 31));
        v_end := greatest(v_end, st.backfill_next + 1);
        v_orders := ARRAY(SELECT o.id FROM orderly.orders o
                          WHERE o.created_at >= st.backfill_next::timestamp AT TIME ZONE 'UTC'
                            AND o.created_at < v_end::timestamp AT TIME ZONE 'UTC');
        v_days := ARRAY(SELECT DISTINCT (o.created_at AT TIME ZONE 'UTC')::date FROM orderly.orders o WHERE o.id = ANY (v_orders));
        v_months := ARRAY(SELECT DISTINCT date_trunc('month', d)::date
                          FROM generate_series(st.backfill_next, v_end - 1, interval '1 day') d);
        st.backfill_next := v_end;
        IF st.backfill_next > (v_now AT TIME ZONE 'UTC')::date THEN
            st.backfill_next := NULL;
            st.backfill_customer_next := 0;
        END IF;
    ELSE
        v_to := v_now;
        -- Before anything here writes (this transaction has no id yet): in one snapshot, the
        -- newest audit id and the ids missing since the last run's (held by transactions still
        -- running, or rolled back); then, in one snapshot, the old gaps that have committed since
        -- and the oldest transaction still running; then a transaction id, drawn after both, as
        -- the horizon of the new gaps: newer than any transaction holding one.
        IF st.audit_seen_id IS NULL THEN
            -- The first incremental run: from the newest row on, with the ids missing among the
            -- 10 000 before it (as the event feed starts, api.event_start).
            WITH m AS (SELECT coalesce(max(a.id), 0) AS last_id FROM orderly.audit_log a)
            SELECT m.last_id, ARRAY(SELECT g FROM generate_series(greatest(m.last_id - 9999, 1), m.last_id) g
                                    WHERE NOT EXISTS (SELECT 1 FROM orderly.audit_log a WHERE a.id = g) ORDER BY g)
            INTO v_seen, v_new_gaps
            FROM m;
        ELSE
            SELECT coalesce(max(x.id), st.audit_seen_id), coalesce(array_agg(g ORDER BY g) FILTER (WHERE g IS NOT NULL), '{}')
            INTO v_seen, v_new_gaps
            FROM (SELECT a.id, lag(a.id, 1, st.audit_seen_id) OVER (ORDER BY a.id) AS before
                  FROM orderly.audit_log a WHERE a.id > st.audit_seen_id) x
            LEFT JOIN LATERAL generate_series(x.before + 1, x.id - 1) g ON true;
        END IF;
        SELECT ARRAY(SELECT a.id FROM orderly.audit_log a WHERE a.id = ANY (ARRAY(SELECT k::bigint FROM jsonb_object_keys(st.audit_gaps) k))),
               pg_snapshot_xmin(pg_current_snapshot())
        INTO v_late, v_xmin;
        v_horizon := CASE WHEN cardinality(v_new_gaps) > 0 THEN pg_current_xact_id()::text END;
        -- Kept: the old gaps still open whose holder may still commit, and the new ones.
        v_gaps := coalesce((SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each_text(st.audit_gaps) e
                            WHERE NOT e.key::bigint = ANY (v_late) AND e.value::xid8 > v_xmin), '{}')
                  || coalesce((SELECT jsonb_object_agg(g::text, v_horizon) FROM unnest(v_new_gaps) g), '{}');
        -- The orders and customers of this run's audit rows: the time window, those after the
        -- last id seen, the late ones. A customer whose region or segment changed moves its
        -- sales: every day it ordered on.
        SELECT coalesce(array_agg(DISTINCT r.entity_id::bigint) FILTER (WHERE r.entity = 'order'), '{}'),
               coalesce(array_agg(DISTINCT r.entity_id::bigint) FILTER (WHERE r.entity = 'customer'), '{}')
        INTO v_orders, v_moved
        FROM (SELECT a.entity, a.entity_id FROM orderly.audit_log a WHERE a.at > v_from AND a.at <= v_now
              UNION
              SELECT a.entity, a.entity_id FROM orderly.audit_log a WHERE a.id > st.audit_seen_id AND a.id <= v_seen
              UNION
              SELECT a.entity, a.entity_id FROM orderly.audit_log a WHERE a.id = ANY (v_late)) r
        WHERE r.entity IN ('order', 'customer') AND r.entity_id ~ '^[0-9]+$';
        st.audit_seen_id := v_seen;
        st.audit_gaps := v_gaps;
        v_customers := ARRAY(SELECT o.customer_id FROM orderly.orders o WHERE o.id = ANY (v_orders) UNION SELECT unnest(v_moved));
        v_days := ARRAY(SELECT DISTINCT (o.created_at AT TIME ZONE 'UTC')::date FROM orderly.orders o
                        WHERE o.id = ANY (v_orders) OR o.customer_id = ANY (v_moved));
        -- The months of this run, and those the changed orders' payments, refunds and deliveries
        -- are dated in: a payment recorded today for last month, or a refund that leaves an order
        -- paid last month owing again, changes last month's payment stage; a delivery signed for
        -- last month, its on-time rate.
        v_months := ARRAY(SELECT DISTINCT date_trunc('month', x.t AT TIME ZONE 'UTC')::date
                          FROM (SELECT unnest(ARRAY[v_from, v_now]) AS t
                                UNION SELECT p.received_at FROM orderly.payments p WHERE p.order_id = ANY (v_orders)
                                UNION SELECT s.delivered_at FROM orderly.shipments s WHERE s.order_id = ANY (v_orders)) x
                          WHERE x.t IS NOT NULL);
    END IF;
    IF cardinality(v_days) > 0 THEN
        PERFORM orderly.refresh_sales_days(v_days);
    END IF;
    IF cardinality(v_customers) > 0 THEN
        PERFORM orderly.refresh_customers(v_customers);
        -- The quintile boundaries move with any customer.
        INSERT INTO orderly.rfm_thresholds AS t (currency, customers, recency, frequency, monetary, computed_at)
        SELECT x.currency, count(*),
               percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY x.last_order_at),
               percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY x.orders),
               percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY x.monetary), clock_timestamp()
        FROM orderly.customer_stats x GROUP BY x.currency
        ON CONFLICT (currency) DO UPDATE
        SET customers = excluded.customers, recency = excluded.recency, frequency = excluded.frequency,
            monetary = excluded.monetary, computed_at = excluded.computed_at;
        DELETE FROM orderly.rfm_thresholds t WHERE NOT EXISTS (SELECT 1 FROM orderly.customer_stats x WHERE x.currency = t.currency);
        -- So do the score cells REPORT rfm counts (every customer may change cell).
        DELETE FROM orderly.rfm_cells;
        INSERT INTO orderly.rfm_cells (currency, r, f, m, customers, last_order_days, orders, monetary)
        SELECT s.currency, s.r, s.f, s.m, count(*), sum(s.last_day), sum(s.orders), sum(s.monetary)
        FROM (SELECT x.currency, x.orders, x.monetary, x.r, x.f, x.m,
                     (x.last_order_at AT TIME ZONE 'UTC')::date - date '2000-01-01' AS last_day
              FROM orderly.customer_scores x) s
        GROUP BY 1, 2, 3, 4;
    END IF;
    IF cardinality(v_months) > 0 THEN
        PERFORM orderly.refresh_months(v_months);
    END IF;
    UPDATE orderly.analytics_state x
    SET refreshed_to = v_to,
        backfill_started_at = st.backfill_started_at, backfill_next = st.backfill_next,
        backfill_customer_next = st.backfill_customer_next,
        audit_seen_id = st.audit_seen_id, audit_gaps = st.audit_gaps,
        last_run_at = v_started,
        last_duration_ms = (extract(epoch FROM clock_timestamp() - v_started) * 1000)::integer,
        last_orders = cardinality(v_orders), last_days = cardinality(v_days), last_customers = cardinality(v_customers);
    RETURN json_build_object('skipped', false, 'backfilling', v_to IS NULL, 'orders', cardinality(v_orders), 'days', cardinality(v_days),
                             'customers', cardinality(v_customers), 'months', cardinality(v_months),
                             'ms', (extract(epoch FROM clock_timestamp() - v_started) * 1000)::integer);
END
$$;

-- Views for BI -----------------------------------------------------------------------------------------

CREATE OR REPLACE VIEW analytics.sales_daily AS
SELECT s.day, p.code AS product, p.name AS product_name, cat.code AS category, cat.name AS category_name,
       k.code AS sku, s.region, s.segment, s.currency, s.orders, s.units, s.gross, s.discount, s.net, s.tax,
       round(s.net / s.orders, 2) AS average_order_value
FROM orderly.sales_day_lines s
JOIN orderly.products p ON p.id = s.product_id
LEFT JOIN orderly.categories cat ON cat.id = p.category_id
LEFT JOIN orderly.skus k ON k.id = s.sku_id;

CREATE OR REPLACE VIEW analytics.sales_weekly AS
SELECT date_trunc('week', s.day)::date AS week, p.code AS product, p.name AS product_name, cat.code AS category,
       cat.name AS category_name, s.region, s.segment, s.currency, sum(s.product_orders)::bigint AS orders, sum(s.units)::bigint AS units,
       sum(s.gross) AS gross, sum(s.discount) AS discount, sum(s.net) AS net, sum(s.tax) AS tax,
       round(sum(s.net) / nullif(sum(s.product_orders), 0), 2) AS average_order_value
FROM orderly.sales_day_lines s
JOIN orderly.products p ON p.id = s.product_id
LEFT JOIN orderly.categories cat ON cat.id = p.category_id
GROUP BY 1, p.code, p.name, cat.code, cat.name, s.region, s.segment, s.currency;

CREATE OR REPLACE VIEW analytics.sales_monthly AS
SELECT date_trunc('month', s.day)::date AS month, p.code AS product, p.name AS product_name, cat.code AS category,
       cat.name AS category_name, s.region, s.segment, s.currency, sum(s.product_orders)::bigint AS orders, sum(s.units)::bigint AS units,
       sum(s.gross) AS gross, sum(s.discount) AS discount, sum(s.net) AS net, sum(s.tax) AS tax,
       round(sum(s.net) / nullif(sum(s.product_orders), 0), 2) AS average_order_value
FROM orderly.sales_day_lines s
JOIN orderly.products p ON p.id = s.product_id
LEFT JOIN orderly.categories cat ON cat.id = p.category_id
GROUP BY 1, p.code, p.name, cat.code, cat.name, s.region, s.segment, s.currency;

CREATE OR REPLACE VIEW analytics.sales_orders_daily AS
SELECT s.day, s.region, s.segment, s.currency, s.orders, s.units, s.gross, s.discount, s.net, s.tax,
       round(s.net / s.orders, 2) AS average_order_value
FROM orderly.sales_day_orders s;

-- Each category with everything under it (its own products and its descendants'), per month:
-- the day rows summed per month and product first, so that the tree joins a few rows.
CREATE OR REPLACE VIEW analytics.sales_by_category AS
WITH RECURSIVE tree AS (
    SELECT c.id AS category_id, c.id AS ancestor_id FROM orderly.categories c
    UNION ALL
    SELECT t.category_id, c.parent_id FROM tree t JOIN orderly.categories c ON c.id = t.ancestor_id WHERE c.parent_id IS NOT NULL
),
per_product AS (
    SELECT date_trunc('month', s.day)::date AS month, s.product_id, s.currency, sum(s.units) AS units, sum(s.gross) AS gross,
           sum(s.discount) AS discount, sum(s.net) AS net, sum(s.tax) AS tax
    FROM orderly.sales_day_lines s
    GROUP BY 1, 2, 3
)
-- Products without a category are a row of their own (category NULL), so that the top-level rows
-- add up to all sales.
SELECT x.month, a.code AS category, coalesce(a.name, 'Uncategorised') AS category_name, (a.parent_id IS NULL) AS top_level, x.currency,
       sum(x.units)::bigint AS units, sum(x.gross) AS gross, sum(x.discount) AS discount, sum(x.net) AS net, sum(x.tax) AS tax
FROM per_product x
JOIN orderly.products p ON p.id = x.product_id
LEFT JOIN tree t ON t.category_id = p.category_id
LEFT JOIN orderly.categories a ON a.id = t.ancestor_id
GROUP BY x.month, a.code, a.name, a.parent_id, x.currency;

CREATE OR REPLACE VIEW analytics.product_performance AS
WITH w AS (SELECT (now() AT TIME ZONE 'UTC')::date - s.performance_window_days AS since FROM orderly.analytics_settings s),
sold AS (
    SELECT s.product_id, s.currency, sum(s.product_orders)::bigint AS orders, sum(s.units)::bigint AS units, sum(s.net) AS net
    FROM orderly.sales_day_lines s, w WHERE s.day > w.since
    GROUP BY s.product_id, s.currency)
-- A product that sold nothing in the window ranks in its own currency (it is the worst seller there).
SELECT p.code AS product, p.name AS product_name, cat.code AS category, coalesce(x.currency, p.currency) AS currency,
       coalesce(x.orders, 0) AS orders, coalesce(x.units, 0) AS units, coalesce(x.net, 0) AS net,
       rank() OVER (PARTITION BY coalesce(x.currency, p.currency) ORDER BY coalesce(x.net, 0) DESC) AS top_rank,
       rank() OVER (PARTITION BY coalesce(x.currency, p.currency) ORDER BY coalesce(x.net, 0) ASC) AS bottom_rank,
       (SELECT w.since + 1 FROM w) AS since
FROM orderly.products p
LEFT JOIN sold x ON x.product_id = p.id
LEFT JOIN orderly.categories cat ON cat.id = p.category_id
-- Every product on sale, and any that sold in the window (taken off sale since), as REPORT products.
WHERE p.active OR x.product_id IS NOT NULL;

CREATE OR REPLACE VIEW analytics.slow_movers AS
SELECT k.code AS sku, p.code AS product, p.name AS product_name, k.stock_on_hand, k.stock_reserved,
       sold.last_sold_on,
       (now() AT TIME ZONE 'UTC')::date - sold.since AS days_without_sale
FROM orderly.skus k
JOIN orderly.products p ON p.id = k.product_id
CROSS JOIN orderly.analytics_settings st
-- Sold on its own, or inside a bundle (whose rows carry the bundle product, no SKU); unsold since
-- its last sale or, never sold, since it was created: a SKU younger than the threshold has not
-- had the time to be slow (not one created minutes ago).
CROSS JOIN LATERAL (SELECT x.last_sold_on, coalesce(x.last_sold_on, (k.created_at AT TIME ZONE 'UTC')::date) AS since
                    FROM (SELECT greatest((SELECT max(s.day) FROM orderly.sales_day_lines s WHERE s.sku_id = k.id),
                                          (SELECT max(s.day) FROM orderly.bundle_items b
                                           JOIN orderly.sales_day_lines s ON s.product_id = b.bundle_product_id
                                           WHERE b.sku_id = k.id)) AS last_sold_on) x) sold
WHERE k.stock_on_hand > 0
  AND sold.since <= (now() AT TIME ZONE 'UTC')::date - st.slow_mover_days;

CREATE OR REPLACE VIEW analytics.customer_behaviour AS
SELECT c.id AS customer_id, c.name AS customer_name, coalesce(c.region, 'unknown') AS region, c.segment, x.currency,
       x.first_order_at, x.last_order_at, x.orders, x.mean_days_between, x.monetary,
       round(x.monetary / x.orders, 2) AS average_order_value,
       cat.code AS favourite_category, cat.name AS favourite_category_name
FROM orderly.customer_stats x
JOIN orderly.customers c ON c.id = x.customer_id
LEFT JOIN orderly.categories cat ON cat.id = x.favourite_category_id;

-- Scores 1–5 by quintile within the customers of a currency: 1 plus how many of the currency's
-- quintile boundaries (orderly.rfm_thresholds: the values at 20, 40, 60 and 80 % of its customers)
-- the customer is above, for recency by the time of the last order (5: most recent), frequency by
-- orders, monetary by what was spent (5: most). The segment: the first rule by priority whose
-- ranges hold all three, looked up in the 125 combinations once. The scores are one view
-- (orderly.customer_scores) that the refresh also counts into orderly.rfm_cells for REPORT rfm.
DROP VIEW IF EXISTS analytics.customer_rfm;
DROP VIEW IF EXISTS orderly.customer_scores;
CREATE VIEW orderly.customer_scores AS
SELECT x.customer_id, x.currency, x.last_order_at, x.orders, x.monetary,
       1 + (x.last_order_at > t.recency[1])::integer + (x.last_order_at > t.recency[2])::integer
         + (x.last_order_at > t.recency[3])::integer + (x.last_order_at > t.recency[4])::integer AS r,
       1 + (x.orders > t.frequency[1])::integer + (x.orders > t.frequency[2])::integer
         + (x.orders > t.frequency[3])::integer + (x.orders > t.frequency[4])::integer AS f,
       1 + (x.monetary > t.monetary[1])::integer + (x.monetary > t.monetary[2])::integer
         + (x.monetary > t.monetary[3])::integer + (x.monetary > t.monetary[4])::integer AS m
FROM orderly.customer_stats x
JOIN orderly.rfm_thresholds t ON t.currency = x.currency;

CREATE VIEW analytics.customer_rfm AS
WITH segments AS (
    SELECT r, f, m, (SELECT g.name FROM orderly.rfm_segments g
                     WHERE r BETWEEN g.r_min AND g.r_max AND f BETWEEN g.f_min AND g.f_max AND m BETWEEN g.m_min AND g.m_max
                     ORDER BY g.priority LIMIT 1) AS name
    FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m),
scored AS (SELECT * FROM orderly.customer_scores)
SELECT s.customer_id, c.name AS customer_name, s.currency,
       ((now() AT TIME ZONE 'UTC')::date - (s.last_order_at AT TIME ZONE 'UTC')::date) AS recency_days,
       s.orders AS frequency, s.monetary, s.r AS r_score, s.f AS f_score, s.m AS m_score, g.name AS segment
FROM scored s
JOIN orderly.customers c ON c.id = s.customer_id
JOIN segments g ON g.r = s.r AND g.f = s.f AND g.m = s.m;

CREATE OR REPLACE VIEW analytics.rfm_segments AS
SELECT g.name, g.priority, g.r_min, g.r_max, g.f_min, g.f_max, g.m_min, g.m_max, g.description
FROM orderly.rfm_segments g;

-- Each order's time in each stage it went through (a stage visited twice, e.g. awaiting approval
-- again after a rejection, counts both visits); a stage it is still in counts up to now. Besides
-- the statuses, "payment": from approval until the payment that paid it in full.
CREATE OR REPLACE VIEW analytics.order_stage_times AS
SELECT v.order_id, v.stage, count(*) AS visits, min(v.entered_at) AS first_entered_at, max(v.left_at) AS last_left_at,
       sum(coalesce(v.left_at, now()) - v.entered_at) AS time_in_stage,
       round(extract(epoch FROM sum(coalesce(v.left_at, now()) - v.entered_at))::numeric / 3600, 2) AS hours_in_stage,
       bool_or(v.left_at IS NULL) AS current
FROM (SELECT h.order_id, h.to_status AS stage, h.changed_at AS entered_at,
             lead(h.changed_at) OVER (PARTITION BY h.order_id ORDER BY h.id) AS left_at
      FROM orderly.order_status_history h
      UNION ALL
      -- Payment: from the first approval until paid in full, as orderly.payment_times says it
      -- (the payment or refund after which what was paid less refunded covers what the order
      -- owes now, and stays so); an order still owing is in it now. Paid before approval (a
      -- payment dated back, a prepayment): no time waiting.
      SELECT a.order_id, 'payment', a.at, CASE WHEN p.paid_at IS NOT NULL THEN greatest(p.paid_at, a.at) END
      FROM (SELECT h.order_id, min(h.changed_at) AS at FROM orderly.order_status_history h
            WHERE h.to_status = 'approved' GROUP BY h.order_id) a
      JOIN orderly.orders o ON o.id = a.order_id
      LEFT JOIN (SELECT y.order_id, min(y.received_at) FILTER (WHERE y.id > coalesce(y.last_below, 0)) AS paid_at
                 FROM (SELECT r.order_id, r.id, r.received_at,
                              max(r.id) FILTER (WHERE r.running < r.owed) OVER (PARTITION BY r.order_id) AS last_below
                       FROM (SELECT x.order_id, x.id, x.received_at,
                                    sum(CASE x.kind WHEN 'payment' THEN x.amount ELSE -x.amount END)
                                        OVER (PARTITION BY x.order_id ORDER BY x.id) AS running,
                                    o2.total - o2.cancelled_total + o2.charges_total AS owed
                             FROM orderly.payments x JOIN orderly.orders o2 ON o2.id = x.order_id) r) y
                 GROUP BY y.order_id) p ON p.order_id = a.order_id
      WHERE p.paid_at IS NOT NULL OR o.total - o.cancelled_total + o.charges_total > 0) v
GROUP BY v.order_id, v.stage;

CREATE OR REPLACE VIEW analytics.stage_efficiency AS
SELECT s.month, s.stage, s.visits,
       round(s.p50_seconds / 3600, 2) AS p50_hours, round(s.p90_seconds / 3600, 2) AS p90_hours,
       round(s.mean_seconds / 3600, 2) AS mean_hours, round(s.total_seconds / 3600, 2) AS total_hours,
       rank() OVER (PARTITION BY s.month ORDER BY s.total_seconds DESC) AS bottleneck_rank
FROM orderly.stage_month_stats s
WHERE s.stage NOT IN ('draft', 'completed', 'cancelled', 'rejected');

CREATE OR REPLACE VIEW analytics.on_time_delivery AS
SELECT d.month, d.delivered, d.with_date, d.on_time,
       CASE WHEN d.with_date > 0 THEN round(d.on_time::numeric / d.with_date, 4) END AS on_time_rate
FROM orderly.delivery_month_stats d;

-- Cancellations by the stage the order was at, per month and currency: how many, what they were
-- worth, the fees, and the share of that month's orders.
CREATE OR REPLACE VIEW analytics.cancellations AS
-- rate: the orders cancelled whole at the stage, of the month's orders in the currency: those
-- still counted as sales (created that month) and those cancelled whole that month.
SELECT x.month, x.stage, x.currency, x.cancellations, x.whole_orders, x.cancelled_value, x.fees,
       round(x.whole_orders::numeric / nullif(coalesce((SELECT sum(s.orders) FROM orderly.sales_day_orders s
                                                        WHERE s.day >= x.month AND s.day < x.month + interval '1 month'
                                                          AND s.currency = x.currency), 0)
                                              + sum(x.whole_orders) OVER (PARTITION BY x.month, x.currency), 0), 4) AS rate
-- stage: the status whose policy applied (an order on hold is cancelled at the status it was held
-- at: its fee is that status's, and "on_hold" has no policy of its own).
FROM (SELECT date_trunc('month', c.decided_at AT TIME ZONE 'UTC')::date AS month,
             coalesce(c.plan -> 'policy' ->> 'status', c.plan ->> 'order_status') AS stage, c.currency,
             count(*) AS cancellations, count(*) FILTER (WHERE (c.plan ->> 'whole_order')::boolean) AS whole_orders,
             sum((c.plan ->> 'cancelled_value')::numeric) AS cancelled_value, sum(c.fee) AS fees
      FROM orderly.order_cancellations c
      WHERE c.status = 'applied'
      GROUP BY 1, 2, 3) x;

CREATE OR REPLACE VIEW analytics.refresh_state AS
SELECT st.refreshed_to, st.last_run_at, st.last_duration_ms, st.last_orders, st.last_days, st.last_customers,
       st.backfill_next AS backfill_next_day, st.backfill_customer_next AS backfill_after_customer
FROM orderly.analytics_state st;

-- What every view and column means, for BI tools (\d+ in psql) --------------------------------------------

COMMENT ON VIEW analytics.sales_daily IS 'Sales per day (the day the order was created, UTC), product, SKU, customer region, segment and currency: only orders that were approved and are neither cancelled nor rejected; cancelled units left out. Refreshed by the analytics timer (analytics.refresh_state)';
COMMENT ON COLUMN analytics.sales_daily.day IS 'Day the orders were created (UTC)';
COMMENT ON COLUMN analytics.sales_daily.product IS 'Product code';
COMMENT ON COLUMN analytics.sales_daily.product_name IS 'Product name';
COMMENT ON COLUMN analytics.sales_daily.category IS 'Category code of the product (NULL: none)';
COMMENT ON COLUMN analytics.sales_daily.category_name IS 'Category name';
COMMENT ON COLUMN analytics.sales_daily.sku IS 'SKU code (NULL: a bundle, a service or a made-to-order product)';
COMMENT ON COLUMN analytics.sales_daily.region IS 'Customer region as it is now (unknown: none given)';
COMMENT ON COLUMN analytics.sales_daily.segment IS 'Customer segment as it is now';
COMMENT ON COLUMN analytics.sales_daily.currency IS 'Currency of every amount in the row (never mixed)';
COMMENT ON COLUMN analytics.sales_daily.orders IS 'Orders that had this SKU of the product (sum per product with care: an order with two of its SKUs is on both rows; sales_weekly counts it once)';
COMMENT ON COLUMN analytics.sales_daily.units IS 'Units sold (ordered less cancelled)';
COMMENT ON COLUMN analytics.sales_daily.gross IS 'List price × units, before discounts';
COMMENT ON COLUMN analytics.sales_daily.discount IS 'Discounts (negative: a surcharge)';
COMMENT ON COLUMN analytics.sales_daily.net IS 'Net sales: gross less discount, before tax';
COMMENT ON COLUMN analytics.sales_daily.tax IS 'Tax on the net';
COMMENT ON COLUMN analytics.sales_daily.average_order_value IS 'net / orders: what the product brought per order that had it';

COMMENT ON VIEW analytics.sales_weekly IS 'sales_daily per ISO week (Monday), product, region, segment and currency';
COMMENT ON COLUMN analytics.sales_weekly.week IS 'Monday of the week';
COMMENT ON COLUMN analytics.sales_weekly.product IS 'Product code';
COMMENT ON COLUMN analytics.sales_weekly.product_name IS 'Product name';
COMMENT ON COLUMN analytics.sales_weekly.category IS 'Category code';
COMMENT ON COLUMN analytics.sales_weekly.category_name IS 'Category name';
COMMENT ON COLUMN analytics.sales_weekly.region IS 'Customer region';
COMMENT ON COLUMN analytics.sales_weekly.segment IS 'Customer segment';
COMMENT ON COLUMN analytics.sales_weekly.currency IS 'Currency of the amounts';
COMMENT ON COLUMN analytics.sales_weekly.orders IS 'Order-days that had the product (an order counts once)';
COMMENT ON COLUMN analytics.sales_weekly.units IS 'Units sold';
COMMENT ON COLUMN analytics.sales_weekly.gross IS 'Gross';
COMMENT ON COLUMN analytics.sales_weekly.discount IS 'Discounts';
COMMENT ON COLUMN analytics.sales_weekly.net IS 'Net sales before tax';
COMMENT ON COLUMN analytics.sales_weekly.tax IS 'Tax';
COMMENT ON COLUMN analytics.sales_weekly.average_order_value IS 'net / orders';

COMMENT ON VIEW analytics.sales_monthly IS 'sales_daily per month, product, region, segment and currency';
COMMENT ON COLUMN analytics.sales_monthly.month IS 'First day of the month';
COMMENT ON COLUMN analytics.sales_monthly.product IS 'Product code';
COMMENT ON COLUMN analytics.sales_monthly.product_name IS 'Product name';
COMMENT ON COLUMN analytics.sales_monthly.category IS 'Category code';
COMMENT ON COLUMN analytics.sales_monthly.category_name IS 'Category name';
COMMENT ON COLUMN analytics.sales_monthly.region IS 'Customer region';
COMMENT ON COLUMN analytics.sales_monthly.segment IS 'Customer segment';
COMMENT ON COLUMN analytics.sales_monthly.currency IS 'Currency of the amounts';
COMMENT ON COLUMN analytics.sales_monthly.orders IS 'Orders that had the product';
COMMENT ON COLUMN analytics.sales_monthly.units IS 'Units sold';
COMMENT ON COLUMN analytics.sales_monthly.gross IS 'Gross';
COMMENT ON COLUMN analytics.sales_monthly.discount IS 'Discounts';
COMMENT ON COLUMN analytics.sales_monthly.net IS 'Net sales before tax';
COMMENT ON COLUMN analytics.sales_monthly.tax IS 'Tax';
COMMENT ON COLUMN analytics.sales_monthly.average_order_value IS 'net / orders';

COMMENT ON VIEW analytics.sales_orders_daily IS 'Orders per day, customer region, segment and currency, whole orders (so that order counts and average order value are right): same orders as sales_daily';
COMMENT ON COLUMN analytics.sales_orders_daily.day IS 'Day the orders were created (UTC)';
COMMENT ON COLUMN analytics.sales_orders_daily.region IS 'Customer region';
COMMENT ON COLUMN analytics.sales_orders_daily.segment IS 'Customer segment';
COMMENT ON COLUMN analytics.sales_orders_daily.currency IS 'Currency of the amounts';
COMMENT ON COLUMN analytics.sales_orders_daily.orders IS 'Orders';
COMMENT ON COLUMN analytics.sales_orders_daily.units IS 'Units sold';
COMMENT ON COLUMN analytics.sales_orders_daily.gross IS 'Gross';
COMMENT ON COLUMN analytics.sales_orders_daily.discount IS 'Discounts';
COMMENT ON COLUMN analytics.sales_orders_daily.net IS 'Net sales before tax';
COMMENT ON COLUMN analytics.sales_orders_daily.tax IS 'Tax';
COMMENT ON COLUMN analytics.sales_orders_daily.average_order_value IS 'net / orders: average order value before tax';

COMMENT ON VIEW analytics.sales_by_category IS 'Sales per month and category, each category with everything under it in the category tree (its own products and those of its descendants); products without a category in a row of their own (category NULL, Uncategorised), so that the top-level rows add up to all sales';
COMMENT ON COLUMN analytics.sales_by_category.month IS 'First day of the month';
COMMENT ON COLUMN analytics.sales_by_category.category IS 'Category code (NULL: products without a category)';
COMMENT ON COLUMN analytics.sales_by_category.category_name IS 'Category name';
COMMENT ON COLUMN analytics.sales_by_category.top_level IS 'Whether the category has no parent';
COMMENT ON COLUMN analytics.sales_by_category.currency IS 'Currency of the amounts';
COMMENT ON COLUMN analytics.sales_by_category.units IS 'Units sold';
COMMENT ON COLUMN analytics.sales_by_category.gross IS 'Gross';
COMMENT ON COLUMN analytics.sales_by_category.discount IS 'Discounts';
COMMENT ON COLUMN analytics.sales_by_category.net IS 'Net sales before tax';
COMMENT ON COLUMN analytics.sales_by_category.tax IS 'Tax';

COMMENT ON VIEW analytics.product_performance IS 'Every active product (and any that sold in the window) over the performance window (analytics_settings.performance_window_days, 90 by default): orders, units, net per currency, and its rank from the top and from the bottom by net';
COMMENT ON COLUMN analytics.product_performance.product IS 'Product code';
COMMENT ON COLUMN analytics.product_performance.product_name IS 'Product name';
COMMENT ON COLUMN analytics.product_performance.category IS 'Category code';
COMMENT ON COLUMN analytics.product_performance.currency IS 'Currency of the sales (no sale in the window: the product''s own)';
COMMENT ON COLUMN analytics.product_performance.orders IS 'Orders in the window';
COMMENT ON COLUMN analytics.product_performance.units IS 'Units sold in the window';
COMMENT ON COLUMN analytics.product_performance.net IS 'Net sales in the window, before tax';
COMMENT ON COLUMN analytics.product_performance.top_rank IS '1 = best seller by net in its currency';
COMMENT ON COLUMN analytics.product_performance.bottom_rank IS '1 = worst seller by net in its currency';
COMMENT ON COLUMN analytics.product_performance.since IS 'First day of the window';

COMMENT ON VIEW analytics.slow_movers IS 'SKUs with stock on hand and no sale, on their own or in a bundle, for analytics_settings.slow_mover_days days (60 by default), counted from their creation when never sold';
COMMENT ON COLUMN analytics.slow_movers.sku IS 'SKU code';
COMMENT ON COLUMN analytics.slow_movers.product IS 'Product code';
COMMENT ON COLUMN analytics.slow_movers.product_name IS 'Product name';
COMMENT ON COLUMN analytics.slow_movers.stock_on_hand IS 'Units on hand';
COMMENT ON COLUMN analytics.slow_movers.stock_reserved IS 'Units reserved by open orders';
COMMENT ON COLUMN analytics.slow_movers.last_sold_on IS 'Last day it sold (NULL: never)';
COMMENT ON COLUMN analytics.slow_movers.days_without_sale IS 'Days since its last sale (never sold: since it was created)';

COMMENT ON VIEW analytics.customer_behaviour IS 'How each customer buys, per currency, over its orders that count as sales';
COMMENT ON COLUMN analytics.customer_behaviour.customer_id IS 'Customer';
COMMENT ON COLUMN analytics.customer_behaviour.customer_name IS 'Customer name';
COMMENT ON COLUMN analytics.customer_behaviour.region IS 'Region';
COMMENT ON COLUMN analytics.customer_behaviour.segment IS 'Segment';
COMMENT ON COLUMN analytics.customer_behaviour.currency IS 'Currency of the amounts';
COMMENT ON COLUMN analytics.customer_behaviour.first_order_at IS 'First counted order';
COMMENT ON COLUMN analytics.customer_behaviour.last_order_at IS 'Last counted order';
COMMENT ON COLUMN analytics.customer_behaviour.orders IS 'Counted orders';
COMMENT ON COLUMN analytics.customer_behaviour.mean_days_between IS 'Mean days between orders (NULL: one order)';
COMMENT ON COLUMN analytics.customer_behaviour.monetary IS 'What the orders are worth, tax included, cancelled units out, fees not counted';
COMMENT ON COLUMN analytics.customer_behaviour.average_order_value IS 'monetary / orders';
COMMENT ON COLUMN analytics.customer_behaviour.favourite_category IS 'Category code it spent most on';
COMMENT ON COLUMN analytics.customer_behaviour.favourite_category_name IS 'Its name';

COMMENT ON VIEW analytics.customer_rfm IS 'Recency, frequency and monetary scores 1 to 5 by quintile within the customers of a currency (1 + how many of the 20/40/60/80 % boundaries the customer is above; 5 is the most recent, most frequent, biggest spender) and the segment of the first analytics.rfm_segments rule (by priority) whose ranges hold them';
COMMENT ON COLUMN analytics.customer_rfm.customer_id IS 'Customer';
COMMENT ON COLUMN analytics.customer_rfm.customer_name IS 'Customer name';
COMMENT ON COLUMN analytics.customer_rfm.currency IS 'Currency of monetary';
COMMENT ON COLUMN analytics.customer_rfm.recency_days IS 'Days since the last counted order';
COMMENT ON COLUMN analytics.customer_rfm.frequency IS 'Counted orders';
COMMENT ON COLUMN analytics.customer_rfm.monetary IS 'What they spent (as customer_behaviour)';
COMMENT ON COLUMN analytics.customer_rfm.r_score IS 'Recency score 1-5, 5 = most recent';
COMMENT ON COLUMN analytics.customer_rfm.f_score IS 'Frequency quintile, 5 = most orders';
COMMENT ON COLUMN analytics.customer_rfm.m_score IS 'Monetary quintile, 5 = most spent';
COMMENT ON COLUMN analytics.customer_rfm.segment IS 'Segment name';

COMMENT ON VIEW analytics.rfm_segments IS 'The rules that name RFM segments: the first row by priority whose score ranges hold a customers scores';
COMMENT ON COLUMN analytics.rfm_segments.name IS 'Segment';
COMMENT ON COLUMN analytics.rfm_segments.priority IS 'Lower is tried first';
COMMENT ON COLUMN analytics.rfm_segments.r_min IS 'Lowest recency score';
COMMENT ON COLUMN analytics.rfm_segments.r_max IS 'Highest recency score';
COMMENT ON COLUMN analytics.rfm_segments.f_min IS 'Lowest frequency score';
COMMENT ON COLUMN analytics.rfm_segments.f_max IS 'Highest frequency score';
COMMENT ON COLUMN analytics.rfm_segments.m_min IS 'Lowest monetary score';
COMMENT ON COLUMN analytics.rfm_segments.m_max IS 'Highest monetary score';
COMMENT ON COLUMN analytics.rfm_segments.description IS 'What the segment means';

COMMENT ON VIEW analytics.order_stage_times IS 'Each orders time in each stage (status) from its status history; visits of a stage add up; the current stage counts up to now';
COMMENT ON COLUMN analytics.order_stage_times.order_id IS 'Order';
COMMENT ON COLUMN analytics.order_stage_times.stage IS 'Status, or payment: from approval until paid in full (the payment or refund after which paid less refunded covers what the order owes, and stays so); an order still owing is in it now';
COMMENT ON COLUMN analytics.order_stage_times.visits IS 'Times the order entered it';
COMMENT ON COLUMN analytics.order_stage_times.first_entered_at IS 'When it first entered';
COMMENT ON COLUMN analytics.order_stage_times.last_left_at IS 'When it last left (NULL: still there)';
COMMENT ON COLUMN analytics.order_stage_times.time_in_stage IS 'Total time in the stage';
COMMENT ON COLUMN analytics.order_stage_times.hours_in_stage IS 'The same in hours';
COMMENT ON COLUMN analytics.order_stage_times.current IS 'Whether the order is in this stage now';

COMMENT ON VIEW analytics.stage_efficiency IS 'Per month and stage: how long visits that ended that month lasted (p50, p90, mean) and the bottleneck ranking by total time spent waiting';
COMMENT ON COLUMN analytics.stage_efficiency.month IS 'Month the visits ended';
COMMENT ON COLUMN analytics.stage_efficiency.stage IS 'Status, or payment (from approval until paid in full)';
COMMENT ON COLUMN analytics.stage_efficiency.visits IS 'Visits that ended';
COMMENT ON COLUMN analytics.stage_efficiency.p50_hours IS 'Median hours';
COMMENT ON COLUMN analytics.stage_efficiency.p90_hours IS '90th percentile hours';
COMMENT ON COLUMN analytics.stage_efficiency.mean_hours IS 'Mean hours';
COMMENT ON COLUMN analytics.stage_efficiency.total_hours IS 'All visits together, hours';
COMMENT ON COLUMN analytics.stage_efficiency.bottleneck_rank IS '1 = the stage orders waited in longest that month';

COMMENT ON VIEW analytics.on_time_delivery IS 'Per month of delivery: orders delivered, those with a requested date, and those delivered by it';
COMMENT ON COLUMN analytics.on_time_delivery.month IS 'Month the orders were delivered (UTC)';
COMMENT ON COLUMN analytics.on_time_delivery.delivered IS 'Orders delivered';
COMMENT ON COLUMN analytics.on_time_delivery.with_date IS 'Of those, with a requested date';
COMMENT ON COLUMN analytics.on_time_delivery.on_time IS 'Delivered (the last shipment signed for, by its delivery time) on or before the requested date';
COMMENT ON COLUMN analytics.on_time_delivery.on_time_rate IS 'on_time / with_date';

COMMENT ON VIEW analytics.cancellations IS 'Cancellations carried out, per month, stage the order was at, and currency: counts, what was cancelled, the fees, and the share of the month''s orders cancelled whole at that stage';
COMMENT ON COLUMN analytics.cancellations.month IS 'Month the cancellation was carried out';
COMMENT ON COLUMN analytics.cancellations.stage IS 'Status of the order when it was cancelled (of an order on hold, the status it was held at, whose policy set the fee)';
COMMENT ON COLUMN analytics.cancellations.currency IS 'Currency of the amounts';
COMMENT ON COLUMN analytics.cancellations.cancellations IS 'Cancellations (whole or of lines)';
COMMENT ON COLUMN analytics.cancellations.whole_orders IS 'Of those, whole orders';
COMMENT ON COLUMN analytics.cancellations.cancelled_value IS 'What the cancelled units were worth, tax included';
COMMENT ON COLUMN analytics.cancellations.fees IS 'Cancellation fees charged';
COMMENT ON COLUMN analytics.cancellations.rate IS 'Orders cancelled whole at this stage / the month''s orders in the currency (those counted as sales plus those cancelled whole that month)';

COMMENT ON VIEW analytics.refresh_state IS 'When the analytics rollups were last refreshed, and how far';
COMMENT ON COLUMN analytics.refresh_state.refreshed_to IS 'Changes up to this time are in the rollups';
COMMENT ON COLUMN analytics.refresh_state.last_run_at IS 'When the last refresh ran';
COMMENT ON COLUMN analytics.refresh_state.last_duration_ms IS 'How long it took';
COMMENT ON COLUMN analytics.refresh_state.last_orders IS 'Orders it looked at';
COMMENT ON COLUMN analytics.refresh_state.last_days IS 'Days it recomputed';
COMMENT ON COLUMN analytics.refresh_state.last_customers IS 'Customers it recomputed';
COMMENT ON COLUMN analytics.refresh_state.backfill_next_day IS 'While the first refresh goes through the history: the next day to do (NULL once the days are done)';
COMMENT ON COLUMN analytics.refresh_state.backfill_after_customer IS 'While the first refresh goes through the customers, after the days: the customer id it goes on after (NULL otherwise)';

-- REPORT ------------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION orderly.report_doc(r orderly.reports) RETURNS json
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object('report', ($1).name, 'usage', ($1).usage, 'groups', ($1).groups, 'label', ($1).label,
                             'measure', ($1).measure, 'summary', ($1).summary)
$$;

-- The registry lists what any report takes; a report's usage (its row) what this one reads, and
-- an argument it would ignore is refused, as any argument a command does not take. REPORT alone
-- (r NULL: the list) takes none.
CREATE OR REPLACE FUNCTION orderly.check_report_args(r orderly.reports, args jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_extra text := (SELECT k FROM jsonb_object_keys(args) k
                     WHERE k <> 'name' AND (r.name IS NULL OR strpos(r.usage, '[' || k || '=') = 0) ORDER BY k LIMIT 1);
BEGIN
    IF v_extra IS NOT NULL AND r.name IS NULL THEN
        RAISE EXCEPTION 'REPORT alone lists the reports and takes no %=; name the report: REPORT sales %=…', v_extra, v_extra
            USING ERRCODE = 'OL400';
    ELSIF v_extra IS NOT NULL THEN
        RAISE EXCEPTION 'report % takes no %= (usage: %)', r.name, v_extra, r.usage USING ERRCODE = 'OL400';
    END IF;
END
$$;

-- REPORT [name] [from=] [to=] [group=] [limit=]: one data line per row of the report, over the same
-- rollups as the analytics views; REPORT alone lists the reports. from/to are days (inclusive),
-- 12 months back to today by default.
CREATE OR REPLACE FUNCTION api.report(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u       orderly.users := orderly.begin_command('REPORT', report.actor, report.args);
    v_name  text := lower(btrim(orderly.arg_text(args, 'name')));
    -- Days, as the rollups keep them (UTC): a time of day would be cut to a day in the session's zone.
    v_to    date := coalesce(orderly.arg_date(args, 'to'), (now() AT TIME ZONE 'UTC')::date);
    v_from  date := coalesce(orderly.arg_date(args, 'from'), (date_trunc('month', v_to) - interval '11 months')::date);
    v_limit integer := orderly.arg_limit(args, 100, 1000);
    v_group text := lower(btrim(orderly.arg_text(args, 'group')));
    r       orderly.reports;
BEGIN
    IF v_name IS NULL THEN
        PERFORM orderly.check_report_args(NULL, args);
        RETURN QUERY SELECT orderly.report_doc(x) FROM orderly.reports x ORDER BY x.position;
        RETURN;
    END IF;
    SELECT * INTO r FROM orderly.reports x WHERE x.name = v_name;
    IF r.name IS NULL THEN
        RAISE EXCEPTION 'unknown report "%"; REPORT lists them: %', orderly.for_message(v_name),
            (SELECT string_agg(x.name, ', ' ORDER BY x.position) FROM orderly.reports x) USING ERRCODE = 'OL404';
    END IF;
    PERFORM orderly.check_report_args(r, args);
    IF v_group IS NOT NULL AND NOT (v_group = ANY (r.groups)) THEN
        RAISE EXCEPTION 'group must be one of: %', array_to_string(r.groups, ', ') USING ERRCODE = 'OL400';
    END IF;
    v_group := coalesce(v_group, r.groups[1]);
    IF v_from > v_to THEN
        RAISE EXCEPTION 'from (%) is after to (%)', v_from, v_to USING ERRCODE = 'OL400';
    END IF;
    IF NOT (args ? 'limit') AND r.name IN ('products', 'customers') THEN
        v_limit := 10;
    END IF;

    CASE r.name
    WHEN 'sales' THEN
        IF v_group = 'category' THEN
            -- The period summed per product first (an index range of the day rows), then the tree.
            RETURN QUERY
            WITH RECURSIVE tree AS (
                SELECT c.id AS category_id, c.id AS ancestor_id FROM orderly.categories c
                UNION ALL
                SELECT t.category_id, c.parent_id FROM tree t JOIN orderly.categories c ON c.id = t.ancestor_id
                WHERE c.parent_id IS NOT NULL),
            per_product AS (
                SELECT s.product_id, s.currency, sum(s.units) AS units, sum(s.gross) AS gross, sum(s.discount) AS discount,
                       sum(s.net) AS net, sum(s.tax) AS tax
                FROM orderly.sales_day_lines s WHERE s.day BETWEEN v_from AND v_to GROUP BY 1, 2)
            SELECT c.doc FROM (
                SELECT json_build_object('key', a.code, 'category', a.code, 'category_name', coalesce(a.name, 'Uncategorised'),
                                         'top_level', a.parent_id IS NULL,
                                         'currency', x.currency, 'units', sum(x.units), 'gross', sum(x.gross),
                                         'discount', sum(x.discount), 'net', sum(x.net), 'tax', sum(x.tax)) AS doc,
                       x.currency, sum(x.net) AS net, a.code,
                       row_number() OVER (PARTITION BY x.currency ORDER BY sum(x.net) DESC, a.code) AS n
                FROM per_product x
                JOIN orderly.products p ON p.id = x.product_id
                LEFT JOIN tree t ON t.category_id = p.category_id
                LEFT JOIN orderly.categories a ON a.id = t.ancestor_id
                GROUP BY a.code, a.name, a.parent_id, x.currency) c
            WHERE c.n <= v_limit
            ORDER BY c.currency, c.net DESC, c.code;
        ELSE
            RETURN QUERY
            SELECT json_build_object('key', t.key, v_group, t.key, 'currency', t.currency, 'orders', t.orders, 'units', t.units,
                                     'gross', t.gross, 'discount', t.discount, 'net', t.net, 'tax', t.tax,
                                     'average_order_value', round(t.net / nullif(t.orders, 0), 2))
            FROM (SELECT g.*,
                         -- limit: rows per currency, the latest periods (shown oldest first) or the largest.
                         row_number() OVER (PARTITION BY g.currency
                                            ORDER BY CASE WHEN v_group IN ('day', 'week', 'month') THEN g.key END DESC NULLS LAST,
                                                     CASE WHEN v_group NOT IN ('day', 'week', 'month') THEN g.net END DESC NULLS LAST,
                                                     g.key) AS n
                  FROM (SELECT CASE v_group WHEN 'day' THEN s.day::text
                                      WHEN 'week' THEN date_trunc('week', s.day)::date::text
                                      WHEN 'month' THEN to_char(s.day, 'YYYY-MM')
                                      WHEN 'region' THEN s.region ELSE s.segment END AS key,
                         s.currency, sum(s.orders) AS orders, sum(s.units) AS units, sum(s.gross) AS gross,
                         sum(s.discount) AS discount, sum(s.net) AS net, sum(s.tax) AS tax
                  FROM orderly.sales_day_orders s
                  WHERE s.day BETWEEN v_from AND v_to
                  GROUP BY 1, 2) g) t
            WHERE t.n <= v_limit
            ORDER BY CASE WHEN v_group IN ('day', 'week', 'month') THEN t.key END, t.currency,
                     CASE WHEN v_group NOT IN ('day', 'week', 'month') THEN t.net END DESC, t.key;
        END IF;
    WHEN 'products' THEN
        RETURN QUERY
        SELECT json_build_object('product', t.code, 'name', t.name, 'category', t.category, 'currency', t.currency,
                                 'orders', t.orders, 'units', t.units, 'net', t.net, 'rank', t.rank)
        FROM (SELECT x.*, rank() OVER (PARTITION BY x.currency ORDER BY CASE WHEN v_group = 'bottom' THEN x.net ELSE -x.net END) AS rank
              FROM (SELECT p.code, p.name, cat.code AS category, s.currency, sum(s.product_orders) AS orders, sum(s.units) AS units,
                           sum(s.net) AS net
                    FROM orderly.sales_day_lines s
                    JOIN orderly.products p ON p.id = s.product_id
                    LEFT JOIN orderly.categories cat ON cat.id = p.category_id
                    WHERE s.day BETWEEN v_from AND v_to
                    GROUP BY p.code, p.name, cat.code, s.currency
                    UNION ALL
                    -- The worst sellers sold nothing: every active product without a sale in the
                    -- period, in its own currency.
                    SELECT p.code, p.name, cat.code, p.currency, 0, 0, 0
                    FROM orderly.products p
                    LEFT JOIN orderly.categories cat ON cat.id = p.category_id
                    WHERE v_group = 'bottom' AND p.active
                      AND NOT EXISTS (SELECT 1 FROM orderly.sales_day_lines s
                                      WHERE s.product_id = p.id AND s.currency = p.currency AND s.day BETWEEN v_from AND v_to)) x) t
        WHERE t.rank <= v_limit
        ORDER BY t.currency, t.rank, t.code;
    WHEN 'slow_movers' THEN
        RETURN QUERY
        SELECT json_build_object('sku', x.sku, 'product', x.product, 'name', x.product_name, 'stock_on_hand', x.stock_on_hand,
                                 'stock_reserved', x.stock_reserved, 'last_sold_on', x.last_sold_on,
                                 'days_without_sale', x.days_without_sale)
        FROM analytics.slow_movers x
        ORDER BY x.stock_on_hand DESC, x.sku
        LIMIT v_limit;
    WHEN 'customers' THEN
        IF v_group = 'customer' THEN
            RETURN QUERY
            SELECT json_build_object('key', x.customer_name, 'customer', x.customer_id, 'name', x.customer_name, 'region', x.region,
                                     'segment', x.segment, 'currency', x.currency, 'orders', x.orders, 'monetary', x.monetary,
                                     'average_order_value', x.average_order_value, 'mean_days_between', x.mean_days_between,
                                     'favourite_category', x.favourite_category, 'last_order_at', orderly.json_time(x.last_order_at))
            FROM (SELECT b.*, row_number() OVER (PARTITION BY b.currency ORDER BY b.monetary DESC, b.customer_id) AS n
                  FROM analytics.customer_behaviour b) x
            WHERE x.n <= v_limit
            ORDER BY x.currency, x.monetary DESC, x.customer_id;
        ELSE
            RETURN QUERY
            SELECT json_build_object('key', t.key, v_group, t.key, 'currency', t.currency, 'customers', t.customers, 'orders', t.orders,
                                     'monetary', t.monetary, 'average_order_value', round(t.monetary / t.orders, 2))
            FROM (SELECT g.*, row_number() OVER (PARTITION BY g.currency ORDER BY g.monetary DESC, g.key) AS n
                  FROM (SELECT CASE v_group WHEN 'region' THEN x.region ELSE x.segment END AS key, x.currency, count(*) AS customers,
                               sum(x.orders) AS orders, sum(x.monetary) AS monetary
                        FROM analytics.customer_behaviour x GROUP BY 1, 2) g) t
            WHERE t.n <= v_limit
            ORDER BY t.currency, t.monetary DESC, t.key;
        END IF;
    WHEN 'rfm' THEN
        -- From the score cells the refresh keeps (orderly.rfm_cells), named by the segment rules now.
        RETURN QUERY
        WITH named AS (
            SELECT c.*, (SELECT g.name FROM orderly.rfm_segments g
                         WHERE c.r BETWEEN g.r_min AND g.r_max AND c.f BETWEEN g.f_min AND g.f_max AND c.m BETWEEN g.m_min AND g.m_max
                         ORDER BY g.priority LIMIT 1) AS segment
            FROM orderly.rfm_cells c)
        SELECT json_build_object('segment', n.segment, 'currency', n.currency, 'customers', sum(n.customers),
                                 'average_recency_days',
                                 round(((now() AT TIME ZONE 'UTC')::date - date '2000-01-01') - sum(n.last_order_days)::numeric / sum(n.customers), 1),
                                 'average_frequency', round(sum(n.orders)::numeric / sum(n.customers), 2),
                                 'monetary', sum(n.monetary), 'description', g.description)
        FROM named n JOIN orderly.rfm_segments g ON g.name = n.segment
        GROUP BY n.segment, n.currency, g.description, g.priority
        ORDER BY n.currency, g.priority;
    WHEN 'stages' THEN
        RETURN QUERY
        SELECT json_build_object('key', t.key, 'stage', t.stage, 'month', t.month, 'visits', t.visits,
                                 'p50_hours', t.p50, 'p90_hours', t.p90, 'mean_hours', t.mean, 'total_hours', t.total,
                                 'bottleneck_rank', rank() OVER (PARTITION BY t.month ORDER BY t.total DESC))
        FROM (SELECT CASE WHEN v_group = 'month' THEN to_char(x.month, 'YYYY-MM') || ' ' || x.stage ELSE x.stage END AS key,
                     x.stage, CASE WHEN v_group = 'month' THEN to_char(x.month, 'YYYY-MM') END AS month,
                     sum(x.visits) AS visits,
                     -- Percentiles do not add up across months: the visit-weighted mean of each month's.
                     round(sum(x.p50_hours * x.visits) / sum(x.visits), 2) AS p50,
                     round(sum(x.p90_hours * x.visits) / sum(x.visits), 2) AS p90,
                     round(sum(x.mean_hours * x.visits) / sum(x.visits), 2) AS mean,
                     sum(x.total_hours) AS total
              FROM analytics.stage_efficiency x
              WHERE x.month >= date_trunc('month', v_from) AND x.month <= v_to
              GROUP BY 1, 2, 3) t
        ORDER BY t.month NULLS FIRST, t.total DESC, t.stage;
    WHEN 'on_time' THEN
        RETURN QUERY
        SELECT json_build_object('month', to_char(x.month, 'YYYY-MM'), 'delivered', x.delivered, 'with_date', x.with_date,
                                 'on_time', x.on_time, 'on_time_rate', x.on_time_rate)
        FROM analytics.on_time_delivery x
        WHERE x.month >= date_trunc('month', v_from) AND x.month <= v_to
        ORDER BY x.month;
    WHEN 'cancellations' THEN
        RETURN QUERY
        SELECT json_build_object('key', t.key, 'stage', t.stage, 'month', t.month, 'currency', t.currency,
                                 'cancellations', t.cancellations, 'whole_orders', t.whole_orders,
                                 'cancelled_value', t.cancelled_value, 'fees', t.fees)
        FROM (SELECT CASE WHEN v_group = 'month' THEN to_char(x.month, 'YYYY-MM') ELSE x.stage END AS key,
                     CASE WHEN v_group = 'stage' THEN x.stage END AS stage,
                     CASE WHEN v_group = 'month' THEN to_char(x.month, 'YYYY-MM') END AS month, x.currency,
                     sum(x.cancellations) AS cancellations, sum(x.whole_orders) AS whole_orders,
                     sum(x.cancelled_value) AS cancelled_value, sum(x.fees) AS fees
              FROM analytics.cancellations x
              WHERE x.month >= date_trunc('month', v_from) AND x.month <= v_to
              GROUP BY 1, 2, 3, 4) t
        ORDER BY t.currency, t.month, t.cancellations DESC, t.key;
    WHEN 'receivables' THEN
        -- Now, whatever from/to say (the report's usage takes neither). Rows per currency.
        IF v_group = 'aging' THEN
            RETURN QUERY
            SELECT json_build_object('key', t.aging, 'aging', t.aging, 'currency', t.currency, 'orders', t.orders,
                                     'open_amount', t.open_amount, 'refund_due', t.refund_due)
            FROM (SELECT g.*, row_number() OVER (PARTITION BY g.currency ORDER BY g.position) AS n
                  FROM (SELECT x.aging, x.currency, count(*) AS orders, sum(x.open_amount) AS open_amount, sum(x.refund_due) AS refund_due,
                               array_position(ARRAY['current', '1_30', '31_60', '61_90', 'over_90', 'not_billed', 'refund_due'], x.aging) AS position
                        FROM orderly.receivables x GROUP BY x.aging, x.currency) g) t
            WHERE t.n <= v_limit
            ORDER BY t.currency, t.position;
        ELSIF v_group = 'customer' THEN
            RETURN QUERY
            SELECT json_build_object('key', t.customer_name, 'customer', t.customer_id, 'name', t.customer_name, 'currency', t.currency,
                                     'orders', t.orders, 'open_amount', t.open_amount, 'overdue_amount', t.overdue_amount,
                                     'most_days_overdue', t.most_days_overdue, 'refund_due', t.refund_due)
            FROM (SELECT g.*, row_number() OVER (PARTITION BY g.currency ORDER BY g.overdue_amount DESC, g.open_amount DESC, g.customer_id) AS n
                  FROM (SELECT x.customer_id, x.customer_name, x.currency, count(*) AS orders, sum(x.open_amount) AS open_amount,
                               coalesce(sum(x.open_amount) FILTER (WHERE x.days_overdue > 0), 0.00) AS overdue_amount,
                               max(x.days_overdue) AS most_days_overdue, sum(x.refund_due) AS refund_due
                        FROM orderly.receivables x GROUP BY 1, 2, 3) g) t
            WHERE t.n <= v_limit
            ORDER BY t.currency, t.overdue_amount DESC, t.open_amount DESC, t.customer_id;
        ELSE
            RETURN QUERY
            SELECT json_build_object('key', t.order_id, 'order', t.order_id, 'customer', t.customer_id, 'name', t.customer_name,
                                     'status', t.status, 'payment_terms', t.payment_terms, 'currency', t.currency, 'owed', t.owed,
                                     'paid', t.paid, 'open_amount', t.open_amount, 'refund_due', t.refund_due,
                                     'billed_at', orderly.json_time(t.billed_at), 'due_at', orderly.json_time(t.due_at),
                                     'days_overdue', t.days_overdue, 'aging', t.aging)
            FROM (SELECT x.*, row_number() OVER (PARTITION BY x.currency ORDER BY x.days_overdue DESC, x.due_at NULLS LAST, x.order_id) AS n
                  FROM orderly.receivables x) t
            WHERE t.n <= v_limit
            ORDER BY t.currency, t.days_overdue DESC, t.due_at NULLS LAST, t.order_id;
        END IF;
    END CASE;
END
$$;

SELECT orderly.register_command('REPORT', 'api.report', 'report.read',
    arguments  => 'name:code from:date to:date group:code limit:integer',
    positional => '{name}',
    usage      => 'REPORT [name] [from=] [to=] [group=] [limit=]',
    -- Figures over every customer: never a customer's, whatever an admin marks report.read.
    staff_only => 'reports cover every customer: they are for staff',
    summary    => 'A report (sales, products, slow_movers, customers, rfm, stages, on_time, cancellations, receivables), one data line per row; REPORT alone lists them with their arguments.');

-- Admins in SQL: the RFM segment rules and the analytics settings ---------------------------------------------

-- A segment rule, created or replaced whole (what is not given is the default: any score, 1 to 5).
-- The views name segments at read time, so a change shows at once.
CREATE OR REPLACE FUNCTION admin.set_rfm_segment(name text, priority integer, description text,
                                                r_min integer DEFAULT 1, r_max integer DEFAULT 5,
                                                f_min integer DEFAULT 1, f_max integer DEFAULT 5,
                                                m_min integer DEFAULT 1, m_max integer DEFAULT 5) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_name   text := lower(btrim(set_rfm_segment.name));
    v_before jsonb;
    g        orderly.rfm_segments;
BEGIN
    IF v_name IS NULL OR v_name !~ '^[a-z][a-z_]{1,31}$' THEN
        RAISE EXCEPTION 'a segment name is 2 to 32 lowercase letters or "_", starting with a letter' USING ERRCODE = 'OL400';
    END IF;
    IF priority IS NULL THEN
        RAISE EXCEPTION 'priority must be given (lower is tried first)' USING ERRCODE = 'OL400';
    END IF;
    IF nullif(btrim(description), '') IS NULL OR NOT orderly.shows_on_one_line(description) OR length(description) > 200 THEN
        RAISE EXCEPTION 'description must be 1 to 200 characters on one line' USING ERRCODE = 'OL400';
    END IF;
    IF NOT (1 <= r_min AND r_min <= r_max AND r_max <= 5 AND 1 <= f_min AND f_min <= f_max AND f_max <= 5
            AND 1 <= m_min AND m_min <= m_max AND m_max <= 5) THEN
        RAISE EXCEPTION 'each score range is from 1 to 5, its minimum not above its maximum' USING ERRCODE = 'OL400';
    END IF;
    IF EXISTS (SELECT 1 FROM orderly.rfm_segments x WHERE x.priority = set_rfm_segment.priority AND x.name <> v_name) THEN
        RAISE EXCEPTION 'priority % is segment %''s: give another', priority,
            (SELECT x.name FROM orderly.rfm_segments x WHERE x.priority = set_rfm_segment.priority) USING ERRCODE = 'OL409';
    END IF;
    SELECT to_jsonb(x) INTO v_before FROM orderly.rfm_segments x WHERE x.name = v_name FOR UPDATE;
    INSERT INTO orderly.rfm_segments AS x (name, priority, r_min, r_max, f_min, f_max, m_min, m_max, description)
    VALUES (v_name, priority, r_min, r_max, f_min, f_max, m_min, m_max, btrim(description))
    ON CONFLICT ON CONSTRAINT rfm_segments_pkey DO UPDATE
    SET priority = excluded.priority, r_min = excluded.r_min, r_max = excluded.r_max, f_min = excluded.f_min,
        f_max = excluded.f_max, m_min = excluded.m_min, m_max = excluded.m_max, description = excluded.description
    RETURNING * INTO g;
    PERFORM orderly.audit(NULL, 'rfm_segment.set', 'rfm_segment', g.name, v_before, to_jsonb(g), actor_kind => 'admin_sql');
    RETURN to_jsonb(g);
END
$$;

CREATE OR REPLACE FUNCTION admin.remove_rfm_segment(name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    g orderly.rfm_segments;
BEGIN
    DELETE FROM orderly.rfm_segments x WHERE x.name = lower(btrim(remove_rfm_segment.name)) RETURNING * INTO g;
    IF g.name IS NOT NULL THEN
        PERFORM orderly.audit(NULL, 'rfm_segment.remove', 'rfm_segment', g.name, to_jsonb(g), NULL, actor_kind => 'admin_sql');
        -- Scores no rule holds any more have no segment: say which.
        IF EXISTS (SELECT 1 FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m
                   WHERE NOT EXISTS (SELECT 1 FROM orderly.rfm_segments x
                                     WHERE r BETWEEN x.r_min AND x.r_max AND f BETWEEN x.f_min AND x.f_max AND m BETWEEN x.m_min AND x.m_max)) THEN
            RAISE NOTICE 'some scores now match no segment (their customers show none): keep a rule for every score, like needs_attention';
        END IF;
    END IF;
    RETURN g.name IS NOT NULL;
END
$$;

-- The analytics settings: what is given changes, the rest stays (audited).
CREATE OR REPLACE FUNCTION admin.set_analytics_settings(performance_window_days integer DEFAULT NULL, slow_mover_days integer DEFAULT NULL,
                                                       refresh_margin interval DEFAULT NULL, backfill_customers integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_before jsonb;
    s        orderly.analytics_settings;
BEGIN
    IF performance_window_days NOT BETWEEN 1 AND 3650 OR slow_mover_days NOT BETWEEN 1 AND 3650 THEN
        RAISE EXCEPTION 'performance_window_days and slow_mover_days are 1 to 3650 days' USING ERRCODE = 'OL400';
    END IF;
    IF refresh_margin NOT BETWEEN interval '1 minute' AND interval '1 day' THEN
        RAISE EXCEPTION 'refresh_margin is 1 minute to 1 day' USING ERRCODE = 'OL400';
    END IF;
    IF backfill_customers NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'backfill_customers is 1 to 1 000 000' USING ERRCODE = 'OL400';
    END IF;
    SELECT to_jsonb(x) - 'id' INTO v_before FROM orderly.analytics_settings x FOR UPDATE;
    UPDATE orderly.analytics_settings x
    SET performance_window_days = coalesce(set_analytics_settings.performance_window_days, x.performance_window_days),
        slow_mover_days = coalesce(set_analytics_settings.slow_mover_days, x.slow_mover_days),
        refresh_margin = coalesce(set_analytics_settings.refresh_margin, x.refresh_margin),
        backfill_customers = coalesce(set_analytics_settings.backfill_customers, x.backfill_customers)
    RETURNING * INTO s;
    PERFORM orderly.audit(NULL, 'analytics_settings.set', 'analytics_settings', 'analytics', v_before, to_jsonb(s) - 'id',
                          actor_kind => 'admin_sql');
    RETURN to_jsonb(s) - 'id';
END
$$;

CREATE OR REPLACE VIEW admin.analytics_settings AS
SELECT s.performance_window_days, s.slow_mover_days, s.refresh_margin, s.backfill_customers FROM orderly.analytics_settings s;
COMMENT ON VIEW admin.analytics_settings IS 'The analytics settings (admin.set_analytics_settings changes them)';

COMMENT ON FUNCTION admin.set_rfm_segment(text, integer, text, integer, integer, integer, integer, integer, integer) IS
    'Create or replace an RFM segment rule: name, priority (lower tried first), description, score ranges 1 to 5 (audited)';
COMMENT ON FUNCTION admin.remove_rfm_segment(text) IS 'Remove an RFM segment rule (audited); a NOTICE when some scores then match none';
COMMENT ON FUNCTION admin.set_analytics_settings(integer, integer, interval, integer) IS
    'Change the analytics settings given: the product performance window, what a slow mover is, the refresh margin, the customers per backfill run (audited)';
