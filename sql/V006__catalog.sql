-- Orderly: the catalog — a category tree, products of four kinds, option groups and values,
-- SKUs with stock, and bundles — plus the catalog permissions. Runs as orderly_owner.
--
-- Codes are what people type and read (PHN-X1, PHN-X1-128-BLK): categories, products and SKUs
-- use upper-case codes, option groups and values lower-case ones (colour=black). The api
-- functions normalise case, so the constraints below only hold the stored form.
--
-- Kinds: 'goods' come from stock through SKUs (at least one; a product without variant groups
-- has one default SKU); 'service' and 'custom' are made to order and have no SKU or stock;
-- 'bundle' is sold at its own price and ships fixed component SKUs (bundle_items).

CREATE TABLE orderly.categories (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Set once at creation (no api moves a category), so the tree cannot gain a cycle.
    parent_id  bigint REFERENCES orderly.categories (id),
    code       text NOT NULL UNIQUE CONSTRAINT categories_code_format CHECK (code ~ '^[A-Z0-9][A-Z0-9_.-]{0,47}$'),
    name       text NOT NULL CONSTRAINT categories_name_format CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX categories_parent_idx ON orderly.categories (parent_id);

COMMENT ON TABLE orderly.categories IS 'Product category tree; a rule on a category also covers its sub-categories';

CREATE TABLE orderly.products (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code           text NOT NULL UNIQUE CONSTRAINT products_code_format CHECK (code ~ '^[A-Z0-9][A-Z0-9_.-]{0,47}$'),
    name           text NOT NULL CONSTRAINT products_name_format CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    category_id    bigint REFERENCES orderly.categories (id),
    kind           text NOT NULL CONSTRAINT products_kind CHECK (kind IN ('goods', 'service', 'custom', 'bundle')),
    base_price     numeric(14,2) NOT NULL DEFAULT 0 CONSTRAINT products_base_price_positive CHECK (base_price >= 0),
    currency       char(3) NOT NULL DEFAULT 'EUR' CONSTRAINT products_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    active         boolean NOT NULL DEFAULT true,
    description    text NOT NULL DEFAULT '' CONSTRAINT products_description_length CHECK (length(description) <= 2000),
    -- Only custom products are priced by formula (R__120_pricing.sql validates and evaluates it;
    -- nothing ever runs it as SQL). formula_params declares its parameters:
    -- {"width_cm": {"min": 5, "max": 60}, ...}.
    formula        text,
    formula_params jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT products_formula_custom_only CHECK (formula IS NULL OR kind = 'custom'),
    CONSTRAINT products_formula_with_params CHECK ((formula IS NULL) = (formula_params IS NULL)),
    CONSTRAINT products_formula_params_object CHECK (formula_params IS NULL OR jsonb_typeof(formula_params) = 'object'),
    CONSTRAINT products_formula_length CHECK (length(formula) <= 500)
);

CREATE INDEX products_category_idx ON orderly.products (category_id);

COMMENT ON TABLE orderly.products IS 'Sellable products: goods (stocked SKUs), services, custom-made (formula price) and bundles';

CREATE TABLE orderly.option_groups (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id bigint NOT NULL REFERENCES orderly.products (id),
    code       text NOT NULL CONSTRAINT option_groups_code_format CHECK (code ~ '^[a-z][a-z0-9_]{0,31}$'),
    name       text NOT NULL CONSTRAINT option_groups_name_format CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    -- A variant group (colour, storage) picks the SKU; a non-variant one (accessories) only adds
    -- to the price. A variant group is a single choice.
    variant    boolean NOT NULL DEFAULT false,
    required   boolean NOT NULL DEFAULT false,
    multiple   boolean NOT NULL DEFAULT false,
    position   integer NOT NULL DEFAULT 0,
    CONSTRAINT option_groups_product_code_key UNIQUE (product_id, code),
    CONSTRAINT option_groups_variant_single CHECK (NOT (variant AND multiple))
);

CREATE TABLE orderly.option_values (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id    bigint NOT NULL REFERENCES orderly.option_groups (id),
    code        text NOT NULL CONSTRAINT option_values_code_format CHECK (code ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    name        text NOT NULL CONSTRAINT option_values_name_format CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    -- May be negative (e.g. "no charger"); a line whose unit price would fall below 0 is refused.
    price_delta numeric(14,2) NOT NULL DEFAULT 0,
    position    integer NOT NULL DEFAULT 0,
    active      boolean NOT NULL DEFAULT true,
    CONSTRAINT option_values_group_code_key UNIQUE (group_id, code)
);

CREATE TABLE orderly.skus (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id     bigint NOT NULL REFERENCES orderly.products (id),
    code           text NOT NULL UNIQUE CONSTRAINT skus_code_format CHECK (code ~ '^[A-Z0-9][A-Z0-9_.-]{0,47}$'),
    -- Variant group code -> value code; {} for the default SKU of a product without variants.
    options        jsonb NOT NULL DEFAULT '{}' CONSTRAINT skus_options_object CHECK (jsonb_typeof(options) = 'object'),
    -- available = on_hand - reserved. Reservations are made by the order functions with a
    -- guarded UPDATE, so these checks are what makes overselling impossible.
    stock_on_hand  integer NOT NULL DEFAULT 0 CONSTRAINT skus_stock_on_hand_positive CHECK (stock_on_hand >= 0),
    stock_reserved integer NOT NULL DEFAULT 0,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT skus_stock_reserved_range CHECK (stock_reserved >= 0 AND stock_reserved <= stock_on_hand),
    -- One SKU per variant combination, or picking by options would be ambiguous.
    CONSTRAINT skus_product_options_key UNIQUE (product_id, options),
    -- Lets segment prices reference (sku, product) together.
    CONSTRAINT skus_id_product_key UNIQUE (id, product_id)
);

COMMENT ON TABLE orderly.skus IS 'Stock-keeping units of goods products; available = stock_on_hand - stock_reserved';

CREATE TABLE orderly.bundle_items (
    bundle_product_id bigint NOT NULL REFERENCES orderly.products (id),
    sku_id            bigint NOT NULL REFERENCES orderly.skus (id),
    qty               integer NOT NULL CONSTRAINT bundle_items_qty_positive CHECK (qty BETWEEN 1 AND 1000),
    CONSTRAINT bundle_items_pkey PRIMARY KEY (bundle_product_id, sku_id)
);

CREATE INDEX bundle_items_sku_idx ON orderly.bundle_items (sku_id);

COMMENT ON TABLE orderly.bundle_items IS 'Fixed component SKUs shipped per unit of a bundle product';

-- Permissions ------------------------------------------------------------------------------------

INSERT INTO orderly.permissions (code, description) VALUES
    ('catalog.read', 'Browse the catalog and price products');

-- Everyone who works with orders reads the catalog, customers included.
INSERT INTO orderly.role_permissions (role_id, permission)
SELECT r.id, 'catalog.read'
FROM orderly.roles r
WHERE r.name IN ('admin', 'sales_rep', 'sales_supervisor', 'sales_manager', 'finance_manager', 'production_manager',
                 'general_manager', 'warehouse', 'logistics', 'customer_service', 'auditor', 'customer')
UNION ALL
SELECT r.id, 'catalog.manage'
FROM orderly.roles r
WHERE r.name IN ('admin', 'sales_manager', 'production_manager')
ON CONFLICT ON CONSTRAINT role_permissions_pkey DO NOTHING;
