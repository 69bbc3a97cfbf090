-- Orderly: pricing data — segment price lists, graduated quantity tiers, discount rules,
-- coupons and their redemptions, tax rates — plus the pricing.manage grants. Runs as
-- orderly_owner. How these combine is documented once, in R__120_pricing.sql.

-- A segment's unit price for a product (sku_id NULL) or for one SKU of it. It replaces the
-- product's base price; a SKU price also replaces the deltas of the SKU's variant options.
CREATE TABLE orderly.segment_prices (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    segment    text NOT NULL CONSTRAINT segment_prices_segment_format CHECK (segment ~ '^[a-z][a-z0-9_]{0,31}$'),
    product_id bigint NOT NULL REFERENCES orderly.products (id),
    sku_id     bigint,
    unit_price numeric(14,2) NOT NULL CONSTRAINT segment_prices_unit_price_positive CHECK (unit_price >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT segment_prices_sku_fkey FOREIGN KEY (sku_id, product_id) REFERENCES orderly.skus (id, product_id),
    CONSTRAINT segment_prices_key UNIQUE NULLS NOT DISTINCT (segment, product_id, sku_id)
);

COMMENT ON TABLE orderly.segment_prices IS 'Customer-segment price lists: a unit price per product or per SKU';

-- Graduated quantity tiers: units from min_qty on get percent_off the unit list price, until the
-- next band starts. Units below the lowest band pay the list price. segment NULL: every segment
-- without bands of its own.
CREATE TABLE orderly.price_tiers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id  bigint NOT NULL REFERENCES orderly.products (id),
    segment     text CONSTRAINT price_tiers_segment_format CHECK (segment ~ '^[a-z][a-z0-9_]{0,31}$'),
    min_qty     integer NOT NULL CONSTRAINT price_tiers_min_qty_range CHECK (min_qty BETWEEN 2 AND 100000),
    percent_off numeric(5,2) NOT NULL CONSTRAINT price_tiers_percent_range CHECK (percent_off > 0 AND percent_off <= 100),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT price_tiers_key UNIQUE NULLS NOT DISTINCT (product_id, segment, min_qty)
);

COMMENT ON TABLE orderly.price_tiers IS 'Graduated quantity bands: each unit gets the discount of the band it falls in';

-- Discount rules. Scope: every non-null of product_id, category_id (with its sub-categories) and
-- segment must match; none set means every line. kind:
--   percent      value = percent off the running line amount
--   fixed        value = amount off per unit (never below zero)
--   buy_x_get_y  buy_qty paid + free_qty free, repeated: free = floor(qty/(x+y))*y
-- A rule linked to a coupon (coupon_rules) applies only to orders that carry that coupon.
CREATE TABLE orderly.pricing_rules (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CONSTRAINT pricing_rules_name_format CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    kind        text NOT NULL CONSTRAINT pricing_rules_kind CHECK (kind IN ('percent', 'fixed', 'buy_x_get_y')),
    value       numeric(14,2),
    buy_qty     integer,
    free_qty    integer,
    product_id  bigint REFERENCES orderly.products (id),
    category_id bigint REFERENCES orderly.categories (id),
    segment     text CONSTRAINT pricing_rules_segment_format CHECK (segment ~ '^[a-z][a-z0-9_]{0,31}$'),
    starts_at   timestamptz,
    ends_at     timestamptz,
    priority    integer NOT NULL DEFAULT 100 CONSTRAINT pricing_rules_priority_range CHECK (priority BETWEEN 0 AND 1000000),
    exclusive   boolean NOT NULL DEFAULT false,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pricing_rules_kind_values CHECK (CASE kind
        WHEN 'percent' THEN value > 0 AND value <= 100 AND buy_qty IS NULL AND free_qty IS NULL
        WHEN 'fixed' THEN value > 0 AND buy_qty IS NULL AND free_qty IS NULL
        ELSE value IS NULL AND buy_qty BETWEEN 1 AND 10000 AND free_qty BETWEEN 1 AND 10000 END),
    CONSTRAINT pricing_rules_window CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);

COMMENT ON TABLE orderly.pricing_rules IS 'Discount rules (percent, fixed per unit, buy X get Y) by product, category or segment';

CREATE TABLE orderly.coupons (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                  text NOT NULL CONSTRAINT coupons_code_format CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_-]{2,31}$'),
    starts_at             timestamptz,
    ends_at               timestamptz,
    max_uses              integer CONSTRAINT coupons_max_uses_positive CHECK (max_uses >= 1),
    max_uses_per_customer integer CONSTRAINT coupons_max_uses_per_customer_positive CHECK (max_uses_per_customer >= 1),
    -- Redemptions not released; kept with the coupon so that one guarded UPDATE enforces max_uses.
    used_count            integer NOT NULL DEFAULT 0,
    active                boolean NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT coupons_used_count_range CHECK (used_count >= 0 AND (max_uses IS NULL OR used_count <= max_uses)),
    CONSTRAINT coupons_window CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);

-- Customers type coupon codes in any case.
CREATE UNIQUE INDEX coupons_code_lower_key ON orderly.coupons (lower(code));

CREATE TABLE orderly.coupon_rules (
    coupon_id bigint NOT NULL REFERENCES orderly.coupons (id),
    rule_id   bigint NOT NULL REFERENCES orderly.pricing_rules (id),
    CONSTRAINT coupon_rules_pkey PRIMARY KEY (coupon_id, rule_id)
);

CREATE INDEX coupon_rules_rule_idx ON orderly.coupon_rules (rule_id);

-- order_id has no foreign key here: orders arrive in a later migration, which may add it.
CREATE TABLE orderly.coupon_redemptions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    coupon_id   bigint NOT NULL REFERENCES orderly.coupons (id),
    order_id    bigint NOT NULL,
    customer_id bigint REFERENCES orderly.customers (id),
    redeemed_at timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz
);

-- One live coupon per order.
CREATE UNIQUE INDEX coupon_redemptions_order_live_key ON orderly.coupon_redemptions (order_id) WHERE released_at IS NULL;
CREATE INDEX coupon_redemptions_coupon_customer_idx ON orderly.coupon_redemptions (coupon_id, customer_id)
    WHERE released_at IS NULL;

COMMENT ON TABLE orderly.coupon_redemptions IS 'Coupon uses by order; a released redemption no longer counts';

-- Tax by ship-to country, optionally narrowed to a region; the most specific row wins.
CREATE TABLE orderly.tax_rates (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    country    char(2) NOT NULL CONSTRAINT tax_rates_country_format CHECK (country ~ '^[A-Z]{2}$'),
    region     text CONSTRAINT tax_rates_region_format CHECK (length(region) BETWEEN 1 AND 64 AND region !~ '[[:cntrl:]]'),
    -- A percentage: 19 means 19 %.
    rate       numeric(7,4) NOT NULL CONSTRAINT tax_rates_rate_range CHECK (rate >= 0 AND rate <= 100),
    name       text NOT NULL CONSTRAINT tax_rates_name_format CHECK (length(name) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tax_rates_key UNIQUE NULLS NOT DISTINCT (country, region)
);

COMMENT ON TABLE orderly.tax_rates IS 'Sales tax / VAT percentages by country and optional region';

INSERT INTO orderly.role_permissions (role_id, permission)
SELECT r.id, 'pricing.manage'
FROM orderly.roles r
WHERE r.name IN ('admin', 'sales_manager', 'finance_manager')
ON CONFLICT ON CONSTRAINT role_permissions_pkey DO NOTHING;
