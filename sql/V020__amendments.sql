-- Orderly: changing an order after submission (issue 14, item 1). Data only; the rules live in
-- R__198_amendments.sql. In the spirit of Medusa's OrderChange: a change is a row with its
-- actions, its diff and its status; once applied the order is one version further, and each
-- version keeps a snapshot (so ORDER DIFF compares any two).

INSERT INTO orderly.permissions (code, description) VALUES
    ('order.amend', 'Change a submitted order (ORDER AMEND) where the amendment constraints allow it');

INSERT INTO orderly.role_permissions (role_id, permission)
SELECT r.id, p.permission
FROM orderly.roles r
JOIN (VALUES ('sales_rep',        'order.amend'),
             ('sales_supervisor', 'order.amend'),
             ('sales_manager',    'order.amend'),
             ('general_manager',  'order.amend'),
             ('customer_service', 'order.amend'),
             ('customer',         'order.amend')) AS p (role, permission) ON p.role = r.name
ON CONFLICT DO NOTHING;

-- Processing constraints: which action of ORDER AMEND is allowed at which status, for whom (a
-- customer login or staff). No row: refused. An order on hold is looked up as on_hold.
CREATE TABLE orderly.amendment_constraints (
    action text NOT NULL CONSTRAINT amendment_constraints_action_check
           CHECK (action IN ('add_line', 'set_line', 'remove_line', 'ship_to', 'requested_date', 'note')),
    status text NOT NULL REFERENCES orderly.order_statuses (code),
    party  text NOT NULL CONSTRAINT amendment_constraints_party_check CHECK (party IN ('customer', 'staff')),
    note   text CONSTRAINT amendment_constraints_note_check CHECK (length(note) <= 500),
    CONSTRAINT amendment_constraints_pkey PRIMARY KEY (action, status, party)
);

COMMENT ON TABLE orderly.amendment_constraints IS
    'Which ORDER AMEND action is allowed at which order status, for customers or staff; no row: refused';

INSERT INTO orderly.amendment_constraints (action, status, party)
SELECT a, s, 'customer'
FROM unnest(ARRAY['add_line', 'set_line', 'remove_line', 'ship_to', 'requested_date', 'note']) a,
     unnest(ARRAY['submitted', 'pending_approval']) s
UNION ALL
SELECT a, s, 'staff'
FROM unnest(ARRAY['add_line', 'set_line', 'remove_line', 'ship_to', 'requested_date', 'note']) a,
     unnest(ARRAY['submitted', 'pending_approval', 'approved', 'in_production', 'ready', 'partially_shipped', 'on_hold']) s
UNION ALL
SELECT 'note', s, 'staff' FROM unnest(ARRAY['shipped', 'delivered']) s;

-- Changes --------------------------------------------------------------------------------------------
-- pending: waiting for the production manager (a line in production changes) or for an approval
-- round (the new total needs one the old did not); applied: the order is version `version`;
-- declined (by production or an approver) or abandoned (by its author, or the order cancelled):
-- what it reserved went back.

CREATE TABLE orderly.order_changes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id        bigint NOT NULL REFERENCES orderly.orders (id),
    customer_id     bigint NOT NULL REFERENCES orderly.customers (id),
    status          text NOT NULL CONSTRAINT order_changes_status_check CHECK (status IN ('pending', 'applied', 'declined', 'abandoned')),
    waiting_for     text CONSTRAINT order_changes_waiting_check CHECK (waiting_for IN ('production', 'approval')),
    version         integer,
    reason          text NOT NULL CONSTRAINT order_changes_reason_check
                    CHECK (length(btrim(reason)) BETWEEN 1 AND 500 AND reason !~ '[[:cntrl:]]'),
    actions         jsonb NOT NULL,
    reprice         boolean NOT NULL DEFAULT false,
    diff            jsonb NOT NULL,
    total_before    numeric(14,2) NOT NULL,
    total_after     numeric(14,2) NOT NULL,
    currency        char(3) NOT NULL,
    -- Units this change holds while pending, {sku_id: units}: given back when it is declined or
    -- abandoned, counted in when it is applied.
    reserved        jsonb NOT NULL DEFAULT '{}',
    requested_by    bigint REFERENCES orderly.users (id),
    requested_at    timestamptz NOT NULL DEFAULT now(),
    decided_by      bigint REFERENCES orderly.users (id),
    decided_at      timestamptz,
    decision_reason text CONSTRAINT order_changes_decision_reason_check
                    CHECK (length(btrim(decision_reason)) BETWEEN 1 AND 500 AND decision_reason !~ '[[:cntrl:]]'),
    CONSTRAINT order_changes_pending_check CHECK ((status = 'pending') = (waiting_for IS NOT NULL)),
    CONSTRAINT order_changes_decided_check CHECK ((status = 'pending') = (decided_at IS NULL)),
    CONSTRAINT order_changes_version_check CHECK ((status = 'applied') = (version IS NOT NULL))
);

-- One change waits at a time: another ORDER AMEND meanwhile is refused.
CREATE UNIQUE INDEX order_changes_one_pending_key ON orderly.order_changes (order_id) WHERE status = 'pending';
CREATE INDEX order_changes_order_idx ON orderly.order_changes (order_id, id);

COMMENT ON TABLE orderly.order_changes IS 'Amendments of submitted orders: actions, diff, totals before and after, and what became of them';

-- Versions: the order as it was after each applied change (version 1: as submitted, written when
-- the first change is made). Append-only.
CREATE TABLE orderly.order_versions (
    order_id    bigint NOT NULL REFERENCES orderly.orders (id),
    version     integer NOT NULL CONSTRAINT order_versions_version_check CHECK (version >= 1),
    customer_id bigint NOT NULL REFERENCES orderly.customers (id),
    change_id   bigint REFERENCES orderly.order_changes (id),
    snapshot    jsonb NOT NULL,
    total       numeric(14,2) NOT NULL,
    created_by  bigint REFERENCES orderly.users (id),
    created_at  timestamptz NOT NULL,
    CONSTRAINT order_versions_pkey PRIMARY KEY (order_id, version)
);

CREATE TRIGGER order_versions_append_only BEFORE UPDATE OR DELETE ON orderly.order_versions
    FOR EACH ROW EXECUTE FUNCTION orderly.order_record_is_append_only();

COMMENT ON TABLE orderly.order_versions IS 'Each version of an order (lines, ship-to, date, totals) as a snapshot; append-only';

-- An approval round for a change (its steps judge the change's new total) rather than the order.
ALTER TABLE orderly.order_approvals ADD COLUMN change_id bigint REFERENCES orderly.order_changes (id);
