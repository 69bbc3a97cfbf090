-- Orderly: cancelling an order, or some of its lines, after submission (issue 14, item 2).
-- Tables and the shipped policy: V019__cancellation.sql.
--
--   ORDER CANCEL id reason= [lines=[…]] [quote=true]   cancel (or quote, or ask for) it
--   CANCEL APPROVE id [note=] · CANCEL REJECT id reason=  decide the order's waiting request
--   CANCEL LIST [status=] [order=]                        cancellations, newest first
--   REFUND RECORD order= amount= reference= [method=]     pay back what is due
--
-- One plan, two uses: orderly.cancellation_plan says, without changing anything, which units of
-- which lines are cancelled, what they are worth, the fee of the policy row, the stock that goes
-- back, the production that stops, and what is then owed or due back. quote=true answers with
-- it; otherwise orderly.apply_cancellation carries out exactly that plan, under the order's row
-- lock taken first (as every change to an order), then the SKUs in id order (as submission and
-- shipping), so a cancellation and a shipment of the same order queue on the order row and the
-- second sees what the first did.
--
-- What may be cancelled: the units of a line that have not shipped (a service line: its units,
-- until the order is delivered). Shipped units never: a delivered line is refused with a clear
-- message (a return is another flow). An order cancelled whole before anything shipped becomes
-- cancelled (final); when some of it shipped, the rest is cancelled and the order goes on
-- (orderly.advance: partially_shipped → shipped). Shipments exist here only once goods leave
-- (SHIPMENT CREATE), so there is no planned shipment to void: the pick list simply stops showing
-- the cancelled units.
--
-- Who: a customer login cancels its own order itself only while the policy charges nothing and
-- needs no approval; otherwise ORDER CANCEL records a request. Staff with order.cancel cancel
-- unless the policy row names an approval role they do not hold; then it is a request too. A
-- request is decided by a holder of cancel.decide (and of the row's approval_role, when named),
-- on the plan as it stands at the decision.
--
-- Events (once each, last, after every row lock; api.notify holds its lock until commit):
--   order.cancelled  to warehouse and logistics (units that were to ship), production_manager
--                    (make-to-order lines not finished), finance_manager, the creator, the
--                    requester, and the customer's logins (through the allow-list)
--   cancel.requested to the deciding role (approval_role, else customer_service)
--   cancel.rejected  to the requester, and the customer's logins when one of them asked

-- The policy ----------------------------------------------------------------------------------------

-- The row that applies to the order now: orderly.cancellation_policy_for (R__197_amendments.sql,
-- where a change that takes units off an order is judged by it too).

-- The fee of a policy row: orderly.cancellation_fee (R__197_amendments.sql, beside the policy row).

CREATE OR REPLACE FUNCTION orderly.cancellation_policy_doc(p orderly.cancellation_policies) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object('id', ($1).id, 'status', ($1).status, 'order_type', ($1).order_type, 'currency', ($1).currency,
                              'fee_percent', trim_scale(($1).fee_percent), 'fee_basis', ($1).fee_basis,
                              'fee_fixed', ($1).fee_fixed, 'fee_min', ($1).fee_min, 'fee_max', ($1).fee_max,
                              'approval_role', ($1).approval_role, 'note', ($1).note)
$$;

-- The plan --------------------------------------------------------------------------------------------

-- lines=[…] of ORDER CANCEL: line numbers (all their open units) or {"line":2,"qty":1}; NULL when
-- not given (everything still open). Returns [{"line":n,"qty":q or null}].
CREATE OR REPLACE FUNCTION orderly.cancel_lines_arg(lines jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e      jsonb;
    v_out  jsonb := '[]';
    v_seen integer[] := '{}';
    v_no   integer;
BEGIN
    IF lines IS NULL THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(lines) <> 'array' OR jsonb_array_length(lines) = 0 OR jsonb_array_length(lines) > 1000 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array, like lines=[1,3] or lines=[{"line":2,"qty":1}]' USING ERRCODE = 'OL400';
    END IF;
    FOR e IN SELECT x FROM jsonb_array_elements(lines) x LOOP
        IF jsonb_typeof(e) = 'number' THEN
            e := jsonb_build_object('line', e);
        END IF;
        IF jsonb_typeof(e) <> 'object' OR EXISTS (SELECT 1 FROM jsonb_object_keys(e) k WHERE k NOT IN ('line', 'qty'))
           OR jsonb_typeof(e -> 'line') IS DISTINCT FROM 'number' OR (e ->> 'line') !~ '^[1-9][0-9]{0,8}$'
           OR (e ? 'qty' AND (jsonb_typeof(e -> 'qty') IS DISTINCT FROM 'number' OR (e ->> 'qty') !~ '^[1-9][0-9]{0,8}$')) THEN
            RAISE EXCEPTION 'each line must be a line number or like {"line":2,"qty":1} (a quantity of at least 1)'
                USING ERRCODE = 'OL400';
        END IF;
        v_no := (e ->> 'line')::integer;
        IF v_no = ANY (v_seen) THEN
            RAISE EXCEPTION 'line % is listed twice', v_no USING ERRCODE = 'OL400';
        END IF;
        v_seen := v_seen || v_no;
        v_out := v_out || jsonb_build_object('line', v_no, 'qty', (e ->> 'qty')::integer);
    END LOOP;
    RETURN v_out;
END
$$;

-- The policy rows of a status as a sentence ("any type in EUR, custom in any currency"), NULL when
-- it has none: what a refused cancellation and an admin removing a row are told.
CREATE OR REPLACE FUNCTION orderly.cancellation_rows_text(status text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(coalesce(x.order_type, 'any type') || ' in ' || coalesce(x.currency, 'any currency'), ', ' ORDER BY x.id)
    FROM orderly.cancellation_policies x WHERE x.status = $1
$$;

-- What cancelling would do now, as a document; changes nothing. lines: as cancel_lines_arg
-- returns them, NULL for everything still open. quoted: the plan a request was quoted (its
-- policy row, value and fee): the fee is never more than those terms give for what is cancelled
-- now, nor more than the quoted fee in proportion to what is cancelled now (a fee on the order's
-- value must not grow with lines added meanwhile). With quoted (a request being decided) the
-- plan is of what is still there of what was asked: a line's quantity down to what is still open
-- (a part shipped while the request waited), a line with nothing open left out. Raises (OL409)
-- when the order cannot be cancelled at its status, or a line (with quoted: every line) has
-- nothing left to cancel.
DROP FUNCTION IF EXISTS orderly.cancellation_plan(orderly.orders, jsonb);
DROP FUNCTION IF EXISTS orderly.cancellation_plan(orderly.orders, jsonb, numeric);
DROP FUNCTION IF EXISTS orderly.cancellation_plan(orderly.orders, jsonb, jsonb);
CREATE OR REPLACE FUNCTION orderly.cancellation_plan(o orderly.orders, lines jsonb, quoted jsonb DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p          orderly.cancellation_policies := orderly.cancellation_policy_for(o);
    l          record;
    r          jsonb;
    v_lines    jsonb := '[]';
    v_value    numeric := 0;
    v_units    integer;
    v_asked    integer;
    v_release  jsonb;
    v_stock    jsonb := '{}';
    v_whole    boolean;
    v_fee      numeric;
    v_owed     numeric := orderly.amount_owed(o);
    v_after    orderly.orders;
    v_judged   text;      -- the status whose policy rows apply (refusal only)
    v_rows     text;
BEGIN
    IF p.id IS NULL THEN
        -- (A draft or a rejected order never gets here: ORDER CANCEL discards it, V044.)
        v_judged := orderly.cancellation_status(o);
        v_rows := orderly.cancellation_rows_text(v_judged);
        RAISE EXCEPTION '%', CASE
            WHEN o.status = 'cancelled' THEN format('order %s is cancelled already', o.id)
            WHEN o.status = 'shipped' AND cardinality(orderly.services_to_perform(o.id)) > 0
                THEN format('order %s is shipped: its goods have shipped, and an order is not cancelled once shipped, its services not yet performed included', o.id)
            WHEN o.status IN ('shipped', 'delivered', 'completed')
                THEN format('order %s is %s: everything has shipped, and shipped or delivered lines cannot be cancelled (a return is another flow)', o.id, o.status)
            WHEN v_rows IS NOT NULL
                THEN format('order %s is %s: the cancellation policy''s rows for %s (%s) are for other orders than a %s order in %s, so it cannot be cancelled; an admin adds a row for it (admin.set_cancellation_policy)',
                            o.id, o.status, v_judged, v_rows, o.type, o.currency)
            ELSE format('order %s is %s: the cancellation policy has no row for %s, so it cannot be cancelled', o.id, o.status, v_judged) END
            USING ERRCODE = 'OL409';
    END IF;
    IF lines IS NOT NULL AND quoted IS NULL THEN
        FOR r IN SELECT x FROM jsonb_array_elements(lines) x LOOP
            IF NOT EXISTS (SELECT 1 FROM orderly.order_lines x WHERE x.order_id = o.id AND x.line_no = (r ->> 'line')::integer) THEN
                RAISE EXCEPTION 'order % has no line %', o.id, r ->> 'line' USING ERRCODE = 'OL404';
            END IF;
        END LOOP;
    END IF;

    FOR l IN
        SELECT ol.line_no, ol.kind, ol.ordered, ol.shipped, ol.open, x.qty, x.cancelled_qty, x.net + x.tax AS worth,
               lp.body ->> 'product' AS product, lp.body ->> 'sku' AS sku, lp.body ->> 'name' AS name,
               (SELECT pl.status FROM orderly.production_lines pl WHERE pl.order_id = o.id AND pl.line_no = ol.line_no) AS production,
               EXISTS (SELECT 1 FROM orderly.shipment_lines sl JOIN orderly.shipments s ON s.id = sl.shipment_id
                       WHERE sl.order_id = o.id AND sl.line_no = ol.line_no AND s.status = 'delivered') AS delivered,
               (SELECT (e ->> 'qty')::integer FROM jsonb_array_elements(lines) e WHERE (e ->> 'line')::integer = ol.line_no) AS asked,
               lines IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements(lines) e WHERE (e ->> 'line')::integer = ol.line_no) AS chosen
        FROM orderly.open_lines(o.id) ol
        JOIN orderly.order_lines x ON x.order_id = o.id AND x.line_no = ol.line_no
        -- Each line's pricing by its key (LIMIT 1 keeps it a lookup, as in order_doc, R__140).
        LEFT JOIN LATERAL (SELECT y.body FROM orderly.line_pricings y WHERE y.digest = x.pricing LIMIT 1) lp ON true
        ORDER BY ol.line_no
    LOOP
        CONTINUE WHEN NOT l.chosen;
        -- What is left of the line: a line that ships, its open units; a service, what is not
        -- cancelled until it is performed (then nothing).
        v_units := CASE WHEN orderly.line_ships(l.kind) THEN l.open WHEN l.production = 'done' THEN 0 ELSE l.ordered END;
        IF quoted IS NOT NULL THEN
            l.asked := least(l.asked, v_units);
        END IF;
        IF lines IS NOT NULL AND v_units = 0 AND quoted IS NULL THEN
            RAISE EXCEPTION '%', CASE
                WHEN l.ordered = 0 THEN format('line %s is cancelled already', l.line_no)
                WHEN NOT orderly.line_ships(l.kind) THEN format('line %s has been performed: a performed service cannot be cancelled', l.line_no)
                WHEN l.delivered THEN format('line %s has been delivered: delivered lines cannot be cancelled (a return is another flow)', l.line_no)
                ELSE format('line %s has shipped: shipped units cannot be cancelled', l.line_no) END
                USING ERRCODE = 'OL409';
        END IF;
        v_asked := coalesce(l.asked, v_units);
        IF v_asked > v_units THEN
            RAISE EXCEPTION 'line %: % ordered%, % shipped, % still open; cannot cancel %', l.line_no, l.qty,
                CASE WHEN l.cancelled_qty > 0 THEN format(', %s cancelled', l.cancelled_qty) ELSE '' END, l.shipped,
                v_units, v_asked USING ERRCODE = 'OL409';
        END IF;
        CONTINUE WHEN v_asked = 0;
        -- The stock its reservation gives back: per unit, its SKU or each bundle component.
        SELECT coalesce(jsonb_agg(jsonb_build_object('sku_id', t.sku_id, 'sku', k.code, 'qty', t.per * v_asked)
                                  ORDER BY t.sku_id), '[]')
        INTO v_release
        FROM (SELECT u.sku_id, sum(u.per)::integer AS per
              FROM orderly.order_lines x CROSS JOIN LATERAL orderly.line_units(x) u
              WHERE x.order_id = o.id AND x.line_no = l.line_no
              GROUP BY u.sku_id) t
        JOIN orderly.skus k ON k.id = t.sku_id;
        v_value := v_value + round(l.worth * (l.cancelled_qty + v_asked) / l.qty, 2) - round(l.worth * l.cancelled_qty / l.qty, 2);
        v_lines := v_lines || jsonb_build_object(
            'line', l.line_no, 'product', l.product, 'sku', l.sku, 'name', l.name, 'kind', l.kind,
            'qty', v_asked, 'of', l.ordered, 'shipped', l.shipped,
            'value', round(l.worth * (l.cancelled_qty + v_asked) / l.qty, 2) - round(l.worth * l.cancelled_qty / l.qty, 2),
            'release', v_release,
            'production', CASE WHEN orderly.line_needs_production(l.kind)
                               THEN CASE coalesce(l.production, 'not_started')
                                    WHEN 'in_production' THEN CASE WHEN v_asked = l.ordered THEN 'stopped' ELSE 'reduced' END
                                    WHEN 'not_started' THEN 'not_started'
                                    ELSE l.production END END,
            'whole_line', v_asked = l.ordered);
        SELECT v_stock || coalesce(jsonb_object_agg(e ->> 'sku', coalesce((v_stock ->> (e ->> 'sku'))::integer, 0) + (e ->> 'qty')::integer), '{}')
        INTO v_stock
        FROM jsonb_array_elements(v_release) e;
    END LOOP;

    IF jsonb_array_length(v_lines) = 0 THEN
        RAISE EXCEPTION '%', CASE WHEN quoted IS NOT NULL
            THEN format('the request to cancel part of order %s has nothing left to cancel: what it asked for has been performed since; reject it (CANCEL REJECT %s)', o.id, o.id)
            WHEN EXISTS (SELECT 1 FROM orderly.shipment_lines sl WHERE sl.order_id = o.id)
            THEN format('order %s has nothing left to cancel: what is not cancelled has shipped, and shipped or delivered lines cannot be cancelled (a return is another flow)', o.id)
            ELSE format('order %s has nothing left to cancel', o.id) END
            USING ERRCODE = 'OL409';
    END IF;

    -- The whole order goes when nothing has shipped and every unit of every line is cancelled.
    v_whole := NOT EXISTS (SELECT 1 FROM orderly.shipment_lines sl WHERE sl.order_id = o.id)
               AND NOT EXISTS (SELECT 1 FROM orderly.order_lines x
                               WHERE x.order_id = o.id
                                 AND x.qty - x.cancelled_qty > coalesce((SELECT (e ->> 'qty')::integer FROM jsonb_array_elements(v_lines) e
                                                                         WHERE (e ->> 'line')::integer = x.line_no), 0));
    v_fee := orderly.cancellation_fee(p, v_value, o.total - o.cancelled_total);
    IF quoted IS NOT NULL THEN
        v_fee := least(v_fee,
                       orderly.cancellation_fee(jsonb_populate_record(NULL::orderly.cancellation_policies, quoted -> 'policy'),
                                                v_value, o.total - o.cancelled_total),
                       CASE WHEN (quoted ->> 'cancelled_value')::numeric > 0
                            THEN round((quoted ->> 'fee')::numeric * v_value / (quoted ->> 'cancelled_value')::numeric, 2) END);
    END IF;
    v_after := o;
    v_after.cancelled_total := o.cancelled_total + v_value;
    v_after.charges_total := o.charges_total + v_fee;
    RETURN jsonb_build_object(
        'order', o.id,
        'order_status', o.status,
        'currency', o.currency,
        'policy', orderly.cancellation_policy_doc(p),
        'needs_approval_by', p.approval_role,
        'lines', v_lines,
        'whole_order', v_whole,
        'cancelled_value', v_value,
        'fee', v_fee,
        'owed_before', v_owed,
        'owed_after', orderly.amount_owed(v_after),
        'paid', o.amount_paid - o.amount_refunded,
        'open_amount', orderly.open_amount(v_after),
        'refund_due', orderly.refund_due(v_after),
        'stock_released', v_stock,
        'coupon_released', v_whole AND EXISTS (SELECT 1 FROM orderly.coupon_redemptions c WHERE c.order_id = o.id AND c.released_at IS NULL),
        'production_stopped', (SELECT coalesce(jsonb_agg((e ->> 'line')::integer ORDER BY (e ->> 'line')::integer), '[]')
                               FROM jsonb_array_elements(v_lines) e WHERE e ->> 'production' = 'stopped'),
        'issues_closed', CASE WHEN v_whole THEN (SELECT count(*) FROM orderly.production_issues i
                                                 WHERE i.order_id = o.id AND i.resolved_at IS NULL) ELSE 0 END,
        'approvals_closed', CASE WHEN v_whole THEN (SELECT count(*) FROM orderly.order_approvals a
                                                    WHERE a.order_id = o.id AND a.status IN ('pending', 'waiting')) ELSE 0 END);
END
$$;

-- Carrying it out ---------------------------------------------------------------------------------------

-- Does what plan says (made under the same row lock, by cancellation_plan) and returns the order.
-- Stock goes back SKU by SKU in id order, each a guarded UPDATE, the reservation rows with it
-- (a row all of whose units are cancelled or shipped is released and keeps its last qty, as
-- shipping does).
CREATE OR REPLACE FUNCTION orderly.apply_cancellation(o orderly.orders, plan jsonb, actor_id bigint, cancellation_id bigint,
                                                      reason text)
RETURNS orderly.orders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_before jsonb := jsonb_build_object('status', o.status, 'cancelled_total', o.cancelled_total,
                                         'charges_total', o.charges_total, 'payment_status', orderly.payment_status(o));
    need     record;
    n        integer;
BEGIN
    UPDATE orderly.order_lines x SET cancelled_qty = x.cancelled_qty + (e ->> 'qty')::integer, updated_at = now()
    FROM jsonb_array_elements(plan -> 'lines') e
    WHERE x.order_id = o.id AND x.line_no = (e ->> 'line')::integer;

    -- The order's reservation rows, then the SKU counters in id order.
    UPDATE orderly.stock_reservations x
    SET qty = CASE WHEN x.qty > t.qty THEN x.qty - t.qty ELSE x.qty END,
        released_at = CASE WHEN x.qty = t.qty THEN now() END
    FROM (SELECT (e ->> 'line')::integer AS line_no, (r ->> 'sku_id')::bigint AS sku_id, (r ->> 'qty')::integer AS qty
          FROM jsonb_array_elements(plan -> 'lines') e, jsonb_array_elements(e -> 'release') r) t
    WHERE x.order_id = o.id AND x.line_no = t.line_no AND x.sku_id = t.sku_id AND x.released_at IS NULL AND x.qty >= t.qty;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> (SELECT count(*) FROM jsonb_array_elements(plan -> 'lines') e, jsonb_array_elements(e -> 'release') r) THEN
        RAISE EXCEPTION 'order % does not hold the stock reserved for what it cancels', o.id USING ERRCODE = 'OL409';
    END IF;
    FOR need IN SELECT (r ->> 'sku_id')::bigint AS sku_id, sum((r ->> 'qty')::integer)::integer AS qty
                FROM jsonb_array_elements(plan -> 'lines') e, jsonb_array_elements(e -> 'release') r
                GROUP BY 1 ORDER BY 1 LOOP
        UPDATE orderly.skus x SET stock_reserved = x.stock_reserved - need.qty, updated_at = now()
        WHERE x.id = need.sku_id AND x.stock_reserved >= need.qty;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'SKU %: % to release, but less is reserved', need.sku_id, need.qty USING ERRCODE = 'OL409';
        END IF;
    END LOOP;
    IF (plan -> 'stock_released') <> '{}' THEN
        PERFORM orderly.audit(actor_id, 'order.stock_release', 'order', o.id::text, NULL,
                              jsonb_build_object('skus', plan -> 'stock_released', 'cancellation', cancellation_id));
    END IF;

    -- Production: a line cancelled whole stops; the whole order closes its open issues.
    UPDATE orderly.production_lines x SET status = 'cancelled'
    WHERE x.order_id = o.id AND x.status = 'in_production'
      AND x.line_no IN (SELECT (e ->> 'line')::integer FROM jsonb_array_elements(plan -> 'lines') e WHERE e ->> 'production' = 'stopped');
    IF (plan ->> 'whole_order')::boolean THEN
        UPDATE orderly.production_issues x SET resolved_by = actor_id, resolved_at = now(),
               resolution = left('Order cancelled: ' || reason, 2000)
        WHERE x.order_id = o.id AND x.resolved_at IS NULL;
        -- An approval still waiting has nothing left to decide.
        UPDATE orderly.order_approvals x SET status = 'skipped'
        WHERE x.order_id = o.id AND x.status IN ('pending', 'waiting');
        PERFORM orderly.coupon_release(o.id, actor_id);
    ELSE
        -- The lines cancelled were the last production work: its issues have nothing left to delay.
        PERFORM orderly.close_issues_without_work(o, actor_id, left('Production cancelled: ' || reason, 2000));
    END IF;

    -- Money: what the cancelled units were worth leaves what is owed; the fee is a charge.
    IF (plan ->> 'fee')::numeric > 0 THEN
        INSERT INTO orderly.order_charges (order_id, customer_id, kind, amount, currency, cancellation_id, created_by)
        VALUES (o.id, o.customer_id, 'cancellation_fee', (plan ->> 'fee')::numeric, o.currency, cancellation_id, actor_id);
    END IF;
    UPDATE orderly.orders x
    SET cancelled_total = x.cancelled_total + (plan ->> 'cancelled_value')::numeric,
        charges_total = x.charges_total + (plan ->> 'fee')::numeric,
        updated_at = now()
    WHERE x.id = o.id
    RETURNING * INTO o;

    IF (plan ->> 'whole_order')::boolean THEN
        -- Authorised by the policy (and its approver), not by the transition's permission.
        o := orderly.change_status(o, 'cancelled', actor_id, reason, automatic => true);
    ELSE
        o := orderly.advance(o, actor_id);
    END IF;
    PERFORM orderly.audit(actor_id, 'order.cancel', 'order', o.id::text, v_before,
                          jsonb_build_object('status', o.status, 'cancelled_total', o.cancelled_total,
                                             'charges_total', o.charges_total, 'payment_status', orderly.payment_status(o),
                                             'cancellation', cancellation_id,
                                             'lines', (SELECT jsonb_agg(jsonb_build_object('line', e -> 'line', 'qty', e -> 'qty'))
                                                       FROM jsonb_array_elements(plan -> 'lines') e),
                                             'fee', plan -> 'fee', 'reason', reason));
    RETURN o;
END
$$;

-- The plan's lines as replies show them (json, keys in reading order).
CREATE OR REPLACE FUNCTION orderly.cancel_lines_doc(lines jsonb) RETURNS json
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(json_agg(json_build_object(
               'line', l -> 'line', 'product', l -> 'product', 'sku', l -> 'sku', 'name', l -> 'name', 'kind', l -> 'kind',
               'qty', l -> 'qty', 'of', l -> 'of', 'shipped', l -> 'shipped', 'value', l -> 'value', 'whole_line', l -> 'whole_line',
               'release', (SELECT json_object_agg(r ->> 'sku', r -> 'qty') FROM jsonb_array_elements(l -> 'release') r),
               'production', l -> 'production') ORDER BY (l ->> 'line')::integer), '[]')
    FROM jsonb_array_elements($1) l
$$;

-- Documents --------------------------------------------------------------------------------------------

-- A cancellation as ORDER CANCEL, CANCEL APPROVE / REJECT and CANCEL LIST answer it; a customer
-- login sees it through the allow-list (orderly.customer_shape 'cancellation'): not who decided,
-- not the approving role, not the stock or the production.
CREATE OR REPLACE FUNCTION orderly.cancellation_doc(c orderly.order_cancellations) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o orderly.orders;
BEGIN
    SELECT * INTO o FROM orderly.orders x WHERE x.id = c.order_id;
    -- A rejected request charged nothing and changed nothing: its quote is not what happened.
    IF c.status = 'rejected' THEN
        c.fee := 0.00;
        c.plan := c.plan || jsonb_build_object('cancelled_value', 0.00, 'stock_released', '{}'::jsonb, 'production_stopped', '[]'::jsonb);
    END IF;
    RETURN json_build_object(
        'id', c.id,
        'order', c.order_id,
        'status', c.status,
        'message', CASE c.status
                   WHEN 'requested' THEN 'A cancellation request was sent; staff will decide on it'
                   WHEN 'applied' THEN CASE WHEN (c.plan ->> 'whole_order')::boolean THEN 'The order is cancelled'
                                            ELSE 'The lines are cancelled' END
                   ELSE 'The cancellation request was rejected' END,
        'reason', c.reason,
        'lines', orderly.cancel_lines_doc(c.plan -> 'lines'),
        'whole_order', c.plan -> 'whole_order',
        'cancelled_value', c.plan -> 'cancelled_value',
        'fee', c.fee,
        'currency', c.currency,
        'policy', c.plan -> 'policy',
        'needs_approval_by', c.plan -> 'needs_approval_by',
        'stock_released', c.plan -> 'stock_released',
        'production_stopped', c.plan -> 'production_stopped',
        'refund_due', CASE WHEN c.status = 'requested' THEN c.plan -> 'refund_due' ELSE to_jsonb(orderly.refund_due(o)) END,
        'open_amount', CASE WHEN c.status = 'requested' THEN c.plan -> 'open_amount' ELSE to_jsonb(orderly.open_amount(o)) END,
        'payment_status', orderly.payment_status(o),
        'order_status', o.status,
        'requested_by', orderly.username_of(c.requested_by),
        'requested_at', orderly.json_time(c.requested_at),
        'decided_by', orderly.username_of(c.decided_by),
        'decided_at', orderly.json_time(c.decided_at),
        -- Why a request was rejected is the customer's to know; an approver's note is staff's.
        'decision_reason', CASE WHEN c.status = 'rejected' THEN c.decision_reason END,
        'note', CASE WHEN c.status = 'applied' THEN c.decision_reason END);
END
$$;

-- quote=true's answer: the plan as it stands, with what ORDER CANCEL would do for this caller.
CREATE OR REPLACE FUNCTION orderly.cancellation_quote_doc(plan jsonb, outcome text) RETURNS json
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'status', 'quote',
        'outcome', $2,
        'message', CASE $2 WHEN 'cancel' THEN 'Nothing was changed; ORDER CANCEL without quote= cancels'
                   ELSE 'Nothing was changed; ORDER CANCEL without quote= sends a request for staff to decide' END,
        'order', $1 -> 'order', 'order_status', $1 -> 'order_status', 'currency', $1 -> 'currency',
        'lines', orderly.cancel_lines_doc($1 -> 'lines'), 'whole_order', $1 -> 'whole_order',
        'cancelled_value', $1 -> 'cancelled_value', 'fee', $1 -> 'fee', 'policy', $1 -> 'policy',
        'owed_before', $1 -> 'owed_before', 'owed_after', $1 -> 'owed_after', 'paid', $1 -> 'paid',
        'open_amount', $1 -> 'open_amount', 'refund_due', $1 -> 'refund_due',
        'needs_approval_by', $1 -> 'needs_approval_by', 'stock_released', $1 -> 'stock_released',
        'coupon_released', $1 -> 'coupon_released', 'production_stopped', $1 -> 'production_stopped',
        'issues_closed', $1 -> 'issues_closed', 'approvals_closed', $1 -> 'approvals_closed')
$$;

-- Who is told, once each ----------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION orderly.notify_cancelled(o orderly.orders, c orderly.order_cancellations, actor_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_payload jsonb := jsonb_build_object(
        'order', o.id,
        'cancellation', c.id,
        'customer', (SELECT x.name FROM orderly.customers x WHERE x.id = o.customer_id),
        'status', o.status,
        'whole_order', c.plan -> 'whole_order',
        'lines', (SELECT jsonb_agg(jsonb_build_object('line', e -> 'line', 'qty', e -> 'qty', 'name', e -> 'name',
                                                      'production', e -> 'production'))
                  FROM jsonb_array_elements(c.plan -> 'lines') e),
        'fee', c.fee,
        'currency', c.currency,
        'refund_due', orderly.refund_due(o),
        'reason', c.reason,
        'at', orderly.json_time(c.decided_at));
    v_ships boolean := EXISTS (SELECT 1 FROM jsonb_array_elements(c.plan -> 'lines') e WHERE orderly.line_ships(e ->> 'kind'));
    v_makes boolean := EXISTS (SELECT 1 FROM jsonb_array_elements(c.plan -> 'lines') e
                               WHERE e ->> 'production' IN ('stopped', 'reduced', 'not_started'));
    r       record;
BEGIN
    FOR r IN
        SELECT x.role FROM (VALUES (1, 'warehouse', v_ships), (2, 'logistics', v_ships),
                                   (3, 'production_manager', v_makes), (4, 'finance_manager', true)) x (n, role, told)
        WHERE x.told ORDER BY x.n
    LOOP
        PERFORM api.notify(NULL, r.role, 'order.cancelled', v_payload, actor_id);
    END LOOP;
    FOR r IN SELECT p AS user_id FROM orderly.order_people(o, c.requested_by) p LOOP
        PERFORM api.notify(r.user_id, NULL, 'order.cancelled', v_payload, actor_id);
    END LOOP;
END
$$;

-- The order's request waiting for a decision, row-locked (the caller holds the order's lock).
CREATE OR REPLACE FUNCTION orderly.cancel_request_of(o orderly.orders) RETURNS orderly.order_cancellations
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c orderly.order_cancellations;
BEGIN
    SELECT * INTO c FROM orderly.order_cancellations x WHERE x.order_id = o.id AND x.status = 'requested' FOR UPDATE;
    IF c.id IS NULL THEN
        RAISE EXCEPTION 'order % has no cancellation request waiting for a decision', o.id USING ERRCODE = 'OL404';
    END IF;
    RETURN c;
END
$$;

-- Commands ---------------------------------------------------------------------------------------------

-- Why a cancellation ends the change waiting on its order (the change's author and the customer are
-- told: change.declined): a change is decided on the whole order, which the cancellation alters.
CREATE OR REPLACE FUNCTION orderly.cancel_closes_change(lines jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE WHEN $1 IS NULL THEN 'order cancelled'
                ELSE 'part of the order was cancelled; ask for the change again if it still stands' END
$$;

CREATE OR REPLACE FUNCTION api.order_cancel(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ORDER CANCEL', order_cancel.actor, order_cancel.args);
    v_replay json := orderly.replay(u, order_cancel.args);
    v_quote  boolean := coalesce(orderly.arg_bool(args, 'quote'), false);
    v_reason text := btrim(orderly.arg_text(args, 'reason', NOT coalesce(orderly.arg_bool(args, 'quote'), false)));
    v_lines  jsonb := orderly.cancel_lines_arg(orderly.arg_value(args, 'lines'));
    v_own    bigint := orderly.own_customer(u);
    o        orderly.orders;
    c        orderly.order_cancellations;
    ch       orderly.order_changes;
    v_plan   jsonb;
    v_direct boolean;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF v_reason IS NOT NULL AND (length(v_reason) NOT BETWEEN 1 AND 500 OR v_reason ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'reason must be one line of 1 to 500 characters' USING ERRCODE = 'OL400';
    END IF;
    -- A quote reads; a cancellation takes the order's row lock first, as every change to an order.
    o := orderly.order_for(u, orderly.arg_bigint(args, 'id', true), NOT v_quote);
    -- A draft or a rejected order is discarded whole, free, with no policy (V044): nothing was
    -- ordered, or its stock and coupon went back at the rejection.
    IF o.status IN ('draft', 'rejected') THEN
        IF v_lines IS NOT NULL THEN
            RAISE EXCEPTION 'order % is %: ORDER CANCEL discards it whole (a draft''s lines go with ORDER LINE REMOVE)',
                o.id, CASE o.status WHEN 'draft' THEN 'a draft' ELSE 'rejected' END USING ERRCODE = 'OL400';
        END IF;
        IF v_quote THEN
            RAISE EXCEPTION 'order % is %: discarding it is free and needs nobody; ORDER CANCEL % reason= does it',
                o.id, CASE o.status WHEN 'draft' THEN 'a draft' ELSE 'rejected' END, o.id USING ERRCODE = 'OL409';
        END IF;
        o := orderly.change_status(o, 'cancelled', u.id, v_reason);
        RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order', orderly.order_doc(o), v_own));
        RETURN;
    END IF;
    v_plan := orderly.cancellation_plan(o, v_lines);
    -- A customer itself only while it is free and needs nobody's approval; staff unless the
    -- policy names a role they do not hold.
    v_direct := CASE WHEN v_own IS NOT NULL THEN (v_plan ->> 'fee')::numeric = 0 AND v_plan ->> 'needs_approval_by' IS NULL
                     ELSE v_plan ->> 'needs_approval_by' IS NULL
                          OR (v_plan ->> 'needs_approval_by') = ANY (orderly.user_role_names(u.id)) END;
    IF v_quote THEN
        RETURN NEXT orderly.remember(u, args, orderly.visible_doc('cancellation_quote',
            orderly.cancellation_quote_doc(v_plan, CASE WHEN v_direct THEN 'cancel' ELSE 'request' END), v_own));
        RETURN;
    END IF;
    SELECT * INTO c FROM orderly.order_cancellations x WHERE x.order_id = o.id AND x.status = 'requested';
    IF c.id IS NOT NULL THEN
        RAISE EXCEPTION 'order % already has a cancellation request (%) waiting for a decision', o.id, c.id USING ERRCODE = 'OL409';
    END IF;
    -- A change still waiting (R__197_amendments.sql) is abandoned first: the stock it held goes
    -- back, and the plan is made again on the order as it then is.
    ch := orderly.pending_change(o);
    IF v_direct AND ch.id IS NOT NULL THEN
        ch := orderly.close_change(u, o, ch, 'abandoned', orderly.cancel_closes_change(v_lines), orderly.cancel_closes_change(v_lines));
        v_plan := orderly.cancellation_plan(o, v_lines);
    END IF;
    INSERT INTO orderly.order_cancellations (order_id, customer_id, status, reason, lines, plan, fee, currency,
                                             requested_by, decided_by, decided_at)
    VALUES (o.id, o.customer_id, CASE WHEN v_direct THEN 'applied' ELSE 'requested' END, v_reason, v_lines, v_plan,
            (v_plan ->> 'fee')::numeric, o.currency, u.id,
            CASE WHEN v_direct THEN u.id END, CASE WHEN v_direct THEN now() END)
    RETURNING * INTO c;
    IF v_direct THEN
        o := orderly.apply_cancellation(o, v_plan, u.id, c.id, v_reason);
    ELSE
        PERFORM orderly.audit(u.id, 'order.cancel_request', 'order', o.id::text, NULL,
                              jsonb_build_object('cancellation', c.id, 'lines', v_lines, 'fee', c.fee, 'reason', v_reason));
    END IF;
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('cancellation', orderly.cancellation_doc(c), v_own));
    IF v_direct THEN
        PERFORM orderly.notify_cancelled(o, c, u.id);
        IF ch.status = 'abandoned' THEN
            PERFORM orderly.notify_declined(o, ch, u.id);
        END IF;
    ELSE
        PERFORM api.notify(NULL, coalesce(v_plan ->> 'needs_approval_by', 'customer_service'), 'cancel.requested',
                           jsonb_build_object('order', o.id, 'cancellation', c.id,
                                              'customer', (SELECT x.name FROM orderly.customers x WHERE x.id = o.customer_id),
                                              'fee', c.fee, 'currency', c.currency, 'reason', c.reason,
                                              'requested_by', u.username, 'at', orderly.json_time(c.requested_at)), u.id);
    END IF;
END
$$;

SELECT orderly.register_command('ORDER CANCEL', 'api.order_cancel', 'order.cancel',
    arguments  => 'id:id! reason:text lines:array quote:boolean',
    positional => '{id}',
    usage      => 'ORDER CANCEL id reason= [lines=[1,{"line":2,"qty":1}]] [quote=true]',
    summary    => 'Cancel an order, or the unshipped units of some lines, under the cancellation policy; quote=true only shows the fee and what would be released. A customer, or a stage that needs approval, sends a request.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.cancel_approve(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('CANCEL APPROVE', cancel_approve.actor, cancel_approve.args);
    v_replay json := orderly.replay(u, cancel_approve.args);
    v_note   text := nullif(btrim(orderly.arg_text(args, 'note')), '');
    o        orderly.orders;
    req      orderly.order_cancellations;
    c        orderly.order_cancellations;
    ch       orderly.order_changes;
    v_plan   jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF length(v_note) > 500 OR v_note ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'note must be one line of at most 500 characters' USING ERRCODE = 'OL400';
    END IF;
    o := orderly.order_for(u, orderly.arg_bigint(args, 'id', true), true);
    req := orderly.cancel_request_of(o);
    ch := orderly.pending_change(o);
    IF ch.id IS NOT NULL THEN
        ch := orderly.close_change(u, o, ch, 'abandoned', orderly.cancel_closes_change(req.lines), orderly.cancel_closes_change(req.lines));
    END IF;
    -- Decided on the order as it stands now (a part may have shipped since it was asked), but
    -- never on worse terms than the requester was quoted: neither a policy changed meanwhile nor
    -- the order moving on while the request waited costs them more for what is cancelled.
    v_plan := orderly.cancellation_plan(o, req.lines, req.plan);
    IF v_plan ->> 'needs_approval_by' IS NOT NULL AND NOT (v_plan ->> 'needs_approval_by') = ANY (orderly.user_role_names(u.id)) THEN
        RAISE EXCEPTION 'a cancellation of an order that is % is decided by role %', o.status, v_plan ->> 'needs_approval_by'
            USING ERRCODE = 'OL403';
    END IF;
    UPDATE orderly.order_cancellations x
    SET status = 'applied', plan = v_plan, fee = (v_plan ->> 'fee')::numeric, decided_by = u.id, decided_at = now(),
        decision_reason = v_note
    WHERE x.id = req.id
    RETURNING * INTO c;
    o := orderly.apply_cancellation(o, v_plan, u.id, c.id, c.reason);
    RETURN NEXT orderly.remember(u, args, orderly.cancellation_doc(c));
    PERFORM orderly.notify_cancelled(o, c, u.id);
    IF ch.id IS NOT NULL THEN
        PERFORM orderly.notify_declined(o, ch, u.id);
    END IF;
END
$$;

SELECT orderly.register_command('CANCEL APPROVE', 'api.cancel_approve', 'cancel.decide',
    arguments  => 'id:id! note:text',
    positional => '{id}',
    usage      => 'CANCEL APPROVE id [note=]',
    summary    => 'Approve the waiting cancellation request of order id: it is carried out on the order as it stands now, with the fee of its policy row, never on worse terms than were quoted.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.cancel_reject(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('CANCEL REJECT', cancel_reject.actor, cancel_reject.args);
    v_replay json := orderly.replay(u, cancel_reject.args);
    v_reason text := btrim(orderly.arg_text(args, 'reason', true));
    o        orderly.orders;
    req      orderly.order_cancellations;
    c        orderly.order_cancellations;
    n        record;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF length(v_reason) NOT BETWEEN 1 AND 500 OR v_reason ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'reason must be one line of 1 to 500 characters' USING ERRCODE = 'OL400';
    END IF;
    o := orderly.order_for(u, orderly.arg_bigint(args, 'id', true), true);
    req := orderly.cancel_request_of(o);
    IF req.plan ->> 'needs_approval_by' IS NOT NULL AND NOT (req.plan ->> 'needs_approval_by') = ANY (orderly.user_role_names(u.id)) THEN
        RAISE EXCEPTION 'this cancellation request is decided by role %', req.plan ->> 'needs_approval_by' USING ERRCODE = 'OL403';
    END IF;
    UPDATE orderly.order_cancellations x
    SET status = 'rejected', decided_by = u.id, decided_at = now(), decision_reason = v_reason
    WHERE x.id = req.id
    RETURNING * INTO c;
    PERFORM orderly.audit(u.id, 'order.cancel_reject', 'order', c.order_id::text, jsonb_build_object('cancellation', c.id),
                          jsonb_build_object('cancellation', c.id, 'reason', v_reason));
    RETURN NEXT orderly.remember(u, args, orderly.cancellation_doc(c));
    -- The one who asked, and the customer's logins when the request was theirs (not the creator:
    -- nothing changed for them; nor the customer of a request staff made and nobody told it of).
    FOR n IN
        SELECT c.requested_by AS user_id WHERE c.requested_by IS NOT NULL
        UNION SELECT x.id FROM orderly.users x
              WHERE x.customer_id = c.customer_id
                AND EXISTS (SELECT 1 FROM orderly.users r WHERE r.id = c.requested_by AND r.customer_id = c.customer_id)
        ORDER BY 1
    LOOP
        PERFORM api.notify(n.user_id, NULL, 'cancel.rejected',
                           jsonb_build_object('order', c.order_id, 'cancellation', c.id, 'reason', v_reason,
                                              'at', orderly.json_time(c.decided_at)), u.id);
    END LOOP;
END
$$;

SELECT orderly.register_command('CANCEL REJECT', 'api.cancel_reject', 'cancel.decide',
    arguments  => 'id:id! reason:text!',
    positional => '{id}',
    usage      => 'CANCEL REJECT id reason=',
    summary    => 'Reject the waiting cancellation request of order id, saying why; the order goes on unchanged.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.cancel_list(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('CANCEL LIST', cancel_list.actor, cancel_list.args);
    v_status text := lower(btrim(orderly.arg_text(args, 'status')));
    v_order  bigint := orderly.arg_bigint(args, 'order');
    v_limit  integer := orderly.arg_limit(args, 100, 1000);
    v_own    bigint := orderly.own_customer(u);
BEGIN
    IF v_status IS NOT NULL AND v_status NOT IN ('requested', 'applied', 'rejected') THEN
        RAISE EXCEPTION 'status must be requested, applied or rejected' USING ERRCODE = 'OL400';
    END IF;
    IF v_order IS NOT NULL THEN
        PERFORM orderly.order_for(u, v_order, false);
    END IF;
    RETURN QUERY
    SELECT orderly.visible_doc('cancellation', orderly.cancellation_doc(c), v_own)
    FROM orderly.order_cancellations c
    JOIN orderly.orders o ON o.id = c.order_id
    WHERE (v_status IS NULL OR c.status = v_status)
      AND (v_order IS NULL OR c.order_id = v_order)
      AND orderly.order_visible(u, o)
    ORDER BY c.id DESC
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('CANCEL LIST', 'api.cancel_list', 'order.read',
    arguments  => 'status:code order:id limit:integer',
    usage      => 'CANCEL LIST [status=requested|applied|rejected] [order=] [limit=]',
    summary    => 'Cancellations of the orders one may see, newest first: the requests waiting for a decision with status=requested.');

-- REFUND RECORD: paying back what a cancellation left due, recorded like PAYMENT REFUND (known by
-- its method and reference: the same again is the same refund, the same reply) but never more
-- than the refund due.
CREATE OR REPLACE FUNCTION api.refund_record(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('REFUND RECORD', refund_record.actor, refund_record.args);
    v_replay json := orderly.replay(u, refund_record.args);
    e        record;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    e := orderly.enter_payment(u, args || jsonb_build_object('method', coalesce(orderly.arg_text(args, 'method'), 'bank_transfer')),
                               'refund', only_refund_due => true);
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('payment', orderly.payment_doc(e.p), orderly.own_customer(u)));
    IF e.created THEN
        PERFORM orderly.notify_payment(e.p, u.id);
    END IF;
END
$$;

SELECT orderly.register_command('REFUND RECORD', 'api.refund_record', 'payment.record',
    arguments  => 'order:id! amount:number! reference:text! method:code refunded_at:timestamp currency:code',
    usage      => 'REFUND RECORD order= amount= reference= [method=bank_transfer|card|cash|cheque|other] [refunded_at=] [currency=]',
    summary    => 'Record paying back what is due after a cancellation (at most the refund due); the same method and reference again is the same refund.',
    changes    => true);

-- Admins: the policy ------------------------------------------------------------------------------------

CREATE OR REPLACE VIEW admin.cancellation_policies AS
SELECT p.status, p.order_type, p.currency, p.fee_percent, p.fee_basis, p.fee_fixed, p.fee_min, p.fee_max, p.approval_role, p.note
FROM orderly.cancellation_policies p
JOIN orderly.order_statuses s ON s.code = p.status
ORDER BY s.position, p.order_type NULLS FIRST, p.currency NULLS FIRST;

COMMENT ON VIEW admin.cancellation_policies IS
    'The cancellation policy: the fee and the approving role per status (and optionally order type and currency)';

-- Creates or replaces the row for (status, order_type, currency); returns it. Audited as the
-- admin's (actor_kind admin_sql).
CREATE OR REPLACE FUNCTION admin.set_cancellation_policy(status text, fee_percent numeric DEFAULT 0,
    fee_basis text DEFAULT 'cancelled_value', fee_fixed numeric DEFAULT 0, fee_min numeric DEFAULT NULL,
    fee_max numeric DEFAULT NULL, approval_role text DEFAULT NULL, order_type text DEFAULT NULL,
    currency text DEFAULT NULL, note text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_before jsonb;
    p        orderly.cancellation_policies;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orderly.order_statuses s WHERE s.code = set_cancellation_policy.status) THEN
        RAISE EXCEPTION 'unknown status "%"', orderly.for_message(status) USING ERRCODE = 'OL404';
    END IF;
    -- A row is read only where an order can be cancelled from (a transition to cancelled); an
    -- order on hold is charged as at the status it was held from.
    IF status = 'on_hold' THEN
        RAISE EXCEPTION 'an order on hold is charged by the row of the status it was held from: set that one' USING ERRCODE = 'OL409';
    END IF;
    IF status IN ('draft', 'rejected') THEN
        RAISE EXCEPTION 'a % order is discarded free, by no policy (nothing was ordered, or it went back at the rejection)', status
            USING ERRCODE = 'OL409';
    END IF;
    -- shipped: the order is not cancelled, but its services not yet performed are (V041).
    IF NOT EXISTS (SELECT 1 FROM orderly.order_status_transitions t
                   WHERE t.from_status = set_cancellation_policy.status AND t.to_status = 'cancelled')
       AND status <> 'shipped' THEN
        RAISE EXCEPTION 'an order that is % is not cancelled (only %; and at shipped its services not yet performed)', status,
            (SELECT string_agg(t.from_status, ', ' ORDER BY s.position) FROM orderly.order_status_transitions t
             JOIN orderly.order_statuses s ON s.code = t.from_status
             WHERE t.to_status = 'cancelled' AND t.from_status NOT IN ('on_hold', 'draft', 'rejected'))
            USING ERRCODE = 'OL409';
    END IF;
    IF approval_role IS NOT NULL THEN
        PERFORM orderly.check_role_holds(approval_role, 'cancel.decide');
    END IF;
    -- The table's checks would say the same in PostgreSQL's words; each field's own here.
    IF fee_percent IS NULL OR fee_percent NOT BETWEEN 0 AND 100 OR fee_percent <> round(fee_percent, 2) THEN
        RAISE EXCEPTION 'fee_percent must be 0 to 100 with at most 2 decimals (0: no percentage)' USING ERRCODE = 'OL400';
    END IF;
    IF fee_basis IS NULL OR fee_basis NOT IN ('cancelled_value', 'order_value') THEN
        RAISE EXCEPTION 'fee_basis must be cancelled_value or order_value' USING ERRCODE = 'OL400';
    END IF;
    IF fee_fixed IS NULL OR fee_fixed < 0 OR fee_fixed <> round(fee_fixed, 2) OR fee_min < 0 OR fee_min <> round(fee_min, 2)
       OR fee_max < 0 OR fee_max <> round(fee_max, 2) OR fee_fixed >= 1e12 OR fee_min >= 1e12 OR fee_max >= 1e12 THEN
        RAISE EXCEPTION 'fee_fixed, fee_min and fee_max are amounts of at least 0, below 10^12, with at most 2 decimals (fee_fixed 0: none)'
            USING ERRCODE = 'OL400';
    END IF;
    IF fee_min > fee_max THEN
        RAISE EXCEPTION 'fee_min (%) is more than fee_max (%)', fee_min, fee_max USING ERRCODE = 'OL400';
    END IF;
    IF order_type IS NOT NULL AND order_type NOT IN ('standard', 'custom', 'strategic') THEN
        RAISE EXCEPTION 'order_type must be standard, custom or strategic (NULL: any)' USING ERRCODE = 'OL400';
    END IF;
    currency := orderly.check_currency(currency);
    IF note IS NOT NULL AND (length(note) > 500 OR NOT orderly.shows_on_one_line(note)) THEN
        RAISE EXCEPTION 'note must be at most 500 characters on one line, without control or direction-override characters'
            USING ERRCODE = 'OL400';
    END IF;
    IF currency IS NULL AND (fee_fixed <> 0 OR fee_min IS NOT NULL OR fee_max IS NOT NULL) THEN
        RAISE EXCEPTION 'a fixed fee, a minimum or a maximum is an amount: give its currency' USING ERRCODE = 'OL400';
    END IF;
    SELECT orderly.cancellation_policy_doc(x) INTO v_before FROM orderly.cancellation_policies x
    WHERE x.status = set_cancellation_policy.status AND x.order_type IS NOT DISTINCT FROM set_cancellation_policy.order_type
      AND x.currency IS NOT DISTINCT FROM upper(set_cancellation_policy.currency) FOR UPDATE;
    INSERT INTO orderly.cancellation_policies AS x (status, order_type, currency, fee_percent, fee_basis, fee_fixed,
                                                    fee_min, fee_max, approval_role, note)
    VALUES (status, order_type, upper(currency), fee_percent, fee_basis, fee_fixed, fee_min, fee_max, approval_role, nullif(btrim(note), ''))
    ON CONFLICT ON CONSTRAINT cancellation_policies_key DO UPDATE
    SET fee_percent = excluded.fee_percent, fee_basis = excluded.fee_basis, fee_fixed = excluded.fee_fixed,
        fee_min = excluded.fee_min, fee_max = excluded.fee_max, approval_role = excluded.approval_role, note = excluded.note
    RETURNING * INTO p;
    PERFORM orderly.audit(NULL, 'cancellation_policy.set', 'cancellation_policy', p.id::text, v_before,
                          orderly.cancellation_policy_doc(p), actor_kind => 'admin_sql');
    RETURN orderly.cancellation_policy_doc(p);
END
$$;

COMMENT ON FUNCTION admin.set_cancellation_policy(text, numeric, text, numeric, numeric, numeric, text, text, text, text) IS
    'Create or replace the cancellation policy row of a status (optionally per order type and currency): fee and approving role (audited)';

-- Removes a row: the order can then not be cancelled at that status (unless a less specific row
-- applies). Returns whether there was one.
CREATE OR REPLACE FUNCTION admin.remove_cancellation_policy(status text, order_type text DEFAULT NULL, currency text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    p orderly.cancellation_policies;
BEGIN
    DELETE FROM orderly.cancellation_policies x
    WHERE x.status = remove_cancellation_policy.status AND x.order_type IS NOT DISTINCT FROM remove_cancellation_policy.order_type
      AND x.currency IS NOT DISTINCT FROM upper(remove_cancellation_policy.currency)
    RETURNING * INTO p;
    IF p.id IS NOT NULL THEN
        PERFORM orderly.audit(NULL, 'cancellation_policy.remove', 'cancellation_policy', p.id::text,
                              orderly.cancellation_policy_doc(p), NULL, actor_kind => 'admin_sql');
        -- Without a row for any type and currency, some orders at that status cannot be cancelled
        -- any more (nor their waiting requests decided): say so, as the approval checks do.
        IF NOT EXISTS (SELECT 1 FROM orderly.cancellation_policies x
                       WHERE x.status = p.status AND x.order_type IS NULL AND x.currency IS NULL) THEN
            RAISE NOTICE 'orders at % are cancelled only where a row applies: %', p.status,
                coalesce(orderly.cancellation_rows_text(p.status), 'none, so no order at ' || p.status || ' can be cancelled');
        END IF;
    END IF;
    RETURN p.id IS NOT NULL;
END
$$;

COMMENT ON FUNCTION admin.remove_cancellation_policy(text, text, text) IS
    'Remove a cancellation policy row (audited); without a row that applies, an order cannot be cancelled at that status';
