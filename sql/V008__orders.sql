-- Orderly: orders, their lines, notes and status history; the status lifecycle as data; stock
-- reservations; idempotency keys. Runs as orderly_owner.
--
-- Every order table carries customer_id, so that orders can later be distributed by customer
-- (DESIGN.md §8) and a customer's orders are one index range.

-- Status lifecycle (OFBiz style): the statuses and the allowed transitions are rows, so later
-- work adds approval, production, shipping and cancellation by inserting rows, not by editing
-- code. A transition may name the permission it needs.
CREATE TABLE orderly.order_statuses (
    code           text PRIMARY KEY CONSTRAINT order_statuses_code_format CHECK (code ~ '^[a-z][a-z_]{1,31}$'),
    description    text NOT NULL,
    -- What a customer is shown for this status.
    customer_label text NOT NULL,
    position       integer NOT NULL,
    is_final       boolean NOT NULL DEFAULT false
);

CREATE TABLE orderly.order_status_transitions (
    from_status text NOT NULL REFERENCES orderly.order_statuses (code),
    to_status   text NOT NULL REFERENCES orderly.order_statuses (code),
    permission  text REFERENCES orderly.permissions (code),
    CONSTRAINT order_status_transitions_pkey PRIMARY KEY (from_status, to_status),
    CONSTRAINT order_status_transitions_not_same CHECK (from_status <> to_status)
);

COMMENT ON TABLE orderly.order_status_transitions IS 'Allowed order status changes; anything else is refused';

INSERT INTO orderly.order_statuses (code, description, customer_label, position) VALUES
    ('draft',     'Being put together; prices are live',             'Draft',     10),
    ('submitted', 'Submitted with prices fixed and stock reserved',  'Received',  20);

INSERT INTO orderly.order_status_transitions (from_status, to_status, permission) VALUES
    ('draft', 'submitted', 'order.submit');

CREATE TABLE orderly.orders (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id    bigint NOT NULL REFERENCES orderly.customers (id),
    type           text NOT NULL DEFAULT 'standard' CONSTRAINT orders_type_check
                   CHECK (type IN ('standard', 'custom', 'strategic')),
    status         text NOT NULL REFERENCES orderly.order_statuses (code),
    ship_to_id     bigint REFERENCES orderly.addresses (id),
    requested_date date,
    coupon_code    text,
    -- The last pricing of the order: live while a draft, fixed at submit.
    currency       char(3) NOT NULL DEFAULT 'EUR',
    subtotal       numeric(14,2) NOT NULL DEFAULT 0,
    discount_total numeric(14,2) NOT NULL DEFAULT 0,
    tax_total      numeric(14,2) NOT NULL DEFAULT 0,
    total          numeric(14,2) NOT NULL DEFAULT 0,
    priced_at      timestamptz,
    -- Line numbers are never reused within an order, so a removed line's number stays unique
    -- in the audit log.
    next_line_no   integer NOT NULL DEFAULT 1,
    version        integer NOT NULL DEFAULT 1,
    created_by     bigint REFERENCES orderly.users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    submitted_by   bigint REFERENCES orderly.users (id),
    submitted_at   timestamptz,
    -- discount_total may be negative: a manual price above the list price is a surcharge.
    CONSTRAINT orders_totals_check CHECK (subtotal >= 0 AND tax_total >= 0 AND total >= 0)
);

-- ORDER LIST walks these newest first (keyset on id) with its filters.
CREATE INDEX orders_customer_idx   ON orderly.orders (customer_id, id);
CREATE INDEX orders_status_idx     ON orderly.orders (status, id);
CREATE INDEX orders_created_by_idx ON orderly.orders (created_by, id);
CREATE INDEX orders_created_at_idx ON orderly.orders (created_at);

COMMENT ON TABLE orderly.orders IS 'Order headers; prices and totals as last computed by orderly.price_order';

CREATE TABLE orderly.order_lines (
    order_id        bigint NOT NULL REFERENCES orderly.orders (id),
    line_no         integer NOT NULL CHECK (line_no > 0),
    customer_id     bigint NOT NULL REFERENCES orderly.customers (id),
    -- What was asked for, as the pricing engine takes it (sku or product, qty, options,
    -- params, a manual unit price and its reason): a draft is re-priced from this.
    spec            jsonb NOT NULL,
    product_id      bigint NOT NULL,
    sku_id          bigint,
    qty             integer NOT NULL CHECK (qty > 0),
    list_price      numeric(14,2) NOT NULL,
    gross           numeric(14,2) NOT NULL,
    discount        numeric(14,2) NOT NULL,
    net             numeric(14,2) NOT NULL,
    tax_rate        numeric(7,4) NOT NULL DEFAULT 0,
    tax             numeric(14,2) NOT NULL DEFAULT 0,
    is_override     boolean NOT NULL DEFAULT false,
    override_reason text,
    override_by     bigint REFERENCES orderly.users (id),
    -- The line as the pricing engine returned it, with its explanation ("why this price").
    priced          jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT order_lines_pkey PRIMARY KEY (order_id, line_no),
    CONSTRAINT order_lines_override_reason CHECK (NOT is_override OR override_reason IS NOT NULL)
);

CREATE INDEX order_lines_sku_idx ON orderly.order_lines (sku_id) WHERE sku_id IS NOT NULL;

CREATE TABLE orderly.order_notes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orderly.orders (id),
    customer_id bigint NOT NULL REFERENCES orderly.customers (id),
    kind        text NOT NULL DEFAULT 'general' CONSTRAINT order_notes_kind_check
                CHECK (kind IN ('delivery', 'packaging', 'general')),
    text        text NOT NULL CONSTRAINT order_notes_text_check CHECK (length(btrim(text)) BETWEEN 1 AND 2000),
    created_by  bigint REFERENCES orderly.users (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX order_notes_order_idx ON orderly.order_notes (order_id, id);

COMMENT ON TABLE orderly.order_notes IS 'Delivery, packaging and general notes; append-only, seen by warehouse and production';

CREATE TABLE orderly.order_status_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orderly.orders (id),
    customer_id bigint NOT NULL REFERENCES orderly.customers (id),
    from_status text REFERENCES orderly.order_statuses (code),
    to_status   text NOT NULL REFERENCES orderly.order_statuses (code),
    changed_by  bigint REFERENCES orderly.users (id),
    changed_at  timestamptz NOT NULL DEFAULT now(),
    reason      text
);

CREATE INDEX order_status_history_order_idx ON orderly.order_status_history (order_id, id);

-- Notes and history are never edited or removed, whoever asks (the owner included): a later
-- amendment may add to them, never drop them.
CREATE FUNCTION orderly.order_record_is_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;

REVOKE ALL ON FUNCTION orderly.order_record_is_append_only() FROM PUBLIC;

CREATE TRIGGER order_notes_append_only BEFORE UPDATE OR DELETE ON orderly.order_notes
    FOR EACH ROW EXECUTE FUNCTION orderly.order_record_is_append_only();
CREATE TRIGGER order_status_history_append_only BEFORE UPDATE OR DELETE ON orderly.order_status_history
    FOR EACH ROW EXECUTE FUNCTION orderly.order_record_is_append_only();

-- One row per SKU an order line holds (a bundle line holds several). released_at is set when
-- the stock goes back (rejection, cancellation); the row stays as history.
CREATE TABLE orderly.stock_reservations (
    order_id    bigint NOT NULL REFERENCES orderly.orders (id),
    line_no     integer NOT NULL,
    sku_id      bigint NOT NULL REFERENCES orderly.skus (id),
    customer_id bigint NOT NULL REFERENCES orderly.customers (id),
    qty         integer NOT NULL CHECK (qty > 0),
    reserved_at timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    CONSTRAINT stock_reservations_pkey PRIMARY KEY (order_id, line_no, sku_id)
);

CREATE INDEX stock_reservations_sku_idx ON orderly.stock_reservations (sku_id) WHERE released_at IS NULL;

-- A client that retries after a lost reply sends the same key: it gets the first reply again
-- instead of a second order. Keys belong to a user (two users may pick the same key) and are
-- kept at least 24 hours.
CREATE TABLE orderly.idempotency_keys (
    user_id      bigint NOT NULL REFERENCES orderly.users (id) ON DELETE CASCADE,
    key          text NOT NULL CONSTRAINT idempotency_keys_key_format CHECK (key ~ '^[[:graph:]]{1,200}$'),
    command      text NOT NULL,
    request_hash bytea NOT NULL,
    -- The exact text of the first reply, returned byte for byte on a replay.
    reply        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, key)
);

CREATE INDEX idempotency_keys_created_idx ON orderly.idempotency_keys (created_at);

-- Seeds: who does what with orders -----------------------------------------------------------------
-- order.read: the orders one created (a sales rep) or, for a customer login, its customer's.
-- order.read_all: every order (supervisors, managers, back office, warehouse and production).
INSERT INTO orderly.role_permissions (role_id, permission)
SELECT r.id, p.permission
FROM orderly.roles r
JOIN (VALUES
        ('sales_rep',          'order.create'),
        ('sales_rep',          'order.submit'),
        ('sales_rep',          'order.read'),
        ('sales_supervisor',   'order.create'),
        ('sales_supervisor',   'order.submit'),
        ('sales_supervisor',   'order.read'),
        ('sales_supervisor',   'order.read_all'),
        ('sales_manager',      'order.create'),
        ('sales_manager',      'order.submit'),
        ('sales_manager',      'order.read'),
        ('sales_manager',      'order.read_all'),
        ('sales_manager',      'price.override'),
        ('general_manager',    'order.read'),
        ('general_manager',    'order.read_all'),
        ('general_manager',    'price.override'),
        ('finance_manager',    'order.read'),
        ('finance_manager',    'order.read_all'),
        ('production_manager', 'order.read'),
        ('production_manager', 'order.read_all'),
        ('warehouse',          'order.read'),
        ('warehouse',          'order.read_all'),
        ('logistics',          'order.read'),
        ('logistics',          'order.read_all'),
        ('customer_service',   'order.create'),
        ('customer_service',   'order.submit'),
        ('customer_service',   'order.read'),
        ('customer_service',   'order.read_all'),
        ('auditor',            'order.read'),
        ('auditor',            'order.read_all'),
        ('customer',           'order.create'),
        ('customer',           'order.submit'),
        ('customer',           'order.read')
     ) AS p (role, permission) ON p.role = r.name
ON CONFLICT DO NOTHING;
