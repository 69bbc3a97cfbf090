-- Orderly: cancelling an order, or some of its lines, after submission (issue 14, item 2). Data
-- only; the rules live in R__198_cancellation.sql.
--
-- What was cancelled is kept on the lines (order_lines.cancelled_qty: the units that will never
-- ship) and its value on the order (orders.cancelled_total), beside what the cancellation costs
-- (orders.charges_total, the sum of orderly.order_charges). What the customer owes is then
-- total − cancelled_total + charges_total; payments, refunds and payment_status follow from it
-- (R__138_order_fulfilment.sql).

-- Permissions --------------------------------------------------------------------------------------
-- order.cancel (V002) was held by nobody until now. Deciding a customer's (or a rep's) request is
-- cancel.decide; a policy row may further name the one role that decides at its stage.

INSERT INTO orderly.permissions (code, description) VALUES
    ('cancel.decide', 'Approve or reject a requested cancellation');

INSERT INTO orderly.role_permissions (role_id, permission)
SELECT r.id, p.permission
FROM orderly.roles r
JOIN (VALUES ('sales_rep',        'order.cancel'),
             ('sales_supervisor', 'order.cancel'),
             ('sales_manager',    'order.cancel'),
             ('general_manager',  'order.cancel'),
             ('customer_service', 'order.cancel'),
             ('customer',         'order.cancel'),
             ('sales_supervisor', 'cancel.decide'),
             ('sales_manager',    'cancel.decide'),
             ('general_manager',  'cancel.decide'),
             ('customer_service', 'cancel.decide')) AS p (role, permission) ON p.role = r.name
ON CONFLICT DO NOTHING;

-- The status and its transitions ---------------------------------------------------------------------
-- A partly shipped order whose rest is cancelled is not "cancelled": it goes on as shipped.

INSERT INTO orderly.order_statuses (code, description, customer_label, position, is_final, notify_customer) VALUES
    ('cancelled', 'Cancelled before anything shipped: stock, coupon and production released', 'Cancelled', 115, true, true);

INSERT INTO orderly.order_status_transitions (from_status, to_status, permission)
SELECT s, 'cancelled', 'order.cancel'
FROM unnest(ARRAY['submitted', 'pending_approval', 'approved', 'in_production', 'ready', 'partially_shipped', 'on_hold']) s;

-- Lines and money --------------------------------------------------------------------------------------

ALTER TABLE orderly.order_lines
    ADD COLUMN cancelled_qty integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT order_lines_cancelled_qty_check CHECK (cancelled_qty BETWEEN 0 AND qty);

ALTER TABLE orderly.orders
    ADD COLUMN cancelled_total numeric(14,2) NOT NULL DEFAULT 0 CONSTRAINT orders_cancelled_total_check CHECK (cancelled_total BETWEEN 0 AND total),
    ADD COLUMN charges_total numeric(14,2) NOT NULL DEFAULT 0 CONSTRAINT orders_charges_total_check CHECK (charges_total >= 0);

ALTER TABLE orderly.production_lines DROP CONSTRAINT production_lines_status_check;
ALTER TABLE orderly.production_lines ADD CONSTRAINT production_lines_status_check
    CHECK (status IN ('in_production', 'done', 'cancelled'));

-- The policy ---------------------------------------------------------------------------------------------
-- One row per status the order is at (an order on hold: the status it was held from), optionally
-- per order type and per currency; the most specific row applies (type before currency). No row:
-- the order cannot be cancelled at that status. The fee:
--     fee_percent % of the basis (cancelled_value: what the cancelled units are worth, tax
--     included; order_value: what the whole order is worth before this cancellation)
--   + fee_fixed, then at least fee_min and at most fee_max, and never more than the cancelled
--     units are worth.
-- Fixed amounts are in the row's currency, so a row without a currency has percentages only.
-- approval_role: a cancellation at this stage is only requested unless its author holds this
-- role; someone holding it decides (CANCEL APPROVE / CANCEL REJECT).

CREATE TABLE orderly.cancellation_policies (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status        text NOT NULL REFERENCES orderly.order_statuses (code),
    order_type    text CONSTRAINT cancellation_policies_type_check CHECK (order_type IN ('standard', 'custom', 'strategic')),
    currency      char(3) CONSTRAINT cancellation_policies_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    fee_percent   numeric(5,2) NOT NULL DEFAULT 0 CONSTRAINT cancellation_policies_percent_check CHECK (fee_percent BETWEEN 0 AND 100),
    fee_basis     text NOT NULL DEFAULT 'cancelled_value'
                  CONSTRAINT cancellation_policies_basis_check CHECK (fee_basis IN ('cancelled_value', 'order_value')),
    fee_fixed     numeric(14,2) NOT NULL DEFAULT 0 CONSTRAINT cancellation_policies_fixed_check CHECK (fee_fixed >= 0),
    fee_min       numeric(14,2) CONSTRAINT cancellation_policies_min_check CHECK (fee_min >= 0),
    fee_max       numeric(14,2) CONSTRAINT cancellation_policies_max_check CHECK (fee_max >= 0),
    approval_role text REFERENCES orderly.roles (name) ON UPDATE CASCADE,
    note          text CONSTRAINT cancellation_policies_note_check CHECK (length(note) <= 500),
    CONSTRAINT cancellation_policies_min_max CHECK (fee_min IS NULL OR fee_max IS NULL OR fee_min <= fee_max),
    CONSTRAINT cancellation_policies_amounts_need_currency
        CHECK (currency IS NOT NULL OR (fee_fixed = 0 AND fee_min IS NULL AND fee_max IS NULL)),
    CONSTRAINT cancellation_policies_key UNIQUE NULLS NOT DISTINCT (status, order_type, currency)
);

COMMENT ON TABLE orderly.cancellation_policies IS
    'What cancelling costs at each status (optionally per order type and currency), and who must approve it';

INSERT INTO orderly.cancellation_policies (status, currency, fee_percent, fee_basis, fee_fixed, fee_min, fee_max, approval_role, note) VALUES
    ('submitted',         NULL,   0, 'cancelled_value',  0, NULL, NULL, NULL,            'Free: nothing has been done yet'),
    ('pending_approval',  NULL,   0, 'cancelled_value',  0, NULL, NULL, NULL,            'Free: nothing has been done yet'),
    ('approved',          NULL,   0, 'cancelled_value',  0, NULL, NULL, NULL,            'Free until production starts or the warehouse picks'),
    ('ready',             NULL,   5, 'cancelled_value',  0, NULL, NULL, NULL,            'Picked and waiting: restocking'),
    ('ready',             'EUR',  5, 'cancelled_value',  0,   10, NULL, NULL,            'Picked and waiting: restocking, at least 10 EUR'),
    ('in_production',     NULL,  20, 'cancelled_value',  0, NULL, NULL, 'sales_manager', 'Material and work already spent'),
    ('in_production',     'EUR', 20, 'cancelled_value',  0,   50, 5000, 'sales_manager', 'Material and work already spent: 50 to 5 000 EUR'),
    ('partially_shipped', NULL,  10, 'cancelled_value',  0, NULL, NULL, 'sales_manager', 'Part has left: the rest is unpacked and restocked'),
    ('partially_shipped', 'EUR', 10, 'cancelled_value', 15, NULL, 2000, 'sales_manager', 'Part has left: 10 % plus 15 EUR handling, at most 2 000 EUR');

-- Cancellations: one row per ORDER CANCEL that did or asked for something --------------------------------

CREATE TABLE orderly.order_cancellations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id        bigint NOT NULL REFERENCES orderly.orders (id),
    customer_id     bigint NOT NULL REFERENCES orderly.customers (id),
    status          text NOT NULL CONSTRAINT order_cancellations_status_check CHECK (status IN ('requested', 'applied', 'rejected')),
    reason          text NOT NULL CONSTRAINT order_cancellations_reason_check
                    CHECK (length(btrim(reason)) BETWEEN 1 AND 500 AND reason !~ '[[:cntrl:]]'),
    -- What was asked for: [{"line":1,"qty":2},…], or NULL for everything still open.
    lines           jsonb,
    -- The plan as it was quoted when asked, and as it was carried out when applied.
    plan            jsonb NOT NULL,
    fee             numeric(14,2) NOT NULL DEFAULT 0 CONSTRAINT order_cancellations_fee_check CHECK (fee >= 0),
    currency        char(3) NOT NULL,
    requested_by    bigint REFERENCES orderly.users (id),
    requested_at    timestamptz NOT NULL DEFAULT now(),
    decided_by      bigint REFERENCES orderly.users (id),
    decided_at      timestamptz,
    decision_reason text CONSTRAINT order_cancellations_decision_reason_check
                    CHECK (length(btrim(decision_reason)) BETWEEN 1 AND 500 AND decision_reason !~ '[[:cntrl:]]'),
    CONSTRAINT order_cancellations_decided_check CHECK ((status = 'requested') = (decided_at IS NULL)),
    CONSTRAINT order_cancellations_rejected_check CHECK (status <> 'rejected' OR decision_reason IS NOT NULL)
);

-- At most one open request per order: a second ORDER CANCEL while one waits is refused.
CREATE UNIQUE INDEX order_cancellations_one_request_key ON orderly.order_cancellations (order_id) WHERE status = 'requested';
CREATE INDEX order_cancellations_order_idx ON orderly.order_cancellations (order_id, id);

COMMENT ON TABLE orderly.order_cancellations IS 'Cancellations of orders or lines: requested, applied or rejected, with their fee and plan';

-- Charges: what an order costs beyond its lines (a cancellation fee), append-only. -------------------------

CREATE TABLE orderly.order_charges (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id        bigint NOT NULL REFERENCES orderly.orders (id),
    customer_id     bigint NOT NULL REFERENCES orderly.customers (id),
    kind            text NOT NULL CONSTRAINT order_charges_kind_check CHECK (kind IN ('cancellation_fee')),
    amount          numeric(14,2) NOT NULL CONSTRAINT order_charges_amount_check CHECK (amount > 0),
    currency        char(3) NOT NULL,
    cancellation_id bigint REFERENCES orderly.order_cancellations (id),
    created_by      bigint REFERENCES orderly.users (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX order_charges_order_idx ON orderly.order_charges (order_id, id);

CREATE TRIGGER order_charges_append_only BEFORE UPDATE OR DELETE ON orderly.order_charges
    FOR EACH ROW EXECUTE FUNCTION orderly.order_record_is_append_only();

COMMENT ON TABLE orderly.order_charges IS 'Charges beyond the order''s lines (cancellation fees), in the order''s currency; append-only';
