-- Orderly: after approval (issue 12) — the rest of an order's life as data: statuses and their
-- transitions, customer payment terms and credit limits, payments, production, carriers and
-- shipments, holds, and notes a customer may see. The rules that use these rows live in the
-- R files (sql/R__18x…); the CHECKs here are the backstop.

-- Permissions, and the seeded roles that hold them ----------------------------------------------

INSERT INTO orderly.permissions (code, description) VALUES
    ('payment.record',    'Record payments and refunds against orders'),
    ('production.manage', 'Start and finish production of order lines; report and resolve production issues'),
    ('shipment.manage',   'Ship order lines and record deliveries'),
    ('order.hold',        'Put an order on hold and release it');

INSERT INTO orderly.role_permissions (role_id, permission)
SELECT r.id, p.permission
FROM orderly.roles r
JOIN (VALUES ('finance_manager',    'payment.record'),
             ('finance_manager',    'order.hold'),
             ('general_manager',    'order.hold'),
             ('sales_manager',      'order.hold'),
             ('production_manager', 'production.manage'),
             ('warehouse',          'shipment.manage'),
             ('logistics',          'shipment.manage')) AS p (role, permission) ON p.role = r.name
ON CONFLICT DO NOTHING;

-- Statuses and transitions ------------------------------------------------------------------------
-- A transition's permission is what a person needs to make it with a command. The moves that
-- follow from other facts (the last line shipped → shipped; delivered and paid → completed; a
-- net order over its credit limit → on_hold) are made by the system, but only along rows of
-- this table too: orderly.change_status(…, automatic => true) skips the permission, never the row.

INSERT INTO orderly.order_statuses (code, description, customer_label, position, is_final) VALUES
    ('in_production',     'Custom or make-to-order lines are being made',                    'In production',      60, false),
    ('ready',             'Every line is available to ship; released to the warehouse',      'Ready to ship',      70, false),
    ('partially_shipped', 'Some lines, or part of them, have shipped',                       'Partially shipped',  80, false),
    ('shipped',           'Everything has shipped',                                          'Shipped',            90, false),
    ('delivered',         'Every shipment has been delivered (signed for)',                  'Delivered',         100, false),
    ('completed',         'Delivered and paid',                                              'Completed',         110, true),
    ('on_hold',           'Stopped for a reason (credit limit, awaiting payment, a question); goes back to where it was', 'On hold', 120, false);

INSERT INTO orderly.order_status_transitions (from_status, to_status, permission) VALUES
    ('approved',          'in_production',     'production.manage'),
    ('approved',          'ready',             'production.manage'),
    ('in_production',     'ready',             'production.manage'),
    ('approved',          'partially_shipped', 'shipment.manage'),
    ('approved',          'shipped',           'shipment.manage'),
    ('in_production',     'partially_shipped', 'shipment.manage'),
    ('ready',             'partially_shipped', 'shipment.manage'),
    ('ready',             'shipped',           'shipment.manage'),
    ('partially_shipped', 'shipped',           'shipment.manage'),
    ('shipped',           'delivered',         'shipment.manage'),
    ('delivered',         'completed',         'payment.record'),
    ('approved',          'on_hold',           'order.hold'),
    ('in_production',     'on_hold',           'order.hold'),
    ('ready',             'on_hold',           'order.hold'),
    ('partially_shipped', 'on_hold',           'order.hold'),
    ('on_hold',           'approved',          'order.hold'),
    ('on_hold',           'in_production',     'order.hold'),
    ('on_hold',           'ready',             'order.hold'),
    ('on_hold',           'partially_shipped', 'order.hold');

-- Holds: why, and where the order goes back to. -------------------------------------------------

ALTER TABLE orderly.orders
    ADD COLUMN hold_reason text CONSTRAINT orders_hold_reason_format
        CHECK (length(btrim(hold_reason)) BETWEEN 1 AND 500 AND hold_reason !~ '[[:cntrl:]]'),
    ADD COLUMN held_from text REFERENCES orderly.order_statuses (code),
    -- Payments received and refunded, kept with the order (in its currency) by the payment
    -- functions in the same transaction as the payment rows, under the order's row lock:
    -- payment_status is derived from them.
    ADD COLUMN amount_paid numeric(14,2) NOT NULL DEFAULT 0 CONSTRAINT orders_amount_paid_check CHECK (amount_paid >= 0),
    ADD COLUMN amount_refunded numeric(14,2) NOT NULL DEFAULT 0
        CONSTRAINT orders_amount_refunded_check CHECK (amount_refunded >= 0 AND amount_refunded <= amount_paid),
    ADD CONSTRAINT orders_hold_check CHECK ((status = 'on_hold') = (held_from IS NOT NULL AND hold_reason IS NOT NULL));

-- Customer terms ----------------------------------------------------------------------------------

ALTER TABLE orderly.customers
    -- prepaid: released to the warehouse once paid; net_N: due N days after shipping.
    ADD COLUMN payment_terms text NOT NULL DEFAULT 'net_30'
        CONSTRAINT customers_payment_terms_format CHECK (payment_terms ~ '^(prepaid|net_[1-9][0-9]{0,2})$'),
    -- NULL: no limit. Compared with the open balance of the customer's orders in the same
    -- currency only (money is never summed across currencies).
    ADD COLUMN credit_limit numeric(14,2) CONSTRAINT customers_credit_limit_check CHECK (credit_limit >= 0),
    ADD COLUMN credit_currency char(3) NOT NULL DEFAULT 'EUR' CONSTRAINT customers_credit_currency_format CHECK (credit_currency ~ '^[A-Z]{3}$');

-- Payments ---------------------------------------------------------------------------------------

CREATE TABLE orderly.payments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orderly.orders (id),
    customer_id bigint NOT NULL REFERENCES orderly.customers (id),
    kind        text NOT NULL DEFAULT 'payment' CONSTRAINT payments_kind_check CHECK (kind IN ('payment', 'refund')),
    amount      numeric(14,2) NOT NULL CONSTRAINT payments_amount_check CHECK (amount > 0),
    currency    char(3) NOT NULL,
    method      text NOT NULL CONSTRAINT payments_method_check CHECK (method IN ('bank_transfer', 'card', 'cash', 'cheque', 'other')),
    reference   text NOT NULL CONSTRAINT payments_reference_format
                CHECK (length(btrim(reference)) BETWEEN 1 AND 200 AND reference !~ '[[:cntrl:]]'),
    received_at timestamptz NOT NULL,
    recorded_by bigint REFERENCES orderly.users (id),
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- The same payment recorded twice is one row: a bank's reference is unique per method.
CREATE UNIQUE INDEX payments_method_reference_key ON orderly.payments (kind, method, lower(btrim(reference)));
CREATE INDEX payments_order_idx ON orderly.payments (order_id, id);

CREATE TRIGGER payments_append_only BEFORE UPDATE OR DELETE ON orderly.payments
    FOR EACH ROW EXECUTE FUNCTION orderly.order_record_is_append_only();

COMMENT ON TABLE orderly.payments IS 'Payments and refunds against orders, in the order''s currency; append-only';

-- Production -------------------------------------------------------------------------------------

CREATE TABLE orderly.production_lines (
    order_id    bigint NOT NULL,
    line_no     integer NOT NULL,
    customer_id bigint NOT NULL REFERENCES orderly.customers (id),
    status      text NOT NULL CONSTRAINT production_lines_status_check CHECK (status IN ('in_production', 'done')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    started_by  bigint REFERENCES orderly.users (id),
    done_at     timestamptz,
    done_by     bigint REFERENCES orderly.users (id),
    CONSTRAINT production_lines_pkey PRIMARY KEY (order_id, line_no),
    CONSTRAINT production_lines_line_fkey FOREIGN KEY (order_id, line_no) REFERENCES orderly.order_lines (order_id, line_no),
    CONSTRAINT production_lines_done_check CHECK ((status = 'done') = (done_at IS NOT NULL))
);

COMMENT ON TABLE orderly.production_lines IS 'Custom and make-to-order lines in production: started and finished, with who and when';

CREATE TABLE orderly.production_issues (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orderly.orders (id),
    customer_id bigint NOT NULL REFERENCES orderly.customers (id),
    kind        text NOT NULL CONSTRAINT production_issues_kind_check CHECK (kind IN ('material', 'equipment', 'quality', 'other')),
    note        text NOT NULL CONSTRAINT production_issues_note_check CHECK (length(btrim(note)) BETWEEN 1 AND 2000),
    opened_by   bigint REFERENCES orderly.users (id),
    opened_at   timestamptz NOT NULL DEFAULT now(),
    resolved_by bigint REFERENCES orderly.users (id),
    resolved_at timestamptz,
    resolution  text CONSTRAINT production_issues_resolution_check CHECK (length(btrim(resolution)) BETWEEN 1 AND 2000)
);

CREATE INDEX production_issues_open_idx ON orderly.production_issues (order_id) WHERE resolved_at IS NULL;

-- Carriers and shipments ---------------------------------------------------------------------------

CREATE TABLE orderly.carriers (
    code                  text PRIMARY KEY CONSTRAINT carriers_code_format CHECK (code ~ '^[a-z][a-z0-9_]{1,31}$'),
    name                  text NOT NULL CONSTRAINT carriers_name_format CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    -- Where a parcel is tracked: {tracking_no} is replaced by the shipment's tracking number.
    tracking_url_template text CONSTRAINT carriers_tracking_url_format
                          CHECK (tracking_url_template ~ '^https://[^[:space:]]+$' AND position('{tracking_no}' IN tracking_url_template) > 0),
    active                boolean NOT NULL DEFAULT true
);

COMMENT ON TABLE orderly.carriers IS 'Carriers goods ship with; admins manage them in SQL (admin.set_carrier)';

CREATE TABLE orderly.shipments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     bigint NOT NULL REFERENCES orderly.orders (id),
    customer_id  bigint NOT NULL REFERENCES orderly.customers (id),
    carrier      text NOT NULL REFERENCES orderly.carriers (code),
    service      text CONSTRAINT shipments_service_format CHECK (length(btrim(service)) BETWEEN 1 AND 100),
    tracking_no  text CONSTRAINT shipments_tracking_no_format CHECK (tracking_no ~ '^[A-Za-z0-9-]{1,64}$'),
    parcels      integer NOT NULL DEFAULT 1 CONSTRAINT shipments_parcels_check CHECK (parcels BETWEEN 1 AND 999),
    status       text NOT NULL DEFAULT 'shipped' CONSTRAINT shipments_status_check CHECK (status IN ('shipped', 'delivered')),
    shipped_at   timestamptz NOT NULL DEFAULT now(),
    shipped_by   bigint REFERENCES orderly.users (id),
    delivered_at timestamptz,
    signed_by    text CONSTRAINT shipments_signed_by_format CHECK (length(btrim(signed_by)) BETWEEN 1 AND 200 AND signed_by !~ '[[:cntrl:]]'),
    CONSTRAINT shipments_delivered_check CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);

CREATE INDEX shipments_order_idx ON orderly.shipments (order_id, id);
CREATE INDEX shipments_open_idx ON orderly.shipments (status, id) WHERE status = 'shipped';
CREATE UNIQUE INDEX shipments_carrier_tracking_key ON orderly.shipments (carrier, tracking_no) WHERE tracking_no IS NOT NULL;

CREATE TABLE orderly.shipment_lines (
    shipment_id bigint NOT NULL REFERENCES orderly.shipments (id),
    order_id    bigint NOT NULL,
    line_no     integer NOT NULL,
    qty         integer NOT NULL CONSTRAINT shipment_lines_qty_check CHECK (qty > 0),
    CONSTRAINT shipment_lines_pkey PRIMARY KEY (shipment_id, line_no),
    CONSTRAINT shipment_lines_line_fkey FOREIGN KEY (order_id, line_no) REFERENCES orderly.order_lines (order_id, line_no)
);

CREATE INDEX shipment_lines_order_idx ON orderly.shipment_lines (order_id, line_no);

-- Notes a customer may see -----------------------------------------------------------------------
-- Notes written so far were all shown to the customer's logins; a new note is internal unless
-- its writer says otherwise.

ALTER TABLE orderly.order_notes
    ADD COLUMN visibility text NOT NULL DEFAULT 'customer' CONSTRAINT order_notes_visibility_check CHECK (visibility IN ('internal', 'customer'));
ALTER TABLE orderly.order_notes ALTER COLUMN visibility SET DEFAULT 'internal';
