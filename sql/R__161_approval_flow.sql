-- Orderly: the approval workflow (issue #5): routing at ORDER SUBMIT, APPROVAL QUEUE, APPROVAL
-- SHOW, ORDER APPROVE, ORDER REJECT. Delegations are given and revoked in R__163_delegation.sql
-- (DELEGATE, DELEGATE LIST, DELEGATE REVOKE); the workflow reads them.
--
-- Who may decide a step (orderly.step_deciders, the one definition used for deciding, for the
-- queue and for every notification):
--   * a user holding the step's role, or once the step has escalated its escalation role, whose
--     role has an approval limit for the order's type covering the order's total; or
--   * the delegate of such a user, through a delegation active at that time for that role (or
--     for all roles); the delegator's role and limit are what count;
--   * never the order's creator, nor anyone who submitted or changed it (orderly.order_editors),
--     nor the delegate of one (a proxy of the creator is the creator approving their own order);
--   * never a user who approved another step of this round, nor the delegate of one, nor a user
--     whose delegate approved another step of this round (one person's authority counts once
--     per round, however it was exercised);
--   * holding order.approve and not locked (delegates too: DELEGATE requires it of them).
--
-- Locks: a decision locks the order row (FOR NO KEY UPDATE, as every order change) and then its
-- pending step (FOR UPDATE); the reminder job takes the same order lock with SKIP LOCKED.
-- Notifications (api.notify holds a lock until commit) are always raised last.
--
-- Notification kinds and payloads (payloads are jsonb objects):
--   approval.requested  to each user who may decide the step that became pending:
--       {order, customer, total, currency, type, step, of, role, due_at}
--   approval.approved   to the creator after the last step: {order, customer, total, currency, type, approved_by}
--   order.approved      to role finance_manager (payment) and, for custom orders and any with a line to
--                       make, production_manager:
--       {order, customer, total, currency, type, approved_by, auto}   (auto: no rule applied)
--   approval.rejected   to the creator: {order, customer, total, currency, type, step, of, role, reason, rejected_by}
--   approval.delegated / approval.delegation_revoked: see R__163_delegation.sql.
--   approval.reminder / approval.escalated: see R__162_approval_reminders.sql.

-- Who may decide ---------------------------------------------------------------------------------

-- Whether a change's diff (orderly.snapshot_diff, R__197_amendments.sql) changes what an approver
-- judges: its lines or its header (ship-to, requested date, currency). A note alone does not.
-- SQL without SET: inlined where it is used.
CREATE OR REPLACE FUNCTION orderly.diff_changes_order(diff jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $$
    SELECT coalesce($1 -> 'lines', '[]') <> '[]' OR coalesce($1 -> 'header', '{}') <> '{}'
$$;

-- Who may never approve an order: whoever created it, submitted it, or changed its lines or
-- header (order.read_all holders may edit drafts and rejected orders). Segregation of duties
-- would mean nothing if one could edit a colleague's order and then approve it.
-- plpgsql: its plan is kept for the session (a sql function reading a table is planned at every call).
CREATE OR REPLACE FUNCTION orderly.order_editors(o orderly.orders) RETURNS bigint[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN array_remove(ARRAY[o.created_by, o.submitted_by], NULL)
           || ARRAY(SELECT DISTINCT a.actor_user_id FROM orderly.audit_log a
                    WHERE a.entity = 'order' AND a.entity_id = o.id::text AND a.actor_user_id IS NOT NULL
                      AND a.action IN ('order.draft', 'order.line_add', 'order.line_set', 'order.line_remove',
                                       'order.update', 'order.submit', 'order.amend')
                      -- A note, even by ORDER AMEND, changes nothing an approver judges (as ORDER
                      -- NOTE does not): an amendment counts when it changed lines or the header.
                      AND NOT (a.action = 'order.amend' AND NOT orderly.diff_changes_order(a.after -> 'diff')));
END
$$;

-- No SET search_path (every name is qualified), so that it is inlined into the caller's query,
-- whose plan is kept, instead of being planned at every call.
CREATE OR REPLACE FUNCTION orderly.step_deciders(a orderly.order_approvals, o orderly.orders, at timestamptz)
RETURNS TABLE (user_id bigint, as_role text, via_delegation_id bigint)
LANGUAGE sql STABLE
AS $$
    WITH roles_ok AS (
        SELECT r.role
        FROM (VALUES (($1).role), (CASE WHEN ($1).escalated_at IS NOT NULL THEN ($1).escalation_role END)) AS r(role)
        WHERE r.role IS NOT NULL
          AND EXISTS (SELECT 1 FROM orderly.approval_limits l
                      WHERE l.role = r.role AND l.order_type = ($2).type
                        AND (l.max_total IS NULL OR orderly.approval_value(($2).total, ($2).currency) <= l.max_total))
    ),
    holders AS (
        SELECT ur.user_id AS holder, k.role
        FROM roles_ok k
        JOIN orderly.roles ro ON ro.name = k.role
        JOIN orderly.user_roles ur ON ur.role_id = ro.id
        JOIN orderly.users u ON u.id = ur.user_id AND NOT u.locked
    ),
    used AS (
        SELECT x.decided_by AS uid
        FROM orderly.order_approvals x
        WHERE x.order_id = ($1).order_id AND x.round = ($1).round AND x.status = 'approved' AND x.id <> ($1).id
          AND x.decided_by IS NOT NULL
        UNION
        SELECT d.from_user
        FROM orderly.order_approvals x JOIN orderly.approval_delegations d ON d.id = x.via_delegation_id
        WHERE x.order_id = ($1).order_id AND x.round = ($1).round AND x.status = 'approved' AND x.id <> ($1).id
    ),
    -- Read once (the audit scan of order_editors is the costly part), used for every candidate.
    excluded AS (
        SELECT unnest(orderly.order_editors($2)) AS uid
        UNION
        SELECT uid FROM used
    ),
    ways AS (
        SELECT h.holder AS user_id, h.role AS as_role, NULL::bigint AS via
        FROM holders h
        UNION ALL
        SELECT d.to_user, h.role, d.id
        FROM holders h
        JOIN orderly.approval_delegations d
          ON d.from_user = h.holder AND (d.role IS NULL OR d.role = h.role)
         AND d.starts_at <= $3 AND $3 < d.ends_at AND (d.revoked_at IS NULL OR d.revoked_at > $3)
        JOIN orderly.users t ON t.id = d.to_user AND NOT t.locked
        WHERE h.holder NOT IN (SELECT uid FROM excluded)
    )
    SELECT DISTINCT ON (w.user_id) w.user_id, w.as_role, w.via
    FROM ways w
    WHERE w.user_id NOT IN (SELECT uid FROM excluded)
      AND orderly.has_permission(w.user_id, 'order.approve')
    ORDER BY w.user_id, w.via NULLS FIRST, (w.as_role = ($1).role) DESC
$$;

-- Documents and payloads ---------------------------------------------------------------------------

-- plpgsql: planned once a session (a sql function with a subquery is planned at every call).
CREATE OR REPLACE FUNCTION orderly.approval_payload(a orderly.order_approvals, o orderly.orders) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN jsonb_build_object(
        'order', o.id,
        'customer', (SELECT c.name FROM orderly.customers c WHERE c.id = o.customer_id),
        'total', o.total,
        'currency', o.currency,
        'type', o.type,
        'step', a.step_no,
        'of', a.steps,
        'role', a.role,
        'due_at', orderly.json_time(a.due_at));
END
$$;

CREATE OR REPLACE FUNCTION orderly.approval_step_doc(a orderly.order_approvals) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'step', ($1).step_no,
        'role', ($1).role,
        'status', ($1).status,
        'decided_by', orderly.username_of(($1).decided_by),
        'decided_at', orderly.json_time(($1).decided_at),
        'comment', ($1).comment,
        'pending_since', orderly.json_time(($1).pending_since),
        'due_at', orderly.json_time(($1).due_at),
        'reminders_sent', ($1).reminders_sent,
        'escalation_role', ($1).escalation_role,
        'escalated', ($1).escalated_at IS NOT NULL,
        'escalated_at', orderly.json_time(($1).escalated_at),
        'delegation', (SELECT json_build_object('id', d.id, 'from', orderly.username_of(d.from_user),
                                                'to', orderly.username_of(d.to_user))
                       FROM orderly.approval_delegations d WHERE d.id = ($1).via_delegation_id),
        'note', ($1).note)
$$;

-- APPROVAL SHOW: the order and every round of its approval chain.
CREATE OR REPLACE FUNCTION orderly.approval_doc(order_id bigint) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'order', o.id,
        'status', o.status,
        'type', o.type,
        'total', o.total,
        'currency', o.currency,
        'customer', (SELECT c.name FROM orderly.customers c WHERE c.id = o.customer_id),
        'created_by', orderly.username_of(o.created_by),
        'current', orderly.approval_state(o.id),
        'rounds', (SELECT coalesce(json_agg(json_build_object(
                              'round', r.round,
                              'rule', (SELECT x.name FROM orderly.approval_rules x WHERE x.id = r.rule_id),
                              'status', r.status,
                              'steps', (SELECT json_agg(orderly.approval_step_doc(a) ORDER BY a.step_no)
                                        FROM orderly.order_approvals a WHERE a.order_id = o.id AND a.round = r.round))
                          ORDER BY r.round), '[]')
                   FROM (SELECT a.round, min(a.rule_id) AS rule_id,
                                CASE WHEN bool_or(a.status = 'rejected') THEN 'rejected'
                                     WHEN bool_and(a.status = 'approved') THEN 'approved'
                                     WHEN bool_or(a.status IN ('pending', 'waiting')) THEN 'pending'
                                     -- Closed undecided: replaced by a new round, or its change
                                     -- withdrawn or declined (R__197_amendments.sql).
                                     ELSE 'skipped' END AS status
                         FROM orderly.order_approvals a WHERE a.order_id = o.id GROUP BY a.round) r))
    FROM orderly.orders o
    WHERE o.id = $1
$$;

-- Notifications ----------------------------------------------------------------------------------

-- Tells every user who may decide the step (at "at"; only_role: only those deciding through that
-- role) and returns their usernames. actor_id: the user whose command it is (or NULL with
-- actor_kind 'system': the reminder timer). Call last.
DROP FUNCTION IF EXISTS orderly.notify_step(orderly.order_approvals, orderly.orders, text, timestamptz, text, jsonb);
CREATE OR REPLACE FUNCTION orderly.notify_step(a orderly.order_approvals, o orderly.orders, kind text, at timestamptz,
                                               actor_id bigint, actor_kind text DEFAULT 'user',
                                               only_role text DEFAULT NULL, extra jsonb DEFAULT '{}')
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_payload jsonb := orderly.approval_payload(a, o) || coalesce(extra, '{}');
    v_names   text[] := '{}';
    r         record;
BEGIN
    FOR r IN
        SELECT d.user_id, u.username
        FROM orderly.step_deciders(a, o, at) d JOIN orderly.users u ON u.id = d.user_id
        WHERE only_role IS NULL OR d.as_role = only_role
        ORDER BY d.user_id
    LOOP
        PERFORM api.notify(r.user_id, NULL, kind, v_payload, actor_id, actor_kind);
        v_names := v_names || r.username::text;
    END LOOP;
    RETURN v_names;
END
$$;

-- After the last step (approved_by set) or at submission when no rule applies (NULL); actor_id:
-- the user who approved or submitted (NULL with actor_kind 'admin_sql': an admin rerouted it).
DROP FUNCTION IF EXISTS orderly.notify_order_approved(orderly.orders, bigint);
DROP FUNCTION IF EXISTS orderly.notify_order_approved(orderly.orders, bigint, bigint);
CREATE OR REPLACE FUNCTION orderly.notify_order_approved(o orderly.orders, approved_by bigint, actor_id bigint,
                                                         actor_kind text DEFAULT 'user')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_payload jsonb := jsonb_build_object(
        'order', o.id, 'customer', (SELECT c.name FROM orderly.customers c WHERE c.id = o.customer_id),
        'total', o.total, 'currency', o.currency, 'type', o.type,
        'approved_by', orderly.username_of(approved_by));
BEGIN
    IF approved_by IS NOT NULL AND o.created_by IS NOT NULL THEN
        PERFORM api.notify(o.created_by, NULL, 'approval.approved', v_payload, actor_id, actor_kind);
    END IF;
    v_payload := v_payload || jsonb_build_object('auto', approved_by IS NULL);
    PERFORM api.notify(NULL, 'finance_manager', 'order.approved', v_payload, actor_id, actor_kind);
    -- Production hears of every order with something to make: a strategic order with a
    -- made-to-order line is work for it as a custom one is.
    IF o.type = 'custom'
       OR EXISTS (SELECT 1 FROM orderly.order_lines l JOIN orderly.products p ON p.id = l.product_id
                  WHERE l.order_id = o.id AND l.qty > l.cancelled_qty AND orderly.line_needs_production(p.kind)) THEN
        PERFORM api.notify(NULL, 'production_manager', 'order.approved', v_payload, actor_id, actor_kind);
    END IF;
END
$$;

-- Routing ----------------------------------------------------------------------------------------

-- The rule that applies to an order of its type and total: active, with steps, the highest
-- priority first; NULL when none does. The total is judged in the approval currency; without an
-- exchange rate it is above every bound (R__160_approvals.sql). lock: FOR SHARE, so that an admin
-- changing the rule's steps right now waits (their functions lock it FOR UPDATE) and a round is
-- built from one consistent chain.
CREATE OR REPLACE FUNCTION orderly.rule_for_order(o orderly.orders, lock boolean DEFAULT false) RETURNS orderly.approval_rules
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r       orderly.approval_rules;
    v_value numeric := orderly.approval_value(o.total, o.currency);
BEGIN
    IF lock THEN
        SELECT * INTO r FROM orderly.approval_rules x
        WHERE x.active AND x.order_types @> ARRAY[o.type]
          AND (x.min_total IS NULL OR v_value IS NULL OR v_value >= x.min_total)
          AND (x.max_total IS NULL OR v_value <= x.max_total)
          AND EXISTS (SELECT 1 FROM orderly.approval_rule_steps s WHERE s.rule_id = x.id)
        ORDER BY x.priority DESC, x.id
        LIMIT 1
        FOR SHARE OF x;
    ELSE
        SELECT * INTO r FROM orderly.approval_rules x
        WHERE x.active AND x.order_types @> ARRAY[o.type]
          AND (x.min_total IS NULL OR v_value IS NULL OR v_value >= x.min_total)
          AND (x.max_total IS NULL OR v_value <= x.max_total)
          AND EXISTS (SELECT 1 FROM orderly.approval_rule_steps s WHERE s.rule_id = x.id)
        ORDER BY x.priority DESC, x.id
        LIMIT 1;
    END IF;
    -- Of unknown value (no rate) and no rule for the largest orders of its type: the rule of its
    -- type for the largest totals, whatever its bounds, so that a missing rate never lets an order
    -- of any size through unapproved (its limits then ask an unlimited role).
    IF r.id IS NULL AND v_value IS NULL THEN
        SELECT * INTO r FROM orderly.approval_rules x
        WHERE x.active AND x.order_types @> ARRAY[o.type]
          AND EXISTS (SELECT 1 FROM orderly.approval_rule_steps s WHERE s.rule_id = x.id)
        ORDER BY x.max_total DESC NULLS FIRST, x.priority DESC, x.id
        LIMIT 1;
        IF lock AND r.id IS NOT NULL THEN
            -- As the rule found above would be: its steps stay as read until the round is built.
            PERFORM 1 FROM orderly.approval_rules x WHERE x.id = r.id FOR SHARE;
        END IF;
    END IF;
    RETURN r;
END
$$;

-- Opens the order's next round of rule r (step 1 pending, the others waiting) and returns its
-- first step. change_id: the round decides a change (orderly.order_changes) whose new total o
-- carries, rather than the order itself. Audited as approval.route (actor_kind 'admin_sql' with
-- no actor: an admin rerouted it).
DROP FUNCTION IF EXISTS orderly.open_round(orderly.orders, orderly.approval_rules, bigint, bigint);
CREATE OR REPLACE FUNCTION orderly.open_round(o orderly.orders, r orderly.approval_rules, actor_id bigint,
                                              change_id bigint DEFAULT NULL, actor_kind text DEFAULT 'user')
RETURNS orderly.order_approvals
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_round integer;
    v_steps integer;
    v_value numeric := orderly.approval_value(o.total, o.currency);
    a       orderly.order_approvals;
BEGIN
    SELECT coalesce(max(x.round), 0) + 1 INTO v_round FROM orderly.order_approvals x WHERE x.order_id = o.id;
    SELECT count(*) INTO v_steps FROM orderly.approval_rule_steps s WHERE s.rule_id = r.id;
    INSERT INTO orderly.order_approvals (order_id, customer_id, round, step_no, steps, rule_id, role, escalation_role,
                                         due_after, status, note, pending_since, due_at, change_id)
    SELECT o.id, o.customer_id, v_round, s.n, v_steps, r.id, s.role, s.escalation_role, s.due_after,
           CASE WHEN s.n = 1 THEN 'pending' ELSE 'waiting' END,
           -- Routed all the same (an admin fixes limits or roles), but said where it will stick.
           CASE WHEN NOT EXISTS (SELECT 1 FROM orderly.approval_limits l
                                 WHERE l.role = s.role AND l.order_type = o.type
                                   AND (l.max_total IS NULL OR v_value <= l.max_total))
                THEN format('no approval limit of role %s covers %s orders of %s', s.role, o.type,
                            orderly.approval_amount_text(o.total, o.currency))
                WHEN NOT EXISTS (SELECT 1 FROM orderly.user_roles ur JOIN orderly.roles ro ON ro.id = ur.role_id
                                 WHERE ro.name = s.role)
                THEN format('nobody holds role %s', s.role) END,
           CASE WHEN s.n = 1 THEN now() END,
           CASE WHEN s.n = 1 THEN now() + s.due_after END,
           open_round.change_id
    FROM (SELECT x.*, row_number() OVER (ORDER BY x.step_no)::integer AS n
          FROM orderly.approval_rule_steps x WHERE x.rule_id = r.id) s;
    PERFORM orderly.audit(actor_id, 'approval.route', 'order', o.id::text, NULL,
                          jsonb_build_object('rule', r.name, 'rule_id', r.id, 'round', v_round, 'steps', v_steps,
                                             'type', o.type, 'total', o.total, 'change', change_id),
                          actor_kind => open_round.actor_kind);
    SELECT * INTO a FROM orderly.order_approvals x WHERE x.order_id = o.id AND x.round = v_round AND x.step_no = 1;
    RETURN a;
END
$$;

-- The order as a step judges it (limits, payloads): for a change's round, with the change's new
-- total.
CREATE OR REPLACE FUNCTION orderly.approval_subject(a orderly.order_approvals, o orderly.orders) RETURNS orderly.orders
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF a.change_id IS NOT NULL THEN
        SELECT c.total_after INTO o.total FROM orderly.order_changes c WHERE c.id = a.change_id;
    END IF;
    RETURN o;
END
$$;

-- Called by orderly.submit_order once the order is submitted (prices fixed; its stock is taken
-- at the end of the submission, orderly.finish_submit).
-- Picks the rule, creates the round's steps (step 1 pending, the others waiting) and sets the
-- status. No rule: approved at once, with the reason in the history, and moved on by
-- orderly.advance (R__155_fulfilment_flow.sql: ready, or on hold over the credit limit).
-- orderly.notify_routed notifies, last (orderly.finish_submit).
CREATE OR REPLACE FUNCTION orderly.route_approval(o orderly.orders, actor_id bigint) RETURNS orderly.orders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r orderly.approval_rules := orderly.rule_for_order(o, lock => true);
    a orderly.order_approvals;
BEGIN
    IF r.id IS NULL THEN
        o := orderly.change_status(o, 'approved', actor_id, 'no approval rule applies');
        -- On at once as far as the facts allow: ready, or on hold over the credit limit.
        RETURN orderly.advance(o, actor_id, check_credit => true);
    END IF;
    a := orderly.open_round(o, r, actor_id);
    RETURN orderly.change_status(o, 'pending_approval', actor_id,
                                 format('approval rule "%s": %s step(s), round %s', r.name, a.steps, a.round));
END
$$;

-- What a routing tells (o as orderly.route_approval returned it): approved at once, the finance
-- (and production) managers; else whoever may decide its pending first step. actor_id: the
-- user who submitted.
DROP FUNCTION IF EXISTS orderly.notify_routed(orderly.orders);
DROP FUNCTION IF EXISTS orderly.notify_routed(orderly.orders, bigint);
CREATE OR REPLACE FUNCTION orderly.notify_routed(o orderly.orders, actor_id bigint, actor_kind text DEFAULT 'user') RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a orderly.order_approvals;
BEGIN
    -- Approved at once (and maybe moved on by orderly.advance: ready, on hold): no pending step.
    IF o.status <> 'pending_approval' THEN
        PERFORM orderly.notify_order_approved(o, NULL, actor_id, actor_kind);
        RETURN;
    END IF;
    SELECT * INTO a FROM orderly.order_approvals x WHERE x.order_id = o.id AND x.status = 'pending';
    PERFORM orderly.notify_step(a, o, 'approval.requested', now(), actor_id, actor_kind);
END
$$;

-- Decisions --------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION orderly.raise_already_decided(a orderly.order_approvals) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'step % of order % was already decided by % (%)', a.step_no, a.order_id,
        coalesce(orderly.username_of(a.decided_by), 'someone else'), a.status USING ERRCODE = 'OL409';
END
$$;

-- The delegations active now by which user_id may act in one of roles: who gave each, and the
-- role of theirs it carries (a delegation without a role carries every role its giver holds).
-- In delegation order.
CREATE OR REPLACE FUNCTION orderly.delegated_roles(user_id bigint, roles text[])
RETURNS TABLE (from_user bigint, held_role text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT y.from_user, h.role
    FROM orderly.approval_delegations y
    JOIN LATERAL unnest(orderly.user_role_names(y.from_user)) AS h(role) ON h.role = ANY ($2)
    WHERE y.to_user = $1 AND (y.role IS NULL OR y.role = h.role)
      AND y.starts_at <= now() AND now() < y.ends_at AND y.revoked_at IS NULL
    ORDER BY y.id
$$;

-- Why u may not decide step c (u is not among its deciders): raises the clearest refusal.
CREATE OR REPLACE FUNCTION orderly.raise_not_decider(u orderly.users, c orderly.order_approvals, o orderly.orders)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_roles text[] := array_remove(ARRAY[c.role, CASE WHEN c.escalated_at IS NOT NULL THEN c.escalation_role END], NULL);
    v_mine  text[] := orderly.user_role_names(u.id);
    -- The roles of the step (or its escalation) that u holds: read once, used three times below.
    v_held  text[] := ARRAY(SELECT h FROM unnest(v_mine) h WHERE h = ANY (v_roles));
    v_prev  orderly.order_approvals;
    v_replaced text[];   -- the roles of the step a change replaced (see below)
    v_other orderly.order_approvals;
    l       orderly.approval_limits;
    d       record;
    v_role  text;
    v_base  char(3) := (SELECT s.currency FROM orderly.approval_settings s);
    v_value numeric := orderly.approval_value(o.total, o.currency);   -- NULL: no rate, above every limit
BEGIN
    IF u.id = o.created_by THEN
        RAISE EXCEPTION 'you created order %: another user must approve it', o.id USING ERRCODE = 'OL403';
    END IF;
    IF u.id = ANY (orderly.order_editors(o)) THEN
        RAISE EXCEPTION 'you changed or submitted order %: another user must approve it', o.id USING ERRCODE = 'OL403';
    END IF;
    SELECT * INTO v_other FROM orderly.order_approvals x
    WHERE x.order_id = o.id AND x.round = c.round AND x.status = 'approved' AND x.id <> c.id
      AND (x.decided_by = u.id
           OR x.via_delegation_id IN (SELECT y.id FROM orderly.approval_delegations y WHERE y.from_user = u.id))
    ORDER BY x.step_no LIMIT 1;
    IF v_other.id IS NOT NULL THEN
        RAISE EXCEPTION 'you already approved step % of order %: another user must decide step %',
            v_other.step_no, o.id, c.step_no USING ERRCODE = 'OL403';
    END IF;
    -- Racing: the step before this one was just decided by someone else while this user, who
    -- could have decided it, was waiting for the order. That is a conflict, not a lack of rights.
    SELECT * INTO v_prev FROM orderly.order_approvals x
    WHERE x.order_id = o.id AND x.round = c.round AND x.step_no = c.step_no - 1;
    IF v_prev.id IS NOT NULL AND v_prev.decided_by IS DISTINCT FROM u.id AND cardinality(v_held) = 0
       AND EXISTS (SELECT 1 FROM orderly.step_deciders(v_prev, o, now()) x WHERE x.user_id = u.id) THEN
        PERFORM orderly.raise_already_decided(v_prev);
    END IF;

    FOREACH v_role IN ARRAY v_held LOOP
        SELECT * INTO l FROM orderly.approval_limits x WHERE x.role = v_role AND x.order_type = o.type;
        IF l.role IS NULL THEN
            RAISE EXCEPTION 'role % may not approve % orders', v_role, o.type USING ERRCODE = 'OL403';
        END IF;
        IF l.max_total IS NOT NULL AND (v_value IS NULL OR v_value > l.max_total) THEN
            RAISE EXCEPTION 'order % total % is above the % limit of % % for % orders', o.id,
                orderly.approval_amount_text(o.total, o.currency), v_role, l.max_total, v_base, o.type USING ERRCODE = 'OL403';
        END IF;
    END LOOP;

    -- Through a delegation active now, from someone holding one of the roles.
    FOR d IN SELECT * FROM orderly.delegated_roles(u.id, v_roles) LOOP
        IF d.from_user = o.created_by THEN
            RAISE EXCEPTION 'order % was created by %, whose approval rights you hold: another user must approve it',
                o.id, orderly.username_of(d.from_user) USING ERRCODE = 'OL403';
        END IF;
        IF EXISTS (SELECT 1 FROM orderly.order_approvals x
                   LEFT JOIN orderly.approval_delegations y ON y.id = x.via_delegation_id
                   WHERE x.order_id = o.id AND x.round = c.round AND x.status = 'approved' AND x.id <> c.id
                     AND d.from_user IN (x.decided_by, y.from_user)) THEN
            RAISE EXCEPTION '% already approved a step of order %: their delegate may not decide step %',
                orderly.username_of(d.from_user), o.id, c.step_no USING ERRCODE = 'OL403';
        END IF;
        SELECT * INTO l FROM orderly.approval_limits x WHERE x.role = d.held_role AND x.order_type = o.type;
        IF l.role IS NULL THEN
            RAISE EXCEPTION 'role % (delegated by %) may not approve % orders', d.held_role,
                orderly.username_of(d.from_user), o.type USING ERRCODE = 'OL403';
        END IF;
        IF l.max_total IS NOT NULL AND (v_value IS NULL OR v_value > l.max_total) THEN
            RAISE EXCEPTION 'order % total % is above the % limit of % % for % orders (delegated by %)', o.id,
                orderly.approval_amount_text(o.total, o.currency), d.held_role, l.max_total, v_base, o.type,
                orderly.username_of(d.from_user) USING ERRCODE = 'OL403';
        END IF;
    END LOOP;

    IF c.escalation_role IS NOT NULL AND c.escalated_at IS NULL AND c.escalation_role = ANY (v_mine) THEN
        RAISE EXCEPTION 'step % of order % needs role %; % may decide it once it has escalated', c.step_no, o.id,
            c.role, c.escalation_role USING ERRCODE = 'OL403';
    END IF;
    -- Racing a change: the step this user was about to decide was replaced by a change's new
    -- round just before the decision came. What they meant to approve is no longer asked: a
    -- conflict, as in orderly.decide_step when the change lands while the decision waits for
    -- the order. Only while the new round is at its start (nothing of it decided yet): later the
    -- user simply lacks the role. The replaced step is the first skipped one of the round just
    -- before (the one that was pending; the steps after it were waiting), in a round nobody
    -- rejected (a rejection skips the steps after it too, and the round after a resubmission is
    -- no race with anyone). "About to decide": holding its role (or, escalated, its escalation
    -- role) or a delegation of it active now, and not having decided another step of that round.
    IF cardinality(v_held) = 0 AND c.step_no = 1 THEN
        SELECT * INTO v_prev FROM orderly.order_approvals x
        WHERE x.order_id = o.id AND x.status = 'skipped'
          AND x.round = (SELECT max(y.round) FROM orderly.order_approvals y WHERE y.order_id = o.id AND y.round < c.round)
          AND NOT EXISTS (SELECT 1 FROM orderly.order_approvals y
                          WHERE y.order_id = o.id AND y.round = x.round AND y.status = 'rejected')
        ORDER BY x.step_no LIMIT 1;
        v_replaced := array_remove(ARRAY[v_prev.role, CASE WHEN v_prev.escalated_at IS NOT NULL THEN v_prev.escalation_role END], NULL);
        IF v_prev.id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM orderly.order_approvals y
                           WHERE y.order_id = o.id AND y.round = v_prev.round AND y.decided_by = u.id)
           AND (v_replaced && v_mine OR EXISTS (SELECT 1 FROM orderly.delegated_roles(u.id, v_replaced))) THEN
            RAISE EXCEPTION 'order % changed while you were deciding: round % is now asked (step % of %, role %); look at it again',
                o.id, c.round, c.step_no, c.steps, array_to_string(v_roles, ' or ') USING ERRCODE = 'OL409';
        END IF;
    END IF;
    IF cardinality(v_held) = 0 THEN
        RAISE EXCEPTION 'step % of order % needs role % (or a delegation of it)', c.step_no, o.id,
            array_to_string(v_roles, ' or ') USING ERRCODE = 'OL403';
    END IF;
    RAISE EXCEPTION 'you may not decide step % of order %', c.step_no, o.id USING ERRCODE = 'OL403';
END
$$;

-- Records one decision on the current step of an order, checked inside the transaction under
-- the order's lock. want_step (optional): the step the client means; anything else is a
-- conflict. Returns the decided step; the caller moves the order on.
CREATE OR REPLACE FUNCTION orderly.decide_step(u orderly.users, order_id bigint, want_step integer, decision text,
                                               comment text) RETURNS orderly.order_approvals
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_seen orderly.order_approvals;
    o      orderly.orders;
    c      orderly.order_approvals;
    d      record;
BEGIN
    -- The step as the caller found it, before waiting for the order: if another decision is
    -- committed meanwhile, the answer is that this step was decided (OL409), not a new step.
    SELECT * INTO v_seen FROM orderly.order_approvals x WHERE x.order_id = decide_step.order_id AND x.status = 'pending';
    o := orderly.order_for(u, order_id, true);
    IF v_seen.id IS NOT NULL THEN
        SELECT * INTO v_seen FROM orderly.order_approvals x WHERE x.id = v_seen.id;
        IF v_seen.status IN ('approved', 'rejected') THEN
            PERFORM orderly.raise_already_decided(v_seen);
        END IF;
    END IF;
    SELECT * INTO c FROM orderly.order_approvals x WHERE x.order_id = o.id AND x.status = 'pending' FOR UPDATE;
    -- A change's round (R__197_amendments.sql) is decided while the order goes on in its status.
    IF o.status <> 'pending_approval' AND c.change_id IS NULL THEN
        -- The last round was a change's, closed without a decision: say so, not an older round's step.
        SELECT * INTO c FROM orderly.order_approvals x WHERE x.order_id = o.id ORDER BY x.round DESC, x.step_no DESC LIMIT 1;
        IF c.change_id IS NOT NULL AND c.status = 'skipped' THEN
            RAISE EXCEPTION 'order % has no approval step waiting: change % it was for is %', o.id, c.change_id,
                (SELECT ch.status FROM orderly.order_changes ch WHERE ch.id = c.change_id) USING ERRCODE = 'OL409';
        END IF;
        SELECT * INTO c FROM orderly.order_approvals x
        WHERE x.order_id = o.id AND x.status IN ('approved', 'rejected')
        ORDER BY x.round DESC, x.step_no DESC LIMIT 1;
        -- Decided, and maybe moved on since (ready, on hold, shipped …): still "already".
        IF c.id IS NOT NULL AND o.status NOT IN ('draft', 'submitted') THEN
            RAISE EXCEPTION 'order % is already %: step % was decided by %', o.id, o.status, c.step_no,
                coalesce(orderly.username_of(c.decided_by), 'someone else') USING ERRCODE = 'OL409';
        END IF;
        RAISE EXCEPTION 'order % is %; it is not awaiting approval', o.id, o.status USING ERRCODE = 'OL409';
    END IF;
    IF c.id IS NULL THEN
        RAISE EXCEPTION 'order % has no pending approval step', o.id USING ERRCODE = 'OL409';
    END IF;
    -- The step the caller saw was replaced while it waited (a change started a new round): what
    -- it meant to decide is no longer what is asked.
    IF v_seen.id IS NOT NULL AND v_seen.round <> c.round THEN
        RAISE EXCEPTION 'order % changed while you were deciding: round % is now asked (step % of %); look at it again',
            o.id, c.round, c.step_no, c.steps USING ERRCODE = 'OL409';
    END IF;
    o := orderly.approval_subject(c, o);
    IF want_step IS NOT NULL AND want_step <> c.step_no THEN
        SELECT * INTO v_seen FROM orderly.order_approvals x
        WHERE x.order_id = o.id AND x.round = c.round AND x.step_no = want_step;
        IF v_seen.status IN ('approved', 'rejected') THEN
            PERFORM orderly.raise_already_decided(v_seen);
        END IF;
        RAISE EXCEPTION 'step % is not the current step of order % (step % is)', want_step, o.id, c.step_no
            USING ERRCODE = 'OL409';
    END IF;

    SELECT * INTO d FROM orderly.step_deciders(c, o, now()) x WHERE x.user_id = u.id;
    IF d.user_id IS NULL THEN
        PERFORM orderly.raise_not_decider(u, c, o);
    END IF;

    UPDATE orderly.order_approvals x
    SET status = decision, decided_by = u.id, decided_at = now(), comment = decide_step.comment,
        via_delegation_id = d.via_delegation_id
    WHERE x.id = c.id AND x.status = 'pending'
    RETURNING * INTO c;
    IF c.decided_by IS DISTINCT FROM u.id THEN
        RAISE EXCEPTION 'step of order % was already decided', o.id USING ERRCODE = 'OL409';
    END IF;
    PERFORM orderly.audit(u.id, 'approval.' || CASE decision WHEN 'approved' THEN 'approve' ELSE 'reject' END,
                          'order', o.id::text,
                          jsonb_build_object('round', c.round, 'step', c.step_no, 'status', 'pending'),
                          jsonb_build_object('round', c.round, 'step', c.step_no, 'status', c.status, 'role', c.role,
                                             'as_role', d.as_role, 'comment', c.comment,
                                             'via_delegation', c.via_delegation_id));
    RETURN c;
END
$$;

-- Commands ---------------------------------------------------------------------------------------

-- ORDER APPROVE and ORDER REJECT: R__199_approval_decisions.sql (a change's round applies or
-- declines the change, R__197_amendments.sql).

-- APPROVAL SHOW order
CREATE OR REPLACE FUNCTION api.approval_show(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('APPROVAL SHOW', approval_show.actor, approval_show.args);
    o orderly.orders;
BEGIN
    o := orderly.order_for(u, orderly.arg_bigint(args, 'order', true), false);
    RETURN NEXT orderly.approval_doc(o.id);
END
$$;

-- Approvers' names, comments and rule names are internal: a customer follows its order's status
-- in ORDER SHOW.
SELECT orderly.register_command('APPROVAL SHOW', 'api.approval_show', 'order.read',
    staff_only => 'approvals are internal: ORDER SHOW shows the order''s status',
    arguments  => 'order:id!',
    positional => '{order}',
    usage      => 'APPROVAL SHOW order',
    summary    => 'An order''s approval chain: each step''s role, status, who decided and when, comment, due time, reminders.');

-- APPROVAL QUEUE [limit=]: the pending steps the actor may decide now, oldest first.
CREATE OR REPLACE FUNCTION api.approval_queue(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u       orderly.users := orderly.begin_command('APPROVAL QUEUE', approval_queue.actor, approval_queue.args);
    v_limit integer := orderly.arg_limit(args, 50, 200);
    -- The roles through which the actor could decide anything now: their own, and those of
    -- users who delegated to them. Only steps of these roles are worth the full check.
    v_roles text[] := ARRAY(
        SELECT ro.name FROM orderly.user_roles ur JOIN orderly.roles ro ON ro.id = ur.role_id WHERE ur.user_id = u.id
        UNION
        SELECT coalesce(d.role, ro.name)
        FROM orderly.approval_delegations d
        JOIN orderly.user_roles ur ON ur.user_id = d.from_user
        JOIN orderly.roles ro ON ro.id = ur.role_id
        WHERE d.to_user = u.id AND d.starts_at <= now() AND now() < d.ends_at
          AND (d.revoked_at IS NULL OR d.revoked_at > now()));
    a       orderly.order_approvals;
    o       orderly.orders;
    d       record;
    v_count integer := 0;
BEGIN
    -- Oldest first, and only until the page is full: the full check (orderly.step_deciders, the
    -- one definition of who may decide) is the costly part, so it runs for as few steps as it
    -- takes rather than for every pending step in the system.
    FOR a IN
        SELECT x.* FROM orderly.order_approvals x
        WHERE x.status = 'pending'
          AND (x.role = ANY (v_roles) OR (x.escalated_at IS NOT NULL AND x.escalation_role = ANY (v_roles)))
        ORDER BY x.pending_since, x.id
    LOOP
        SELECT * INTO o FROM orderly.orders y WHERE y.id = a.order_id;
        CONTINUE WHEN (o.status <> 'pending_approval' AND a.change_id IS NULL) OR NOT orderly.order_visible(u, o);
        o := orderly.approval_subject(a, o);
        SELECT * INTO d FROM orderly.step_deciders(a, o, now()) z WHERE z.user_id = u.id;
        CONTINUE WHEN NOT FOUND;
        RETURN NEXT json_build_object(
            'order', o.id,
            'customer', (SELECT c.name FROM orderly.customers c WHERE c.id = o.customer_id),
            'total', o.total,
            'currency', o.currency,
            'type', o.type,
            'created_by', orderly.username_of(o.created_by),
            'round', a.round,
            'step', a.step_no,
            'of', a.steps,
            'role', a.role,
            'as_role', d.as_role,
            'pending_since', orderly.json_time(a.pending_since),
            'due_at', orderly.json_time(a.due_at),
            'overdue', a.due_at <= now(),
            'escalated', a.escalated_at IS NOT NULL,
            'via_delegation', (SELECT json_build_object('id', y.id, 'from', orderly.username_of(y.from_user))
                               FROM orderly.approval_delegations y WHERE y.id = d.via_delegation_id));
        v_count := v_count + 1;
        EXIT WHEN v_count >= v_limit;
    END LOOP;
END
$$;

SELECT orderly.register_command('APPROVAL QUEUE', 'api.approval_queue', 'order.approve',
    arguments  => 'limit:integer',
    usage      => 'APPROVAL QUEUE [limit=50]',
    summary    => 'Approval steps waiting for you (your roles and delegations, within your limits), oldest first.');

-- Admins ------------------------------------------------------------------------------------------

-- An order waiting on a round that cannot finish (a step nobody may decide: a limit lowered, a
-- role's last holder gone, a rule fixed after it routed) is routed again by the rules as they
-- are now: the open steps are skipped, with the admin's reason, and a new round starts (or, when
-- no rule applies any more, the order is approved, as at submission). The order's own round only:
-- a change's round is closed by deciding or abandoning the change. Audited as admin_sql; whoever
-- may decide the new round's first step is told, as at submission.
CREATE OR REPLACE FUNCTION admin.reroute_approval(order_id bigint, reason text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    o        orderly.orders;
    c        orderly.order_approvals;
    r        orderly.approval_rules;
    a        orderly.order_approvals;
    v_reason text := btrim(reroute_approval.reason);
BEGIN
    IF v_reason IS NULL OR length(v_reason) NOT BETWEEN 1 AND 500 OR NOT orderly.shows_on_one_line(v_reason) THEN
        RAISE EXCEPTION 'reason must be 1 to 500 characters on one line (it is kept in the order''s approval history)'
            USING ERRCODE = 'OL400';
    END IF;
    SELECT * INTO o FROM orderly.orders x WHERE x.id = reroute_approval.order_id FOR NO KEY UPDATE;
    IF o.id IS NULL THEN
        RAISE EXCEPTION 'unknown order %', reroute_approval.order_id USING ERRCODE = 'OL404';
    END IF;
    SELECT * INTO c FROM orderly.order_approvals x WHERE x.order_id = o.id AND x.status = 'pending' FOR UPDATE;
    IF c.id IS NULL THEN
        RAISE EXCEPTION 'order % has no approval step pending (it is %)', o.id, o.status USING ERRCODE = 'OL409';
    END IF;
    IF c.change_id IS NOT NULL THEN
        RAISE EXCEPTION 'order %''s pending round decides change %: decide or abandon the change instead', o.id, c.change_id
            USING ERRCODE = 'OL409';
    END IF;
    UPDATE orderly.order_approvals x
    SET status = 'skipped', note = left('rerouted by an admin: ' || v_reason, 2000)
    WHERE x.order_id = o.id AND x.round = c.round AND x.status IN ('pending', 'waiting');
    r := orderly.rule_for_order(o, lock => true);
    IF r.id IS NULL THEN
        o := orderly.change_status(o, 'approved', NULL, 'no approval rule applies (rerouted by an admin)', automatic => true);
        o := orderly.advance(o, NULL, check_credit => true);
    ELSE
        a := orderly.open_round(o, r, NULL, actor_kind => 'admin_sql');
    END IF;
    PERFORM orderly.audit(NULL, 'approval.reroute', 'order', o.id::text,
                          jsonb_build_object('round', c.round, 'rule', (SELECT x.name FROM orderly.approval_rules x WHERE x.id = c.rule_id),
                                             'step', c.step_no, 'role', c.role),
                          jsonb_build_object('round', a.round, 'rule', r.name, 'status', o.status, 'reason', v_reason),
                          actor_kind => 'admin_sql');
    PERFORM orderly.notify_routed(o, NULL, 'admin_sql');
    RETURN CASE WHEN r.id IS NULL THEN format('order %s: no approval rule applies now; it is %s', o.id, o.status)
                ELSE format('order %s: round %s of rule "%s", step 1 of %s (%s)', o.id, a.round, r.name, a.steps, a.role) END;
END
$$;

-- Orders waiting for an approval step now, oldest first, with who may decide it: exactly those
-- orderly.step_deciders names (holders of its role, or of its escalation role once escalated,
-- within their limits at today's rate, not locked, not the order's creator or an editor, not who
-- approved another step of the round; delegates too). decidable false: nobody may, and the order
-- waits until an admin fixes the roles or rules and reroutes it (admin.reroute_approval). A
-- SECURITY DEFINER function under the view: admins may not execute the orderly functions that
-- decide it.
CREATE OR REPLACE FUNCTION admin.pending_approval_rows()
RETURNS TABLE (order_id bigint, status text, type text, total numeric, currency char(3), change_id bigint, rule text,
               round integer, step integer, steps integer, role text, escalation_role text, escalated_at timestamptz,
               pending_since timestamptz, due_at timestamptz, note text, decidable boolean, deciders text[])
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT a.order_id, o.status, o.type, (s.subject).total, o.currency, a.change_id, r.name, a.round, a.step_no, a.steps,
           a.role, a.escalation_role, a.escalated_at, a.pending_since, a.due_at,
           -- Why it is stuck, as of now: the note written when the step opened (no limit covered
           -- the order then) says nothing once someone may decide it, and too little when the
           -- cause came later (a limit lowered, every holder locked).
           CASE WHEN cardinality(d.names) > 0 THEN NULL
                ELSE coalesce(a.note, 'nobody may decide it now: no unlocked holder of the role whose limit covers the order and who did not create or change it; fix that, then admin.reroute_approval')
           END,
           cardinality(d.names) > 0, d.names
    FROM orderly.order_approvals a
    JOIN orderly.orders o ON o.id = a.order_id
    JOIN orderly.approval_rules r ON r.id = a.rule_id
    CROSS JOIN LATERAL (SELECT orderly.approval_subject(a, o) AS subject) s
    CROSS JOIN LATERAL (SELECT coalesce(array_agg(u.username::text ORDER BY u.username), '{}') AS names
                        FROM orderly.step_deciders(a, s.subject, now()) x
                        JOIN orderly.users u ON u.id = x.user_id) d
    WHERE a.status = 'pending'
    ORDER BY a.pending_since, a.order_id;
END
$$;

CREATE OR REPLACE VIEW admin.pending_approvals AS SELECT * FROM admin.pending_approval_rows();

COMMENT ON VIEW admin.pending_approvals IS 'Approval steps pending now, oldest first, with who may decide each (decidable false: nobody may; fix the roles or rules, then reroute the order)';
