-- Orderly: orders from quote to draft (ORDER QUOTE, DRAFT, UPDATE, LINE ADD/SET/REMOVE, NOTE,
-- SHOW, LIST) and the status lifecycle. Submission (ORDER SUBMIT, and ORDER CREATE, which may
-- submit) is R__170_order_submission.sql's: it hands the order to the approval workflow, which
-- uses this file's functions and so comes between the two. The stock an order reserves is
-- R__115_stock.sql's, idempotency keys R__014_idempotency.sql's.
--
-- Prices: every change to a draft re-prices the whole order with orderly.price_order (the one
-- pricing function, R__120_pricing.sql), so a draft always shows today's prices; ORDER SUBMIT
-- prices it one last time and those prices are the order's from then on.
--
-- Who sees an order: a customer login its customer's orders; order.read_all every order;
-- order.read alone the orders one created (a sales rep's own). An order one may not see is
-- "not found". A draft may be changed by whoever sees it and holds order.create.
--
-- Locks: every change takes the order's row lock first (what submission locks next:
-- R__170_order_submission.sql).

-- Who may see what -----------------------------------------------------------------------------

-- The rule itself is orderly.order_visible (R__100_customers.sql, for CUSTOMER SHOW's summary).

CREATE OR REPLACE FUNCTION orderly.order_for(u orderly.users, order_id bigint, for_update boolean) RETURNS orderly.orders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o orderly.orders;
BEGIN
    SELECT * INTO o FROM orderly.orders x WHERE x.id = order_for.order_id;
    IF o.id IS NULL OR NOT orderly.order_visible(u, o) THEN
        RAISE EXCEPTION 'order % not found', order_id USING ERRCODE = 'OL404';
    END IF;
    -- Locked only once it is known to be visible: nobody can hold up orders they cannot see.
    -- NO KEY UPDATE, so that inserting lines and notes (KEY SHARE by their foreign keys) in other
    -- transactions is not what serializes; every change to an order takes this same lock first.
    IF for_update THEN
        SELECT * INTO o FROM orderly.orders x WHERE x.id = order_for.order_id FOR NO KEY UPDATE;
    END IF;
    RETURN o;
END
$$;

CREATE OR REPLACE FUNCTION orderly.draft_for_update(u orderly.users, order_id bigint) RETURNS orderly.orders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o orderly.orders := orderly.order_for(u, order_id, true);
BEGIN
    -- A rejected order may be changed too, and then submitted again (a new approval round).
    IF o.status NOT IN ('draft', 'rejected') THEN
        RAISE EXCEPTION 'order % is %; only a draft or a rejected order can be changed', o.id, o.status
            USING ERRCODE = 'OL409';
    END IF;
    -- A draft staff prepared for a customer is theirs to change: the customer's login may submit
    -- it as it is (accept it), not rewrite it unseen under the sales rep's name.
    IF orderly.own_customer(u) IS NOT NULL AND coalesce(orderly.is_staff(o.created_by), true) THEN
        RAISE EXCEPTION 'order % was prepared by staff: submit it as it is (ORDER SUBMIT %), or ask them to change it', o.id, o.id
            USING ERRCODE = 'OL403';
    END IF;
    RETURN o;
END
$$;

-- Documents ------------------------------------------------------------------------------------

-- plpgsql, not sql: a sql function that reads a table cannot be inlined and is planned again in
-- every statement that calls it; plpgsql keeps its plan for the session.
CREATE OR REPLACE FUNCTION orderly.username_of(user_id bigint) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text;
BEGIN
    SELECT u.username INTO v FROM orderly.users u WHERE u.id = username_of.user_id;
    RETURN v;
END
$$;

-- No SET search_path (every name is qualified), so that it is inlined into its callers.
-- pricing: the line's stored pricing (orderly.line_pricing(l.pricing)).
DROP FUNCTION IF EXISTS orderly.order_line_doc(orderly.order_lines);
CREATE OR REPLACE FUNCTION orderly.order_line_doc(l orderly.order_lines, pricing jsonb) RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT json_build_object(
        'line', ($1).line_no,
        'product', $2 -> 'product',
        'sku', $2 -> 'sku',
        'name', $2 -> 'name',
        'kind', $2 -> 'kind',
        'qty', ($1).qty,
        'cancelled', ($1).cancelled_qty,
        'options', $2 -> 'options',
        'params', $2 -> 'params',
        'list_price', ($1).list_price,
        'gross', ($1).gross,
        'discount', ($1).discount,
        'net', ($1).net,
        'tax_rate', trim_scale(($1).tax_rate),
        'tax', ($1).tax,
        'override', ($1).is_override,
        'override_reason', ($1).override_reason,
        -- Most lines have no override: no lookup for them.
        'override_by', CASE WHEN ($1).override_by IS NOT NULL THEN orderly.username_of(($1).override_by) END,
        'components', $2 -> 'components',
        'explanation', orderly.explanation_doc($2 -> 'explanation', ($1).tax_place))
$$;

-- No SET search_path (every name is qualified), so that it is inlined into its callers.
CREATE OR REPLACE FUNCTION orderly.order_note_doc(n orderly.order_notes) RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT json_build_object(
        'id', ($1).id,
        'kind', ($1).kind,
        'text', ($1).text,
        'by', orderly.username_of(($1).created_by),
        'at', orderly.json_time(($1).created_at),
        'visibility', ($1).visibility)
$$;

-- The current approval step of an order, or NULL when none is pending (ORDER SHOW). Here and
-- not in R__160_approvals.sql because order_doc below needs it when it is created.
-- plpgsql keeps the plan for the session (see username_of).
CREATE OR REPLACE FUNCTION orderly.approval_state(order_id bigint) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v json;
BEGIN
    SELECT json_build_object('round', a.round, 'step', a.step_no, 'of', a.steps, 'role', a.role,
                             'due_at', orderly.json_time(a.due_at), 'escalated', a.escalated_at IS NOT NULL)
    INTO v
    FROM orderly.order_approvals a
    WHERE a.order_id = approval_state.order_id AND a.status = 'pending';
    RETURN v;
END
$$;

-- The payment terms an order goes by: those it was approved under (V028), before that its
-- customer's. plpgsql: planned once a session (the pick list asks it of every order).
CREATE OR REPLACE FUNCTION orderly.order_terms(o orderly.orders) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF o.payment_terms IS NOT NULL THEN
        RETURN o.payment_terms;
    END IF;
    RETURN (SELECT c.payment_terms FROM orderly.customers c WHERE c.id = o.customer_id);
END
$$;

-- Whether the payment terms let the order go to the warehouse: on prepaid terms once nothing is
-- left to pay (paid in full, or more: a refund due is still paid; an order that owes nothing
-- needs no payment), on other terms always. payment_status = 'paid' is not it: an overpaid
-- order is 'refund_due'.
CREATE OR REPLACE FUNCTION orderly.terms_release(o orderly.orders) RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT orderly.order_terms($1) <> 'prepaid' OR orderly.open_amount($1) = 0 $$;

-- ORDER SHOW: the header, the customer, where it ships, every line with its price explanation,
-- the totals, the notes, the current approval step and the status history. plpgsql, so that this
-- one statement is planned once a session, not at every call as the body of a sql function is.
CREATE OR REPLACE FUNCTION orderly.order_doc(o orderly.orders) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN json_build_object(
        'id', o.id,
        'status', o.status,
        'status_label', (SELECT s.customer_label FROM orderly.order_statuses s WHERE s.code = o.status),
        'type', o.type,
        'customer', (SELECT json_build_object('id', c.id, 'name', c.name, 'email', c.email, 'phone', c.phone,
                                              'company', c.company, 'segment', c.segment)
                     FROM orderly.customers c WHERE c.id = o.customer_id),
        'ship_to', (SELECT orderly.address_doc(a) FROM orderly.addresses a WHERE a.id = o.ship_to_id),
        'requested_date', o.requested_date,
        'coupon', o.coupon_code,
        'currency', o.currency,
        -- Each line's pricing looked up by its key: a join was planned as a scan of every pricing
        -- (cheap on paper while the table is small; 0.2 ms of each document here). LATERAL with
        -- LIMIT, so that it is not made a join again; not a sub-SELECT argument, with which
        -- order_line_doc (it uses the argument many times) would no longer be inlined.
        'lines', (SELECT coalesce(json_agg(orderly.order_line_doc(l, p.body) ORDER BY l.line_no), '[]')
                  FROM orderly.order_lines l
                  LEFT JOIN LATERAL (SELECT x.body FROM orderly.line_pricings x WHERE x.digest = l.pricing LIMIT 1) p ON true
                  WHERE l.order_id = o.id),
        'totals', json_build_object('subtotal', o.subtotal, 'discount', o.discount_total,
                                    'net', o.subtotal - o.discount_total,
                                    'tax', o.tax_total, 'total', o.total,
                                    -- After a cancellation (R__198_cancellation.sql): what the
                                    -- cancelled units were worth, the fees, and what is owed.
                                    'cancelled', o.cancelled_total, 'charges', o.charges_total,
                                    'due', orderly.amount_owed(o)),
        'notes', (SELECT coalesce(json_agg(orderly.order_note_doc(n) ORDER BY n.id), '[]')
                  FROM orderly.order_notes n WHERE n.order_id = o.id),
        'approval', orderly.approval_state(o.id),
        'payment_terms', orderly.order_terms(o),
        'payment_status', orderly.payment_status(o),
        'paid', o.amount_paid,
        'refunded', o.amount_refunded,
        'open_amount', orderly.open_amount(o),
        'refund_due', orderly.refund_due(o),
        -- Amendments (R__197_amendments.sql): the version, and a change still waiting.
        'version', o.version,
        'pending_change', (SELECT json_build_object('id', c.id, 'waiting_for', c.waiting_for, 'reason', c.reason,
                                                    'requested_at', orderly.json_time(c.requested_at))
                           FROM orderly.order_changes c WHERE c.order_id = o.id AND c.status = 'pending'),
        'payments', orderly.order_payments(o.id),
        'cancellations', (SELECT coalesce(json_agg(json_build_object(
                                     'id', c.id, 'status', c.status, 'reason', c.reason, 'fee', c.fee,
                                     'lines', (SELECT json_agg(json_build_object('line', e -> 'line', 'qty', e -> 'qty'))
                                               FROM jsonb_array_elements(c.plan -> 'lines') e),
                                     'requested_at', orderly.json_time(c.requested_at),
                                     'decided_at', orderly.json_time(c.decided_at)) ORDER BY c.id), '[]')
                          FROM orderly.order_cancellations c WHERE c.order_id = o.id),
        'shipments', orderly.order_shipments(o.id),
        'hold', CASE WHEN o.status = 'on_hold' THEN json_build_object('reason', o.hold_reason, 'from', o.held_from) END,
        'timeline', orderly.order_timeline(o),
        'history', (SELECT coalesce(json_agg(json_build_object(
                               'from', h.from_status, 'to', h.to_status, 'by', orderly.username_of(h.changed_by),
                               'at', orderly.json_time(h.changed_at), 'reason', h.reason) ORDER BY h.id), '[]')
                    FROM orderly.order_status_history h WHERE h.order_id = o.id),
        'created_by', orderly.username_of(o.created_by),
        'created_at', orderly.json_time(o.created_at),
        'submitted_by', orderly.username_of(o.submitted_by),
        'submitted_at', orderly.json_time(o.submitted_at),
        'priced_at', orderly.json_time(o.priced_at));
END
$$;

-- One ORDER LIST row. plpgsql, so that it is planned once a session (see order_doc).
CREATE OR REPLACE FUNCTION orderly.order_summary(o orderly.orders) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN json_build_object(
        'id', o.id,
        'status', o.status,
        'type', o.type,
        'customer', o.customer_id,
        'customer_name', (SELECT c.name FROM orderly.customers c WHERE c.id = o.customer_id),
        'lines', (SELECT count(*) FROM orderly.order_lines l WHERE l.order_id = o.id),
        'total', o.total,
        -- What is owed after cancellations and their fees (a cancelled order keeps its total):
        -- a list summed for what customers owe reads this.
        'due', orderly.amount_owed(o),
        'currency', o.currency,
        'requested_date', o.requested_date,
        'created_by', orderly.username_of(o.created_by),
        'created_at', orderly.json_time(o.created_at),
        'submitted_at', orderly.json_time(o.submitted_at));
END
$$;

-- Lines and prices -----------------------------------------------------------------------------

-- The lines of an order as orderly.price_order takes them, numbered as stored.
CREATE OR REPLACE FUNCTION orderly.order_specs(order_id bigint) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(l.spec || jsonb_build_object('line', l.line_no) ORDER BY l.line_no), '[]')
    FROM orderly.order_lines l
    WHERE l.order_id = $1
$$;

-- A line as a client wrote it, reduced to what the pricing engine reads. Numbers come as JSON
-- numbers or strings; the engine validates them (with the line number in its message).
CREATE OR REPLACE FUNCTION orderly.line_spec(args jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'sku', $1 -> 'sku', 'product', $1 -> 'product', 'qty', $1 -> 'qty', 'options', $1 -> 'options',
        'params', $1 -> 'params', 'unit_price', $1 -> 'unit_price', 'reason', $1 -> 'reason'))
$$;

-- ORDER CREATE's lines, numbered 1, 2, …: every key is kept, so that the pricing engine can
-- refuse a misspelt one ("line 2: unknown key …") instead of it being dropped here.
CREATE OR REPLACE FUNCTION orderly.numbered_specs(lines jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    out jsonb := '[]';
    l   jsonb;
    n   bigint;
BEGIN
    FOR l, n IN SELECT t.l, t.n FROM jsonb_array_elements(lines) WITH ORDINALITY AS t(l, n) LOOP
        IF jsonb_typeof(l) <> 'object' THEN
            RAISE EXCEPTION 'line %: each line must be an object like {"sku":"PHN-X1-128-BLK","qty":1}', n
                USING ERRCODE = 'OL400';
        END IF;
        out := out || jsonb_build_array((l - 'line') || jsonb_build_object('line', n));
    END LOOP;
    RETURN out;
END
$$;

-- The order's lines become exactly specs (each with its "line" number), all priced together;
-- the header gets the totals, summed from the stored lines. Manual prices in specs were
-- authorised when they were set (see require_override), so re-pricing honours them whoever
-- triggers it. only_lines (an amendment, R__197_amendments.sql): only these lines take the new
-- prices; every other line keeps the prices it was agreed at, and only these are priced. A line
-- of a submitted order asked for as it is (at most fewer units) is priced as sold (price_lines'
-- sold_lines): a product taken off sale since stays on the orders that have it, re-taxed or
-- lowered, while adding it, more of it, or it as another line's new item is refused.
DROP FUNCTION IF EXISTS orderly.set_order_lines(orderly.orders, jsonb);
CREATE OR REPLACE FUNCTION orderly.set_order_lines(o orderly.orders, specs jsonb, only_lines integer[] DEFAULT NULL)
RETURNS orderly.orders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    priced  jsonb;
    v_sold  integer[] := '{}';
    v_other integer[];
    v_redeemed boolean;   -- the order's own coupon, used at submission (price_lines)
BEGIN
    DELETE FROM orderly.order_lines x
    WHERE x.order_id = o.id
      AND x.line_no NOT IN (SELECT (s ->> 'line')::integer FROM jsonb_array_elements(specs) s);
    IF only_lines IS NOT NULL THEN
        specs := coalesce((SELECT jsonb_agg(s) FROM jsonb_array_elements(specs) s WHERE (s ->> 'line')::integer = ANY (only_lines)), '[]');
    END IF;
    -- The lines that may be sold as they were: those of a submitted order asked for with at most
    -- their units. Whether each is the same item (product, SKU, options, parameters) is known
    -- once priced: see below.
    IF o.status NOT IN ('draft', 'rejected') THEN
        v_sold := ARRAY(SELECT x.line_no FROM orderly.order_lines x JOIN jsonb_array_elements(specs) s ON (s ->> 'line')::integer = x.line_no
                        WHERE x.order_id = o.id AND jsonb_typeof(s -> 'qty') = 'number' AND (s ->> 'qty')::numeric <= x.qty);
    END IF;
    IF jsonb_array_length(specs) = 0 AND only_lines IS NULL THEN
        UPDATE orderly.orders x
        SET subtotal = 0, discount_total = 0, tax_total = 0, total = 0, priced_at = now(), updated_at = now()
        WHERE x.id = o.id
        RETURNING * INTO o;
        RETURN o;
    END IF;
    -- An amendment that prices nothing again (a line removed, an address in the same tax place)
    -- only sums the lines.
    IF jsonb_array_length(specs) > 0 THEN
        v_redeemed := EXISTS (SELECT 1 FROM orderly.coupon_redemptions r WHERE r.order_id = o.id AND r.released_at IS NULL);
        priced := orderly.price_order(o.customer_id, specs, o.coupon_code, o.ship_to_id, now(), true, v_redeemed, v_sold);
        -- A line priced as sold that came out another item (other options, another SKU) is a
        -- new sale: priced again with the availability checks.
        v_other := ARRAY(SELECT (l ->> 'line')::integer
                         FROM jsonb_array_elements(priced -> 'lines') l
                         JOIN orderly.order_lines x ON x.order_id = o.id AND x.line_no = (l ->> 'line')::integer
                         LEFT JOIN LATERAL (SELECT y.body FROM orderly.line_pricings y WHERE y.digest = x.pricing LIMIT 1) lp ON true
                         WHERE (l ->> 'line')::integer = ANY (v_sold)
                           AND ((l ->> 'product_id')::bigint IS DISTINCT FROM x.product_id
                                OR (l ->> 'sku_id')::bigint IS DISTINCT FROM x.sku_id
                                OR (l -> 'options') IS DISTINCT FROM (lp.body -> 'options')
                                OR coalesce(l -> 'params', '{}') IS DISTINCT FROM coalesce(lp.body -> 'params', '{}')));
        IF cardinality(v_other) > 0 THEN
            priced := orderly.price_order(o.customer_id, specs, o.coupon_code, o.ship_to_id, now(), true, v_redeemed,
                                          ARRAY(SELECT n FROM unnest(v_sold) n WHERE NOT n = ANY (v_other)));
        END IF;
        -- Priced apart from the order's other lines, they must be in its currency all the same.
        IF only_lines IS NOT NULL AND priced ->> 'currency' <> o.currency THEN
            RAISE EXCEPTION 'line %: priced in %, but the order is in %',
                (SELECT l ->> 'line' FROM jsonb_array_elements(priced -> 'lines') l WHERE l ->> 'currency' <> o.currency LIMIT 1),
                priced ->> 'currency', o.currency USING ERRCODE = 'OL400';
        END IF;
    END IF;
    IF priced IS NOT NULL THEN
        -- Each priced line, its pricing stored (R__112_line_pricings.sql), with the request it came
        -- from, matched once by line number.
        INSERT INTO orderly.order_lines AS x (order_id, line_no, customer_id, spec, product_id, sku_id, qty,
                                              list_price, gross, discount, net, tax_rate, tax, is_override,
                                              override_reason, pricing, tax_place)
        SELECT o.id, (s.priced ->> 'line')::integer, o.customer_id, sp - 'line',
               (s.priced ->> 'product_id')::bigint, (s.priced ->> 'sku_id')::bigint, (s.priced ->> 'qty')::integer,
               (s.priced ->> 'list_price')::numeric, (s.priced ->> 'gross')::numeric, (s.priced ->> 'discount')::numeric,
               (s.priced ->> 'net')::numeric, coalesce((s.priced ->> 'tax_rate')::numeric, 0),
               coalesce((s.priced ->> 'tax')::numeric, 0), (s.priced ->> 'override')::boolean,
               CASE WHEN (s.priced ->> 'override')::boolean THEN btrim(sp ->> 'reason') END,
               s.pricing, s.tax_place
        FROM orderly.store_line_pricings(priced -> 'lines') s
        JOIN jsonb_array_elements(specs) sp ON (sp ->> 'line')::integer = (s.priced ->> 'line')::integer
        ON CONFLICT (order_id, line_no) DO UPDATE
        SET spec = excluded.spec, product_id = excluded.product_id, sku_id = excluded.sku_id, qty = excluded.qty,
            list_price = excluded.list_price, gross = excluded.gross, discount = excluded.discount,
            net = excluded.net, tax_rate = excluded.tax_rate, tax = excluded.tax,
            is_override = excluded.is_override, override_reason = excluded.override_reason,
            override_by = CASE WHEN excluded.is_override THEN x.override_by END,
            pricing = excluded.pricing, tax_place = excluded.tax_place, updated_at = now();
    END IF;
    -- The totals are the sums of the rounded line figures, as the pricing engine sums them. Lines
    -- priced apart (an amendment) are each within numeric(14,2); the order must be too.
    IF only_lines IS NOT NULL AND (SELECT sum(l.gross + l.tax + abs(l.discount)) FROM orderly.order_lines l WHERE l.order_id = o.id) > 999999999999.99 THEN
        RAISE EXCEPTION 'the order total is too large' USING ERRCODE = 'OL400';
    END IF;
    UPDATE orderly.orders x
    SET currency = coalesce(priced ->> 'currency', x.currency),
        subtotal = t.subtotal, discount_total = t.discount, tax_total = t.tax, total = t.total,
        priced_at = now(), updated_at = now()
    FROM (SELECT coalesce(sum(l.gross), 0) AS subtotal, coalesce(sum(l.discount), 0) AS discount,
                 coalesce(sum(l.tax), 0) AS tax, coalesce(sum(l.net + l.tax), 0) AS total
          FROM orderly.order_lines l WHERE l.order_id = o.id) t
    WHERE x.id = o.id
    RETURNING x.* INTO o;
    RETURN o;
END
$$;

-- The stored request of one line of a draft.
CREATE OR REPLACE FUNCTION orderly.line_spec_of(o orderly.orders, line_no integer) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    SELECT l.spec INTO v FROM orderly.order_lines l WHERE l.order_id = o.id AND l.line_no = line_spec_of.line_no;
    IF v IS NULL THEN
        RAISE EXCEPTION 'order % has no line %', o.id, line_no USING ERRCODE = 'OL404';
    END IF;
    RETURN v;
END
$$;

-- A manual unit price (and its reason) is the one thing on a line that needs more than
-- order.create.
CREATE OR REPLACE FUNCTION orderly.require_override(u orderly.users, spec jsonb) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (spec ?| ARRAY['unit_price', 'reason']) AND NOT orderly.has_permission(u.id, 'price.override') THEN
        RAISE EXCEPTION 'permission denied: price.override' USING ERRCODE = 'OL403';
    END IF;
END
$$;

-- Header arguments -----------------------------------------------------------------------------

-- The ship-to rule is orderly.ship_to_address (R__100), shared with pricing.
DROP FUNCTION IF EXISTS orderly.check_ship_to(bigint, bigint);

CREATE OR REPLACE FUNCTION orderly.check_order_type(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := coalesce(lower(btrim(value)), 'standard');
BEGIN
    IF v NOT IN ('standard', 'custom', 'strategic') THEN
        RAISE EXCEPTION 'type must be standard, custom or strategic' USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

-- The type a user may give an order: strategic is a staff decision (its own approval rules): a
-- customer's login marking its order strategic went round the custom rule's production step.
CREATE OR REPLACE FUNCTION orderly.order_type_for(u orderly.users, value text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := orderly.check_order_type(value);
BEGIN
    IF v = 'strategic' AND orderly.own_customer(u) IS NOT NULL THEN
        RAISE EXCEPTION 'type strategic is for staff to give; a customer''s order is standard or custom' USING ERRCODE = 'OL403';
    END IF;
    RETURN v;
END
$$;

-- An ISO date, today or later, and at most five years ahead (9999-12-31 is a typo, not a plan).
CREATE OR REPLACE FUNCTION orderly.check_requested_date(value text) RETURNS date
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d date;
BEGIN
    IF value IS NULL OR btrim(value) = '' THEN
        RETURN NULL;
    END IF;
    IF btrim(value) !~ '^\d{4}-\d{2}-\d{2}$' THEN
        RAISE EXCEPTION 'requested_date must be a date like 2026-12-24' USING ERRCODE = 'OL400';
    END IF;
    BEGIN
        d := btrim(value)::date;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'requested_date must be a date like 2026-12-24' USING ERRCODE = 'OL400';
    END;
    IF d < current_date THEN
        RAISE EXCEPTION 'requested_date cannot be in the past' USING ERRCODE = 'OL400';
    END IF;
    IF d > current_date + interval '5 years' THEN
        RAISE EXCEPTION 'requested_date is more than five years ahead' USING ERRCODE = 'OL400';
    END IF;
    RETURN d;
END
$$;

CREATE OR REPLACE FUNCTION orderly.check_lines_arg(args jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := orderly.arg_value(args, 'lines', true);
BEGIN
    IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) = 0 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array, like lines=[{"sku":"PHN-X1-128-BLK","qty":2}]'
            USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

-- Status lifecycle -----------------------------------------------------------------------------

-- The one way an order changes status: the transition must be a row of
-- order_status_transitions, its permission (if any) held; the change is appended to the
-- history and audited. automatic: a move the system makes because of other facts (the last
-- line shipped, delivered and paid, a credit limit passed), which needs the row but not the
-- acting user's permission for it (V017__fulfilment.sql). carrier: without an actor, the carrier
-- whose webhook caused the change (audited as that carrier's, as the tracking event is).
DROP FUNCTION IF EXISTS orderly.change_status(orderly.orders, text, bigint, text);
DROP FUNCTION IF EXISTS orderly.change_status(orderly.orders, text, bigint, text, boolean);
CREATE OR REPLACE FUNCTION orderly.change_status(o orderly.orders, to_status text, actor_id bigint, reason text,
                                                 automatic boolean DEFAULT false, carrier text DEFAULT NULL)
RETURNS orderly.orders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orderly.order_status_transitions;
    n orderly.orders;   -- the order as the change leaves it
BEGIN
    SELECT * INTO t FROM orderly.order_status_transitions x
    WHERE x.from_status = o.status AND x.to_status = change_status.to_status;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % is %, which cannot become %; from % it can become: %', o.id, o.status, to_status, o.status,
            coalesce((SELECT string_agg(x.to_status, ', ' ORDER BY s.position)
                      FROM orderly.order_status_transitions x JOIN orderly.order_statuses s ON s.code = x.to_status
                      WHERE x.from_status = o.status), 'nothing (it is final)')
            USING ERRCODE = 'OL409';
    END IF;
    IF t.permission IS NOT NULL AND NOT automatic THEN
        PERFORM orderly.require_permission(actor_id, t.permission);
    END IF;
    IF change_status.to_status = 'on_hold' AND nullif(btrim(reason), '') IS NULL THEN
        RAISE EXCEPTION 'order %: a hold needs a reason', o.id USING ERRCODE = 'OL400';
    END IF;
    -- A hold remembers why and where the order goes back to (orders_hold_check: both are set
    -- exactly while the order is on hold), and a submission who submitted and when, in the same
    -- UPDATE as the status (one write of the row instead of two).
    UPDATE orderly.orders x
    SET status = change_status.to_status, updated_at = now(),
        held_from = CASE WHEN change_status.to_status = 'on_hold' THEN o.status END,
        hold_reason = CASE WHEN change_status.to_status = 'on_hold' THEN btrim(reason) END,
        submitted_by = CASE WHEN change_status.to_status = 'submitted' THEN actor_id ELSE x.submitted_by END,
        submitted_at = CASE WHEN change_status.to_status = 'submitted' THEN now() ELSE x.submitted_at END,
        -- The terms it is released under (V028): a later change of the customer's is for new orders.
        payment_terms = CASE WHEN change_status.to_status = 'approved' THEN orderly.order_terms(o) ELSE x.payment_terms END
    WHERE x.id = o.id
    RETURNING * INTO n;
    INSERT INTO orderly.order_status_history (order_id, customer_id, from_status, to_status, changed_by, reason)
    VALUES (o.id, o.customer_id, o.status, change_status.to_status, actor_id, reason);
    PERFORM orderly.audit(actor_id, 'order.status', 'order', o.id::text,
                          jsonb_build_object('status', o.status),
                          jsonb_build_object('status', change_status.to_status, 'reason', reason, 'automatic', automatic)
                              || CASE WHEN actor_id IS NULL AND carrier IS NOT NULL THEN jsonb_build_object('carrier', carrier) ELSE '{}' END,
                          actor_kind => CASE WHEN actor_id IS NOT NULL THEN 'user' WHEN carrier IS NOT NULL THEN 'carrier' ELSE 'system' END);
    RETURN n;
END
$$;

-- Whether an order has been approved: its history has the change to approved (up to history row
-- up_to, when given). After approval an order lives on (ready, shipped, on hold …) and is never
-- rejected; this is what "at or after approval" means, for events and for payments.
CREATE OR REPLACE FUNCTION orderly.was_approved(order_id bigint, up_to bigint DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM orderly.order_status_history h
                   WHERE h.order_id = was_approved.order_id AND h.to_status = 'approved'
                     AND (was_approved.up_to IS NULL OR h.id <= was_approved.up_to));
END
$$;

-- Who hears of what happens to an order as its people: the creator, one more user (the author of
-- a change or request; NULL: none), and every login of the order's customer, each once, by id.
CREATE OR REPLACE FUNCTION orderly.order_people(o orderly.orders, also bigint DEFAULT NULL) RETURNS SETOF bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ($1).created_by WHERE ($1).created_by IS NOT NULL
    UNION SELECT $2 WHERE $2 IS NOT NULL
    UNION SELECT u.id FROM orderly.users u WHERE u.customer_id = ($1).customer_id
    ORDER BY 1
$$;

-- Events of a status change, raised at commit ------------------------------------------------------
-- Every status change passes through a row of order_status_history (orderly.change_status), so
-- the events hang there, on a constraint trigger deferred to the end of the transaction: raised
-- after the command's own events, in the order the changes were made. A submission raises them
-- before it takes its SKU row locks (orderly.finish_submit, R__170), so that they are not done
-- while other submissions of those SKUs wait. Events (payloads are jsonb objects):
--   order.status    once the order has been approved (that change included; draft, submitted,
--                   pending_approval and rejected before it are internal steps), and when an
--                   order placed but never approved is cancelled (the customer learns its order
--                   is off): to the order's creator and to every login of the order's customer
--                   (users.customer_id), each once: {order, status, status_label, at}
--   order.on_hold   on every hold (a person's or the credit limit's): to role finance_manager
--                   and the creator: {order, customer, total, currency, reason, held_from, at}
-- Customers see these through the allow-list (R__045_customer_view.sql). The actor of the
-- notifications' audit rows is the change's (changed_by; NULL: the system). SECURITY DEFINER: at
-- commit the current user is the server's login again, which may not raise events itself.
-- A pgTAP test flushes the events with SET CONSTRAINTS orderly.order_status_events IMMEDIATE.
-- The wording of a customer's e-mail (template: its kind) in the e-mail's language: the
-- customer's, when a template of that kind is in it and orderly.customer_wording has the key
-- there; else english (as the e-mail is then). plpgsql, so that its query is planned once a
-- session: a milestone of every order reads it, and as a SQL function (with SET, or with a
-- subquery, which is never inlined) it was planned at every call, 0.4 ms of an ORDER CREATE.
CREATE OR REPLACE FUNCTION orderly.wording_for(customer_id bigint, template text, key text, english text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((SELECT w.text FROM orderly.customer_wording w JOIN orderly.customers c ON c.language = w.language
                     WHERE c.id = wording_for.customer_id AND w.key = wording_for.key
                       AND EXISTS (SELECT 1 FROM orderly.message_templates m
                                   WHERE m.kind = wording_for.template AND m.language = w.language)),
                    wording_for.english);
END
$$;

CREATE OR REPLACE FUNCTION orderly.order_status_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    o            orderly.orders;
    v_kind       text := CASE WHEN NEW.changed_by IS NULL THEN 'system' ELSE 'user' END;
    v_payload    jsonb;
    r            record;
BEGIN
    -- A draft or a rejected order discarded (V044) is no news: nothing is ordered any more.
    IF NOT orderly.was_approved(NEW.order_id, NEW.id) AND NOT (NEW.to_status = 'cancelled' AND NEW.from_status NOT IN ('draft', 'rejected')) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO o FROM orderly.orders x WHERE x.id = NEW.order_id;
    v_payload := jsonb_build_object(
        'order', NEW.order_id,
        'status', NEW.to_status,
        'status_label', (SELECT s.customer_label FROM orderly.order_statuses s WHERE s.code = NEW.to_status),
        'at', orderly.json_time(NEW.changed_at));
    -- A milestone (order_statuses.notify_customer) is e-mailed to the customer too, through the
    -- outbox (R__057_customer_notices.sql), once per order and status: an order approved again
    -- after a hold (which the customer was not e-mailed about) does not say "Confirmed" twice.
    -- A cancellation has an e-mail of its own (V045: what is owed for it), the rest the status one;
    -- its time as people read it, not as JSON carries it.
    IF (SELECT s.notify_customer FROM orderly.order_statuses s WHERE s.code = NEW.to_status) THEN
        PERFORM orderly.queue_customer_email(CASE WHEN NEW.to_status = 'cancelled' THEN 'order.cancelled' ELSE 'order.status' END, o,
            v_payload || jsonb_build_object(
                'at', to_char(NEW.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC',
                'fee', CASE WHEN NEW.to_status = 'cancelled' AND o.charges_total > 0
                            THEN orderly.wording_for(o.customer_id, 'order.cancelled', 'cancellation_fee', 'Cancellation fee:')
                                 || ' ' || o.charges_total || ' ' || o.currency || E'\n' ELSE '' END,
                'status_label', orderly.wording_for(o.customer_id, 'order.status', 'status.' || NEW.to_status, v_payload ->> 'status_label'),
                'tracking', (
                SELECT orderly.wording_for(o.customer_id, 'order.status', 'tracking_link', 'Track your parcel:') || ' '
                       || orderly.tracking_url(c.tracking_url_template, s.tracking_no) || E'\n'
                FROM orderly.shipments s JOIN orderly.carriers c ON c.code = s.carrier
                WHERE s.order_id = o.id AND NEW.to_status IN ('partially_shipped', 'shipped')
                  AND orderly.tracking_url(c.tracking_url_template, s.tracking_no) IS NOT NULL
                ORDER BY s.id DESC LIMIT 1)),
            'order.status:' || NEW.order_id || ':' || NEW.to_status, NEW.changed_by, v_kind);
    END IF;
    FOR r IN
        SELECT o.created_by AS user_id WHERE o.created_by IS NOT NULL
        UNION
        SELECT u.id FROM orderly.users u WHERE u.customer_id = NEW.customer_id
        ORDER BY 1
    LOOP
        PERFORM api.notify(r.user_id, NULL, 'order.status', v_payload, NEW.changed_by, v_kind);
    END LOOP;
    IF NEW.to_status = 'on_hold' THEN
        v_payload := jsonb_build_object(
            'order', NEW.order_id,
            'customer', (SELECT c.name FROM orderly.customers c WHERE c.id = NEW.customer_id),
            'total', o.total,
            'currency', o.currency,
            'reason', NEW.reason,
            'held_from', NEW.from_status,
            'at', orderly.json_time(NEW.changed_at));
        PERFORM api.notify(NULL, 'finance_manager', 'order.on_hold', v_payload, NEW.changed_by, v_kind);
        -- The creator if staff: a customer's login is told by order.status above (the hold's
        -- reason is internal), not a second, empty event.
        IF orderly.is_staff(o.created_by) THEN
            PERFORM api.notify(o.created_by, NULL, 'order.on_hold', v_payload, NEW.changed_by, v_kind);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- OR REPLACE is not for constraint triggers: dropped and created again when this file is re-run.
DROP TRIGGER IF EXISTS order_status_events ON orderly.order_status_history;
CREATE CONSTRAINT TRIGGER order_status_events AFTER INSERT ON orderly.order_status_history
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION orderly.order_status_events();

-- The steps shared by the commands ---------------------------------------------------------------

-- lines: how many lines the caller is about to add (ORDER CREATE): their numbers are taken at once
-- (next_line_no), rather than by a second write of the new row.
DROP FUNCTION IF EXISTS orderly.create_draft(orderly.users, jsonb);
CREATE OR REPLACE FUNCTION orderly.create_draft(u orderly.users, args jsonb, lines integer DEFAULT 0) RETURNS orderly.orders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c      orderly.customers := orderly.customer_for(u, orderly.arg_bigint(args, 'customer', true), false);
    v_coupon text := nullif(upper(btrim(orderly.arg_text(args, 'coupon'))), '');
    o      orderly.orders;
BEGIN
    IF v_coupon IS NOT NULL THEN
        PERFORM orderly.coupon_usable(v_coupon, c.id, now());
    END IF;
    INSERT INTO orderly.orders (customer_id, type, status, ship_to_id, requested_date, coupon_code, created_by, next_line_no)
    VALUES (c.id,
            orderly.order_type_for(u, orderly.arg_text(args, 'type')),
            'draft',
            (orderly.ship_to_address(c.id, orderly.arg_bigint(args, 'ship_to'))).id,
            orderly.check_requested_date(orderly.arg_text(args, 'requested_date')),
            v_coupon,
            u.id,
            lines + 1)
    RETURNING * INTO o;
    INSERT INTO orderly.order_status_history (order_id, customer_id, from_status, to_status, changed_by)
    VALUES (o.id, o.customer_id, NULL, 'draft', u.id);
    IF nullif(btrim(orderly.arg_text(args, 'note')), '') IS NOT NULL THEN
        PERFORM orderly.add_note(u, o, orderly.arg_text(args, 'note'), 'general');
    END IF;
    PERFORM orderly.audit(u.id, 'order.draft', 'order', o.id::text, NULL,
                          jsonb_build_object('customer', o.customer_id, 'type', o.type, 'ship_to', o.ship_to_id,
                                             'requested_date', o.requested_date, 'coupon', o.coupon_code));
    RETURN o;
END
$$;

-- visibility: internal (staff only, the default for staff) or customer; a customer login's own
-- notes are always for the customer to see too.
DROP FUNCTION IF EXISTS orderly.add_note(orderly.users, orderly.orders, text, text);
CREATE OR REPLACE FUNCTION orderly.add_note(u orderly.users, o orderly.orders, text text, kind text,
                                            visibility text DEFAULT NULL)
RETURNS orderly.order_notes
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_kind text := coalesce(lower(btrim(kind)), 'general');
    v_text text := btrim(text);
    n      orderly.order_notes;
BEGIN
    -- A customer's note is seen by staff and by the customer: it cannot be internal, and saying
    -- so is refused rather than ignored.
    IF orderly.own_customer(u) IS NOT NULL THEN
        IF coalesce(nullif(lower(btrim(visibility)), ''), 'customer') <> 'customer' THEN
            RAISE EXCEPTION 'a customer''s note is visible to the customer: visibility=internal is for staff' USING ERRCODE = 'OL400';
        END IF;
        visibility := 'customer';
    END IF;
    visibility := coalesce(nullif(lower(btrim(visibility)), ''), 'internal');
    IF visibility NOT IN ('internal', 'customer') THEN
        RAISE EXCEPTION 'visibility must be internal or customer' USING ERRCODE = 'OL400';
    END IF;
    IF v_kind NOT IN ('delivery', 'packaging', 'general') THEN
        RAISE EXCEPTION 'kind must be delivery, packaging or general' USING ERRCODE = 'OL400';
    END IF;
    -- Notes may span lines (a delivery instruction often does), but not be empty or huge.
    IF v_text IS NULL OR v_text = '' OR length(v_text) > 2000 THEN
        RAISE EXCEPTION 'text must be 1 to 2000 characters' USING ERRCODE = 'OL400';
    END IF;
    -- Notes travel with every ORDER SHOW and pick list: a bound keeps those documents small.
    IF (SELECT count(*) FROM orderly.order_notes x WHERE x.order_id = o.id) >= 200 THEN
        RAISE EXCEPTION 'order % already has 200 notes', o.id USING ERRCODE = 'OL409';
    END IF;
    INSERT INTO orderly.order_notes (order_id, customer_id, kind, text, created_by, visibility)
    VALUES (o.id, o.customer_id, v_kind, v_text, u.id, visibility)
    RETURNING * INTO n;
    PERFORM orderly.audit(u.id, 'order.note', 'order', o.id::text, NULL, orderly.order_note_doc(n)::jsonb);
    RETURN n;
END
$$;

-- Commands -------------------------------------------------------------------------------------

-- Prices lines for a customer and saves nothing.
CREATE OR REPLACE FUNCTION api.order_quote(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('ORDER QUOTE', order_quote.actor, order_quote.args);
    c orderly.customers;
BEGIN
    c := orderly.customer_for(u, orderly.arg_bigint(args, 'customer', true), false);
    RETURN NEXT orderly.visible_doc('quote',
        orderly.priced_doc(orderly.price_order(c.id, orderly.check_lines_arg(args), orderly.arg_text(args, 'coupon'),
                                               (orderly.ship_to_address(c.id, orderly.arg_bigint(args, 'ship_to'))).id, now(),
                                               orderly.has_permission(u.id, 'price.override'))),
        orderly.own_customer(u));
END
$$;

SELECT orderly.register_command('ORDER QUOTE', 'api.order_quote', 'order.create',
    arguments  => 'customer:id! lines:array! coupon:code ship_to:id',
    usage      => 'ORDER QUOTE customer= lines=[…] [coupon=] [ship_to=]',
    summary    => 'Price lines for a customer, each with its explanation; saves nothing.');

CREATE OR REPLACE FUNCTION api.order_draft(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('ORDER DRAFT', order_draft.actor, order_draft.args);
    v_replay json := orderly.replay(u, order_draft.args);
    o orderly.orders;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    -- Two statements: order_doc (STABLE) sees only what was written before its statement began.
    o := orderly.create_draft(u, args);
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order', orderly.order_doc(o), orderly.own_customer(u)));
END
$$;

SELECT orderly.register_command('ORDER DRAFT', 'api.order_draft', 'order.create',
    arguments  => 'customer:id! type:text ship_to:id requested_date:date note:text coupon:code',
    usage      => 'ORDER DRAFT customer= [type=standard|custom|strategic] [ship_to=] [requested_date=] [note=] [coupon=]',
    summary    => 'Start a draft order (ship-to defaults to the customer''s default address).',
    changes    => true);

-- The header of a draft: ship_to (an address of the customer), coupon (coupon="" takes it
-- off), requested_date (requested_date="" clears it), type. The order is re-priced: the
-- address decides the tax, the coupon its discounts.
CREATE OR REPLACE FUNCTION api.order_update(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ORDER UPDATE', order_update.actor, order_update.args);
    v_replay json := orderly.replay(u, order_update.args);
    fields   text[] := ARRAY['ship_to', 'coupon', 'requested_date', 'type'];
    before   orderly.orders;
    o        orderly.orders;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    before := orderly.draft_for_update(u, orderly.arg_bigint(args, 'id', true));
    o := before;
    IF NOT (args ?| fields) THEN
        RAISE EXCEPTION 'nothing to update: give ship_to, coupon, requested_date or type' USING ERRCODE = 'OL400';
    END IF;
    IF args ? 'ship_to' THEN
        o.ship_to_id := (orderly.ship_to_address(o.customer_id, orderly.arg_bigint(args, 'ship_to', true))).id;
    END IF;
    IF args ? 'coupon' THEN
        o.coupon_code := nullif(upper(btrim(orderly.arg_text(args, 'coupon'))), '');
        IF o.coupon_code IS NOT NULL THEN
            PERFORM orderly.coupon_usable(o.coupon_code, o.customer_id, now());
        END IF;
    END IF;
    IF args ? 'requested_date' THEN
        o.requested_date := orderly.check_requested_date(orderly.arg_text(args, 'requested_date'));
    END IF;
    IF args ? 'type' THEN
        o.type := orderly.order_type_for(u, orderly.arg_text(args, 'type'));
    END IF;
    UPDATE orderly.orders x
    SET ship_to_id = o.ship_to_id, coupon_code = o.coupon_code, requested_date = o.requested_date, type = o.type,
        updated_at = now()
    WHERE x.id = o.id
    RETURNING * INTO o;
    o := orderly.set_order_lines(o, orderly.order_specs(o.id));
    PERFORM orderly.audit(u.id, 'order.update', 'order', o.id::text,
                          jsonb_build_object('ship_to', before.ship_to_id, 'coupon', before.coupon_code,
                                             'requested_date', before.requested_date, 'type', before.type),
                          jsonb_build_object('ship_to', o.ship_to_id, 'coupon', o.coupon_code,
                                             'requested_date', o.requested_date, 'type', o.type, 'total', o.total));
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order', orderly.order_doc(o), orderly.own_customer(u)));
END
$$;

SELECT orderly.register_command('ORDER UPDATE', 'api.order_update', 'order.create',
    arguments  => 'id:id! ship_to:id coupon:code requested_date:date type:text',
    positional => '{id}',
    usage      => 'ORDER UPDATE id [ship_to=] [coupon=] [requested_date=] [type=]',
    summary    => 'Change a draft''s (or a rejected order''s) ship-to, coupon (coupon="" takes it off), requested date or type; it is re-priced.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.order_line_add(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ORDER LINE ADD', order_line_add.actor, order_line_add.args);
    v_replay json := orderly.replay(u, order_line_add.args);
    o        orderly.orders;
    v_spec   jsonb := orderly.line_spec(args);
    v_no     integer;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    o := orderly.draft_for_update(u, orderly.arg_bigint(args, 'order', true));
    PERFORM orderly.require_override(u, v_spec);
    v_no := o.next_line_no;
    UPDATE orderly.orders x SET next_line_no = x.next_line_no + 1 WHERE x.id = o.id;
    o := orderly.set_order_lines(o, orderly.order_specs(o.id) || jsonb_build_array(v_spec || jsonb_build_object('line', v_no)));
    UPDATE orderly.order_lines x SET override_by = u.id WHERE x.order_id = o.id AND x.line_no = v_no AND x.is_override;
    PERFORM orderly.audit(u.id, 'order.line_add', 'order', o.id::text, NULL,
                          jsonb_build_object('line', v_no, 'spec', v_spec));
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order', orderly.order_doc(o), orderly.own_customer(u)));
END
$$;

SELECT orderly.register_command('ORDER LINE ADD', 'api.order_line_add', 'order.create',
    arguments  => 'order:id! sku:code product:code qty:integer! options:object params:object unit_price:number reason:text',
    usage      => 'ORDER LINE ADD order= (sku=|product=) qty= [options={…}] [params={…}] [unit_price= reason=]',
    summary    => 'Add a line to a draft (or a rejected order); the whole order is re-priced. A manual unit_price needs price.override.',
    changes    => true);

-- Changes what is given. Naming a new sku or product replaces both (and its options);
-- clear_override=true returns the line to computed prices.
CREATE OR REPLACE FUNCTION api.order_line_set(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ORDER LINE SET', order_line_set.actor, order_line_set.args);
    v_replay json := orderly.replay(u, order_line_set.args);
    o        orderly.orders;
    v_no     integer := orderly.arg_int(args, 'line', true);
    v_given  jsonb := orderly.line_spec(args);
    v_old    jsonb;
    v_spec   jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    o := orderly.draft_for_update(u, orderly.arg_bigint(args, 'order', true));
    v_old := orderly.line_spec_of(o, v_no);
    IF v_given = '{}' AND NOT coalesce(orderly.arg_bool(args, 'clear_override'), false) THEN
        RAISE EXCEPTION 'nothing to change: give qty, options, params, sku, product, unit_price or clear_override'
            USING ERRCODE = 'OL400';
    END IF;
    PERFORM orderly.require_override(u, v_given);
    -- A manual price was authorised for exactly this item and quantity: without price.override
    -- one may only take it away (clear_override=true), not carry it over to something else.
    IF v_old ? 'unit_price' AND NOT coalesce(orderly.arg_bool(args, 'clear_override'), false)
       AND NOT orderly.has_permission(u.id, 'price.override') THEN
        RAISE EXCEPTION 'line % has a manual price: changing it needs price.override (or clear_override=true)', v_no
            USING ERRCODE = 'OL403';
    END IF;
    v_spec := v_old;
    IF v_given ?| ARRAY['sku', 'product'] THEN
        v_spec := v_spec - 'sku' - 'product' - 'options' - 'params';
    END IF;
    IF coalesce(orderly.arg_bool(args, 'clear_override'), false) THEN
        v_spec := v_spec - 'unit_price' - 'reason';
    END IF;
    v_spec := v_spec || v_given;
    o := orderly.set_order_lines(o, (SELECT jsonb_agg(CASE WHEN (s ->> 'line')::integer = v_no
                                                           THEN v_spec || jsonb_build_object('line', v_no) ELSE s END)
                                     FROM jsonb_array_elements(orderly.order_specs(o.id)) s));
    IF v_given ? 'unit_price' THEN
        UPDATE orderly.order_lines x SET override_by = u.id WHERE x.order_id = o.id AND x.line_no = v_no;
    END IF;
    PERFORM orderly.audit(u.id, 'order.line_set', 'order', o.id::text,
                          jsonb_build_object('line', v_no, 'spec', v_old), jsonb_build_object('line', v_no, 'spec', v_spec));
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order', orderly.order_doc(o), orderly.own_customer(u)));
END
$$;

SELECT orderly.register_command('ORDER LINE SET', 'api.order_line_set', 'order.create',
    arguments  => 'order:id! line:integer! sku:code product:code qty:integer options:object params:object unit_price:number reason:text clear_override:boolean',
    usage      => 'ORDER LINE SET order= line= [qty=] [options={…}] [params={…}] [sku=|product=] [unit_price= reason=] [clear_override=true]',
    summary    => 'Change a line of a draft (or a rejected order); the whole order is re-priced.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.order_line_remove(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ORDER LINE REMOVE', order_line_remove.actor, order_line_remove.args);
    v_replay json := orderly.replay(u, order_line_remove.args);
    o        orderly.orders;
    v_no     integer := orderly.arg_int(args, 'line', true);
    v_old    jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    o := orderly.draft_for_update(u, orderly.arg_bigint(args, 'order', true));
    v_old := orderly.line_spec_of(o, v_no);
    o := orderly.set_order_lines(o, (SELECT coalesce(jsonb_agg(s), '[]') FROM jsonb_array_elements(orderly.order_specs(o.id)) s
                                     WHERE (s ->> 'line')::integer <> v_no));
    PERFORM orderly.audit(u.id, 'order.line_remove', 'order', o.id::text,
                          jsonb_build_object('line', v_no, 'spec', v_old), NULL);
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order', orderly.order_doc(o), orderly.own_customer(u)));
END
$$;

SELECT orderly.register_command('ORDER LINE REMOVE', 'api.order_line_remove', 'order.create',
    arguments  => 'order:id! line:integer!',
    usage      => 'ORDER LINE REMOVE order= line=',
    summary    => 'Remove a line from a draft (or a rejected order).',
    changes    => true);

-- Notes can be added in any status (a delivery instruction often comes after submission) and
-- are never edited or removed.
CREATE OR REPLACE FUNCTION api.order_note(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('ORDER NOTE', order_note.actor, order_note.args);
    v_replay json := orderly.replay(u, order_note.args);
    o orderly.orders;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    o := orderly.order_for(u, orderly.arg_bigint(args, 'order', true), true);
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order_note',
        orderly.order_note_doc(orderly.add_note(u, o, orderly.arg_text(args, 'text', true), orderly.arg_text(args, 'kind'),
                                                orderly.arg_text(args, 'visibility'))),
        orderly.own_customer(u)));
END
$$;

SELECT orderly.register_command('ORDER NOTE', 'api.order_note', 'order.create',
    arguments  => 'order:id! text:text! kind:text visibility:text',
    usage      => 'ORDER NOTE order= text= [kind=delivery|packaging|general] [visibility=internal|customer]',
    summary    => 'Add a note; notes are kept for good and shown to the warehouse and production; the customer sees it only with visibility=customer (its own notes always).',
    changes    => true);

CREATE OR REPLACE FUNCTION api.order_show(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('ORDER SHOW', order_show.actor, order_show.args);
BEGIN
    RETURN NEXT orderly.visible_doc('order', orderly.order_doc(orderly.order_for(u, orderly.arg_bigint(args, 'id', true), false)),
                                    orderly.own_customer(u));
END
$$;

SELECT orderly.register_command('ORDER SHOW', 'api.order_show', 'order.read',
    arguments  => 'id:id!',
    positional => '{id}',
    usage      => 'ORDER SHOW id',
    summary    => 'An order: customer, ship-to, lines with their price explanation, totals, notes, status history.');

-- Newest first, keyset paginated: pass the last id seen as after= for the next page. from and
-- to are creation dates, both inclusive.
CREATE OR REPLACE FUNCTION api.order_list(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u          orderly.users := orderly.begin_command('ORDER LIST', order_list.actor, order_list.args);
    v_status   text := nullif(lower(btrim(orderly.arg_text(args, 'status'))), '');
    v_customer bigint := orderly.arg_bigint(args, 'customer');
    v_mine     boolean := coalesce(orderly.arg_bool(args, 'mine'), false);
    v_after    bigint := orderly.arg_bigint(args, 'after');
    v_limit    integer := orderly.arg_limit(args, 50, 200);
    v_from     date;
    v_to       date;
    v_from_at  timestamptz;
    v_to_at    timestamptz;
    v_own      bigint := orderly.own_customer(u);
    v_all      boolean := orderly.has_permission(u.id, 'order.read_all');
BEGIN
    IF v_status IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orderly.order_statuses s WHERE s.code = v_status) THEN
        RAISE EXCEPTION 'unknown status "%"; one of: %', orderly.for_message(v_status),
            (SELECT string_agg(s.code, ', ' ORDER BY s.position) FROM orderly.order_statuses s) USING ERRCODE = 'OL400';
    END IF;
    -- Dates are UTC days, as every time a client sees is UTC.
    v_from := orderly.arg_date(args, 'from');
    v_to := orderly.arg_date(args, 'to');
    IF v_from > v_to THEN
        RAISE EXCEPTION 'from (%) is after to (%)', v_from, v_to USING ERRCODE = 'OL400';
    END IF;
    v_from_at := v_from::timestamp AT TIME ZONE 'UTC';
    v_to_at := (v_to + 1)::timestamp AT TIME ZONE 'UTC';
    RETURN QUERY
    SELECT orderly.visible_doc('order_summary', orderly.order_summary(o), v_own)
    FROM orderly.orders o
    WHERE (v_after IS NULL OR o.id < v_after)
      AND (v_status IS NULL OR o.status = v_status)
      AND (v_customer IS NULL OR o.customer_id = v_customer)
      AND (v_from_at IS NULL OR o.created_at >= v_from_at)
      AND (v_to_at IS NULL OR o.created_at < v_to_at)
      AND CASE WHEN v_own IS NOT NULL THEN o.customer_id = v_own
               WHEN v_all AND NOT v_mine THEN true
               ELSE o.created_by = u.id END
    ORDER BY o.id DESC
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('ORDER LIST', 'api.order_list', 'order.read',
    arguments  => 'status:text customer:id mine:boolean from:date to:date limit:integer after:id',
    usage      => 'ORDER LIST [status=] [customer=] [mine=true] [from=] [to=] [limit=50] [after=id]',
    summary    => 'Orders you may see, newest first; pass the last id as after= for the next page.');
