-- Orderly: sales, customer behaviour and order efficiency for BI tools and REPORT (issue 15).
-- Data only; the rules and the views live in R__200_analytics.sql.
--
-- The views over a million orders must answer in well under 100 ms, so the expensive sums are
-- kept in rollup tables, recomputed by a timer (api.refresh_analytics) for the days, customers
-- and months whose orders changed since it last ran; the orders' own transactions write nothing
-- more (the timer finds the changes in the audit log, which they write anyway).

-- Who reads reports: managers, finance and auditors (auditor holds report.read since V002).
INSERT INTO orderly.role_permissions (role_id, permission)
SELECT r.id, 'report.read'
FROM orderly.roles r
WHERE r.name IN ('sales_manager', 'general_manager', 'finance_manager', 'production_manager')
ON CONFLICT DO NOTHING;

-- Settings: one row.
CREATE TABLE orderly.analytics_settings (
    id                      boolean PRIMARY KEY DEFAULT true CONSTRAINT analytics_settings_one_row CHECK (id),
    -- product_performance looks back this many days.
    performance_window_days integer NOT NULL DEFAULT 90 CONSTRAINT analytics_settings_window_check CHECK (performance_window_days BETWEEN 1 AND 3650),
    -- A slow mover: stock on hand and no sale in this many days.
    slow_mover_days         integer NOT NULL DEFAULT 60 CONSTRAINT analytics_settings_slow_check CHECK (slow_mover_days BETWEEN 1 AND 3650),
    -- How far back the timer looks again for changes of transactions still running at its last
    -- run (their audit rows carry their start time).
    refresh_margin          interval NOT NULL DEFAULT '10 minutes' CONSTRAINT analytics_settings_margin_check
                            CHECK (refresh_margin BETWEEN interval '1 minute' AND interval '1 day')
);
INSERT INTO orderly.analytics_settings DEFAULT VALUES;

COMMENT ON TABLE orderly.analytics_settings IS 'Analytics parameters: the performance window, what a slow mover is, the refresh margin';

-- The timer's state: one row.
CREATE TABLE orderly.analytics_state (
    id               boolean PRIMARY KEY DEFAULT true CONSTRAINT analytics_state_one_row CHECK (id),
    -- Changes up to here are in the rollups (less the margin, looked at again next time).
    refreshed_to     timestamptz,
    last_run_at      timestamptz,
    last_duration_ms integer,
    last_orders      integer,
    last_days        integer,
    last_customers   integer,
    -- The first refresh of a database that has orders goes through them a month of days at a
    -- time (each run bounded, whatever the history): from when, and the next day to do.
    backfill_started_at timestamptz,
    backfill_next       date
);
INSERT INTO orderly.analytics_state DEFAULT VALUES;

-- Sales per day (the day an order was submitted, UTC), product and SKU (0: none, e.g. a bundle or
-- a service), customer region and segment, and currency. Only orders that were approved and are
-- not cancelled or rejected count; cancelled units of a line do not.
CREATE TABLE orderly.sales_day_lines (
    day        date NOT NULL,
    product_id bigint NOT NULL,
    sku_id     bigint NOT NULL,
    region     text NOT NULL,
    segment    text NOT NULL,
    currency   char(3) NOT NULL,
    orders     integer NOT NULL,
    units      integer NOT NULL,
    gross      numeric(16,2) NOT NULL,
    discount   numeric(16,2) NOT NULL,
    net        numeric(16,2) NOT NULL,
    tax        numeric(16,2) NOT NULL,
    CONSTRAINT sales_day_lines_pkey PRIMARY KEY (day, product_id, sku_id, region, segment, currency)
);
CREATE INDEX sales_day_lines_product_idx ON orderly.sales_day_lines (product_id, day);

-- The same per order (for order counts and average order value, which do not add up across
-- products).
CREATE TABLE orderly.sales_day_orders (
    day      date NOT NULL,
    region   text NOT NULL,
    segment  text NOT NULL,
    currency char(3) NOT NULL,
    orders   integer NOT NULL,
    units    integer NOT NULL,
    gross    numeric(16,2) NOT NULL,
    discount numeric(16,2) NOT NULL,
    net      numeric(16,2) NOT NULL,
    tax      numeric(16,2) NOT NULL,
    CONSTRAINT sales_day_orders_pkey PRIMARY KEY (day, region, segment, currency)
);

-- Per customer and currency: how it buys.
CREATE TABLE orderly.customer_stats (
    customer_id           bigint NOT NULL,
    currency              char(3) NOT NULL,
    orders                integer NOT NULL,
    first_order_at        timestamptz NOT NULL,
    last_order_at         timestamptz NOT NULL,
    monetary              numeric(16,2) NOT NULL,
    mean_days_between     numeric(10,2),
    favourite_category_id bigint,
    CONSTRAINT customer_stats_pkey PRIMARY KEY (customer_id, currency)
);
-- REPORT customers: the biggest spenders of a currency without sorting them all.
CREATE INDEX customer_stats_monetary_idx ON orderly.customer_stats (currency, monetary DESC);

-- RFM quintile boundaries per currency (the values at 20, 40, 60 and 80 % of its customers),
-- recomputed with customer_stats: a customer's score is then a comparison, not a sort of all.
CREATE TABLE orderly.rfm_thresholds (
    currency    char(3) PRIMARY KEY,
    customers   integer NOT NULL,
    recency     timestamptz[] NOT NULL,
    frequency   integer[] NOT NULL,
    monetary    numeric[] NOT NULL,
    computed_at timestamptz NOT NULL
);

-- Per month (the month an order left the stage) and stage (status): how long orders stayed.
CREATE TABLE orderly.stage_month_stats (
    month         date NOT NULL,
    stage         text NOT NULL,
    visits        integer NOT NULL,
    p50_seconds   numeric(14,1) NOT NULL,
    p90_seconds   numeric(14,1) NOT NULL,
    mean_seconds  numeric(14,1) NOT NULL,
    total_seconds numeric(18,1) NOT NULL,
    CONSTRAINT stage_month_stats_pkey PRIMARY KEY (month, stage)
);

-- RFM segments: the first row (by priority) whose score ranges hold a customer's scores names
-- its segment. Scores are quintiles 1–5 (5: most recent, most frequent, most spent).
CREATE TABLE orderly.rfm_segments (
    name        text PRIMARY KEY CONSTRAINT rfm_segments_name_format CHECK (name ~ '^[a-z][a-z_]{1,31}$'),
    priority    integer NOT NULL UNIQUE,
    r_min       integer NOT NULL DEFAULT 1, r_max integer NOT NULL DEFAULT 5,
    f_min       integer NOT NULL DEFAULT 1, f_max integer NOT NULL DEFAULT 5,
    m_min       integer NOT NULL DEFAULT 1, m_max integer NOT NULL DEFAULT 5,
    description text NOT NULL,
    CONSTRAINT rfm_segments_ranges CHECK (1 <= r_min AND r_min <= r_max AND r_max <= 5 AND 1 <= f_min AND f_min <= f_max AND f_max <= 5
                                          AND 1 <= m_min AND m_min <= m_max AND m_max <= 5)
);

INSERT INTO orderly.rfm_segments (name, priority, r_min, r_max, f_min, f_max, m_min, m_max, description) VALUES
    ('champions',       10, 4, 5, 4, 5, 4, 5, 'Bought recently, buy often and spend the most'),
    ('loyal',           20, 3, 5, 4, 5, 1, 5, 'Buy often; recent enough'),
    ('new',             30, 5, 5, 1, 1, 1, 5, 'First order, very recently'),
    ('promising',       40, 4, 5, 1, 3, 1, 5, 'Recent, not yet frequent'),
    ('at_risk',         50, 1, 2, 3, 5, 1, 5, 'Used to buy often, not for a long time'),
    ('hibernating',     60, 1, 2, 1, 2, 1, 5, 'Few orders, long ago'),
    ('needs_attention', 70, 1, 5, 1, 5, 1, 5, 'Everyone else: average recency and frequency');

COMMENT ON TABLE orderly.rfm_segments IS 'RFM segment rules: the first row by priority whose score ranges contain a customer''s scores';

-- Per month of delivery (an order's last shipment signed for): orders delivered, how many had a
-- requested date, how many arrived by it.
CREATE TABLE orderly.delivery_month_stats (
    month      date PRIMARY KEY,
    delivered  integer NOT NULL,
    with_date  integer NOT NULL,
    on_time    integer NOT NULL
);

-- The stage timings of a month are recomputed from the status changes and payments made in it.
CREATE INDEX order_status_history_changed_idx ON orderly.order_status_history (changed_at);
CREATE INDEX payments_received_idx ON orderly.payments (received_at);

-- The reports REPORT answers, the one place they are listed: REPORT alone lists these rows, and
-- the orderly CLI draws the bar chart of each row's measure.
CREATE TABLE orderly.reports (
    name      text PRIMARY KEY CONSTRAINT reports_name_format CHECK (name ~ '^[a-z][a-z_]{1,31}$'),
    position  integer NOT NULL UNIQUE,
    summary   text NOT NULL,
    usage     text NOT NULL,
    -- group= values it takes (the first is the default; empty: none).
    groups    text[] NOT NULL DEFAULT '{}',
    -- The key of each row that names it, and the measure a chart shows.
    label     text NOT NULL,
    measure   text NOT NULL
);

INSERT INTO orderly.reports (position, name, summary, usage, groups, label, measure) VALUES
    (1, 'sales', 'Sales (orders, units, gross, discounts, net, tax, average order value) per period, category, region or segment, per currency',
        'REPORT sales [from=] [to=] [group=month|week|day|category|region|segment] [limit=]', '{month,week,day,category,region,segment}', 'key', 'net'),
    (2, 'products', 'Best (group=top) or worst (group=bottom) selling products by net sales between from and to',
        'REPORT products [from=] [to=] [group=top|bottom] [limit=10]', '{top,bottom}', 'product', 'net'),
    (3, 'slow_movers', 'SKUs with stock on hand and no sale for the slow-mover threshold (analytics_settings)',
        'REPORT slow_movers [limit=]', '{}', 'sku', 'stock_on_hand'),
    (4, 'customers', 'Customers by what they spent: orders, average order value, days between orders, favourite category',
        'REPORT customers [group=customer|region|segment] [limit=10]', '{customer,region,segment}', 'key', 'monetary'),
    (5, 'rfm', 'Customers per RFM segment (recency, frequency, monetary quintiles), per currency',
        'REPORT rfm', '{}', 'segment', 'customers'),
    (6, 'stages', 'Time orders spend in each stage, and the bottleneck ranking by total waiting time (group=month: per month)',
        'REPORT stages [from=] [to=] [group=stage|month]', '{stage,month}', 'key', 'total_hours'),
    (7, 'on_time', 'Orders delivered by their requested date, per month',
        'REPORT on_time [from=] [to=]', '{}', 'month', 'on_time_rate'),
    (8, 'cancellations', 'Cancellations by the stage the order was at: how many, what they were worth, the fees, the rate',
        'REPORT cancellations [from=] [to=] [group=stage|month]', '{stage,month}', 'key', 'cancellations');

COMMENT ON TABLE orderly.reports IS 'The reports of REPORT: name, what it shows, its arguments, its label and main measure';
