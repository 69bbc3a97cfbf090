-- Analytics (issue 15; R__200_analytics.sql, V021__analytics.sql) on a small hand-built data set
-- whose answers are known: a category tree, two currencies, a partly cancelled line, cancelled,
-- rejected and unapproved orders that never count, a customer with one order; RFM scores and
-- segments; stage times across a hold and a second approval; on-time delivery; the incremental
-- refresh; REPORT; what the BI role may read.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(104);

DO $$
BEGIN
    PERFORM admin.create_user('mia', 'mia-secret-1', ARRAY['sales_manager']);
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
END
$$;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
-- Categories: ELEC > PHONES > SMART, and ACC.
INSERT INTO orderly.categories (code, name) VALUES ('ELEC', 'Electronics'), ('ACC', 'Accessories');
INSERT INTO orderly.categories (code, name, parent_id) SELECT 'PHONES', 'Phones', id FROM orderly.categories WHERE code = 'ELEC';
INSERT INTO orderly.categories (code, name, parent_id) SELECT 'SMART', 'Smartphones', id FROM orderly.categories WHERE code = 'PHONES';
INSERT INTO orderly.products (code, name, kind, base_price, category_id, currency)
SELECT v.code, v.name, 'goods', v.price, c.id, v.currency
FROM (VALUES ('P1', 'Phone', 100, 'SMART', 'EUR'), ('P2', 'Cable', 10, 'ACC', 'EUR'), ('P4', 'Phone US', 200, 'SMART', 'USD'),
             ('P9', 'Dusty', 5, 'ACC', 'EUR')) v (code, name, price, cat, currency)
JOIN orderly.categories c ON c.code = v.cat;
INSERT INTO orderly.skus (product_id, code, stock_on_hand) SELECT id, code || '-1', 50 FROM orderly.products;

INSERT INTO orderly.customers (name, email, phone, region, segment) VALUES
    ('Anna', 'anna@example.com', '+4930100001', 'North', 'standard'),
    ('Bert', 'bert@example.com', '+4930100002', 'South', 'gold'),
    ('Cleo', 'cleo@example.com', '+4930100003', 'West', 'standard');
INSERT INTO ids SELECT lower(left(name, 1)), id FROM orderly.customers WHERE name IN ('Anna', 'Bert', 'Cleo');

-- An order as it stands after its life: header, lines, and its status history (from, to, at).
CREATE FUNCTION pg_temp.order(label text, customer text, currency text, created timestamptz, v_status text, lines jsonb,
                              history jsonb, requested date DEFAULT NULL) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    l    jsonb;
    n    integer := 0;
BEGIN
    INSERT INTO orderly.orders (customer_id, status, currency, created_at, submitted_at, requested_date)
    VALUES (test.id(customer), 'draft', currency, created, created, requested) RETURNING id INTO v_id;
    FOR l IN SELECT x FROM jsonb_array_elements(lines) x LOOP
        n := n + 1;
        INSERT INTO orderly.order_lines (order_id, line_no, customer_id, spec, product_id, sku_id, qty, cancelled_qty,
                                         list_price, gross, discount, net, tax, pricing)
        SELECT v_id, n, test.id(customer), '{}', p.id, k.id, (l ->> 'qty')::integer, coalesce((l ->> 'cancelled')::integer, 0),
               p.base_price, (l ->> 'gross')::numeric, coalesce((l ->> 'discount')::numeric, 0),
               (l ->> 'gross')::numeric - coalesce((l ->> 'discount')::numeric, 0), (l ->> 'tax')::numeric,
               (orderly.pricing_parts(jsonb_build_object('product', p.code))).digest
        FROM orderly.products p LEFT JOIN orderly.skus k ON k.product_id = p.id AND k.code = coalesce(l ->> 'sku', k.code)
        WHERE p.code = l ->> 'product';
    END LOOP;
    UPDATE orderly.orders o
    SET subtotal = t.gross, discount_total = t.discount, tax_total = t.tax, total = t.net + t.tax,
        cancelled_total = t.cancelled, status = v_status, next_line_no = n + 1,
        held_from = CASE WHEN v_status = 'on_hold' THEN 'approved' END, hold_reason = CASE WHEN v_status = 'on_hold' THEN 'x' END
    FROM (SELECT sum(x.gross) AS gross, sum(x.discount) AS discount, sum(x.tax) AS tax, sum(x.net) AS net,
                 sum(round((x.net + x.tax) * x.cancelled_qty / x.qty, 2)) AS cancelled
          FROM orderly.order_lines x WHERE x.order_id = v_id) t
    WHERE o.id = v_id;
    INSERT INTO orderly.order_status_history (order_id, customer_id, from_status, to_status, changed_at)
    SELECT v_id, test.id(customer), h ->> 0, h ->> 1, (h ->> 2)::timestamptz FROM jsonb_array_elements(history) h;
    INSERT INTO ids VALUES (label, v_id);
    RETURN v_id;
END
$$;

SET CONSTRAINTS orderly.order_status_events IMMEDIATE;
ALTER TABLE orderly.order_status_history DISABLE TRIGGER order_status_events;

SELECT pg_temp.order('o1', 'a', 'EUR', '2026-03-02 09:00Z', 'completed',
    '[{"product":"P1","qty":2,"gross":200,"discount":20,"tax":34.20},{"product":"P2","qty":5,"gross":50,"tax":9.50}]',
    '[[null,"submitted","2026-03-02 09:00Z"],["submitted","approved","2026-03-02 09:30Z"]]');
SELECT pg_temp.order('o2', 'b', 'EUR', '2026-03-02 11:00Z', 'approved', '[{"product":"P1","qty":1,"gross":100,"tax":19}]',
    '[[null,"submitted","2026-03-02 11:00Z"],["submitted","approved","2026-03-02 11:00Z"]]');
-- Four of ten cables cancelled: six count.
SELECT pg_temp.order('o3', 'a', 'EUR', '2026-04-15 09:00Z', 'ready', '[{"product":"P2","qty":10,"cancelled":4,"gross":100,"tax":19}]',
    '[[null,"submitted","2026-04-15 09:00Z"],["submitted","approved","2026-04-15 09:00Z"],["approved","ready","2026-04-15 09:00Z"]]');
SELECT pg_temp.order('o4', 'b', 'USD', '2026-03-03 10:00Z', 'shipped', '[{"product":"P4","qty":1,"gross":200,"tax":0}]',
    '[[null,"submitted","2026-03-03 10:00Z"],["submitted","approved","2026-03-03 10:00Z"]]');
-- Never sales: cancelled after approval, rejected, still waiting.
SELECT pg_temp.order('o5', 'c', 'EUR', '2026-03-03 12:00Z', 'cancelled', '[{"product":"P1","qty":3,"cancelled":3,"gross":300,"tax":57}]',
    '[[null,"submitted","2026-03-03 12:00Z"],["submitted","approved","2026-03-03 12:00Z"],["approved","cancelled","2026-03-04 12:00Z"]]');
SELECT pg_temp.order('o6', 'c', 'EUR', '2026-04-15 10:00Z', 'rejected', '[{"product":"P2","qty":1,"gross":10,"tax":1.90}]',
    '[[null,"submitted","2026-04-15 10:00Z"],["submitted","pending_approval","2026-04-15 10:00Z"],["pending_approval","rejected","2026-04-15 11:00Z"]]');
SELECT pg_temp.order('o7', 'c', 'EUR', '2026-04-15 11:00Z', 'pending_approval', '[{"product":"P1","qty":1,"gross":100,"tax":19}]',
    '[[null,"submitted","2026-04-15 11:00Z"],["submitted","pending_approval","2026-04-15 11:00Z"]]');
-- Cleo's one order.
SELECT pg_temp.order('o8', 'c', 'EUR', '2026-04-16 09:00Z', 'approved', '[{"product":"P2","qty":2,"gross":20,"tax":3.80}]',
    '[[null,"submitted","2026-04-16 09:00Z"],["submitted","approved","2026-04-16 09:00Z"]]');
-- Stage times in May: rejected after 3 h of approval, submitted again, approved after 2 h more,
-- approved (24 h), a hold (6 h), approved again (26 h), ready (48 h), shipped (48 h), delivered a
-- day after the requested date.
SELECT pg_temp.order('o9', 'b', 'EUR', '2026-05-04 08:00Z', 'delivered', '[{"product":"P1","qty":1,"gross":100,"tax":19}]',
    '[[null,"submitted","2026-05-03 08:00Z"],["submitted","pending_approval","2026-05-03 08:00Z"],
      ["pending_approval","rejected","2026-05-03 11:00Z"],["rejected","submitted","2026-05-04 07:00Z"],
      ["submitted","pending_approval","2026-05-04 08:00Z"],
      ["pending_approval","approved","2026-05-04 10:00Z"],["approved","on_hold","2026-05-05 10:00Z"],
      ["on_hold","approved","2026-05-05 16:00Z"],["approved","ready","2026-05-06 18:00Z"],
      ["ready","shipped","2026-05-08 18:00Z"],["shipped","delivered","2026-05-10 18:00Z"]]', '2026-05-09');
SELECT pg_temp.order('o10', 'b', 'EUR', '2026-05-04 09:00Z', 'delivered', '[{"product":"P2","qty":1,"gross":10,"tax":1.90}]',
    '[[null,"submitted","2026-05-04 09:00Z"],["submitted","approved","2026-05-04 09:00Z"],
      ["approved","shipped","2026-05-11 09:00Z"],["shipped","delivered","2026-05-12 09:00Z"]]', '2026-05-20');
ALTER TABLE orderly.order_status_history ENABLE TRIGGER order_status_events;
-- o9 paid in two payments, in full two days after its (second) approval.
INSERT INTO orderly.payments (order_id, customer_id, amount, currency, method, reference, received_at, owed)
VALUES (test.id('o9'), test.id('b'), 19, 'EUR', 'bank_transfer', 'O9-1', '2026-05-05 10:00Z', 119),
       (test.id('o9'), test.id('b'), 100, 'EUR', 'bank_transfer', 'O9-2', '2026-05-06 10:00Z', 119);

-- The first refreshes go through the history a month of days at a time, then the customers 5 000
-- at a time (runs stay short).
CREATE FUNCTION pg_temp.backfill() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer := 0;
BEGIN
    LOOP
        n := n + 1;
        EXIT WHEN NOT (api.refresh_analytics('2026-06-01 00:00Z') ->> 'backfilling')::boolean OR n > 10;
    END LOOP;
    RETURN n;
END $$;
SELECT is(pg_temp.backfill(), 4, 'the first refresh backfills March to May in three runs of 31 days, then the customers in one');
-- The customers part in runs of two: the same rollups.
CREATE TEMP TABLE stats_once AS SELECT * FROM orderly.customer_stats;
UPDATE orderly.analytics_settings SET backfill_customers = 2;
UPDATE orderly.analytics_state SET refreshed_to = NULL, backfill_started_at = NULL, backfill_next = NULL, backfill_customer_next = NULL;
SELECT is(pg_temp.backfill(), 3 + (SELECT count(*)::integer / 2 + 1 FROM orderly.customers),
          'backfill_customers = 2: three runs of days, then the customers two at a time');
SELECT set_eq($$ SELECT * FROM orderly.customer_stats $$, $$ SELECT * FROM stats_once $$, 'and the same customer rollups');
UPDATE orderly.analytics_settings SET backfill_customers = 5000;
SELECT is((SELECT refreshed_to FROM analytics.refresh_state), '2026-06-01 00:00Z'::timestamptz, 'then the rollups hold up to when the backfill started');

-- Sales ---------------------------------------------------------------------------------------------------

SELECT set_eq($$ SELECT day::text || ' ' || product || ' ' || region || ' ' || segment || ' ' || currency || ' ' || orders || ' '
                        || units || ' ' || gross || ' ' || discount || ' ' || net || ' ' || tax FROM analytics.sales_daily $$,
              ARRAY['2026-03-02 P1 North standard EUR 1 2 200.00 20.00 180.00 34.20',
                    '2026-03-02 P2 North standard EUR 1 5 50.00 0.00 50.00 9.50',
                    '2026-03-02 P1 South gold EUR 1 1 100.00 0.00 100.00 19.00',
                    '2026-03-03 P4 South gold USD 1 1 200.00 0.00 200.00 0.00',
                    '2026-04-15 P2 North standard EUR 1 6 60.00 0.00 60.00 11.40',
                    '2026-04-16 P2 West standard EUR 1 2 20.00 0.00 20.00 3.80',
                    '2026-05-04 P1 South gold EUR 1 1 100.00 0.00 100.00 19.00',
                    '2026-05-04 P2 South gold EUR 1 1 10.00 0.00 10.00 1.90'],
              'sales_daily: approved orders only, cancelled units out, each currency apart');
SELECT is((SELECT orders || ' ' || net || ' ' || average_order_value FROM analytics.sales_orders_daily
           WHERE day = '2026-03-02' AND region = 'North'), '1 230.00 230.00', 'sales_orders_daily: an order of two lines is one order');
SELECT set_eq($$ SELECT month::text || ' ' || category || ' ' || currency || ' ' || net FROM analytics.sales_by_category $$,
              ARRAY['2026-03-01 SMART EUR 280.00', '2026-03-01 PHONES EUR 280.00', '2026-03-01 ELEC EUR 280.00', '2026-03-01 ACC EUR 50.00',
                    '2026-03-01 SMART USD 200.00', '2026-03-01 PHONES USD 200.00', '2026-03-01 ELEC USD 200.00',
                    '2026-04-01 ACC EUR 80.00',
                    '2026-05-01 SMART EUR 100.00', '2026-05-01 PHONES EUR 100.00', '2026-05-01 ELEC EUR 100.00', '2026-05-01 ACC EUR 10.00'],
              'sales_by_category: each category with its whole subtree');
SELECT is((SELECT sum(units)::integer FROM analytics.sales_monthly WHERE month = '2026-03-01' AND currency = 'EUR'), 8,
          'sales_monthly: 2 + 5 + 1 units in March');
SELECT is((SELECT count(*)::integer FROM analytics.sales_weekly WHERE week = '2026-03-02' AND product = 'P1'), 2,
          'sales_weekly: a week''s rows per region and segment');

-- Customers --------------------------------------------------------------------------------------------------

SELECT set_eq($$ SELECT customer_name || ' ' || currency || ' ' || orders || ' ' || monetary || ' ' || coalesce(mean_days_between::text, '-')
                        || ' ' || coalesce(favourite_category, '-') FROM analytics.customer_behaviour $$,
              ARRAY['Anna EUR 2 345.10 44.00 SMART', 'Bert EUR 3 249.90 31.46 SMART', 'Bert USD 1 200.00 - SMART', 'Cleo EUR 1 23.80 - ACC'],
              'customer_behaviour: orders, what they are worth (cancelled units out), days between, favourite category');
SELECT set_eq($$ SELECT customer_name || ' ' || currency || ' ' || r_score || f_score || m_score || ' ' || segment FROM analytics.customer_rfm $$,
              ARRAY['Anna EUR 124 hibernating', 'Bert EUR 442 loyal', 'Cleo EUR 211 hibernating', 'Bert USD 111 hibernating'],
              'customer_rfm: 1 + the quintile boundaries passed (three customers: boundaries at the 1st, 2nd, 2nd and 3rd, so scores 1, 2 and 4; Anna ordered longest ago and spent most, Bert most often and last) and the first segment rule that holds them');

-- Stages and deliveries ----------------------------------------------------------------------------------------

SELECT is((SELECT visits || ' ' || hours_in_stage FROM analytics.order_stage_times WHERE order_id = test.id('o9') AND stage = 'approved'),
          '2 50.00', 'order_stage_times: approved twice around a hold, 24 h + 26 h');
SELECT is((SELECT hours_in_stage FROM analytics.order_stage_times WHERE order_id = test.id('o9') AND stage = 'on_hold'), 6.00,
          'and 6 h on hold');
SELECT is((SELECT hours_in_stage FROM analytics.order_stage_times WHERE order_id = test.id('o9') AND stage = 'payment'), 48.00,
          'payment: from approval until the payment that paid it in full');
SELECT is((SELECT visits || ' ' || hours_in_stage FROM analytics.order_stage_times WHERE order_id = test.id('o9') AND stage = 'pending_approval'),
          '2 5.00', 'awaiting approval twice, around a rejection: 3 h + 2 h');
SELECT is((SELECT current FROM analytics.order_stage_times WHERE order_id = test.id('o9') AND stage = 'delivered'), true,
          'the stage it is in now counts up to now');
SELECT set_eq($$ SELECT stage || ' ' || visits || ' ' || p50_hours || ' ' || p90_hours || ' ' || total_hours || ' #' || bottleneck_rank
                 FROM analytics.stage_efficiency WHERE month = '2026-05-01' $$,
              ARRAY['approved 3 26.00 139.60 218.00 #1', 'shipped 2 36.00 45.60 72.00 #2', 'ready 1 48.00 48.00 48.00 #3',
                    'payment 1 48.00 48.00 48.00 #3', 'on_hold 1 6.00 6.00 6.00 #5', 'pending_approval 2 2.50 2.90 5.00 #6',
                    'submitted 3 0.00 0.80 1.00 #7'],
              'stage_efficiency: p50, p90, total per stage, and the bottleneck ranking');
SELECT is((SELECT delivered || ' ' || with_date || ' ' || on_time || ' ' || on_time_rate FROM analytics.on_time_delivery WHERE month = '2026-05-01'),
          '2 2 1 0.5000', 'on_time_delivery: one of two by its requested date');

-- The incremental refresh ----------------------------------------------------------------------------------------

UPDATE orderly.customers SET region = 'East' WHERE id = test.id('c');
SELECT orderly.audit(NULL, 'customer.update', 'customer', test.id('c')::text, NULL, '{}', actor_kind => 'admin_sql');
UPDATE orderly.orders SET status = 'cancelled', cancelled_total = total WHERE id = test.id('o2');
UPDATE orderly.order_lines SET cancelled_qty = qty WHERE order_id = test.id('o2');
SELECT orderly.audit(NULL, 'order.cancel', 'order', test.id('o2')::text, NULL, '{}', actor_kind => 'admin_sql');
SELECT is((SELECT (r ->> 'days') || ' ' || (r ->> 'customers') FROM (SELECT api.refresh_analytics(now() + interval '1 minute') r) x),
          '4 2', 'the next refresh recomputes only what changed: the cancelled order''s day, the moved customer''s days, both customers');
SELECT is((SELECT string_agg(region, ',') FROM analytics.sales_daily WHERE product = 'P2' AND day = '2026-04-16'), 'East',
          'a customer''s new region moves its sales');
SELECT is((SELECT count(*)::integer FROM analytics.sales_daily WHERE day = '2026-03-02' AND region = 'South'), 0,
          'a cancelled order leaves the sales');
SELECT is((SELECT orders FROM analytics.customer_behaviour WHERE customer_name = 'Bert' AND currency = 'EUR'), 2,
          'and its customer''s count');
SELECT is((api.refresh_analytics(now() + interval '2 minutes')) ->> 'days', '4',
          'changes inside the margin are looked at again (recomputing is idempotent)');
SELECT is((SELECT refreshed_to FROM analytics.refresh_state), now() + interval '2 minutes', 'refresh_state says how far');

-- Products ------------------------------------------------------------------------------------------------------

UPDATE orderly.analytics_settings SET performance_window_days = 3650, slow_mover_days = 3650;
SELECT set_eq($$ SELECT product || ' ' || coalesce(currency, '-') || ' ' || net || ' ' || top_rank || ' ' || bottom_rank
                 FROM analytics.product_performance $$,
              ARRAY['P1 EUR 280.00 1 3', 'P2 EUR 140.00 2 2', 'P9 EUR 0 3 1', 'P4 USD 200.00 1 1'],
              'product_performance: ranks from the top and the bottom within a currency, a product that sold nothing in its own (the worst)');
UPDATE orderly.products SET active = false WHERE code IN ('P2', 'P9');
SELECT set_eq($$ SELECT product FROM analytics.product_performance $$, ARRAY['P1', 'P2', 'P4'],
              'a product taken off sale stays while it sold in the window (as in REPORT products); one that did not goes');
UPDATE orderly.products SET active = true WHERE code IN ('P2', 'P9');
SELECT is_empty($$ SELECT sku FROM analytics.slow_movers $$, 'a SKU created today is no slow mover, sold or not');
UPDATE orderly.skus SET created_at = '2010-01-01' WHERE code LIKE 'P%';
SELECT set_eq($$ SELECT sku FROM analytics.slow_movers $$, ARRAY['P9-1'], 'slow_movers: stock and no sale in the window');
SELECT is((SELECT days_without_sale FROM analytics.slow_movers WHERE sku = 'P9-1'), (now() AT TIME ZONE 'UTC')::date - date '2010-01-01',
          'days_without_sale: since it was created, never sold');

-- REPORT --------------------------------------------------------------------------------------------------------

SELECT is((SELECT array_agg(r ->> 'report') FROM jsonb_array_elements(test.rows('report', 'mia', '{}')) r),
          ARRAY['sales', 'products', 'slow_movers', 'customers', 'rfm', 'stages', 'on_time', 'cancellations', 'receivables'],
          'REPORT alone lists the reports');
SELECT is((SELECT array_agg((r ->> 'key') || ' ' || (r ->> 'currency') || ' ' || (r ->> 'orders') || ' ' || (r ->> 'net'))
           FROM jsonb_array_elements(test.rows('report', 'mia', '{"name":"sales","from":"2026-03-01","to":"2026-05-31"}')) r),
          ARRAY['2026-03 EUR 1 230.00', '2026-03 USD 1 200.00', '2026-04 EUR 2 80.00', '2026-05 EUR 2 110.00'],
          'REPORT sales: per month and currency, over the same rollups');
SELECT is((SELECT array_agg((r ->> 'key') || ' ' || (r ->> 'net'))
           FROM jsonb_array_elements(test.rows('report', 'mia', '{"name":"sales","from":"2026-03-01","to":"2026-05-31","group":"category","limit":2}')) r),
          ARRAY['ELEC 280.00', 'PHONES 280.00', 'ELEC 200.00', 'PHONES 200.00'],
          'group=category, limit=2: two per currency (EUR, USD); a category holds its subtree (ties by code)');
SELECT is((SELECT array_agg((r ->> 'product') || ' ' || (r ->> 'rank'))
           FROM jsonb_array_elements(test.rows('report', 'mia', '{"name":"products","from":"2026-03-01","to":"2026-05-31","group":"bottom","limit":1}')) r),
          ARRAY['P9 1', 'P4 1'], 'products group=bottom: the worst seller per currency, one that sold nothing in the period first');
SELECT is((SELECT array_agg((r ->> 'key') || ' #' || (r ->> 'bottleneck_rank'))
           FROM jsonb_array_elements(test.rows('report', 'mia', '{"name":"stages","from":"2026-05-01","to":"2026-05-31"}')) r),
          ARRAY['approved #1', 'shipped #2', 'payment #3', 'ready #3', 'on_hold #5', 'pending_approval #6', 'submitted #7'],
          'REPORT stages: the bottleneck first');
SELECT is((SELECT array_agg((r ->> 'month') || ' ' || (r ->> 'on_time_rate'))
           FROM jsonb_array_elements(test.rows('report', 'mia', '{"name":"on_time","from":"2026-01-01","to":"2026-12-31"}')) r),
          ARRAY['2026-05 0.5000'], 'REPORT on_time');
SELECT set_eq($$ SELECT (r ->> 'segment') || ' ' || (r ->> 'currency') || ' ' || (r ->> 'customers') || ' ' || (r ->> 'monetary')
                        || ' ' || (r ->> 'average_frequency') || ' ' || (r ->> 'average_recency_days')
                 FROM jsonb_array_elements(test.rows('report', 'mia', '{"name":"rfm"}')) r $$,
              $$ SELECT segment || ' ' || currency || ' ' || count(*) || ' ' || sum(monetary) || ' ' || round(avg(frequency), 2)
                        || ' ' || round(avg(recency_days), 1)
                 FROM analytics.customer_rfm GROUP BY segment, currency $$,
              'REPORT rfm: per segment and currency, the customers, spend, frequency and recency of analytics.customer_rfm (from the score cells the refresh keeps)');
INSERT INTO orderly.rfm_segments (name, priority, r_min, r_max, f_min, f_max, m_min, m_max, description)
VALUES ('big_spenders', 1, 1, 5, 1, 5, 4, 5, 'Test rule: spent the most');
SELECT set_eq($$ SELECT (r ->> 'segment') || ' ' || (r ->> 'currency') || ' ' || (r ->> 'customers')
                 FROM jsonb_array_elements(test.rows('report', 'mia', '{"name":"rfm"}')) r $$,
              $$ SELECT segment || ' ' || currency || ' ' || count(*) FROM analytics.customer_rfm GROUP BY segment, currency $$,
              'REPORT rfm: a new segment rule names the cells at once, without a refresh, as it names the customers of the view');
SELECT is((SELECT r ->> 'customers' FROM jsonb_array_elements(test.rows('report', 'mia', '{"name":"rfm"}')) r
           WHERE r ->> 'segment' = 'big_spenders'), '1', 'REPORT rfm: the new rule took the biggest spender');
DELETE FROM orderly.rfm_segments WHERE name = 'big_spenders';
SELECT throws_ok($$ SELECT test.rows('report', 'rita', '{"name":"sales"}') $$, 'OL403', 'permission denied: report.read',
                 'a sales rep may not read reports');
SELECT throws_ok($$ SELECT test.rows('report', 'mia', '{"name":"profit"}') $$, 'OL404',
                 'unknown report "profit"; REPORT lists them: sales, products, slow_movers, customers, rfm, stages, on_time, cancellations, receivables',
                 'an unknown report');
SELECT throws_ok($$ SELECT test.rows('report', 'mia', '{"name":"sales","group":"hour"}') $$, 'OL400',
                 'group must be one of: month, week, day, category, region, segment', 'an unknown group');
SELECT throws_ok($$ SELECT test.rows('report', 'mia', '{"name":"rfm","group":"month"}') $$, 'OL400',
                 'report rfm takes no group= (usage: REPORT rfm)', 'a group where there is none');
SELECT throws_ok($$ SELECT test.rows('report', 'mia', '{"name":"rfm","limit":2}') $$, 'OL400',
                 'report rfm takes no limit= (usage: REPORT rfm)', 'an argument the report would ignore is refused');
SELECT throws_ok($$ SELECT test.rows('report', 'mia', '{"name":"slow_movers","from":"2026-01-01"}') $$, 'OL400',
                 'report slow_movers takes no from= (usage: REPORT slow_movers [limit=])', 'slow movers are as of now: no from=');
SELECT throws_ok($$ SELECT test.rows('report', 'mia', '{"name":"sales","from":"2026-01-01T23:30:00-05:00"}') $$, 'OL400',
                 'from must be a date like 2026-12-24', 'a report''s days are days: a time of day is refused, not cut in some zone');
SELECT throws_ok($$ SELECT test.rows('report', 'mia', '{"limit":3}') $$, 'OL400', NULL,
                 'REPORT alone (the list) takes no limit=');
SELECT lives_ok($$ SELECT test.rows('report', 'mia', '{"name":"products","from":"2026-03-01","to":"2026-05-31","group":"top","limit":1}') $$,
                'every argument a report''s usage lists is taken');
SELECT throws_ok($$ SELECT test.rows('report', 'mia', '{"name":"sales","from":"2026-05-01","to":"2026-04-01"}') $$, 'OL400', NULL,
                 'from after to');

-- Found by a BI probe: orders per product, bundles, limits per currency, payment, on time, cancellations ---------

INSERT INTO orderly.products (code, name, kind, base_price, currency) VALUES ('P5', 'Phone in two colours', 'goods', 50, 'EUR'),
                                                                             ('B1', 'Dusty kit', 'bundle', 20, 'EUR');
INSERT INTO orderly.skus (product_id, code, stock_on_hand, options)
SELECT p.id, c, 50, jsonb_build_object('colour', c) FROM orderly.products p, unnest(ARRAY['P5-A', 'P5-B']) c WHERE p.code = 'P5';
INSERT INTO orderly.bundle_items (bundle_product_id, sku_id, qty)
SELECT p.id, k.id, 1 FROM orderly.products p, orderly.skus k WHERE p.code = 'B1' AND k.code = 'P9-1';
ALTER TABLE orderly.order_status_history DISABLE TRIGGER order_status_events;
SELECT pg_temp.order('o11', 'a', 'EUR', '2026-05-20 09:00Z', 'approved',
    '[{"product":"P5","sku":"P5-A","qty":1,"gross":50,"tax":9.50},{"product":"P5","sku":"P5-B","qty":1,"gross":50,"tax":9.50},
      {"product":"B1","qty":1,"gross":20,"tax":3.80}]',
    '[[null,"submitted","2026-05-20 09:00Z"],["submitted","approved","2026-05-20 09:00Z"]]');
ALTER TABLE orderly.order_status_history ENABLE TRIGGER order_status_events;
SELECT orderly.audit(NULL, 'order.create', 'order', test.id('o11')::text, NULL, '{}', actor_kind => 'admin_sql');
SELECT api.refresh_analytics(now() + interval '3 minutes') IS NOT NULL;
SELECT is((SELECT orders || ' ' || average_order_value FROM analytics.sales_weekly WHERE product = 'P5'), '1 100.00',
          'an order with two SKUs of one product counts once for the product, its average order value whole');
SELECT is((SELECT orders FROM analytics.product_performance WHERE product = 'P5'), 1::bigint, 'product_performance too');
SELECT is((SELECT category_name || ' ' || net FROM analytics.sales_by_category WHERE month = '2026-05-01' AND currency = 'EUR' AND category IS NULL),
          'Uncategorised 120.00', 'sales_by_category: products without a category in a row of their own');
SELECT is((SELECT sum(net) FROM analytics.sales_by_category WHERE month = '2026-05-01' AND currency = 'EUR' AND top_level),
          (SELECT sum(net) FROM analytics.sales_monthly WHERE month = '2026-05-01' AND currency = 'EUR'),
          'so that the top-level rows add up to the month''s sales');
SELECT is((SELECT array_agg(sku || ' ' || orders ORDER BY sku) FROM analytics.sales_daily WHERE product = 'P5'), ARRAY['P5-A 1', 'P5-B 1'],
          'sales_daily per SKU: the order had each');
SELECT is_empty($$ SELECT sku FROM analytics.slow_movers $$, 'a SKU sold inside a bundle is not a slow mover');
SELECT is((SELECT array_agg((r ->> 'key') || ' ' || (r ->> 'currency'))
           FROM jsonb_array_elements(test.rows('report', 'mia', '{"name":"customers","limit":1}')) r),
          ARRAY['Anna EUR', 'Bert USD'], 'REPORT customers limit=1: per currency (a limit never cuts a currency off)');
SELECT is((SELECT array_agg((r ->> 'key') || ' ' || (r ->> 'currency'))
           FROM jsonb_array_elements(test.rows('report', 'mia', '{"name":"sales","group":"day","from":"2026-03-01","to":"2026-05-31","limit":1}')) r),
          ARRAY['2026-03-03 USD', '2026-05-20 EUR'], 'REPORT sales group=day limit=1: the latest day of each currency');

-- o10 paid the hour before its approval; o9's shipment signed for the day before its requested date, recorded later.
INSERT INTO orderly.payments (order_id, customer_id, amount, currency, method, reference, received_at, owed)
VALUES (test.id('o10'), test.id('b'), 11.90, 'EUR', 'bank_transfer', 'O10-1', '2026-05-04 08:00Z', 11.90);
INSERT INTO orderly.carriers (code, name) VALUES ('dhl', 'DHL') ON CONFLICT DO NOTHING;
INSERT INTO orderly.shipments (order_id, customer_id, carrier, status, shipped_at, delivered_at)
VALUES (test.id('o9'), test.id('b'), 'dhl', 'delivered', '2026-05-06 18:00Z', '2026-05-08 12:00Z');
SELECT orderly.refresh_months(ARRAY['2026-05-01'::date]);
SELECT is((SELECT hours_in_stage FROM analytics.order_stage_times WHERE order_id = test.id('o10') AND stage = 'payment'), 0.00,
          'paid before approval: no time waiting for payment (not negative)');
SELECT is((SELECT visits || ' ' || total_hours FROM analytics.stage_efficiency WHERE month = '2026-05-01' AND stage = 'payment'), '2 48.00',
          'and none in the month''s payment stage');
-- Paid in full is when what was paid less refunded covered what is owed, and stayed so: o12 owes
-- 11.90, paid 11.90 on the 10th, got 5.00 back on the 11th (owing again), paid 5.00 on the 12th;
-- o13 paid, then got it back: it owes, and waits for payment now.
SELECT pg_temp.order('o12', 'b', 'EUR', '2026-05-09 09:00Z', 'approved', '[{"product":"P2","qty":1,"gross":10,"tax":1.90}]',
    '[[null,"submitted","2026-05-09 09:00Z"],["submitted","approved","2026-05-09 10:00Z"]]');
SELECT pg_temp.order('o13', 'b', 'EUR', '2026-05-09 09:00Z', 'approved', '[{"product":"P2","qty":1,"gross":10,"tax":1.90}]',
    '[[null,"submitted","2026-05-09 09:00Z"],["submitted","approved","2026-05-09 10:00Z"]]');
INSERT INTO orderly.payments (order_id, customer_id, kind, amount, currency, method, reference, received_at, owed) VALUES
    (test.id('o12'), test.id('b'), 'payment', 11.90, 'EUR', 'bank_transfer', 'O12-1', '2026-05-10 10:00Z', 11.90),
    (test.id('o12'), test.id('b'), 'refund', 5.00, 'EUR', 'bank_transfer', 'O12-R', '2026-05-11 10:00Z', 0),
    (test.id('o12'), test.id('b'), 'payment', 5.00, 'EUR', 'bank_transfer', 'O12-2', '2026-05-12 10:00Z', 5.00),
    (test.id('o13'), test.id('b'), 'payment', 11.90, 'EUR', 'bank_transfer', 'O13-1', '2026-05-10 10:00Z', 11.90),
    (test.id('o13'), test.id('b'), 'refund', 11.90, 'EUR', 'bank_transfer', 'O13-R', '2026-05-11 10:00Z', 0);
SELECT is((SELECT hours_in_stage || ' ' || current FROM analytics.order_stage_times WHERE order_id = test.id('o12') AND stage = 'payment'),
          '72.00 false', 'payment: paid in full by the payment after the refund (72 h after approval), not by the first one');
SELECT is((SELECT current FROM analytics.order_stage_times WHERE order_id = test.id('o13') AND stage = 'payment'), true,
          'an order whose money went back waits for payment now');
SELECT is((SELECT current FROM analytics.order_stage_times WHERE order_id = test.id('o1') AND stage = 'payment'), true,
          'so does an approved order nobody paid yet');
SELECT orderly.refresh_months(ARRAY['2026-05-01'::date]);
SELECT is((SELECT visits || ' ' || total_hours FROM analytics.stage_efficiency WHERE month = '2026-05-01' AND stage = 'payment'), '3 120.00',
          'the rollup counts o12''s 72 hours in the month it was paid in full, and nothing of o13');
SELECT is((SELECT on_time || ' ' || on_time_rate FROM analytics.on_time_delivery WHERE month = '2026-05-01'), '2 1.0000',
          'on time by when the last shipment was signed for, not when that was recorded');

-- o5, approved in March and cancelled whole: one of March's two EUR orders (o1 still counts).
INSERT INTO orderly.order_cancellations (order_id, customer_id, status, reason, plan, fee, currency, decided_at)
VALUES (test.id('o5'), test.id('c'), 'applied', 'x', '{"order_status":"approved","whole_order":true,"cancelled_value":357}', 0, 'EUR',
        '2026-03-04 12:00Z');
SELECT is((SELECT whole_orders || ' ' || rate FROM analytics.cancellations WHERE month = '2026-03-01' AND currency = 'EUR'), '1 0.5000',
          'the cancellation rate: orders cancelled whole, of the month''s orders (counted ones and those cancelled)');

-- BI -----------------------------------------------------------------------------------------------------------

SELECT is_empty($$ SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'analytics' AND c.relkind = 'v'
                     AND (obj_description(c.oid, 'pg_class') IS NULL
                          OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                       AND col_description(c.oid, a.attnum) IS NULL)) $$,
                'every analytics view, and every column of it, says what it means');
SELECT is(test.unreadable_views('analytics', 'orderly_bi'), '{}', 'the BI role reads every analytics view');
SET LOCAL ROLE orderly_bi;
SELECT throws_ok($$ SELECT * FROM orderly.sales_day_lines $$, '42501', NULL, 'and not the rollups behind them');
RESET ROLE;

-- admin.create_bi_login ------------------------------------------------------------------------------------------

CREATE TEMP TABLE bi (name text);
INSERT INTO bi VALUES ('bi_test_' || pg_backend_pid());
GRANT SELECT ON bi TO orderly_admin;
SET LOCAL ROLE orderly_admin;
SELECT lives_ok(format($$ SELECT admin.create_bi_login(%L, 'a long secret 1', interval '20 seconds') $$, (SELECT name FROM bi)),
                'an admin creates a BI login');
SELECT throws_ok(format($$ SELECT admin.create_bi_login(%L, 'a long secret 1') $$, (SELECT name FROM bi)), 'OL409', NULL,
                 'a role that exists is refused');
SELECT throws_ok($$ SELECT admin.create_bi_login('Robert"; DROP ROLE x; --', 'a long secret 1') $$, 'OL400', NULL,
                 'a name that is not a plain identifier is refused');
SELECT throws_ok($$ SELECT admin.create_bi_login('orderly_owner2', 'a long secret 1') $$, 'OL400', NULL, 'so is one like Orderly''s own');
SELECT throws_ok($$ SELECT admin.create_bi_login('short_pw', 'short') $$, 'OL400', NULL, 'and a short password');
SELECT throws_ok($$ SELECT admin.create_bi_login('current_user', 'a long secret 1') $$, 'OL400',
                 'a BI login name may not be an SQL keyword or "public" ("current_user" is one)',
                 'a keyword as a name is refused (GRANT … TO current_user would not mean it)');
SELECT throws_ok($$ SELECT admin.create_bi_login('public', 'a long secret 1') $$, 'OL400', NULL, 'and so is public');
RESET ROLE;
SELECT ok(pg_has_role((SELECT name FROM bi), 'orderly_bi', 'MEMBER'), 'the login is in orderly_bi');
SELECT is((SELECT r.rolconfig FROM pg_roles r WHERE r.rolname = (SELECT name FROM bi)),
          ARRAY['statement_timeout=20000ms', 'search_path=analytics'], 'with its statement timeout and search path');
SELECT ok(NOT (SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb FROM pg_roles r WHERE r.rolname = (SELECT name FROM bi)),
          'and no other power');
CREATE FUNCTION pg_temp.as_bi(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', (SELECT name FROM bi));
    EXECUTE query INTO n;
    RESET ROLE;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RESET ROLE;
    RETURN SQLSTATE;
END $$;
SELECT is(pg_temp.as_bi('SELECT count(*) FROM analytics.sales_daily') || ' ' || pg_temp.as_bi('SELECT count(*) FROM orderly.customers'),
          'ok 42501', 'it reads the analytics views, not the tables');
SELECT is((SELECT entity || ' ' || entity_id || ' ' || (after ->> 'login') FROM orderly.audit_log WHERE action = 'bi_login.create'),
          (SELECT 'bi_login ' || name || ' ' || name FROM bi),
          'audited as a BI login (AUDIT LIST entity=bi_login), without the password');
SELECT ok(NOT EXISTS (SELECT 1 FROM orderly.audit_log WHERE action = 'bi_login.create' AND after::text LIKE '%a long secret%'),
          'the password is nowhere in the audit log');

-- admin.bi_logins, admin.set_bi_login_password, admin.drop_bi_login: only on BI logins.
CREATE ROLE bi_test_staff LOGIN IN ROLE orderly_bi, orderly_admin;   -- in orderly_bi and more: not a BI login
CREATE ROLE bi_test_granted LOGIN IN ROLE orderly_bi;                 -- in orderly_bi only, but with a grant of its own
GRANT SELECT ON orderly.customers TO bi_test_granted;
SET LOCAL ROLE orderly_admin;
SELECT is((SELECT statement_timeout || ' ' || can_login || ' ' || (created_at IS NOT NULL) FROM admin.bi_logins WHERE name = (SELECT name FROM bi)),
          '20000ms true true', 'admin.bi_logins lists the login with its timeout and creation');
SELECT ok(NOT EXISTS (SELECT 1 FROM admin.bi_logins WHERE name IN ('bi_test_staff', 'orderly_owner', 'postgres')),
          'and no role that is more than a BI login');
SELECT throws_ok(format($$ SELECT admin.set_bi_login_password(%L, 'short') $$, (SELECT name FROM bi)), 'OL400', NULL,
                 'a short new password is refused');
SELECT lives_ok(format($$ SELECT admin.set_bi_login_password(%L, 'another long secret') $$, (SELECT name FROM bi)),
                'an admin gives a BI login a new password');
SELECT throws_ok($$ SELECT admin.set_bi_login_password('bi_test_staff', 'another long secret') $$, 'OL404', NULL,
                 'a role in orderly_bi that is more than a BI login is not touched');
SELECT throws_ok($$ SELECT admin.set_bi_login_password('orderly_owner', 'another long secret') $$, 'OL404', NULL,
                 'nor is Orderly''s owner');
SELECT throws_ok($$ SELECT admin.drop_bi_login('bi_test_staff') $$, 'OL404', NULL, 'nor dropped');
SELECT throws_ok($$ SELECT admin.set_bi_login_password('bi_test_granted', 'another long secret') $$, 'OL404', NULL,
                 'nor a role in orderly_bi alone that holds a grant of its own (a new password would hand the admin its rights)');
SELECT ok(NOT admin.is_bi_login('bi_test_granted'), 'admin.is_bi_login: only what admin.create_bi_login made, with nothing of its own');
SELECT throws_ok($$ SELECT admin.drop_bi_login('no_such_login') $$, 'OL404', NULL, 'an unknown login is NOT_FOUND');
RESET ROLE;
SELECT is((SELECT rolpassword FROM pg_authid WHERE rolname = 'bi_test_staff'), NULL, 'the staff role kept its (lack of a) password');
SET LOCAL ROLE orderly_admin;
SELECT lives_ok(format($$ SELECT admin.drop_bi_login(%L) $$, (SELECT name FROM bi)), 'an admin drops a BI login');
RESET ROLE;
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = (SELECT name FROM bi)), 'the role is gone');
SELECT is((SELECT string_agg(action || ' ' || entity || ' ' || coalesce(before ->> 'login', after ->> 'login'), ', ' ORDER BY id)
           FROM orderly.audit_log WHERE entity = 'bi_login'),
          (SELECT format('bi_login.create bi_login %1$s, bi_login.password bi_login %1$s, bi_login.drop bi_login %1$s', name) FROM bi),
          'creation, new password and removal are audited, each naming the login and no password');
DROP ROLE bi_test_staff;
REVOKE SELECT ON orderly.customers FROM bi_test_granted;
DROP ROLE bi_test_granted;

-- Admins change the RFM segment rules and the analytics settings in SQL (orderly_admin has no
-- rights on the tables).
SET LOCAL ROLE orderly_admin;
SELECT is(admin.set_rfm_segment('whales', 5, 'Spend the most, whatever else', m_min => 5) ->> 'priority', '5',
          'admin.set_rfm_segment adds a rule');
SELECT throws_ok($$ SELECT admin.set_rfm_segment('twins', 5, 'x') $$, 'OL409', 'priority 5 is segment whales''s: give another',
                 'two rules never share a priority');
SELECT throws_ok($$ SELECT admin.set_rfm_segment('odd', 6, 'x', r_min => 4, r_max => 2) $$, 'OL400',
                 'each score range is from 1 to 5, its minimum not above its maximum', 'a range upside down is refused');
RESET ROLE;
SELECT is((SELECT name FROM analytics.rfm_segments WHERE name = 'whales'), 'whales', 'the BI view shows it at once');
SET LOCAL ROLE orderly_admin;
SELECT ok(admin.remove_rfm_segment('whales'), 'admin.remove_rfm_segment');
SELECT is(admin.set_analytics_settings(slow_mover_days => 30) ->> 'slow_mover_days', '30', 'admin.set_analytics_settings changes what is given');
SELECT throws_ok($$ SELECT admin.set_analytics_settings(refresh_margin => interval '0') $$, 'OL400', 'refresh_margin is 1 minute to 1 day',
                 'and refuses what is out of range');
RESET ROLE;
SELECT is((SELECT string_agg(action, ',' ORDER BY id) FROM orderly.audit_log WHERE action IN ('rfm_segment.set', 'rfm_segment.remove', 'analytics_settings.set')
             AND actor_kind = 'admin_sql'),
          'rfm_segment.set,rfm_segment.remove,analytics_settings.set', 'each change audited as the admin''s');
UPDATE orderly.analytics_settings SET slow_mover_days = 3650;

-- A partly cancelled line counts exactly what the order still counts: 4 at 79.96 + 15.19 tax, 2
-- cancelled (worth 47.58) leave 47.57; net and tax rounded each alone made 39.98 + 7.60 = 47.58.
SELECT pg_temp.order('o14', 'b', 'EUR', '2026-05-21 09:00Z', 'approved', '[{"product":"P2","qty":4,"cancelled":2,"gross":79.96,"tax":15.19}]',
    '[[null,"submitted","2026-05-21 09:00Z"],["submitted","approved","2026-05-21 10:00Z"]]');
SELECT is((SELECT gross - discount || ' ' || net || ' ' || tax || ' ' || net + tax FROM orderly.sales_lines(ARRAY['2026-05-21'::date])
           WHERE order_id = test.id('o14')),
          (SELECT '39.98 39.98 7.59 ' || total - cancelled_total FROM orderly.orders WHERE id = test.id('o14')),
          'sales: net + tax of the units still ordered is the order''s total less what was cancelled (47.57), to the cent');

-- A refund today that leaves o12 (paid in full in May) owing again changes May's payment stage:
-- the refresh recomputes the months the changed orders' payments are dated in, not only its own.
INSERT INTO orderly.payments (order_id, customer_id, kind, amount, currency, method, reference, received_at, owed)
VALUES (test.id('o12'), test.id('b'), 'refund', 5.00, 'EUR', 'bank_transfer', 'O12-R2', now(), 0);
SELECT orderly.audit(NULL, 'payment.refund', 'order', test.id('o12')::text, NULL, '{}', actor_kind => 'admin_sql');
SELECT api.refresh_analytics(now() + interval '4 minutes') IS NOT NULL;
SELECT is((SELECT visits || ' ' || total_hours FROM analytics.stage_efficiency WHERE month = '2026-05-01' AND stage = 'payment'), '2 48.00',
          'May no longer counts o12 as paid (a refund today re-opened it)');

SELECT * FROM finish();
ROLLBACK;
