-- Orderly: the approval workflow (issue #5). Runs as orderly_owner.
--
-- Rules, their steps and the approval limits are data that admins edit with the admin.*
-- functions of R__160_approvals.sql; order_approvals holds every step of every approval round
-- of every order (a rejected order that is submitted again starts a new round; earlier rounds
-- stay). The business rules live in the functions; the CHECKs here are the backstop.

-- Statuses and transitions ---------------------------------------------------------------------
-- draft → submitted stays ORDER SUBMIT's own step (#4); routing then moves the order on in the
-- same transaction: to pending_approval when a rule applies, straight to approved when none
-- does. Decisions need order.approve; resubmitting a rejected order needs order.submit.

INSERT INTO orderly.order_statuses (code, description, customer_label, position) VALUES
    ('pending_approval', 'Waiting for the approvals its rule asks for',     'Awaiting approval', 30),
    ('approved',         'Approved (or no approval needed): released to fulfilment', 'Confirmed', 40),
    ('rejected',         'Rejected by an approver; stock and coupon released; may be changed and submitted again',
                         'Not accepted', 50);

INSERT INTO orderly.order_status_transitions (from_status, to_status, permission) VALUES
    ('submitted',        'pending_approval', NULL),
    ('submitted',        'approved',         NULL),
    ('pending_approval', 'approved',         'order.approve'),
    ('pending_approval', 'rejected',         'order.approve'),
    ('rejected',         'submitted',        'order.submit');

-- Orders submitted before approvals existed were released to fulfilment as "submitted": they
-- count as approved, and their history says why.
INSERT INTO orderly.order_status_history (order_id, customer_id, from_status, to_status, changed_by, reason)
SELECT o.id, o.customer_id, 'submitted', 'approved', NULL, 'submitted before the approval workflow existed'
FROM orderly.orders o WHERE o.status = 'submitted';
UPDATE orderly.orders SET status = 'approved', updated_at = now() WHERE status = 'submitted';

-- The roles that approve in the classic chains.
INSERT INTO orderly.role_permissions (role_id, permission)
SELECT r.id, 'order.approve' FROM orderly.roles r
WHERE r.name IN ('sales_supervisor', 'sales_manager', 'finance_manager', 'production_manager', 'general_manager')
ON CONFLICT DO NOTHING;

-- Rules ------------------------------------------------------------------------------------------

CREATE TABLE orderly.approval_rules (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CONSTRAINT approval_rules_name_key UNIQUE
                CONSTRAINT approval_rules_name_format CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]'),
    -- The order types the rule applies to: a non-empty subset of orders.type's values.
    order_types text[] NOT NULL
                CONSTRAINT approval_rules_order_types_check
                CHECK (cardinality(order_types) > 0 AND array_position(order_types, NULL) IS NULL
                       AND order_types <@ ARRAY['standard', 'custom', 'strategic']),
    -- Both bounds inclusive; NULL means unbounded on that side.
    min_total   numeric(14,2) CONSTRAINT approval_rules_min_total_check CHECK (min_total >= 0),
    max_total   numeric(14,2) CONSTRAINT approval_rules_max_total_check CHECK (max_total >= 0),
    -- Of the active rules that match an order, the highest priority wins, then the lowest id.
    priority    integer NOT NULL DEFAULT 0,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT approval_rules_bounds_check CHECK (min_total IS NULL OR max_total IS NULL OR min_total <= max_total)
);

COMMENT ON TABLE orderly.approval_rules IS 'Which orders need approval: by order type and total (bounds inclusive); highest priority wins';

CREATE TABLE orderly.approval_rule_steps (
    rule_id         bigint NOT NULL REFERENCES orderly.approval_rules (id) ON DELETE CASCADE,
    -- 1, 2, … without gaps (the admin functions keep it so): the order of the chain.
    step_no         integer NOT NULL CONSTRAINT approval_rule_steps_step_no_check CHECK (step_no > 0),
    role            text NOT NULL REFERENCES orderly.roles (name) ON UPDATE CASCADE,
    -- How long the step may stay pending before reminders start; also the reminder interval.
    due_after       interval NOT NULL CONSTRAINT approval_rule_steps_due_after_check CHECK (due_after > interval '0'),
    -- Who is told, and may decide too, once the reminders went unanswered.
    escalation_role text REFERENCES orderly.roles (name) ON UPDATE CASCADE,
    CONSTRAINT approval_rule_steps_pkey PRIMARY KEY (rule_id, step_no),
    CONSTRAINT approval_rule_steps_escalation_check CHECK (escalation_role <> role)
);

COMMENT ON TABLE orderly.approval_rule_steps IS 'The ordered approval chain of a rule: one approving role per step';

-- No row for (role, order_type): that role cannot approve orders of that type.
CREATE TABLE orderly.approval_limits (
    role       text NOT NULL REFERENCES orderly.roles (name) ON UPDATE CASCADE ON DELETE CASCADE,
    order_type text NOT NULL CONSTRAINT approval_limits_order_type_check
               CHECK (order_type IN ('standard', 'custom', 'strategic')),
    -- The largest order total the role may approve (inclusive); NULL = unlimited.
    max_total  numeric(14,2) CONSTRAINT approval_limits_max_total_check CHECK (max_total >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT approval_limits_pkey PRIMARY KEY (role, order_type)
);

COMMENT ON TABLE orderly.approval_limits IS 'Largest order total a role may approve per order type (NULL = unlimited; no row = may not)';

-- One row: how many reminders a pending step gets before it escalates.
CREATE TABLE orderly.approval_settings (
    id            boolean PRIMARY KEY DEFAULT true CONSTRAINT approval_settings_one_row CHECK (id),
    max_reminders integer NOT NULL DEFAULT 2 CONSTRAINT approval_settings_max_reminders_check
                  CHECK (max_reminders BETWEEN 0 AND 100),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

INSERT INTO orderly.approval_settings DEFAULT VALUES;

COMMENT ON TABLE orderly.approval_settings IS 'Approval workflow settings (one row)';

-- Delegations ------------------------------------------------------------------------------------

CREATE TABLE orderly.approval_delegations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_user  bigint NOT NULL REFERENCES orderly.users (id) ON DELETE CASCADE,
    to_user    bigint NOT NULL REFERENCES orderly.users (id) ON DELETE CASCADE,
    -- NULL: every role through which from_user approves (as held when a step is decided).
    role       text REFERENCES orderly.roles (name) ON UPDATE CASCADE ON DELETE CASCADE,
    -- Active while starts_at <= t < ends_at and not revoked by t.
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT approval_delegations_not_self CHECK (from_user <> to_user),
    CONSTRAINT approval_delegations_window CHECK (ends_at > starts_at)
);

CREATE INDEX approval_delegations_from_idx ON orderly.approval_delegations (from_user, ends_at);
CREATE INDEX approval_delegations_to_idx ON orderly.approval_delegations (to_user, ends_at);

COMMENT ON TABLE orderly.approval_delegations IS 'A user passing their approval rights to another for a time window';

-- Approval steps of orders -----------------------------------------------------------------------

CREATE TABLE orderly.order_approvals (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id          bigint NOT NULL REFERENCES orderly.orders (id),
    customer_id       bigint NOT NULL REFERENCES orderly.customers (id),
    -- 1 for the first submission; each resubmission after a rejection starts the next round.
    round             integer NOT NULL CONSTRAINT order_approvals_round_check CHECK (round > 0),
    step_no           integer NOT NULL CONSTRAINT order_approvals_step_no_check CHECK (step_no > 0),
    steps             integer NOT NULL CONSTRAINT order_approvals_steps_check CHECK (steps >= step_no),
    -- The rule as it was at routing time: later edits of the rule do not change a running round.
    rule_id           bigint NOT NULL REFERENCES orderly.approval_rules (id),
    role              text NOT NULL REFERENCES orderly.roles (name) ON UPDATE CASCADE,
    escalation_role   text REFERENCES orderly.roles (name) ON UPDATE CASCADE,
    due_after         interval NOT NULL,
    -- waiting: a later step of the chain; pending: the current one; skipped: never reached
    -- because an earlier step rejected.
    status            text NOT NULL CONSTRAINT order_approvals_status_check
                      CHECK (status IN ('pending', 'waiting', 'approved', 'rejected', 'skipped')),
    -- Why this step may be stuck, e.g. no approval limit covers the order (set at routing).
    note              text,
    pending_since     timestamptz,
    due_at            timestamptz,
    reminders_sent    integer NOT NULL DEFAULT 0 CONSTRAINT order_approvals_reminders_check CHECK (reminders_sent >= 0),
    last_reminded_at  timestamptz,
    escalated_at      timestamptz,
    decided_by        bigint REFERENCES orderly.users (id),
    decided_at        timestamptz,
    comment           text CONSTRAINT order_approvals_comment_check CHECK (length(comment) <= 2000),
    via_delegation_id bigint REFERENCES orderly.approval_delegations (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT order_approvals_step_key UNIQUE (order_id, round, step_no),
    CONSTRAINT order_approvals_pending_check
        CHECK (status NOT IN ('pending', 'approved', 'rejected') OR (pending_since IS NOT NULL AND due_at IS NOT NULL)),
    CONSTRAINT order_approvals_decided_check CHECK ((status IN ('approved', 'rejected')) = (decided_at IS NOT NULL)),
    CONSTRAINT order_approvals_reason_check CHECK (status <> 'rejected' OR length(btrim(comment)) > 0)
);

-- At most one current step per order: the backstop against two decisions racing.
CREATE UNIQUE INDEX order_approvals_one_pending_key ON orderly.order_approvals (order_id) WHERE status = 'pending';
CREATE INDEX order_approvals_pending_due_idx ON orderly.order_approvals (due_at) WHERE status = 'pending';
CREATE INDEX order_approvals_rule_idx ON orderly.order_approvals (rule_id, step_no);
CREATE INDEX order_approvals_delegation_idx ON orderly.order_approvals (via_delegation_id) WHERE via_delegation_id IS NOT NULL;

COMMENT ON TABLE orderly.order_approvals IS 'Every approval step of every round of every order, with who decided, when and why';
