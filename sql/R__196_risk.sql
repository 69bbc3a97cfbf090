-- Orderly: delay warnings, explainable, in SQL (issue 13, item 4). Tables in V018.
--
-- orderly.orders_at_risk(now) lists each open order with every reason it may be late, with the
-- evidence (reasons are rows of orderly.risk_reasons):
--   late_stage        the requested date is before now + the expected time of the stages still
--                     ahead: per stage the median time orders spent in that status (from the status
--                     history of the last 180 days, at least 3 examples), else its SLA
--                     (orderly.stage_slas); the current stage less the time already spent in it;
--                     in_production only while a make-to-order line is not made; once shipped, the
--                     open shipments' ETA (R__137_shipment_eta.sql) rather than a median;
--   stock_short       a line still to ship waits on a SKU whose stock cannot cover it: its
--                     reservation is short of what is open (released, or never made) and the SKU's
--                     free stock cannot make up the rest;
--   production_issue  an open PRODUCTION ISSUE (material, equipment, quality, other);
--   transport         an open shipment's latest tracking event is an exception, a failed attempt
--                     or a return, or its carrier's ETA is after the requested date.
-- analytics.orders_at_risk is that list now, for BI. api.run_delay_checks(now) (orderlyd's timer,
-- --delay-check-interval; or pg_cron) raises a delay warning once per order and reason — again only
-- after the reason cleared and came back — to the order's creator, the role owning its stage and
-- customer_service (delay.warning), and tells the customer (order.delay to its logins, and an
-- e-mail through the outbox) in the customer's words of risk_reasons.customer_text.

-- The statuses an order is "open" in, for risk.
CREATE OR REPLACE FUNCTION orderly.risk_open(status text) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT $1 IN ('pending_approval', 'approved', 'in_production', 'ready', 'partially_shipped', 'shipped', 'on_hold')
$$;

-- How long orders usually stay in each status: the median over the last 180 days, when there are
-- at least 3 examples, else the stage's SLA. One row per status of orderly.stage_slas.
CREATE OR REPLACE FUNCTION orderly.stage_durations(now timestamptz)
RETURNS TABLE (status text, expected interval, source text, examples integer, owner_role text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH spans AS (
        SELECT h.to_status AS status,
               lead(h.changed_at) OVER (PARTITION BY h.order_id ORDER BY h.changed_at, h.id) - h.changed_at AS took
        FROM orderly.order_status_history h
        WHERE h.changed_at > $1 - interval '180 days' AND h.changed_at <= $1
    ), medians AS (
        SELECT s.status, count(*)::integer AS n,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.took)) * interval '1 second' AS median
        FROM spans s WHERE s.took IS NOT NULL
        GROUP BY s.status
    )
    SELECT x.status,
           CASE WHEN coalesce(m.n, 0) >= 3 THEN m.median ELSE x.sla END,
           CASE WHEN coalesce(m.n, 0) >= 3 THEN 'history' ELSE 'sla' END,
           coalesce(m.n, 0),
           x.owner_role
    FROM orderly.stage_slas x LEFT JOIN medians m ON m.status = x.status
$$;

-- The same as one document {status: {expected, source}}, which orderly.expected_delivery reads
-- (computed once per check, not once per order).
CREATE OR REPLACE FUNCTION orderly.stage_durations_doc(now timestamptz) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_object_agg(d.status, jsonb_build_object('expected', d.expected::text, 'source', d.source))
    FROM orderly.stage_durations($1) d
$$;

-- A duration as people read it: whole seconds, days and hours ("1 day 23:59:56").
CREATE OR REPLACE FUNCTION orderly.duration_text(d interval) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT justify_interval(date_trunc('second', $1))::text
$$;

-- The stages still ahead of order o, each with its expected remaining time, and when it should be
-- delivered; durations from orderly.stage_durations (a jsonb {status: {expected, source}}, read
-- once per check rather than once per order).
CREATE OR REPLACE FUNCTION orderly.expected_delivery(o orderly.orders, now timestamptz, durations jsonb)
RETURNS TABLE (expected_by timestamptz, remaining jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_path       text[];
    v_from       text := CASE WHEN o.status = 'on_hold' THEN o.held_from ELSE o.status END;
    v_entered    timestamptz;
    v_unmade     boolean;
    v_eta        timestamptz;
    v_eta_source text;
    v_stage      text;
    v_left       interval;
    v_total      interval := interval '0';
    v_items      jsonb := '[]';
BEGIN
    -- When it entered its current status, as of "now" (a check run for an earlier time ignores
    -- what happened after it).
    SELECT max(h.changed_at) INTO v_entered
    FROM orderly.order_status_history h WHERE h.order_id = o.id AND h.changed_at <= now;
    v_unmade := EXISTS (SELECT 1 FROM orderly.open_lines(o.id) l WHERE NOT l.produced);
    -- The latest ETA of its open shipments (the carrier's own when it gave one, else the lane's
    -- history or the carrier's default transit: R__137_shipment_eta.sql).
    SELECT e.eta, e.eta_source INTO v_eta, v_eta_source
    FROM orderly.shipments s CROSS JOIN LATERAL orderly.shipment_eta(s) e
    WHERE s.order_id = o.id AND s.status = 'shipped' AND e.eta IS NOT NULL
    ORDER BY e.eta DESC
    LIMIT 1;
    -- The path from where the order is to delivery, in status order: in_production only while a
    -- make-to-order line is not made; partially_shipped only when it is there already (an order
    -- that is ready usually ships whole, and counting both would count the shipping twice).
    SELECT array_agg(st.code ORDER BY st.position) INTO v_path
    FROM orderly.order_statuses st
    WHERE st.code IN ('pending_approval', 'approved', 'in_production', 'ready', 'partially_shipped', 'shipped')
      AND st.position >= (SELECT x.position FROM orderly.order_statuses x WHERE x.code = v_from)
      AND (st.code <> 'in_production' OR v_unmade)
      AND (st.code <> 'partially_shipped' OR v_from = 'partially_shipped');
    -- On hold: the hold first, then the way on from where it was held.
    IF o.status = 'on_hold' THEN
        v_path := ARRAY['on_hold'] || v_path;
    END IF;
    FOREACH v_stage IN ARRAY coalesce(v_path, '{}') LOOP
        IF v_stage = 'shipped' AND v_eta IS NOT NULL AND v_stage = v_path[cardinality(v_path)] THEN
            -- In transit: the shipments' own ETA says more than a median of the stage.
            v_left := greatest(v_eta - now, interval '0');
            v_items := v_items || jsonb_build_object('stage', v_stage, 'expected', orderly.duration_text(v_left),
                                                     'source', 'eta', 'eta_source', v_eta_source);
        ELSE
            v_left := (durations -> v_stage ->> 'expected')::interval;
            IF v_stage = o.status THEN
                v_left := greatest(v_left - (now - coalesce(v_entered, now)), interval '0');
            END IF;
            v_items := v_items || jsonb_build_object('stage', v_stage, 'expected', orderly.duration_text(v_left),
                                                     'source', durations -> v_stage ->> 'source');
        END IF;
        v_total := v_total + coalesce(v_left, interval '0');
    END LOOP;
    expected_by := now + v_total;
    remaining := v_items;
    RETURN NEXT;
END
$$;

-- The risks of the open orders as of "now", one row per order and reason; only_order: of that
-- order alone (ORDER RISK), instead of every open order.
DROP FUNCTION IF EXISTS orderly.orders_at_risk(timestamptz);
-- UTC days (expected_by::date against requested dates) whoever calls it: orderlyd's pool is UTC,
-- but pg_cron, an admin's psql and a BI tool have their own time zone.
CREATE OR REPLACE FUNCTION orderly.orders_at_risk(now timestamptz, only_order bigint DEFAULT NULL)
RETURNS TABLE (order_id bigint, reason text, evidence jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_durations jsonb;
    -- The orders looked at, chosen once for the four checks below.
    v_ids       bigint[] := ARRAY(SELECT o.id FROM orderly.orders o
                                  WHERE orderly.risk_open(o.status) AND (only_order IS NULL OR o.id = only_order));
BEGIN
    v_durations := orderly.stage_durations_doc(now);

    -- late_stage: delivered on the requested date is in time, so late means a later day.
    RETURN QUERY
    SELECT o.id, 'late_stage'::text,
           jsonb_build_object('requested_date', o.requested_date, 'expected_by', orderly.json_time(e.expected_by),
                              'remaining', e.remaining)
    FROM orderly.orders o CROSS JOIN LATERAL orderly.expected_delivery(o, now, v_durations) e
    WHERE o.id = ANY (v_ids) AND o.requested_date IS NOT NULL AND e.expected_by::date > o.requested_date;

    -- stock_short, per line and SKU still to ship (a goods line its SKU, a bundle line each
    -- component: orderly.order_stock_needs, scaled from the units ordered less cancelled to those
    -- still open). A submitted order holds a reservation for exactly that (R__115 reserves it;
    -- shipping takes it down with the units shipped, R__190, a cancellation with the units
    -- cancelled, R__198, and an amendment sets it to the new lines, R__197), so a normally
    -- reserved order is never short: only the units its reservation does not cover (released, or
    -- never made) have to come from the SKU's free stock, and the order's lines on one SKU draw
    -- on that free stock together.
    -- Evidence per short line and SKU: needed = the units not covered by its reservation,
    -- available = the SKU's free stock; open and reserved explain the first.
    RETURN QUERY
    SELECT t.order_id, 'stock_short'::text,
           jsonb_agg(jsonb_build_object('line', t.line_no, 'sku', k.code, 'needed', t.uncovered, 'available', t.free,
                                        'open', t.needed, 'reserved', t.held) ORDER BY t.line_no, k.code)
    FROM (SELECT u.*, sum(u.uncovered) OVER (PARTITION BY u.order_id, u.sku_id) AS uncovered_sku
          FROM (SELECT o.id AS order_id, l.line_no, n.sku_id, l.open * n.qty / l.ordered AS needed,
                       coalesce(r.qty, 0) AS held,
                       greatest(l.open * n.qty / l.ordered - coalesce(r.qty, 0), 0) AS uncovered,
                       greatest(k.stock_on_hand - k.stock_reserved, 0) AS free
                FROM orderly.orders o
                CROSS JOIN LATERAL orderly.open_lines(o.id) l
                CROSS JOIN LATERAL (SELECT x.sku_id, sum(x.qty)::integer AS qty FROM orderly.order_stock_needs(o.id) x
                                    WHERE x.line_no = l.line_no GROUP BY x.sku_id) n
                JOIN orderly.skus k ON k.id = n.sku_id
                LEFT JOIN orderly.stock_reservations r
                       ON r.order_id = o.id AND r.line_no = l.line_no AND r.sku_id = n.sku_id AND r.released_at IS NULL
                WHERE o.id = ANY (v_ids) AND l.open > 0) u) t
    JOIN orderly.skus k ON k.id = t.sku_id
    WHERE t.uncovered > 0 AND t.uncovered_sku > t.free
    GROUP BY t.order_id;

    RETURN QUERY
    SELECT o.id, 'production_issue'::text,
           jsonb_agg(jsonb_build_object('issue', i.id, 'kind', i.kind, 'note', i.note, 'opened_at', orderly.json_time(i.opened_at))
                     ORDER BY i.id)
    FROM orderly.orders o JOIN orderly.production_issues i ON i.order_id = o.id AND i.resolved_at IS NULL
    WHERE o.id = ANY (v_ids)
    GROUP BY o.id;

    -- transport: besides an exception and a failed attempt, a shipment on its way back to us
    -- ('returned', which R__192 also tells the warehouse about) will not arrive either.
    RETURN QUERY
    SELECT o.id, 'transport'::text,
           jsonb_agg(jsonb_build_object('shipment', s.id, 'carrier', s.carrier, 'tracking_no', s.tracking_no,
                                        'tracking_code', s.tracking_code, 'tracking_at', orderly.json_time(s.tracking_at),
                                        'carrier_eta', orderly.json_time(s.carrier_eta)) ORDER BY s.id)
    FROM orderly.orders o JOIN orderly.shipments s ON s.order_id = o.id AND s.status = 'shipped'
    WHERE o.id = ANY (v_ids)
      AND (s.tracking_code IN ('exception', 'failed_attempt', 'returned')
           OR (o.requested_date IS NOT NULL AND s.carrier_eta::date > o.requested_date))
    GROUP BY o.id;
END
$$;

COMMENT ON FUNCTION orderly.orders_at_risk(timestamptz, bigint) IS
    'Open orders that may be late as of "now": one row per order and reason (late_stage, stock_short, production_issue, transport) with its evidence';

-- For BI: the list as of a time (SECURITY DEFINER: BI logins read analytics only, never the
-- orderly tables the check reads), and the view of it now.
CREATE OR REPLACE FUNCTION analytics.orders_at_risk_at(at timestamptz)
RETURNS TABLE (order_id bigint, customer_id bigint, customer_name text, status text, requested_date date, reason text,
               reason_description text, evidence jsonb, warned_since timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.order_id, o.customer_id, c.name, o.status, o.requested_date, r.reason, rr.description, r.evidence, w.raised_at
    FROM orderly.orders_at_risk($1) r
    JOIN orderly.orders o ON o.id = r.order_id
    JOIN orderly.customers c ON c.id = o.customer_id
    JOIN orderly.risk_reasons rr ON rr.code = r.reason
    LEFT JOIN orderly.delay_warnings w ON w.order_id = r.order_id AND w.reason = r.reason AND w.cleared_at IS NULL
    ORDER BY r.order_id, r.reason
$$;

REVOKE ALL ON FUNCTION analytics.orders_at_risk_at(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.orders_at_risk_at(timestamptz) TO orderly_bi;
COMMENT ON FUNCTION analytics.orders_at_risk_at(timestamptz) IS
    'Open orders that may be late as of a given time, one row per order and reason (analytics.orders_at_risk is now)';

CREATE OR REPLACE VIEW analytics.orders_at_risk AS
SELECT * FROM analytics.orders_at_risk_at(now());

COMMENT ON VIEW analytics.orders_at_risk IS 'Open orders that may be late, one row per order and reason, with the evidence (now)';
COMMENT ON COLUMN analytics.orders_at_risk.order_id IS 'The order';
COMMENT ON COLUMN analytics.orders_at_risk.customer_id IS 'Its customer';
COMMENT ON COLUMN analytics.orders_at_risk.customer_name IS 'The customer''s name';
COMMENT ON COLUMN analytics.orders_at_risk.status IS 'The order''s status now';
COMMENT ON COLUMN analytics.orders_at_risk.requested_date IS 'The date the customer asked for';
COMMENT ON COLUMN analytics.orders_at_risk.reason IS 'late_stage, stock_short, production_issue or transport';
COMMENT ON COLUMN analytics.orders_at_risk.reason_description IS 'What the reason means';
COMMENT ON COLUMN analytics.orders_at_risk.evidence IS 'Why: stages and expected date, short lines, open issues, or shipments in trouble (JSON)';
COMMENT ON COLUMN analytics.orders_at_risk.warned_since IS 'When the delay warning for this reason was raised (NULL: not yet)';

-- The timer ---------------------------------------------------------------------------------------------

-- What the customer is told of a reason, in its language (orderly.risk_reason_texts), else in
-- English (risk_reasons.customer_text). For an e-mail (template: its kind), in its language only
-- when the e-mail is (a template of that kind in it; else the whole e-mail is English).
DROP FUNCTION IF EXISTS orderly.reason_text(orderly.risk_reasons, bigint);
CREATE OR REPLACE FUNCTION orderly.reason_text(rr orderly.risk_reasons, customer_id bigint, template text DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT t.customer_text FROM orderly.risk_reason_texts t JOIN orderly.customers c ON c.language = t.language
                     WHERE t.reason = ($1).code AND c.id = $2
                       AND ($3 IS NULL OR EXISTS (SELECT 1 FROM orderly.message_templates m WHERE m.kind = $3 AND m.language = t.language))),
                    ($1).customer_text)
$$;

CREATE OR REPLACE FUNCTION api.run_delay_checks(now timestamptz DEFAULT now()) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_now    timestamptz := run_delay_checks.now;
    r        record;
    w        orderly.delay_warnings;
    o        orderly.orders;
    rr       orderly.risk_reasons;
    v_raised bigint[] := '{}';
    v_owner  text;
    v_names  text[];
    v_id     bigint;
    n        record;
    v_risks  jsonb;
BEGIN
    IF v_now IS NULL THEN
        RAISE EXCEPTION 'now is required' USING ERRCODE = 'OL400';
    END IF;
    -- Two int4 keys ("orde", "dela"), beside the reminders' ("orde", "remi"): one server at a time.
    IF NOT pg_try_advisory_xact_lock(x'6f726465'::integer, x'64656c61'::integer) THEN
        RETURN;
    END IF;
    -- The risks now, computed once: a jsonb array rather than a temporary table, so that a timer
    -- running every few seconds on every server does not churn the catalog.
    SELECT coalesce(jsonb_agg(jsonb_build_object('order_id', k.order_id, 'reason', k.reason, 'evidence', k.evidence)
                              ORDER BY k.order_id, k.reason), '[]')
    INTO v_risks FROM orderly.orders_at_risk(v_now) k;

    -- Cleared: the reason no longer applies (or the order is no longer open). Bounded like the
    -- raising below: the next tick clears the rest.
    FOR w IN
        SELECT x.* FROM orderly.delay_warnings x
        WHERE x.cleared_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM jsonb_to_recordset(v_risks) AS k(order_id bigint, reason text)
                          WHERE k.order_id = x.order_id AND k.reason = x.reason)
        ORDER BY x.id
        LIMIT 500
    LOOP
        UPDATE orderly.delay_warnings x SET cleared_at = greatest(v_now, x.raised_at) WHERE x.id = w.id;
        PERFORM orderly.audit(NULL, 'delay.cleared', 'order', w.order_id::text,
                              jsonb_build_object('reason', w.reason, 'raised_at', w.raised_at),
                              jsonb_build_object('reason', w.reason, 'cleared_at', greatest(v_now, w.raised_at)),
                              actor_kind => 'system');
        RETURN NEXT json_build_object('kind', 'cleared', 'order', w.order_id, 'reason', w.reason, 'recipients', '[]'::json);
    END LOOP;

    -- Raised: new reasons, in order id order (a bounded run: the next tick does the rest).
    FOR r IN
        SELECT k.* FROM jsonb_to_recordset(v_risks) AS k(order_id bigint, reason text, evidence jsonb)
        WHERE NOT EXISTS (SELECT 1 FROM orderly.delay_warnings x WHERE x.order_id = k.order_id AND x.reason = k.reason
                          AND x.cleared_at IS NULL)
        ORDER BY k.order_id, k.reason
        LIMIT 500
    LOOP
        -- The partial unique index is the backstop should anybody else raise it meanwhile.
        INSERT INTO orderly.delay_warnings (order_id, reason, evidence, raised_at)
        VALUES (r.order_id, r.reason, r.evidence, v_now)
        ON CONFLICT (order_id, reason) WHERE cleared_at IS NULL DO NOTHING
        RETURNING id INTO v_id;
        CONTINUE WHEN v_id IS NULL;
        PERFORM orderly.audit(NULL, 'delay.warning', 'order', r.order_id::text, NULL,
                              jsonb_build_object('warning', v_id, 'reason', r.reason, 'evidence', r.evidence),
                              actor_kind => 'system');
        SELECT * INTO o FROM orderly.orders x WHERE x.id = r.order_id;
        SELECT * INTO rr FROM orderly.risk_reasons x WHERE x.code = r.reason;
        -- The e-mail is a row of the outbox, written with the warning (no lock of api.notify's).
        IF rr.notify_customer THEN
            PERFORM orderly.queue_customer_email('order.delay', o,
                jsonb_build_object('reason', orderly.reason_text(rr, o.customer_id, 'order.delay'), 'requested_date', coalesce(o.requested_date::text, '')),
                'order.delay:' || v_id);
        END IF;
        v_raised := v_raised || v_id;
    END LOOP;

    -- The notifications last: api.notify's lock is held until commit.
    FOR w IN SELECT x.* FROM orderly.delay_warnings x WHERE x.id = ANY (v_raised) ORDER BY x.id LOOP
        SELECT * INTO o FROM orderly.orders x WHERE x.id = w.order_id;
        SELECT * INTO rr FROM orderly.risk_reasons x WHERE x.code = w.reason;
        SELECT s.owner_role INTO v_owner FROM orderly.stage_slas s WHERE s.status = o.status;
        v_names := '{}';
        FOR n IN SELECT DISTINCT x.user_id, x.role FROM (
                     SELECT o.created_by AS user_id, NULL::text AS role WHERE o.created_by IS NOT NULL
                     UNION ALL SELECT NULL, v_owner WHERE v_owner IS NOT NULL
                     UNION ALL SELECT NULL, 'customer_service') x
                 ORDER BY x.role NULLS FIRST, x.user_id LOOP
            -- NULL when the creator is a customer login, who hears order.delay below instead.
            v_id := api.notify(n.user_id, n.role, 'delay.warning',
                               jsonb_build_object('order', o.id, 'customer', o.customer_id,
                                                  'customer_name', (SELECT c.name FROM orderly.customers c WHERE c.id = o.customer_id),
                                                  'status', o.status, 'requested_date', o.requested_date,
                                                  'reason', w.reason, 'description', rr.description, 'evidence', w.evidence,
                                                  'at', orderly.json_time(w.raised_at)),
                               NULL, 'system');
            IF v_id IS NOT NULL THEN
                v_names := v_names || coalesce(orderly.username_of(n.user_id), n.role);
            END IF;
        END LOOP;
        IF rr.notify_customer THEN
            FOR n IN SELECT u.id FROM orderly.users u WHERE u.customer_id = o.customer_id ORDER BY u.id LOOP
                PERFORM api.notify(n.id, NULL, 'order.delay',
                                   jsonb_build_object('order', o.id, 'reason_text', orderly.reason_text(rr, o.customer_id),
                                                      'requested_date', o.requested_date, 'at', orderly.json_time(w.raised_at)),
                                   NULL, 'system');
            END LOOP;
        END IF;
        RETURN NEXT json_build_object('kind', 'raised', 'order', o.id, 'reason', w.reason, 'recipients', to_json(v_names));
    END LOOP;
END
$$;

COMMENT ON FUNCTION api.run_delay_checks(timestamptz) IS
    'Raise delay warnings due as of "now" (once per order and reason) and clear those whose reason went away (orderlyd timer or pg_cron)';

-- Commands ----------------------------------------------------------------------------------------------

-- ORDER RISK's document: the order's reasons now, and when it is expected to be delivered (NULL
-- once it is no longer open: delivered, completed, cancelled, rejected or a draft).
CREATE OR REPLACE FUNCTION orderly.risk_doc(o orderly.orders, now timestamptz) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'order', ($1).id, 'status', ($1).status, 'requested_date', ($1).requested_date,
        'at_risk', count(r.reason) > 0,
        'reasons', coalesce(json_agg(json_build_object('reason', r.reason, 'description', rr.description, 'evidence', r.evidence,
                                                       'warned_since', orderly.json_time(w.raised_at)) ORDER BY r.reason)
                            FILTER (WHERE r.reason IS NOT NULL), '[]'),
        'expected_by', (SELECT orderly.json_time(e.expected_by)
                        FROM orderly.expected_delivery($1, $2, orderly.stage_durations_doc($2)) e
                        WHERE orderly.risk_open(($1).status)))
    FROM (SELECT 1) one
    LEFT JOIN orderly.orders_at_risk($2, ($1).id) r ON r.order_id = ($1).id
    LEFT JOIN orderly.risk_reasons rr ON rr.code = r.reason
    LEFT JOIN orderly.delay_warnings w ON w.order_id = r.order_id AND w.reason = r.reason AND w.cleared_at IS NULL
$$;

CREATE OR REPLACE FUNCTION api.order_risk(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('ORDER RISK', order_risk.actor, order_risk.args);
BEGIN
    -- order_for refuses an order the caller may not see exactly as ORDER SHOW does (OL404).
    RETURN NEXT orderly.risk_doc(orderly.order_for(u, orderly.arg_bigint(args, 'id', true), false), now());
END
$$;

SELECT orderly.register_command('ORDER RISK', 'api.order_risk', 'risk.read',
    arguments  => 'id:id!',
    positional => '{id}',
    usage      => 'ORDER RISK id',
    summary    => 'Why an order may be late now: each reason (late_stage, stock_short, production_issue, transport) with its evidence.');

CREATE OR REPLACE FUNCTION api.risk_list(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('RISK LIST', risk_list.actor, risk_list.args);
    v_reason text := nullif(lower(btrim(orderly.arg_text(risk_list.args, 'reason'))), '');
    v_after  bigint := orderly.arg_bigint(risk_list.args, 'after');
    v_limit  integer := orderly.arg_limit(risk_list.args, 50, 200);
BEGIN
    IF v_reason IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orderly.risk_reasons x WHERE x.code = v_reason) THEN
        RAISE EXCEPTION 'reason must be one of: %', (SELECT string_agg(x.code, ', ' ORDER BY x.code) FROM orderly.risk_reasons x)
            USING ERRCODE = 'OL400';
    END IF;
    -- The risks are computed once; reason= filters that one computation (one row per order, its
    -- reasons together).
    RETURN QUERY
    SELECT json_build_object('order', o.id, 'customer', o.customer_id,
                             'customer_name', (SELECT c.name FROM orderly.customers c WHERE c.id = o.customer_id),
                             'status', o.status, 'requested_date', o.requested_date,
                             'reasons', json_agg(r.reason ORDER BY r.reason))
    FROM orderly.orders_at_risk(now()) r
    JOIN orderly.orders o ON o.id = r.order_id
    WHERE (v_after IS NULL OR o.id > v_after) AND orderly.order_visible(u, o)
    GROUP BY o.id
    HAVING v_reason IS NULL OR bool_or(r.reason = v_reason)
    ORDER BY o.id
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('RISK LIST', 'api.risk_list', 'risk.read',
    arguments  => 'reason:code limit:integer after:id',
    usage      => 'RISK LIST [reason=late_stage|stock_short|production_issue|transport] [limit=50] [after=id]',
    summary    => 'Open orders you may see that may be late, oldest first, with their reasons; pass the last order as after= for the next page.');
