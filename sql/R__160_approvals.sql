-- Orderly: approval rules, steps, limits and settings as data (issue #5), edited by admins in
-- SQL with the admin.* functions below and read through admin.approval_rules,
-- admin.approval_limits and admin.approval_settings. The workflow itself (routing, decisions)
-- is in R__161_approval_flow.sql, reminders in R__162, delegation in R__163, BI views in R__165.
--
-- How a rule matches an order: the rule is active, has at least one step, its order_types
-- contain the order's type, and min_total <= total <= max_total (both inclusive; NULL is
-- unbounded). Of the matching rules the highest priority wins, then the lowest id. No rule: the
-- order is approved at submission ("no approval rule applies" in its history).
--
-- Editing a rule changes the orders routed from then on; a round already running keeps the
-- steps it was given (order_approvals copies role, due_after and escalation_role).
--
-- Admin functions (all validated: OL400 invalid, OL404 unknown rule/role, OL409 state; all
-- audited with actor NULL):
--   admin.create_approval_rule(name, order_types text[], min_total, max_total, priority) → id
--   admin.change_approval_rule(name, order_types, min_total, max_total, priority)  (replaces all four)
--   admin.set_approval_rule_active(name, active)
--   admin.add_approval_step(rule, step_no, role, due_after, escalation_role DEFAULT NULL)
--   admin.change_approval_step(rule, step_no, role, due_after, escalation_role DEFAULT NULL)
--   admin.remove_approval_step(rule, step_no)  (the last step only)
--   admin.set_approval_limit(role, order_type, max_total)  (NULL = unlimited)
--   admin.remove_approval_limit(role, order_type)
--   admin.set_approval_reminders(max_reminders)  (reminders before a step escalates; default 2)
--   admin.set_approval_currency(currency)  (the currency bounds and limits are in; default EUR)
--   admin.set_exchange_rate(currency, rate)  (one unit of currency in the approval currency)
--   admin.remove_exchange_rate(currency)
--   admin.load_demo_approvals()  (the classic demo chains and limits; idempotent)
--
-- Money of one currency: bounds and limits are in the approval currency (approval_settings), an
-- order in another is judged by orderly.approval_value, its total at the exchange rate an admin
-- set (V039__approval_currency.sql). No rate: the value is unknown (NULL), and an unknown value is
-- above every bound: it matches the rules for the largest orders and only an unlimited role
-- approves it, so that a missing rate asks more approval, never less.

-- Validation helpers -----------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION orderly.check_order_types(order_types text[]) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text[];
BEGIN
    IF order_types IS NULL OR cardinality(order_types) = 0 THEN
        RAISE EXCEPTION 'order_types must name at least one of standard, custom, strategic' USING ERRCODE = 'OL400';
    END IF;
    SELECT array_agg(DISTINCT lower(btrim(t)) ORDER BY lower(btrim(t))) INTO v FROM unnest(order_types) t;
    IF array_position(v, NULL) IS NOT NULL OR NOT v <@ ARRAY['standard', 'custom', 'strategic'] THEN
        RAISE EXCEPTION 'order_types may only contain standard, custom and strategic' USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

-- Amounts are checked by orderly.check_price (R__110): the same rule as every price.
DROP FUNCTION IF EXISTS orderly.check_amount(numeric, text);

CREATE OR REPLACE FUNCTION orderly.check_order_type_name(order_type text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF order_type IS NULL OR lower(btrim(order_type)) NOT IN ('standard', 'custom', 'strategic') THEN
        RAISE EXCEPTION 'order type must be standard, custom or strategic' USING ERRCODE = 'OL400';
    END IF;
    RETURN lower(btrim(order_type));
END
$$;

-- An approving role (a step's, an escalation's, a limit's) must hold order.approve: orderly.check_role_holds
-- (R__021_admin_roles.sql) checks it, as it checks the cancellation policy's approver.
DROP FUNCTION IF EXISTS orderly.check_approving_role(text);

CREATE OR REPLACE FUNCTION orderly.approval_rule_for(name text, for_update boolean) RETURNS orderly.approval_rules
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r orderly.approval_rules;
BEGIN
    IF for_update THEN
        SELECT * INTO r FROM orderly.approval_rules x WHERE x.name = btrim(approval_rule_for.name) FOR UPDATE;
    ELSE
        SELECT * INTO r FROM orderly.approval_rules x WHERE x.name = btrim(approval_rule_for.name);
    END IF;
    IF r.id IS NULL THEN
        RAISE EXCEPTION 'unknown approval rule "%"', orderly.for_message(name) USING ERRCODE = 'OL404';
    END IF;
    RETURN r;
END
$$;

-- What the audit log keeps of a rule: the header and its steps.
CREATE OR REPLACE FUNCTION orderly.approval_rule_snapshot(rule_id bigint) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'id', r.id, 'name', r.name, 'order_types', to_jsonb(r.order_types), 'min_total', r.min_total,
        'max_total', r.max_total, 'priority', r.priority, 'active', r.active,
        'steps', (SELECT coalesce(jsonb_agg(jsonb_build_object('step', s.step_no, 'role', s.role,
                                                               'due_after', s.due_after::text,
                                                               'escalation_role', s.escalation_role)
                                            ORDER BY s.step_no), '[]')
                  FROM orderly.approval_rule_steps s WHERE s.rule_id = r.id))
    FROM orderly.approval_rules r
    WHERE r.id = $1
$$;

CREATE OR REPLACE FUNCTION orderly.check_rule_fields(name text, order_types text[], min_total numeric,
                                                     max_total numeric) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR length(btrim(name)) NOT BETWEEN 1 AND 100 OR NOT orderly.shows_on_one_line(name) THEN
        RAISE EXCEPTION 'rule name must be 1 to 100 characters without control or direction-override characters' USING ERRCODE = 'OL400';
    END IF;
    PERFORM orderly.check_order_types(order_types);
    PERFORM orderly.check_price(min_total, 'min_total');
    PERFORM orderly.check_price(max_total, 'max_total');
    IF min_total > max_total THEN
        RAISE EXCEPTION 'min_total must not be above max_total' USING ERRCODE = 'OL400';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION orderly.check_step_fields(role text, due_after interval, escalation_role text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orderly.check_role_holds(role, 'order.approve');
    IF due_after IS NULL OR due_after <= interval '0' THEN
        RAISE EXCEPTION 'due_after must be a positive interval, like ''1 day''' USING ERRCODE = 'OL400';
    END IF;
    IF escalation_role IS NOT NULL THEN
        PERFORM orderly.check_role_holds(escalation_role, 'order.approve');
        IF escalation_role = role THEN
            RAISE EXCEPTION 'the escalation role must differ from the step''s role' USING ERRCODE = 'OL400';
        END IF;
    END IF;
END
$$;

-- After an admin's change: how many findings admin.approval_check (below) has, as a NOTICE, so
-- that a change that opens a gap or strands a step is seen when it is made.
CREATE OR REPLACE FUNCTION orderly.notice_approval_check() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    f text;
BEGIN
    SELECT count(*), string_agg(DISTINCT c.finding, ', ') INTO n, f FROM admin.approval_check c;
    IF n > 0 THEN
        RAISE NOTICE 'approval check: % finding(s) (%): SELECT * FROM admin.approval_check', n, f;
    END IF;
END
$$;

-- Rules ------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION admin.create_approval_rule(name text, order_types text[], min_total numeric DEFAULT NULL,
                                                      max_total numeric DEFAULT NULL, priority integer DEFAULT 0)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM orderly.check_rule_fields(create_approval_rule.name, create_approval_rule.order_types,
                                      create_approval_rule.min_total, create_approval_rule.max_total);
    -- As change_approval_rule: a NULL priority is a mistake, not 0.
    IF create_approval_rule.priority IS NULL THEN
        RAISE EXCEPTION 'priority must be a number (0 when left out)' USING ERRCODE = 'OL400';
    END IF;
    -- Names are matched as written; "large orders" beside "Large orders" would be two rules an
    -- admin reads as one.
    IF EXISTS (SELECT 1 FROM orderly.approval_rules x WHERE lower(x.name) = lower(btrim(create_approval_rule.name))
                                                        AND x.name <> btrim(create_approval_rule.name)) THEN
        RAISE EXCEPTION 'approval rule "%" exists already as "%"', orderly.for_message(btrim(create_approval_rule.name)),
            (SELECT x.name FROM orderly.approval_rules x WHERE lower(x.name) = lower(btrim(create_approval_rule.name)) LIMIT 1)
            USING ERRCODE = 'OL409';
    END IF;
    INSERT INTO orderly.approval_rules (name, order_types, min_total, max_total, priority)
    VALUES (btrim(create_approval_rule.name), orderly.check_order_types(create_approval_rule.order_types),
            create_approval_rule.min_total, create_approval_rule.max_total, create_approval_rule.priority)
    ON CONFLICT ON CONSTRAINT approval_rules_name_key DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'approval rule "%" already exists', orderly.for_message(btrim(create_approval_rule.name))
            USING ERRCODE = 'OL409';
    END IF;
    PERFORM orderly.audit(NULL, 'approval_rule.create', 'approval_rule', v_id::text, NULL,
                          orderly.approval_rule_snapshot(v_id), actor_kind => 'admin_sql');
    RETURN v_id;
END
$$;

CREATE OR REPLACE FUNCTION admin.change_approval_rule(name text, order_types text[], min_total numeric,
                                                      max_total numeric, priority integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    r        orderly.approval_rules := orderly.approval_rule_for(change_approval_rule.name, true);
    v_before jsonb := orderly.approval_rule_snapshot(r.id);
BEGIN
    PERFORM orderly.check_rule_fields(change_approval_rule.name, change_approval_rule.order_types,
                                      change_approval_rule.min_total, change_approval_rule.max_total);
    -- Every field is the rule's new value (NULL bounds: none); a NULL priority is a mistake, not 0.
    IF change_approval_rule.priority IS NULL THEN
        RAISE EXCEPTION 'priority must be given (the rule''s is %)', r.priority USING ERRCODE = 'OL400';
    END IF;
    UPDATE orderly.approval_rules x
    SET order_types = orderly.check_order_types(change_approval_rule.order_types),
        min_total = change_approval_rule.min_total, max_total = change_approval_rule.max_total,
        priority = change_approval_rule.priority, updated_at = now()
    WHERE x.id = r.id;
    PERFORM orderly.audit(NULL, 'approval_rule.change', 'approval_rule', r.id::text, v_before,
                          orderly.approval_rule_snapshot(r.id), actor_kind => 'admin_sql');
    PERFORM orderly.notice_approval_check();
END
$$;

CREATE OR REPLACE FUNCTION admin.set_approval_rule_active(name text, active boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    r orderly.approval_rules := orderly.approval_rule_for(set_approval_rule_active.name, true);
BEGIN
    IF set_approval_rule_active.active IS NULL THEN
        RAISE EXCEPTION 'active must be true or false' USING ERRCODE = 'OL400';
    END IF;
    IF r.active = set_approval_rule_active.active THEN
        RAISE NOTICE 'approval rule "%" is already %', r.name, CASE WHEN r.active THEN 'active' ELSE 'inactive' END;
        RETURN;
    END IF;
    -- On without steps it would route nothing, as if off, while admin.approval_rules shows it on.
    IF set_approval_rule_active.active AND NOT EXISTS (SELECT 1 FROM orderly.approval_rule_steps s WHERE s.rule_id = r.id) THEN
        RAISE EXCEPTION 'approval rule "%" has no steps: add one (admin.add_approval_step) before switching it on', r.name
            USING ERRCODE = 'OL409';
    END IF;
    UPDATE orderly.approval_rules x SET active = set_approval_rule_active.active, updated_at = now() WHERE x.id = r.id;
    PERFORM orderly.audit(NULL, 'approval_rule.' || CASE WHEN set_approval_rule_active.active THEN 'activate' ELSE 'deactivate' END,
                          'approval_rule', r.id::text, jsonb_build_object('active', r.active),
                          jsonb_build_object('active', set_approval_rule_active.active),
                          actor_kind => 'admin_sql');
    PERFORM orderly.notice_approval_check();
END
$$;

-- Steps are numbered 1, 2, … in chain order: a new step is the next number.
CREATE OR REPLACE FUNCTION admin.add_approval_step(rule text, step_no integer, role text, due_after interval,
                                                   escalation_role text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    r        orderly.approval_rules := orderly.approval_rule_for(add_approval_step.rule, true);
    v_before jsonb := orderly.approval_rule_snapshot(r.id);
    v_next   integer;
BEGIN
    PERFORM orderly.check_step_fields(add_approval_step.role, add_approval_step.due_after, add_approval_step.escalation_role);
    SELECT coalesce(max(s.step_no), 0) + 1 INTO v_next FROM orderly.approval_rule_steps s WHERE s.rule_id = r.id;
    IF add_approval_step.step_no IS DISTINCT FROM v_next THEN
        RAISE EXCEPTION 'steps are numbered 1, 2, … in order: the next step of "%" is %', r.name, v_next
            USING ERRCODE = 'OL400';
    END IF;
    INSERT INTO orderly.approval_rule_steps (rule_id, step_no, role, due_after, escalation_role)
    VALUES (r.id, v_next, add_approval_step.role, add_approval_step.due_after, add_approval_step.escalation_role);
    UPDATE orderly.approval_rules x SET updated_at = now() WHERE x.id = r.id;
    PERFORM orderly.audit(NULL, 'approval_rule.add_step', 'approval_rule', r.id::text, v_before,
                          orderly.approval_rule_snapshot(r.id), actor_kind => 'admin_sql');
    PERFORM orderly.notice_approval_check();
END
$$;

CREATE OR REPLACE FUNCTION admin.change_approval_step(rule text, step_no integer, role text, due_after interval,
                                                      escalation_role text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    r        orderly.approval_rules := orderly.approval_rule_for(change_approval_step.rule, true);
    v_before jsonb := orderly.approval_rule_snapshot(r.id);
BEGIN
    PERFORM orderly.check_step_fields(change_approval_step.role, change_approval_step.due_after,
                                      change_approval_step.escalation_role);
    UPDATE orderly.approval_rule_steps s
    SET role = change_approval_step.role, due_after = change_approval_step.due_after,
        escalation_role = change_approval_step.escalation_role
    WHERE s.rule_id = r.id AND s.step_no = change_approval_step.step_no;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'approval rule "%" has no step %', r.name, change_approval_step.step_no USING ERRCODE = 'OL404';
    END IF;
    UPDATE orderly.approval_rules x SET updated_at = now() WHERE x.id = r.id;
    PERFORM orderly.audit(NULL, 'approval_rule.change_step', 'approval_rule', r.id::text, v_before,
                          orderly.approval_rule_snapshot(r.id), actor_kind => 'admin_sql');
    PERFORM orderly.notice_approval_check();
END
$$;

-- Only the last step, so that the numbers stay 1, 2, … without gaps.
CREATE OR REPLACE FUNCTION admin.remove_approval_step(rule text, step_no integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    r        orderly.approval_rules := orderly.approval_rule_for(remove_approval_step.rule, true);
    v_before jsonb := orderly.approval_rule_snapshot(r.id);
    v_last   integer;
BEGIN
    SELECT max(s.step_no) INTO v_last FROM orderly.approval_rule_steps s WHERE s.rule_id = r.id;
    IF v_last IS NULL OR remove_approval_step.step_no IS NULL
       OR remove_approval_step.step_no NOT BETWEEN 1 AND v_last THEN
        RAISE EXCEPTION 'approval rule "%" has no step %', r.name, remove_approval_step.step_no USING ERRCODE = 'OL404';
    END IF;
    IF remove_approval_step.step_no <> v_last THEN
        RAISE EXCEPTION 'only the last step (%) can be removed; change a step with admin.change_approval_step', v_last
            USING ERRCODE = 'OL409';
    END IF;
    -- A rule without steps routes nothing: the orders it matches would be approved at once.
    IF v_last = 1 AND r.active THEN
        RAISE EXCEPTION 'step 1 is the only step of active rule "%": without it the orders the rule matches would be approved at once; switch the rule off first (admin.set_approval_rule_active) or add a step',
            r.name USING ERRCODE = 'OL409';
    END IF;
    DELETE FROM orderly.approval_rule_steps s WHERE s.rule_id = r.id AND s.step_no = v_last;
    UPDATE orderly.approval_rules x SET updated_at = now() WHERE x.id = r.id;
    PERFORM orderly.audit(NULL, 'approval_rule.remove_step', 'approval_rule', r.id::text, v_before,
                          orderly.approval_rule_snapshot(r.id), actor_kind => 'admin_sql');
    PERFORM orderly.notice_approval_check();
END
$$;

-- Limits and settings ------------------------------------------------------------------------------

-- What an amount in currency is worth in the approval currency, rounded to the cent; NULL when
-- no rate is set (see the header). plpgsql, so that its query's plan is kept between calls.
CREATE OR REPLACE FUNCTION orderly.approval_value(amount numeric, currency text) RETURNS numeric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v numeric;
BEGIN
    SELECT CASE WHEN s.currency = approval_value.currency THEN amount ELSE round(amount * r.rate, 2) END INTO v
    FROM orderly.approval_settings s
    LEFT JOIN orderly.exchange_rates r ON r.currency = approval_value.currency AND r.base = s.currency;
    RETURN v;
END
$$;

-- "12 000.00 USD (11 040.00 EUR)" or "12 000.00 USD (no exchange rate to EUR: above every limit)":
-- how an approval message names an order's total when its currency is not the approval currency.
CREATE OR REPLACE FUNCTION orderly.approval_amount_text(amount numeric, currency text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_base char(3) := (SELECT s.currency FROM orderly.approval_settings s);
    v      numeric := orderly.approval_value(amount, currency);
BEGIN
    IF currency = v_base THEN
        RETURN format('%s %s', amount, currency);
    ELSIF v IS NULL THEN
        RETURN format('%s %s (no exchange rate to %s: above every limit)', amount, currency, v_base);
    END IF;
    RETURN format('%s %s (%s %s)', amount, currency, v, v_base);
END
$$;

CREATE OR REPLACE FUNCTION admin.set_approval_limit(role text, order_type text, max_total numeric) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_role   text := orderly.check_role_holds(set_approval_limit.role, 'order.approve');
    v_type   text := orderly.check_order_type_name(set_approval_limit.order_type);
    v_before orderly.approval_limits;
BEGIN
    PERFORM orderly.check_price(set_approval_limit.max_total, 'max_total');
    SELECT * INTO v_before FROM orderly.approval_limits l WHERE l.role = v_role AND l.order_type = v_type FOR UPDATE;
    INSERT INTO orderly.approval_limits AS l (role, order_type, max_total)
    VALUES (v_role, v_type, set_approval_limit.max_total)
    ON CONFLICT ON CONSTRAINT approval_limits_pkey DO UPDATE SET max_total = excluded.max_total, updated_at = now();
    PERFORM orderly.audit(NULL, 'approval_limit.set', 'approval_limit', v_role || '/' || v_type,
                          CASE WHEN v_before.role IS NOT NULL THEN jsonb_build_object('max_total', v_before.max_total) END,
                          jsonb_build_object('max_total', set_approval_limit.max_total),
                          actor_kind => 'admin_sql');
    PERFORM orderly.notice_approval_check();
END
$$;

CREATE OR REPLACE FUNCTION admin.remove_approval_limit(role text, order_type text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_role text := (orderly.role_by_name(remove_approval_limit.role)).name;
    v_type text := orderly.check_order_type_name(remove_approval_limit.order_type);
    v_old  orderly.approval_limits;
BEGIN
    DELETE FROM orderly.approval_limits l WHERE l.role = v_role AND l.order_type = v_type RETURNING * INTO v_old;
    IF v_old.role IS NULL THEN
        RAISE NOTICE 'role % has no approval limit for % orders', v_role, v_type;
        RETURN;
    END IF;
    PERFORM orderly.audit(NULL, 'approval_limit.remove', 'approval_limit', v_role || '/' || v_type,
                          jsonb_build_object('max_total', v_old.max_total), NULL, actor_kind => 'admin_sql');
    PERFORM orderly.notice_approval_check();
END
$$;

-- Changes what the rules' bounds and the limits mean (they are not converted): an admin who moves
-- the company to another currency restates them. Rates are kept per base, so those set against
-- the old currency stop applying until set again.
CREATE OR REPLACE FUNCTION admin.set_approval_currency(currency text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_new    char(3) := orderly.check_currency(set_approval_currency.currency);
    v_before char(3);
BEGIN
    IF v_new IS NULL THEN
        RAISE EXCEPTION 'currency must be an ISO 4217 currency code like EUR or USD' USING ERRCODE = 'OL400';
    END IF;
    SELECT s.currency INTO v_before FROM orderly.approval_settings s FOR UPDATE;
    IF v_before = v_new THEN
        RAISE NOTICE 'approvals are already in %', v_new;
        RETURN;
    END IF;
    UPDATE orderly.approval_settings s SET currency = v_new, updated_at = now();
    PERFORM orderly.audit(NULL, 'approval_settings.change', 'approval_settings', NULL,
                          jsonb_build_object('currency', v_before), jsonb_build_object('currency', v_new),
                          actor_kind => 'admin_sql');
END
$$;

CREATE OR REPLACE FUNCTION admin.set_exchange_rate(currency text, rate numeric) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_cur    char(3) := orderly.check_currency(set_exchange_rate.currency);
    v_base   char(3) := (SELECT s.currency FROM orderly.approval_settings s);
    v_before numeric;
BEGIN
    IF v_cur IS NULL THEN
        RAISE EXCEPTION 'currency must be an ISO 4217 currency code like EUR or USD' USING ERRCODE = 'OL400';
    END IF;
    IF v_cur = v_base THEN
        RAISE EXCEPTION 'approvals are in %: it needs no rate', v_base USING ERRCODE = 'OL400';
    END IF;
    IF set_exchange_rate.rate IS NULL OR set_exchange_rate.rate <= 0 OR set_exchange_rate.rate >= 1e9
       OR scale(set_exchange_rate.rate) > 10 THEN
        RAISE EXCEPTION 'rate must be what one % is worth in %: above 0 and below 1 000 000 000, with at most 10 decimals', v_cur, v_base
            USING ERRCODE = 'OL400';
    END IF;
    SELECT r.rate INTO v_before FROM orderly.exchange_rates r WHERE r.currency = v_cur AND r.base = v_base FOR UPDATE;
    INSERT INTO orderly.exchange_rates AS r (currency, base, rate) VALUES (v_cur, v_base, set_exchange_rate.rate)
    ON CONFLICT ON CONSTRAINT exchange_rates_pkey DO UPDATE SET rate = excluded.rate, updated_at = now();
    PERFORM orderly.audit(NULL, 'exchange_rate.set', 'exchange_rate', v_cur || '/' || v_base,
                          CASE WHEN v_before IS NOT NULL THEN jsonb_build_object('rate', v_before) END,
                          jsonb_build_object('rate', set_exchange_rate.rate), actor_kind => 'admin_sql');
END
$$;

CREATE OR REPLACE FUNCTION admin.remove_exchange_rate(currency text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_cur  char(3) := orderly.check_currency(remove_exchange_rate.currency);
    v_base char(3) := (SELECT s.currency FROM orderly.approval_settings s);
    v_old  numeric;
BEGIN
    DELETE FROM orderly.exchange_rates r WHERE r.currency = v_cur AND r.base = v_base RETURNING r.rate INTO v_old;
    IF v_old IS NULL THEN
        RAISE NOTICE 'no exchange rate from % to % is set', v_cur, v_base;
        RETURN;
    END IF;
    PERFORM orderly.audit(NULL, 'exchange_rate.remove', 'exchange_rate', v_cur || '/' || v_base,
                          jsonb_build_object('rate', v_old), NULL, actor_kind => 'admin_sql');
END
$$;

CREATE OR REPLACE FUNCTION admin.set_approval_reminders(max_reminders integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_before integer;
BEGIN
    IF set_approval_reminders.max_reminders IS NULL OR set_approval_reminders.max_reminders NOT BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'max_reminders must be between 0 and 100' USING ERRCODE = 'OL400';
    END IF;
    SELECT s.max_reminders INTO v_before FROM orderly.approval_settings s FOR UPDATE;
    UPDATE orderly.approval_settings s SET max_reminders = set_approval_reminders.max_reminders, updated_at = now();
    PERFORM orderly.audit(NULL, 'approval_settings.change', 'approval_settings', NULL,
                          jsonb_build_object('max_reminders', v_before),
                          jsonb_build_object('max_reminders', set_approval_reminders.max_reminders),
                          actor_kind => 'admin_sql');
END
$$;

-- Demo -------------------------------------------------------------------------------------------
-- The classic case of issue #5, plus what it leaves open, decided here:
--   "Strategic orders above 50 000" (priority 400, strategic, total >= 50 000.01): sales_manager,
--       finance_manager, production_manager, then general_manager. A strategic order above
--       50 000 is both "above 50 000" and "strategic": its one rule is both chains, in that order.
--   "Large orders" (priority 300, standard and custom, total >= 50 000.01): sales_manager, then
--       finance_manager, then production_manager. (It named strategic too, which the rule above
--       always took first: admin.approval_check reports such a part as "never routes".)
--   "Strategic orders" (priority 200, strategic, any total): general_manager.
--   "Standard orders up to 10 000" (priority 100, standard, total <= 10 000): sales_supervisor.
--   "Standard orders 10 000 to 50 000" (priority 100, standard, 10 000.01 to 50 000):
--       sales_manager (a supervisor may not approve above 10 000).
--   "Custom orders up to 50 000" (priority 100, custom, total <= 50 000): sales_manager, then
--       production_manager (made to order: production confirms it can be made).
-- Steps are due after 1 day (production and general management: 2 days) and escalate to the
-- sales_manager (supervisor steps) or the general_manager (the others; not the general manager's
-- own steps).
-- Limits: sales_supervisor standard up to 10 000; sales_manager, finance_manager,
-- production_manager and general_manager every type unlimited.
CREATE OR REPLACE FUNCTION admin.load_demo_approvals()
RETURNS TABLE (entity text, added integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    n integer;
    total integer := 0;
BEGIN
    INSERT INTO orderly.approval_rules (name, order_types, min_total, max_total, priority)
    VALUES ('Strategic orders above 50 000', ARRAY['strategic'], 50000.01, NULL, 400),
           ('Large orders', ARRAY['custom', 'standard'], 50000.01, NULL, 300),
           ('Strategic orders', ARRAY['strategic'], NULL, NULL, 200),
           ('Standard orders up to 10 000', ARRAY['standard'], NULL, 10000, 100),
           ('Standard orders 10 000 to 50 000', ARRAY['standard'], 10000.01, 50000, 100),
           ('Custom orders up to 50 000', ARRAY['custom'], NULL, 50000, 100)
    ON CONFLICT ON CONSTRAINT approval_rules_name_key DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'approval_rules'; added := n; total := total + n; RETURN NEXT;

    -- Only into rules that have no steps yet: an admin's edited chain is left alone.
    INSERT INTO orderly.approval_rule_steps (rule_id, step_no, role, due_after, escalation_role)
    SELECT r.id, v.step_no, v.role, v.due_after::interval, v.escalation_role
    FROM (VALUES
        ('Strategic orders above 50 000', 1, 'sales_manager', '1 day', 'general_manager'),
        ('Strategic orders above 50 000', 2, 'finance_manager', '1 day', 'general_manager'),
        ('Strategic orders above 50 000', 3, 'production_manager', '2 days', 'general_manager'),
        ('Strategic orders above 50 000', 4, 'general_manager', '2 days', NULL),
        ('Large orders', 1, 'sales_manager', '1 day', 'general_manager'),
        ('Large orders', 2, 'finance_manager', '1 day', 'general_manager'),
        ('Large orders', 3, 'production_manager', '2 days', 'general_manager'),
        ('Strategic orders', 1, 'general_manager', '2 days', NULL),
        ('Standard orders up to 10 000', 1, 'sales_supervisor', '1 day', 'sales_manager'),
        ('Standard orders 10 000 to 50 000', 1, 'sales_manager', '1 day', 'general_manager'),
        ('Custom orders up to 50 000', 1, 'sales_manager', '1 day', 'general_manager'),
        ('Custom orders up to 50 000', 2, 'production_manager', '2 days', 'general_manager')
    ) AS v(rule, step_no, role, due_after, escalation_role)
    JOIN orderly.approval_rules r ON r.name = v.rule
    WHERE NOT EXISTS (SELECT 1 FROM orderly.approval_rule_steps s WHERE s.rule_id = r.id)
    ON CONFLICT ON CONSTRAINT approval_rule_steps_pkey DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'approval_rule_steps'; added := n; total := total + n; RETURN NEXT;

    INSERT INTO orderly.approval_limits (role, order_type, max_total)
    SELECT v.role, t.type, v.max_total
    FROM (VALUES ('sales_supervisor', ARRAY['standard'], 10000::numeric),
                 ('sales_manager', ARRAY['standard', 'custom', 'strategic'], NULL),
                 ('finance_manager', ARRAY['standard', 'custom', 'strategic'], NULL),
                 ('production_manager', ARRAY['standard', 'custom', 'strategic'], NULL),
                 ('general_manager', ARRAY['standard', 'custom', 'strategic'], NULL)) AS v(role, types, max_total)
    CROSS JOIN LATERAL unnest(v.types) AS t(type)
    ON CONFLICT ON CONSTRAINT approval_limits_pkey DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'approval_limits'; added := n; total := total + n; RETURN NEXT;

    IF total > 0 THEN
        PERFORM orderly.audit(NULL, 'approval.load_demo', 'approval_rule', NULL, NULL,
                              jsonb_build_object('added', total,
                                                 'rules', (SELECT jsonb_agg(orderly.approval_rule_snapshot(r.id) ORDER BY r.id)
                                                           FROM orderly.approval_rules r)),
                              actor_kind => 'admin_sql');
    END IF;
END
$$;

-- Views for admins ---------------------------------------------------------------------------------
-- Plain subqueries (no orderly helpers: functions called by a view are checked against its reader).

CREATE OR REPLACE VIEW admin.approval_rules AS
SELECT r.id,
       r.name,
       r.order_types,
       r.min_total,
       r.max_total,
       r.priority,
       r.active,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('step', s.step_no, 'role', s.role, 'due_after', s.due_after::text,
                                                     'escalation_role', s.escalation_role) ORDER BY s.step_no), '[]')
        FROM orderly.approval_rule_steps s WHERE s.rule_id = r.id) AS steps,
       (SELECT string_agg(s.role, ' → ' ORDER BY s.step_no)
        FROM orderly.approval_rule_steps s WHERE s.rule_id = r.id) AS chain,
       r.created_at,
       r.updated_at,
       (SELECT s.currency FROM orderly.approval_settings s) AS currency
FROM orderly.approval_rules r;

COMMENT ON VIEW admin.approval_rules IS 'Approval rules with their chains; the highest priority active rule that matches an order (type, total within min/max inclusive, at least one step) routes it';

CREATE OR REPLACE VIEW admin.approval_limits AS
SELECT l.role,
       l.order_type,
       l.max_total,
       l.max_total IS NULL AS unlimited,
       -- Who may use the limit: a locked user approves nothing.
       (SELECT count(*) FROM orderly.user_roles ur JOIN orderly.roles r ON r.id = ur.role_id JOIN orderly.users u ON u.id = ur.user_id
        WHERE r.name = l.role AND NOT u.locked) AS users,
       l.updated_at,
       (SELECT s.currency FROM orderly.approval_settings s) AS currency
FROM orderly.approval_limits l;

COMMENT ON VIEW admin.approval_limits IS 'Largest order total each role may approve per order type (no row: may not approve that type), and how many unlocked users hold the role';

-- What the rules and limits leave open, for an admin to read after changing them (each admin
-- function here says how many findings there are):
--   approved at once   totals of an order type no active rule with steps matches: such orders
--                      are approved at submission (may be meant: small orders);
--   waits for nobody   totals a rule routes to a step whose role (nor its escalation role) has a
--                      limit covering them: such orders wait until an admin reroutes them;
--   nobody holds role  a step whose role and escalation role no unlocked user holds;
--   never routes       a rule (for an order type) whose every total a rule ahead of it matches;
--   no steps           an active rule without steps (just created): it routes nothing yet.
-- Totals are in the approval currency; to_total NULL: no upper end.
CREATE OR REPLACE VIEW admin.approval_check AS
WITH rule_types AS (
    SELECT r.id, r.name, r.min_total, r.max_total, r.priority, t.order_type
    FROM orderly.approval_rules r
    CROSS JOIN LATERAL unnest(r.order_types) AS t(order_type)
    WHERE r.active AND EXISTS (SELECT 1 FROM orderly.approval_rule_steps s WHERE s.rule_id = r.id)
),
spans AS (
    -- reach: how far the rules before this one (by lower bound) cover, NULL for the first.
    SELECT x.order_type, coalesce(x.min_total, 0) AS lo, coalesce(x.max_total, 'Infinity') AS hi,
           max(coalesce(x.max_total, 'Infinity')) OVER (PARTITION BY x.order_type
                                                        ORDER BY coalesce(x.min_total, 0), coalesce(x.max_total, 'Infinity')
                                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
    FROM rule_types x
),
types AS (
    SELECT t.order_type, max(s.hi) AS top
    FROM unnest(ARRAY['standard', 'custom', 'strategic']) AS t(order_type)
    LEFT JOIN spans s ON s.order_type = t.order_type
    GROUP BY t.order_type
),
-- For each rule and type, the parts of its range that rules ahead of it (higher priority, then
-- lower id: the one that routes) also match, and where those leave a gap.
ahead AS (
    SELECT x.id, x.order_type, greatest(coalesce(y.min_total, 0), coalesce(x.min_total, 0)) AS lo,
           least(coalesce(y.max_total, 'Infinity'), coalesce(x.max_total, 'Infinity')) AS hi
    FROM rule_types x
    JOIN rule_types y ON y.order_type = x.order_type AND (y.priority > x.priority OR (y.priority = x.priority AND y.id < x.id))
    WHERE coalesce(y.min_total, 0) <= coalesce(x.max_total, 'Infinity') AND coalesce(y.max_total, 'Infinity') >= coalesce(x.min_total, 0)
),
ahead_reach AS (
    SELECT a.id, a.order_type, a.lo, a.hi,
           max(a.hi) OVER (PARTITION BY a.id, a.order_type ORDER BY a.lo, a.hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
    FROM ahead a
),
shadowed AS (
    -- Covered whole: from its lower bound, without a gap, to its upper bound.
    SELECT x.name, x.order_type, x.min_total, x.max_total
    FROM rule_types x
    JOIN ahead_reach a ON a.id = x.id AND a.order_type = x.order_type
    GROUP BY x.id, x.name, x.order_type, x.min_total, x.max_total
    HAVING min(a.lo) <= coalesce(x.min_total, 0) AND max(a.hi) >= coalesce(x.max_total, 'Infinity')
       AND NOT bool_or(a.reach IS NOT NULL AND a.lo > a.reach + 0.01)
),
steps AS (
    SELECT x.name, x.order_type, x.min_total, x.max_total, s.step_no, s.role, s.escalation_role,
           (SELECT max(coalesce(l.max_total, 'Infinity')) FROM orderly.approval_limits l
            WHERE l.role IN (s.role, s.escalation_role) AND l.order_type = x.order_type) AS covered_to
    FROM rule_types x
    JOIN orderly.approval_rule_steps s ON s.rule_id = x.id
)
SELECT 'approved at once' AS finding, s.order_type, coalesce(s.reach + 0.01, 0) AS from_total, s.lo - 0.01 AS to_total,
       NULL::text AS rule, NULL::integer AS step, NULL::text AS role,
       'no active rule with steps matches: approved at submission' AS detail
FROM spans s
WHERE s.lo > coalesce(s.reach, -0.01) + 0.01
UNION ALL
SELECT 'approved at once', t.order_type, coalesce(t.top + 0.01, 0), NULL, NULL, NULL, NULL,
       'no active rule with steps matches: approved at submission'
FROM types t
WHERE t.top IS NULL OR t.top < 'Infinity'
UNION ALL
SELECT 'waits for nobody', s.order_type, greatest(coalesce(s.covered_to + 0.01, 0), coalesce(s.min_total, 0)), s.max_total,
       s.name, s.step_no, s.role,
       CASE WHEN s.covered_to IS NULL
            THEN format('role %s%s may not approve %s orders', s.role,
                        coalesce(' (nor its escalation role ' || s.escalation_role || ')', ''), s.order_type)
            ELSE format('the %s limit of %s%s is %s', s.order_type, s.role,
                        coalesce(' (or its escalation role ' || s.escalation_role || ')', ''), s.covered_to) END
FROM steps s
WHERE coalesce(s.covered_to, -1) < coalesce(s.max_total, 'Infinity')
UNION ALL
SELECT 'no steps', t.order_type, coalesce(r.min_total, 0), r.max_total, r.name, NULL, NULL,
       'an active rule without steps routes nothing: add a step or switch it off'
FROM orderly.approval_rules r
CROSS JOIN LATERAL unnest(r.order_types) AS t(order_type)
WHERE r.active AND NOT EXISTS (SELECT 1 FROM orderly.approval_rule_steps s WHERE s.rule_id = r.id)
UNION ALL
SELECT 'never routes', s.order_type, coalesce(s.min_total, 0), s.max_total, s.name, NULL, NULL,
       'rules ahead of it (higher priority, or equal and older) match every total it covers'
FROM shadowed s
UNION ALL
SELECT DISTINCT 'nobody holds role', s.order_type, coalesce(s.min_total, 0), s.max_total, s.name, s.step_no, s.role,
       format('no unlocked user holds %s%s', s.role, coalesce(' or ' || s.escalation_role, ''))
FROM steps s
WHERE NOT EXISTS (SELECT 1 FROM orderly.user_roles ur
                  JOIN orderly.roles ro ON ro.id = ur.role_id
                  JOIN orderly.users u ON u.id = ur.user_id AND NOT u.locked
                  WHERE ro.name IN (s.role, s.escalation_role));

COMMENT ON VIEW admin.approval_check IS 'What approval rules and limits leave open: totals approved at once, steps that wait for nobody, roles nobody holds (totals in the approval currency)';

CREATE OR REPLACE VIEW admin.approval_settings AS
SELECT s.max_reminders, s.updated_at, s.currency FROM orderly.approval_settings s;

COMMENT ON VIEW admin.approval_settings IS 'How many reminders a pending approval step gets before it escalates, and the currency bounds and limits are in';

-- The approval currency, every currency with a rate and every currency products are priced in:
-- a row with rate NULL is a currency whose orders are above every bound.
CREATE OR REPLACE VIEW admin.exchange_rates AS
SELECT c.code AS currency,
       s.currency AS base,
       CASE WHEN c.code = s.currency THEN 1 ELSE r.rate END AS rate,
       r.updated_at,
       EXISTS (SELECT 1 FROM orderly.products p WHERE p.currency = c.code AND p.active) AS priced_in,
       -- A pending step: the order's first approval, or a change's round on an approved order.
       (SELECT count(DISTINCT a.order_id) FROM orderly.order_approvals a JOIN orderly.orders o ON o.id = a.order_id
        WHERE a.status = 'pending' AND o.currency = c.code) AS orders_awaiting_approval
FROM orderly.currencies c
CROSS JOIN orderly.approval_settings s
LEFT JOIN orderly.exchange_rates r ON r.currency = c.code AND r.base = s.currency
WHERE c.code = s.currency OR r.rate IS NOT NULL
   OR EXISTS (SELECT 1 FROM orderly.products p WHERE p.currency = c.code);

COMMENT ON VIEW admin.exchange_rates IS 'Currencies in use and their rate to the approval currency (rate NULL: no rate; such orders are above every approval bound)';

CREATE OR REPLACE VIEW admin.approval_delegations AS
SELECT d.id,
       (SELECT u.username FROM orderly.users u WHERE u.id = d.from_user) AS from_user,
       (SELECT u.username FROM orderly.users u WHERE u.id = d.to_user) AS to_user,
       d.role,
       d.starts_at,
       d.ends_at,
       d.revoked_at,
       -- Whether it passes anything on now (as R__161_approval_flow.sql decides): in its window, not
       -- revoked, neither side locked, the delegator still holding an approving role (the one
       -- named, if any) and the delegate still holding order.approve.
       d.revoked_at IS NULL AND d.starts_at <= now() AND now() < d.ends_at
           AND NOT (SELECT u.locked FROM orderly.users u WHERE u.id = d.from_user)
           AND NOT (SELECT u.locked FROM orderly.users u WHERE u.id = d.to_user)
           AND EXISTS (SELECT 1 FROM orderly.user_roles ur JOIN orderly.roles r ON r.id = ur.role_id
                       JOIN orderly.role_permissions rp ON rp.role_id = r.id AND rp.permission = 'order.approve'
                       WHERE ur.user_id = d.from_user AND (d.role IS NULL OR r.name = d.role))
           AND EXISTS (SELECT 1 FROM orderly.user_roles ur JOIN orderly.role_permissions rp ON rp.role_id = ur.role_id
                       WHERE ur.user_id = d.to_user AND rp.permission = 'order.approve') AS active,
       d.created_at
FROM orderly.approval_delegations d;

COMMENT ON VIEW admin.approval_delegations IS 'Approval delegations (DELEGATE): who passes their approval rights to whom, for which role (NULL: all) and when';

COMMENT ON FUNCTION admin.create_approval_rule(text, text[], numeric, numeric, integer) IS
    'Create an approval rule (order types, inclusive min/max total, priority; add steps next); returns its id';
COMMENT ON FUNCTION admin.change_approval_rule(text, text[], numeric, numeric, integer) IS
    'Replace an approval rule''s order types, min/max total and priority';
COMMENT ON FUNCTION admin.set_approval_rule_active(text, boolean) IS 'Switch an approval rule on or off';
COMMENT ON FUNCTION admin.add_approval_step(text, integer, text, interval, text) IS
    'Append a step (the next number) to a rule: approving role, due after, optional escalation role';
COMMENT ON FUNCTION admin.change_approval_step(text, integer, text, interval, text) IS 'Change a step of a rule';
COMMENT ON FUNCTION admin.remove_approval_step(text, integer) IS 'Remove the last step of a rule';
COMMENT ON FUNCTION admin.set_approval_limit(text, text, numeric) IS
    'Set the largest total a role may approve for an order type (NULL = unlimited)';
COMMENT ON FUNCTION admin.remove_approval_limit(text, text) IS 'The role may no longer approve that order type';
COMMENT ON FUNCTION admin.set_approval_reminders(integer) IS 'Reminders a pending step gets before it escalates';
COMMENT ON FUNCTION admin.load_demo_approvals() IS 'Load the demo approval rules and limits (idempotent)';
