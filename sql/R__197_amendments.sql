-- Orderly: changing an order after submission (issue 14, item 1). Tables: V020__amendments.sql.
--
--   ORDER AMEND id changes=[…] reason= [reprice=all]   a change: applied at once, or pending
--   CHANGE CONFIRM id · CHANGE DECLINE id reason=      production decides a change to a line in production
--   CHANGE ABANDON id [reason=]                        its author (or staff) withdraws a pending change
--   ORDER VERSIONS id · ORDER DIFF id [from=] [to=]    the versions, and what changed between two
--
-- Actions (each an object of changes=[…]):
--   {"action":"add_line","sku":…|"product":…,"qty":…,"options":{…},"params":{…}[,"unit_price":…,"reason":…]}
--   {"action":"set_line","line":2,"qty":5|"options":{…}|"params":{…}}
--   {"action":"remove_line","line":3}
--   {"action":"ship_to","address":7}
--   {"action":"requested_date","date":"2027-01-15"}
--   {"action":"note","text":"…"[,"kind":"delivery"][,"visibility":"customer"]}
-- Which action is allowed at which status, for a customer login or staff, is the table
-- orderly.amendment_constraints: no row, refused.
--
-- How a change is decided, in SQL (the spirit of Medusa's OrderChange):
--   1. It is tried in a subtransaction (orderly.stage_change: the lines re-priced with the one
--      pricing function — a touched or added line at today's price, every other line at the price
--      it was agreed at unless reprice=all or the new address changes the tax place — the header,
--      the notes), which tells the new snapshot and stock needs, and then is rolled back.
--   2. It waits when a touched line is in production (the production manager confirms: CHANGE
--      CONFIRM) or when the order was approved and its new, higher total falls under an approval
--      rule (or a step's limit) the old total did not: a new approval round for the change, decided
--      with ORDER APPROVE / ORDER REJECT like any round. A produced line, or shipped units, never
--      change: refused.
--   3. Otherwise (and once confirmed and approved) it is applied: staged for real, the order's
--      stock reservation made exactly what its lines still need (increases reserved SKU by SKU in
--      id order, all or nothing: -CONFLICT not enough stock, like submission; decreases given
--      back), the version bumped and its snapshot kept. An order still awaiting approval takes the
--      change at once and, if the new total needs it, a new approval round.
-- While a change waits it holds the stock it will need (the order's reservation rows are the
-- larger of now and after); declined or abandoned, that goes back.
--
-- Locks: the order's row first (orderly.order_for), as every change to an order; then the
-- change's row; then SKUs in id order (orderly.reconcile_reservation).
--
-- Events (last; api.notify holds its lock until commit):
--   order.changed    once the order was approved: warehouse when what is picked changes,
--                    production_manager for make-to-order lines, logistics for the address or
--                    date, finance_manager when the total changes; always the creator, the author
--                    and the customer's logins
--   change.confirm   to production_manager: a change waits for CHANGE CONFIRM
--   approval.requested  to whoever may decide the change's first step
--   change.declined  to the author and the customer's logins

-- Snapshots and diffs ------------------------------------------------------------------------------

-- The order as a version keeps it: header, lines with their agreed prices, totals, notes.
CREATE OR REPLACE FUNCTION orderly.order_snapshot(order_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o orderly.orders;
BEGIN
    SELECT * INTO o FROM orderly.orders x WHERE x.id = order_snapshot.order_id;
    RETURN jsonb_build_object(
        'version', o.version,
        'ship_to', o.ship_to_id,
        'requested_date', o.requested_date,
        'currency', o.currency,
        'totals', jsonb_build_object('subtotal', o.subtotal, 'discount', o.discount_total, 'tax', o.tax_total, 'total', o.total),
        'lines', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'line', l.line_no, 'product', p.body -> 'product', 'sku', p.body -> 'sku', 'name', p.body -> 'name',
                         'kind', p.body -> 'kind', 'qty', l.qty, 'cancelled', l.cancelled_qty,
                         'options', p.body -> 'options', 'params', p.body -> 'params',
                         'list_price', l.list_price, 'net', l.net, 'tax', l.tax, 'total', l.net + l.tax) ORDER BY l.line_no), '[]')
                  -- By its key, never a scan of every pricing (LIMIT keeps it a lookup; see order_doc).
                  FROM orderly.order_lines l
                  LEFT JOIN LATERAL (SELECT x.body FROM orderly.line_pricings x WHERE x.digest = l.pricing LIMIT 1) p ON true
                  WHERE l.order_id = o.id),
        'notes', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', n.id, 'kind', n.kind, 'text', n.text,
                                                               'visibility', n.visibility) ORDER BY n.id), '[]')
                  FROM orderly.order_notes n WHERE n.order_id = o.id));
END
$$;

-- What changed from snapshot a to snapshot b: lines added, removed or changed (each changed field
-- as {from, to}), the header fields, the notes added, the totals.
CREATE OR REPLACE FUNCTION orderly.snapshot_diff(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'lines', (SELECT coalesce(jsonb_agg(d ORDER BY (d ->> 'line')::integer), '[]')
                  FROM (SELECT CASE
                               WHEN y IS NULL THEN jsonb_build_object('line', x -> 'line', 'change', 'removed', 'product', x -> 'product',
                                                                      'name', x -> 'name', 'qty', x -> 'qty')
                               WHEN x IS NULL THEN jsonb_build_object('line', y -> 'line', 'change', 'added', 'product', y -> 'product',
                                                                      'name', y -> 'name', 'qty', y -> 'qty', 'total', y -> 'total')
                               ELSE jsonb_build_object('line', y -> 'line', 'change', 'changed', 'product', y -> 'product',
                                                       'name', y -> 'name', 'fields',
                                   (SELECT jsonb_object_agg(k, jsonb_build_object('from', x -> k, 'to', y -> k))
                                    FROM unnest(ARRAY['sku', 'qty', 'cancelled', 'options', 'params', 'list_price', 'net', 'tax', 'total']) k
                                    WHERE x -> k IS DISTINCT FROM y -> k)) END AS d
                        FROM jsonb_array_elements($1 -> 'lines') x
                        FULL JOIN jsonb_array_elements($2 -> 'lines') y ON (x ->> 'line') = (y ->> 'line')
                        WHERE x IS DISTINCT FROM y) t),
        'header', (SELECT coalesce(jsonb_object_agg(k, jsonb_build_object('from', $1 -> k, 'to', $2 -> k)), '{}')
                   FROM unnest(ARRAY['ship_to', 'requested_date', 'currency']) k WHERE $1 -> k IS DISTINCT FROM $2 -> k),
        'notes', (SELECT coalesce(jsonb_agg(n ORDER BY (n ->> 'id')::bigint), '[]')
                  FROM jsonb_array_elements($2 -> 'notes') n
                  WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements($1 -> 'notes') m WHERE m ->> 'id' = n ->> 'id')),
        'totals', (SELECT coalesce(jsonb_object_agg(k, jsonb_build_object('from', $1 -> 'totals' -> k, 'to', $2 -> 'totals' -> k)), '{}')
                   FROM unnest(ARRAY['subtotal', 'discount', 'tax', 'total']) k
                   WHERE $1 -> 'totals' -> k IS DISTINCT FROM $2 -> 'totals' -> k))
$$;

-- A diff as replies show it (json, keys in reading order: jsonb would sort them by length):
-- lines (each: line, change, product, name, then qty and total of an added or removed line, or
-- the changed fields as {from, to}), header, notes, totals.
CREATE OR REPLACE FUNCTION orderly.diff_doc(d jsonb) RETURNS json
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'lines', (SELECT coalesce(json_agg(CASE l ->> 'change'
                      WHEN 'changed' THEN json_build_object('line', l -> 'line', 'change', l -> 'change', 'product', l -> 'product',
                                              'name', l -> 'name',
                                              'fields', (SELECT json_object_agg(f.k, json_build_object('from', f.v -> 'from', 'to', f.v -> 'to'))
                                                         FROM jsonb_each(l -> 'fields') AS f(k, v)))
                      WHEN 'added' THEN json_build_object('line', l -> 'line', 'change', l -> 'change', 'product', l -> 'product',
                                            'name', l -> 'name', 'qty', l -> 'qty', 'total', l -> 'total')
                      ELSE json_build_object('line', l -> 'line', 'change', l -> 'change', 'product', l -> 'product',
                                             'name', l -> 'name', 'qty', l -> 'qty') END ORDER BY (l ->> 'line')::integer), '[]')
                  FROM jsonb_array_elements($1 -> 'lines') l),
        'header', (SELECT coalesce(json_object_agg(f.k, json_build_object('from', f.v -> 'from', 'to', f.v -> 'to')), '{}')
                   FROM jsonb_each($1 -> 'header') AS f(k, v)),
        'notes', (SELECT coalesce(json_agg(json_build_object('id', n -> 'id', 'kind', n -> 'kind', 'text', n -> 'text',
                                                             'visibility', n -> 'visibility')), '[]')
                  FROM jsonb_array_elements($1 -> 'notes') n),
        'totals', (SELECT coalesce(json_object_agg(f.k, json_build_object('from', f.v -> 'from', 'to', f.v -> 'to')), '{}')
                   FROM jsonb_each($1 -> 'totals') AS f(k, v)))
$$;

-- Version 1 (as submitted) is written when the order is first changed.
CREATE OR REPLACE FUNCTION orderly.keep_first_version(o orderly.orders) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO orderly.order_versions (order_id, version, customer_id, change_id, snapshot, total, created_by, created_at)
    SELECT o.id, o.version, o.customer_id, NULL, orderly.order_snapshot(o.id), o.total, o.submitted_by,
           coalesce(o.submitted_at, o.created_at)
    WHERE NOT EXISTS (SELECT 1 FROM orderly.order_versions v WHERE v.order_id = o.id);
END
$$;

-- Stock -------------------------------------------------------------------------------------------

-- What the order's lines still need from stock, per line and SKU: the units neither cancelled nor
-- shipped (a bundle: of each component). [{"line":1,"sku_id":7,"qty":2},…]
CREATE OR REPLACE FUNCTION orderly.open_stock_needs(order_id bigint) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('line', t.line_no, 'sku_id', t.sku_id, 'qty', t.qty) ORDER BY t.line_no, t.sku_id), '[]')
    FROM (SELECT n.line_no, n.sku_id,
                 -- order_stock_needs counts the units not cancelled; the shipped ones hold nothing any more.
                 n.qty - sh.shipped * (n.qty / (l.qty - l.cancelled_qty)) AS qty
          FROM (SELECT x.line_no, x.sku_id, sum(x.qty)::integer AS qty FROM orderly.order_stock_needs($1) x GROUP BY 1, 2) n
          JOIN orderly.order_lines l ON l.order_id = $1 AND l.line_no = n.line_no
          CROSS JOIN LATERAL (SELECT coalesce(sum(sl.qty), 0)::integer AS shipped FROM orderly.shipment_lines sl
                              WHERE sl.order_id = $1 AND sl.line_no = n.line_no) sh) t
    WHERE t.qty > 0
$$;

-- Makes the order's open reservation rows exactly target (as open_stock_needs gives it) and moves
-- the SKU counters by the difference, SKU by SKU in id order: more reserved by a guarded UPDATE
-- (-CONFLICT not enough stock, the whole command rolled back, as at submission), less given back.
-- Returns {SKU code: units} of what moved (negative: given back).
CREATE OR REPLACE FUNCTION orderly.reconcile_reservation(o orderly.orders, target jsonb, actor_id bigint) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d     record;
    s     orderly.skus;
    v_out jsonb := '{}';
BEGIN
    FOR d IN
        SELECT coalesce(t.sku_id, r.sku_id) AS sku_id, sum(coalesce(t.qty, 0) - coalesce(r.qty, 0))::integer AS delta
        FROM (SELECT (e ->> 'line')::integer AS line_no, (e ->> 'sku_id')::bigint AS sku_id, (e ->> 'qty')::integer AS qty
              FROM jsonb_array_elements(target) e) t
        FULL JOIN (SELECT x.line_no, x.sku_id, x.qty FROM orderly.stock_reservations x
                   WHERE x.order_id = o.id AND x.released_at IS NULL) r ON r.line_no = t.line_no AND r.sku_id = t.sku_id
        GROUP BY 1
        HAVING sum(coalesce(t.qty, 0) - coalesce(r.qty, 0)) <> 0
        ORDER BY 1
    LOOP
        UPDATE orderly.skus x SET stock_reserved = x.stock_reserved + d.delta, updated_at = now()
        WHERE x.id = d.sku_id AND (d.delta < 0 OR x.stock_on_hand - x.stock_reserved >= d.delta)
        RETURNING * INTO s;
        IF NOT FOUND THEN
            SELECT * INTO s FROM orderly.skus x WHERE x.id = d.sku_id;
            RAISE EXCEPTION 'not enough stock for SKU %: % more requested, % available', s.code, d.delta,
                greatest(s.stock_on_hand - s.stock_reserved, 0) USING ERRCODE = 'OL409';
        END IF;
        v_out := v_out || jsonb_build_object(s.code, d.delta);
    END LOOP;
    -- The rows: what is needed now; a row needed no more is released (keeping its last qty).
    UPDATE orderly.stock_reservations x SET released_at = now()
    WHERE x.order_id = o.id AND x.released_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(target) e
                      WHERE (e ->> 'line')::integer = x.line_no AND (e ->> 'sku_id')::bigint = x.sku_id);
    INSERT INTO orderly.stock_reservations AS x (order_id, line_no, sku_id, customer_id, qty)
    SELECT o.id, (e ->> 'line')::integer, (e ->> 'sku_id')::bigint, o.customer_id, (e ->> 'qty')::integer
    FROM jsonb_array_elements(target) e
    ON CONFLICT ON CONSTRAINT stock_reservations_pkey DO UPDATE
    SET qty = excluded.qty, released_at = NULL,
        reserved_at = CASE WHEN x.released_at IS NOT NULL THEN now() ELSE x.reserved_at END
    WHERE x.qty <> excluded.qty OR x.released_at IS NOT NULL;
    IF v_out <> '{}' THEN
        PERFORM orderly.audit(actor_id, 'order.stock_change', 'order', o.id::text, NULL, jsonb_build_object('skus', v_out));
    END IF;
    RETURN v_out;
END
$$;

-- The larger of two needs, per line and SKU: what a waiting change holds.
CREATE OR REPLACE FUNCTION orderly.needs_union(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('line', line, 'sku_id', sku_id, 'qty', qty) ORDER BY line, sku_id), '[]')
    FROM (SELECT (e ->> 'line')::integer AS line, (e ->> 'sku_id')::bigint AS sku_id, max((e ->> 'qty')::integer) AS qty
          FROM (SELECT jsonb_array_elements($1) e UNION ALL SELECT jsonb_array_elements($2)) x
          GROUP BY 1, 2) t
$$;

-- Staging ------------------------------------------------------------------------------------------

-- The cancellation policy row that applies to the order now (an order on hold: the status it was
-- held from; an order back at approved after it was ready: ready), most specific first; NULL: it cannot be cancelled at this status. Here rather than
-- with the cancellation commands (R__198_cancellation.sql, which call this file) because a change
-- that takes units off an order is a cancellation of them and is judged by it (below).
-- The status whose policy row applies: on hold, the status it was held at; back at approved from
-- ready (waiting for a payment, or for a line to be made first: V031), ready — the order was
-- released, and stepping back would make cancelling free.
CREATE OR REPLACE FUNCTION orderly.cancellation_status(o orderly.orders) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status text := CASE WHEN o.status = 'on_hold' THEN o.held_from ELSE o.status END;
BEGIN
    IF v_status = 'approved'
       AND EXISTS (SELECT 1 FROM orderly.order_status_history h WHERE h.order_id = o.id AND h.to_status = 'ready') THEN
        v_status := 'ready';
    END IF;
    RETURN v_status;
END
$$;

CREATE OR REPLACE FUNCTION orderly.cancellation_policy_for(o orderly.orders) RETURNS orderly.cancellation_policies
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p        orderly.cancellation_policies;
    v_status text := orderly.cancellation_status(o);
BEGIN
    SELECT * INTO p FROM orderly.cancellation_policies x
    WHERE x.status = v_status
      AND (x.order_type IS NULL OR x.order_type = o.type)
      AND (x.currency IS NULL OR x.currency = o.currency)
    ORDER BY x.order_type IS NULL, x.currency IS NULL
    LIMIT 1;
    RETURN p;
END
$$;

-- The fee of a policy row: percent of the basis plus the fixed part, at least the minimum, at
-- most the maximum, and never more than the cancelled units are worth (cancelled_value).
-- order_value is what the order is worth before this cancellation.
CREATE OR REPLACE FUNCTION orderly.cancellation_fee(p orderly.cancellation_policies, cancelled_value numeric,
                                                    order_value numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT least(greatest(least(round(CASE ($1).fee_basis WHEN 'order_value' THEN $3 ELSE $2 END * ($1).fee_percent / 100, 2)
                                      + ($1).fee_fixed,
                                coalesce(($1).fee_max, 'Infinity'::numeric)),
                          coalesce(($1).fee_min, 0)),
                 $2)
$$;

-- Units a change takes off an order (a line removed, a quantity lowered, a line's item changed:
-- its units go back) are a cancellation of them: where the policy row that applies now would
-- charge a fee for them or has a role decide it, the change is refused and names ORDER CANCEL,
-- which quotes, charges and asks. Where cancelling them is free and undecided (by the shipped
-- policy: until production starts or the order is released to the warehouse), a change may take them off. Without
-- this an amendment was a free way round the fee and its approval. worth: what the units are
-- worth (as ORDER CANCEL values them); swap: the line's item changes.
DROP FUNCTION IF EXISTS orderly.check_take_off(orderly.orders, integer, integer);
CREATE OR REPLACE FUNCTION orderly.check_take_off(o orderly.orders, line_no integer, units integer, worth numeric,
                                                  swap boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p     orderly.cancellation_policies;
    v_fee numeric;
BEGIN
    IF units <= 0 THEN
        RETURN;
    END IF;
    p := orderly.cancellation_policy_for(o);
    v_fee := CASE WHEN p.id IS NOT NULL THEN orderly.cancellation_fee(p, worth, o.total - o.cancelled_total) END;
    IF v_fee = 0 AND p.approval_role IS NULL THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'line %: % an order that is % is a cancellation, and % (cancellation policy): cancel them instead (ORDER CANCEL % lines=[{"line":%,"qty":%}] reason=…; quote=true tells the fee)%',
        line_no,
        CASE WHEN swap THEN format('changing its item gives back its %s unit%s, and giving units back from', units, CASE WHEN units = 1 THEN '' ELSE 's' END)
             ELSE format('taking %s unit%s off', units, CASE WHEN units = 1 THEN '' ELSE 's' END) END,
        CASE WHEN o.status <> 'on_hold' AND p.status IS DISTINCT FROM o.status THEN format('%s (it was %s)', o.status, p.status)
             ELSE o.status END,
        CASE WHEN p.id IS NULL THEN format('an order that is %s cannot be cancelled', o.status)
             WHEN v_fee = 0 THEN format('%s decides it', p.approval_role)
             WHEN p.approval_role IS NULL THEN 'it costs a fee'
             ELSE format('it costs a fee and %s decides it', p.approval_role) END,
        o.id, line_no, units,
        CASE WHEN swap THEN ' and add a line with the new item' ELSE '' END
        USING ERRCODE = 'OL409';
END
$$;


-- The line's state for a change: what shipped, whether it is in production or made.
CREATE OR REPLACE FUNCTION orderly.line_for_change(o orderly.orders, line_no integer,
    OUT l orderly.order_lines, OUT shipped integer, OUT production text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT * INTO l FROM orderly.order_lines x WHERE x.order_id = o.id AND x.line_no = line_for_change.line_no;
    IF l.line_no IS NULL THEN
        RAISE EXCEPTION 'order % has no line %', o.id, line_no USING ERRCODE = 'OL404';
    END IF;
    SELECT coalesce(sum(sl.qty), 0)::integer INTO shipped FROM orderly.shipment_lines sl
    WHERE sl.order_id = o.id AND sl.line_no = line_for_change.line_no;
    SELECT pl.status INTO production FROM orderly.production_lines pl
    WHERE pl.order_id = o.id AND pl.line_no = line_for_change.line_no;
    IF l.cancelled_qty > 0 THEN
        RAISE EXCEPTION 'line % has cancelled units: change what is left of it with ORDER CANCEL', line_no USING ERRCODE = 'OL409';
    END IF;
    IF production = 'done' THEN
        RAISE EXCEPTION '%', CASE WHEN (SELECT p.kind FROM orderly.products p WHERE p.id = l.product_id) = 'service'
                                  THEN format('line %s has been performed: a performed service cannot change', line_no)
                                  ELSE format('line %s has been produced: a produced line cannot change', line_no) END
            USING ERRCODE = 'OL409';
    END IF;
END
$$;

-- Carries out the actions on the order (row-locked by the caller): lines, header and notes, and
-- returns what it did: {"touched":[lines re-priced], "added":[…], "removed":[…], "production":[lines
-- in production that change], "ship_to":bool, "requested_date":bool, "notes":n}. Raises on any
-- action its constraints, the shipments or production forbid. Stock is the caller's.
CREATE OR REPLACE FUNCTION orderly.stage_change(u orderly.users, o orderly.orders, actions jsonb, reprice boolean) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_party   text := CASE WHEN orderly.own_customer(u) IS NULL THEN 'staff' ELSE 'customer' END;
    v_status  text := o.status;
    v_specs   jsonb := orderly.order_specs(o.id);
    v_touched integer[] := '{}';
    v_unchanged integer[] := '{}';   -- set_line asked as the line is: not priced again
    v_old_spec jsonb;
    v_added   integer[] := '{}';
    v_removed integer[] := '{}';
    v_making  integer[] := '{}';
    v_next    integer := o.next_line_no;
    v_notes   integer := 0;
    v_ship    boolean := false;
    v_date    boolean := false;
    v_place   jsonb := orderly.order_place(o);
    e         jsonb;
    v_action  text;
    v_no      integer;
    v_spec    jsonb;
    v_keys    text[];
    f         record;
    v_pricing jsonb;
    v_line    orderly.order_lines;
    a         orderly.addresses;
    v_repriced integer[];
    v_worth   jsonb;
    v_items   jsonb;
    v_off     integer;
    v_was     orderly.orders := o;   -- the order before this change, as the take-off checks judge it
    v_made    text;
BEGIN
    FOR e IN SELECT x FROM jsonb_array_elements(actions) x LOOP
        v_action := e ->> 'action';
        IF NOT EXISTS (SELECT 1 FROM orderly.amendment_constraints c
                       WHERE c.action = v_action AND c.status = v_status AND c.party = v_party) THEN
            RAISE EXCEPTION '%', CASE WHEN v_party = 'customer' AND EXISTS (SELECT 1 FROM orderly.amendment_constraints c
                                                                                 WHERE c.action = v_action AND c.party = 'staff' AND c.status = v_status)
                THEN format('order %s is %s: ask us to make this change (you may change an order yourself while it is %s)', o.id, v_status,
                            (SELECT string_agg(c.status, ' or ' ORDER BY s.position) FROM orderly.amendment_constraints c
                             JOIN orderly.order_statuses s ON s.code = c.status WHERE c.action = v_action AND c.party = 'customer'))
                ELSE format('%s is not allowed on an order that is %s (amendment constraints)', v_action, v_status) END
                USING ERRCODE = 'OL409';
        END IF;
        CASE v_action
        WHEN 'add_line' THEN
            v_spec := orderly.line_spec(e - 'action');
            IF EXISTS (SELECT 1 FROM jsonb_object_keys(e) k WHERE k NOT IN ('action', 'sku', 'product', 'qty', 'options', 'params', 'unit_price', 'reason')) THEN
                RAISE EXCEPTION 'add_line takes sku or product, qty, options, params, unit_price and reason' USING ERRCODE = 'OL400';
            END IF;
            PERFORM orderly.require_override(u, v_spec);
            v_specs := v_specs || jsonb_build_array(v_spec || jsonb_build_object('line', v_next));
            v_added := v_added || v_next;
            v_touched := v_touched || v_next;
            v_next := v_next + 1;
        WHEN 'set_line', 'remove_line' THEN
            v_keys := ARRAY(SELECT jsonb_object_keys(e));
            IF jsonb_typeof(e -> 'line') IS DISTINCT FROM 'number' OR (e ->> 'line') !~ '^[1-9][0-9]{0,8}$' THEN
                RAISE EXCEPTION '% needs "line": a line number', v_action USING ERRCODE = 'OL400';
            END IF;
            v_no := (e ->> 'line')::integer;
            IF v_no = ANY (v_removed) THEN
                RAISE EXCEPTION 'line % is removed by this change already', v_no USING ERRCODE = 'OL400';
            END IF;
            IF v_no = ANY (v_added) THEN
                RAISE EXCEPTION 'line % is added by this change: give it as it should be in add_line', v_no USING ERRCODE = 'OL400';
            END IF;
            -- Once per line, as SHIPMENT CREATE and ORDER CANCEL: the last of two would win silently.
            IF v_no = ANY (v_touched || v_unchanged) THEN
                RAISE EXCEPTION 'line % is listed twice in this change: give it once, as it should become', v_no USING ERRCODE = 'OL400';
            END IF;
            f := orderly.line_for_change(o, v_no);
            v_line := f.l;
            IF f.production = 'in_production' THEN
                v_making := v_making || v_no;
            END IF;
            IF v_action = 'remove_line' THEN
                IF v_keys <@ ARRAY['action', 'line'] IS NOT TRUE THEN
                    RAISE EXCEPTION 'remove_line takes only "line"' USING ERRCODE = 'OL400';
                END IF;
                IF f.shipped > 0 THEN
                    RAISE EXCEPTION 'line %: % shipped; shipped units cannot be removed', v_no, f.shipped USING ERRCODE = 'OL409';
                END IF;
                v_specs := (SELECT coalesce(jsonb_agg(s), '[]') FROM jsonb_array_elements(v_specs) s WHERE (s ->> 'line')::integer <> v_no);
                v_removed := v_removed || v_no;
            ELSE
                IF NOT (v_keys <@ ARRAY['action', 'line', 'qty', 'options', 'params']) OR NOT (v_keys && ARRAY['qty', 'options', 'params']) THEN
                    RAISE EXCEPTION 'set_line takes "line" and one or more of qty, options, params' USING ERRCODE = 'OL400';
                END IF;
                IF f.shipped > 0 AND (e ? 'options' OR e ? 'params') THEN
                    RAISE EXCEPTION 'line %: % shipped; what has shipped cannot change', v_no, f.shipped USING ERRCODE = 'OL409';
                END IF;
                IF e ? 'qty' AND (jsonb_typeof(e -> 'qty') IS DISTINCT FROM 'number' OR (e ->> 'qty') !~ '^[1-9][0-9]{0,8}$') THEN
                    RAISE EXCEPTION 'line %: qty must be a whole number of at least 1', v_no USING ERRCODE = 'OL400';
                END IF;
                IF (e ->> 'qty')::integer < f.shipped THEN
                    RAISE EXCEPTION 'line %: % shipped; shipped units cannot be removed', v_no, f.shipped USING ERRCODE = 'OL409';
                END IF;
                -- A touched line is priced again as a whole (tiers count its units), which would
                -- change what its shipped units cost.
                IF f.shipped > 0 AND e ? 'qty' THEN
                    RAISE EXCEPTION 'line %: % shipped; its price is fixed once part of it has shipped: cancel what is open of it (ORDER CANCEL % lines=[{"line":%,"qty":…}]) or add a line',
                        v_no, f.shipped, o.id, v_no USING ERRCODE = 'OL409';
                END IF;
                SELECT s INTO v_spec FROM jsonb_array_elements(v_specs) s WHERE (s ->> 'line')::integer = v_no;
                v_old_spec := v_spec;
                -- A manual price was authorised for exactly this item and quantity (as ORDER LINE
                -- SET on a draft): without price.override it is not carried over to another.
                IF v_spec ? 'unit_price' AND NOT orderly.has_permission(u.id, 'price.override') THEN
                    RAISE EXCEPTION 'line % has a manual price: changing it needs price.override (or remove it and add a line at today''s price)', v_no
                        USING ERRCODE = 'OL403';
                END IF;
                -- A new option on a line sold by SKU: the product with the SKU's options and the new ones.
                IF e ? 'options' AND v_spec ? 'sku' THEN
                    v_pricing := orderly.line_pricing(v_line.pricing);
                    v_spec := (v_spec - 'sku') || jsonb_build_object('product', v_pricing -> 'product',
                        'options', coalesce(v_pricing -> 'options', '{}') || (e -> 'options'));
                ELSIF e ? 'options' THEN
                    v_spec := v_spec || jsonb_build_object('options', coalesce(v_spec -> 'options', '{}') || (e -> 'options'));
                END IF;
                v_spec := v_spec || jsonb_strip_nulls(jsonb_build_object('qty', e -> 'qty', 'params', e -> 'params'));
                -- Asked as it is (its quantity, its options, no parameters on an item without
                -- any): not touched, so not priced again at today's prices either.
                IF v_spec - 'params' = v_old_spec - 'params'
                   AND coalesce(nullif(v_spec -> 'params', '{}'), 'null') = coalesce(nullif(v_old_spec -> 'params', '{}'), 'null') THEN
                    v_unchanged := v_unchanged || v_no;
                ELSE
                    v_specs := (SELECT jsonb_agg(CASE WHEN (s ->> 'line')::integer = v_no THEN v_spec ELSE s END)
                                FROM jsonb_array_elements(v_specs) s);
                    v_touched := v_touched || v_no;
                END IF;
            END IF;
        WHEN 'ship_to' THEN
            IF NOT (ARRAY(SELECT jsonb_object_keys(e)) <@ ARRAY['action', 'address']) OR jsonb_typeof(e -> 'address') IS DISTINCT FROM 'number' THEN
                RAISE EXCEPTION 'ship_to takes "address": an address id of the customer' USING ERRCODE = 'OL400';
            END IF;
            IF v_ship THEN
                RAISE EXCEPTION 'ship_to is given twice in this change' USING ERRCODE = 'OL400';
            END IF;
            IF NOT EXISTS (SELECT 1 FROM orderly.open_lines(o.id) x WHERE x.open > 0) THEN
                RAISE EXCEPTION 'order %: everything has shipped; a new ship-to is only for what has not', o.id USING ERRCODE = 'OL409';
            END IF;
            -- Locked against ADDRESS REMOVE by api.order_amend (after its trial of this function).
            a := orderly.ship_to_address(o.customer_id, (e ->> 'address')::bigint);
            UPDATE orderly.orders x SET ship_to_id = a.id, updated_at = now() WHERE x.id = o.id RETURNING * INTO o;
            v_ship := true;
        WHEN 'requested_date' THEN
            IF NOT (ARRAY(SELECT jsonb_object_keys(e)) <@ ARRAY['action', 'date']) THEN
                RAISE EXCEPTION 'requested_date takes "date", like "2026-12-24" (or null to clear it)' USING ERRCODE = 'OL400';
            END IF;
            IF v_date THEN
                RAISE EXCEPTION 'requested_date is given twice in this change' USING ERRCODE = 'OL400';
            END IF;
            UPDATE orderly.orders x SET requested_date = orderly.check_requested_date(e ->> 'date'), updated_at = now()
            WHERE x.id = o.id RETURNING * INTO o;
            v_date := true;
        WHEN 'note' THEN
            IF NOT (ARRAY(SELECT jsonb_object_keys(e)) <@ ARRAY['action', 'text', 'kind', 'visibility']) THEN
                RAISE EXCEPTION 'note takes text, kind and visibility' USING ERRCODE = 'OL400';
            END IF;
            PERFORM orderly.add_note(u, o, e ->> 'text', e ->> 'kind', e ->> 'visibility');
            v_notes := v_notes + 1;
        END CASE;
    END LOOP;

    -- A new address in another tax place re-prices every line: the tax follows the address.
    IF v_ship AND orderly.order_place(o) IS DISTINCT FROM v_place THEN
        reprice := true;
    END IF;
    IF reprice OR cardinality(v_touched) > 0 OR cardinality(v_removed) > 0 THEN
        -- Production rows of a removed line go with it (its confirmation is the caller's).
        DELETE FROM orderly.production_lines x WHERE x.order_id = o.id AND x.line_no = ANY (v_removed);
        UPDATE orderly.orders x SET next_line_no = v_next WHERE x.id = o.id RETURNING * INTO o;
        -- reprice=all (or a new tax place) re-prices every line but those cancelled whole and those
        -- with shipped units (what shipped keeps its price and tax). A line part of which was
        -- cancelled is priced again for what is still ordered; what its cancelled units are worth
        -- (orders.cancelled_total, R__198_cancellation.sql: round(worth × cancelled / qty) a line)
        -- moves with it, so that only the units still ordered change what is owed.
        IF reprice THEN
            v_repriced := ARRAY(SELECT x.line_no FROM orderly.order_lines x
                                WHERE x.order_id = o.id AND x.cancelled_qty < x.qty
                                  AND NOT EXISTS (SELECT 1 FROM orderly.shipment_lines sl
                                                  WHERE sl.order_id = o.id AND sl.line_no = x.line_no));
            SELECT jsonb_object_agg(x.line_no::text, x.net + x.tax) INTO v_worth
            FROM orderly.order_lines x
            WHERE x.order_id = o.id AND x.line_no = ANY (v_repriced) AND x.cancelled_qty > 0;
        END IF;
        -- The lines changed or removed as they were (a line changed or removed has neither
        -- cancelled nor shipped units: line_for_change and the shipped checks above), to judge
        -- after pricing what the change takes off.
        SELECT jsonb_object_agg(x.line_no::text, jsonb_build_object('sku', x.sku_id, 'product', x.product_id, 'params', x.spec -> 'params',
                   'qty', x.qty, 'worth', x.net + x.tax))
        INTO v_items
        FROM orderly.order_lines x
        WHERE x.order_id = o.id AND x.line_no = ANY (v_touched || v_removed) AND NOT x.line_no = ANY (v_added);
        o := orderly.set_order_lines(o, v_specs, CASE WHEN reprice THEN v_repriced || v_added ELSE v_touched END);
        -- Once the lines are what the change makes them: no production work left, no open issue.
        IF cardinality(v_removed) > 0 THEN
            PERFORM orderly.close_issues_without_work(o, u.id, 'Production removed by a change of the order');
        END IF;
        -- Units the change takes off, judged as a cancellation of them (orderly.check_take_off) on
        -- the order as it was: a line removed, its quantity lowered, or its item changed (another
        -- SKU, other parameters of a made item: all its units go back).
        FOR f IN SELECT w.key::integer AS line_no, (w.value ->> 'qty')::integer AS was_qty, (w.value ->> 'worth')::numeric AS was_worth,
                        x.qty,
                        x.line_no IS NOT NULL AND (x.sku_id IS DISTINCT FROM (w.value ->> 'sku')::bigint
                                                   OR x.product_id <> (w.value ->> 'product')::bigint
                                                   OR coalesce(x.spec -> 'params', 'null') <> w.value -> 'params') AS swap
                 FROM jsonb_each(coalesce(v_items, '{}')) w
                 LEFT JOIN orderly.order_lines x ON x.order_id = o.id AND x.line_no = w.key::integer
                 ORDER BY 1 LOOP
            v_off := f.was_qty - CASE WHEN f.swap THEN 0 ELSE coalesce(f.qty, 0) END;
            PERFORM orderly.check_take_off(v_was, f.line_no, v_off, round(f.was_worth * greatest(v_off, 0) / f.was_qty, 2), swap => f.swap);
        END LOOP;
        -- A made-to-order line makes an order custom, which production approves (ORDER SUBMIT
        -- makes a standard order with one custom): added to a standard order after submission, it
        -- would go round that approval.
        IF o.type = 'standard' THEN
            SELECT p.code INTO v_made FROM orderly.order_lines x JOIN orderly.products p ON p.id = x.product_id
            WHERE x.order_id = o.id AND x.line_no = ANY (v_added) AND p.kind = 'custom' ORDER BY x.line_no LIMIT 1;
            IF v_made IS NOT NULL THEN
                RAISE EXCEPTION '% is made to order: a standard order takes no made-to-order line once submitted (production approves custom orders); order it on a custom order',
                    v_made USING ERRCODE = 'OL409';
            END IF;
        END IF;
        IF v_worth IS NOT NULL THEN
            UPDATE orderly.orders x
            SET cancelled_total = x.cancelled_total
                + (SELECT sum(round((l.net + l.tax) * l.cancelled_qty / l.qty, 2)
                              - round((v_worth ->> l.line_no::text)::numeric * l.cancelled_qty / l.qty, 2))
                   FROM orderly.order_lines l WHERE l.order_id = o.id AND v_worth ? l.line_no::text)
            WHERE x.id = o.id
            RETURNING * INTO o;
        END IF;
        UPDATE orderly.order_lines x SET override_by = u.id
        WHERE x.order_id = o.id AND x.line_no = ANY (v_added) AND x.is_override;
    END IF;
    -- An order keeps a line: a change that would leave none with units still ordered (as ORDER
    -- SUBMIT refuses an order without lines) is a cancellation, which has its own policy, fee and
    -- refund.
    IF cardinality(v_removed) > 0
       AND NOT EXISTS (SELECT 1 FROM orderly.order_lines x WHERE x.order_id = o.id AND x.qty > x.cancelled_qty) THEN
        RAISE EXCEPTION 'order %: this change would leave it without a line; cancel the order instead (ORDER CANCEL %)', o.id, o.id
            USING ERRCODE = 'OL409';
    END IF;
    RETURN jsonb_build_object('touched', to_jsonb(v_touched), 'added', to_jsonb(v_added), 'removed', to_jsonb(v_removed),
                              'production', to_jsonb(v_making), 'ship_to', v_ship, 'requested_date', v_date, 'notes', v_notes,
                              'repriced', reprice);
END
$$;

-- Whether total_after needs an approval the order has not had: judged against the round that
-- approved the order (its latest round whose every step was approved: a round rejected or
-- closed half-way approved nothing) or, while the order awaits approval, the round asking now;
-- not against what the rules would have said of total_before today. It needs one when a rule
-- applies to the new total and no such round exists, or another rule than that round's applies,
-- or one of that round's steps was for a role whose limit does not cover the new total's value at
-- today's rate (the escalation role's counts only for a step that escalated; without a rate the
-- value is unknown and only an unlimited role covers it). A rate that rose, or was removed, after
-- the approval thus asks for approval again. Only an increase can.
CREATE OR REPLACE FUNCTION orderly.needs_reapproval(o orderly.orders, total_before numeric, total_after numeric) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_new   orderly.orders := o;
    r_new   orderly.approval_rules;
    v_value numeric := orderly.approval_value(total_after, o.currency);
    v_round integer;
    v_rule  bigint;
BEGIN
    IF total_after <= total_before THEN
        RETURN false;
    END IF;
    v_new.total := total_after;
    r_new := orderly.rule_for_order(v_new);
    IF r_new.id IS NULL THEN
        RETURN false;
    END IF;
    SELECT a.round, min(a.rule_id) INTO v_round, v_rule FROM orderly.order_approvals a
    WHERE a.order_id = o.id
    GROUP BY a.round
    HAVING bool_and(a.status = 'approved')
        OR (o.status = 'pending_approval' AND bool_or(a.status = 'pending') AND bool_and(a.change_id IS NULL))
    ORDER BY a.round DESC LIMIT 1;
    RETURN v_round IS NULL OR v_rule <> r_new.id
        OR EXISTS (SELECT 1 FROM orderly.order_approvals a
                   WHERE a.order_id = o.id AND a.round = v_round
                     AND NOT EXISTS (SELECT 1 FROM orderly.approval_limits l
                                     WHERE (l.role = a.role OR (a.escalated_at IS NOT NULL AND l.role = a.escalation_role))
                                       AND l.order_type = o.type
                                       AND (l.max_total IS NULL OR v_value <= l.max_total)));
END
$$;

-- Applying ----------------------------------------------------------------------------------------

-- A cancellation request that waits fixes the order it was quoted on until it is decided: a
-- change (other than notes) is refused meanwhile, so that neither the lines it names nor what it
-- is worth move under it (lines added or grown would be cancelled at a fee on their value;
-- lines removed or shrunk would make it impossible to approve). The order's row is locked by the
-- caller, as it is when a request is made.
CREATE OR REPLACE FUNCTION orderly.check_no_cancel_request(o orderly.orders, actions jsonb) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_request bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(actions) a WHERE a ->> 'action' <> 'note') THEN
        RETURN;
    END IF;
    SELECT x.id INTO v_request FROM orderly.order_cancellations x WHERE x.order_id = o.id AND x.status = 'requested';
    IF v_request IS NOT NULL THEN
        RAISE EXCEPTION 'order % has cancellation request % waiting; it is decided (CANCEL APPROVE % or CANCEL REJECT %) before the order changes',
            o.id, v_request, o.id, o.id USING ERRCODE = 'OL409';
    END IF;
END
$$;

-- Applies change c to its order (row-locked by the caller): staged for real on the order as it is
-- now, the reservation made what the lines need, the version bumped and kept, approval re-routed
-- for an order still awaiting it. Returns the applied change.
CREATE OR REPLACE FUNCTION orderly.apply_change(u orderly.users, o orderly.orders, c orderly.order_changes)
RETURNS orderly.order_changes
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_before jsonb;
    v_stage  jsonb;
    v_total  numeric := o.total;
    -- Staged as its author asked it (their rights: a manual price, a note's author), whoever
    -- confirms or approves it.
    v_author orderly.users;
    r        orderly.approval_rules;
    a        orderly.order_approvals;
BEGIN
    PERFORM orderly.check_no_cancel_request(o, c.actions);
    -- A higher total is judged against the credit limit at the end: the customer's credit lock
    -- first, before the SKU rows the reservation locks (the order of a submission approved at once).
    IF c.total_after > o.total THEN
        PERFORM orderly.lock_credit(o);
    END IF;
    SELECT * INTO v_author FROM orderly.users x WHERE x.id = c.requested_by;
    PERFORM orderly.keep_first_version(o);
    v_before := orderly.order_snapshot(o.id);
    v_stage := orderly.stage_change(CASE WHEN v_author.id IS NULL THEN u ELSE v_author END, o, c.actions, c.reprice);
    SELECT * INTO o FROM orderly.orders x WHERE x.id = o.id;
    -- Staged again at today's prices: more than the total it was asked (and approved) at is not
    -- what anybody agreed to (a price raised while it waited): declined, to be asked again.
    IF o.total > c.total_after THEN
        RAISE EXCEPTION 'prices changed since it was asked: its total would be % %, not the % % it was asked and approved at; ask for it again',
            o.total, o.currency, c.total_after, o.currency USING ERRCODE = 'OL409';
    END IF;
    PERFORM orderly.reconcile_reservation(o, orderly.open_stock_needs(o.id), u.id);
    UPDATE orderly.orders x SET version = x.version + 1, updated_at = now() WHERE x.id = o.id RETURNING * INTO o;
    UPDATE orderly.order_changes x
    SET status = 'applied', waiting_for = NULL, version = o.version, total_after = o.total,
        diff = orderly.snapshot_diff(v_before, orderly.order_snapshot(o.id)),
        decided_by = coalesce(x.decided_by, u.id), decided_at = now()
    WHERE x.id = c.id
    RETURNING * INTO c;
    INSERT INTO orderly.order_versions (order_id, version, customer_id, change_id, snapshot, total, created_by, created_at)
    VALUES (o.id, o.version, o.customer_id, c.id, orderly.order_snapshot(o.id), o.total, c.requested_by, now());
    PERFORM orderly.audit(u.id, 'order.amend', 'order', o.id::text,
                          jsonb_build_object('version', o.version - 1, 'total', v_total),
                          jsonb_build_object('version', o.version, 'total', o.total, 'change', c.id, 'reason', c.reason,
                                             'diff', c.diff, 'staged', v_stage));
    -- Still awaiting approval: the order's own round starts again when the new total needs it.
    IF o.status = 'pending_approval' AND orderly.needs_reapproval(o, v_total, o.total) THEN
        UPDATE orderly.order_approvals x SET status = 'skipped' WHERE x.order_id = o.id AND x.status IN ('pending', 'waiting');
        r := orderly.rule_for_order(o, lock => true);
        a := orderly.open_round(o, r, u.id);
    END IF;
    -- On as far as the facts now allow: the last open line removed from a partly shipped order
    -- leaves it shipped.
    o := orderly.advance(o, u.id);
    -- A higher total is judged against the credit limit as the order was at approval: over it,
    -- the order goes on hold (credit_limit) until finance releases it, whether the change applied
    -- at once or after its own approval round.
    IF o.total > v_total AND o.status IN ('approved', 'in_production', 'ready', 'partially_shipped')
       AND orderly.over_credit_limit(o) THEN
        PERFORM orderly.change_status(o, 'on_hold', u.id, 'credit_limit', automatic => true);
    END IF;
    RETURN c;
END
$$;

-- A pending change ends without being applied (declined, abandoned): the stock it held goes back,
-- an open approval round for it closes. reason is staff's; customer_reason what the customer's
-- logins read (no default: an approver's or production's reason is internal, so each caller says
-- what the customer is told). actor_kind 'system' when no user acted (u.id NULL).
DROP FUNCTION IF EXISTS orderly.close_change(orderly.users, orderly.orders, orderly.order_changes, text, text);
DROP FUNCTION IF EXISTS orderly.close_change(orderly.users, orderly.orders, orderly.order_changes, text, text, text);
CREATE OR REPLACE FUNCTION orderly.close_change(u orderly.users, o orderly.orders, c orderly.order_changes, status text,
                                                reason text, customer_reason text, actor_kind text DEFAULT 'user')
RETURNS orderly.order_changes
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orderly.order_approvals x SET status = 'skipped' WHERE x.change_id = c.id AND x.status IN ('pending', 'waiting');
    UPDATE orderly.order_changes x
    SET status = close_change.status, waiting_for = NULL, decided_by = u.id, decided_at = now(), decision_reason = close_change.reason,
        customer_reason = close_change.customer_reason
    WHERE x.id = c.id
    RETURNING * INTO c;
    PERFORM orderly.reconcile_reservation(o, orderly.open_stock_needs(o.id), u.id);
    PERFORM orderly.audit(u.id, 'order.change_' || CASE status WHEN 'declined' THEN 'decline' ELSE 'abandon' END, 'order', o.id::text,
                          jsonb_build_object('change', c.id, 'status', 'pending'),
                          jsonb_build_object('change', c.id, 'status', c.status, 'reason', reason), close_change.actor_kind);
    RETURN c;
END
$$;

-- The order's change waiting for a decision, row-locked, or NULL.
CREATE OR REPLACE FUNCTION orderly.pending_change(o orderly.orders) RETURNS orderly.order_changes
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c orderly.order_changes;
BEGIN
    SELECT * INTO c FROM orderly.order_changes x WHERE x.order_id = o.id AND x.status = 'pending' FOR UPDATE;
    RETURN c;
END
$$;

-- A change by its id, with its order row-locked first (the order's lock, then the change's).
CREATE OR REPLACE FUNCTION orderly.change_for(u orderly.users, change_id bigint, OUT o orderly.orders, OUT c orderly.order_changes)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT * INTO c FROM orderly.order_changes x WHERE x.id = change_id;
    IF c.id IS NULL THEN
        RAISE EXCEPTION 'change % not found', change_id USING ERRCODE = 'OL404';
    END IF;
    BEGIN
        o := orderly.order_for(u, c.order_id, true);
    EXCEPTION WHEN SQLSTATE 'OL404' THEN
        RAISE EXCEPTION 'change % not found', change_id USING ERRCODE = 'OL404';
    END;
    SELECT * INTO c FROM orderly.order_changes x WHERE x.id = change_id FOR UPDATE;
END
$$;

-- Documents ----------------------------------------------------------------------------------------

-- ORDER AMEND and CHANGE …'s reply; a customer login sees it through the allow-list
-- (orderly.customer_shape 'order_change': not who decided, internal notes left out of the diff).
CREATE OR REPLACE FUNCTION orderly.change_doc(c orderly.order_changes) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN json_build_object(
        'id', c.id,
        'order', c.order_id,
        'status', c.status,
        'message', CASE c.status
                   WHEN 'applied' THEN format('Applied: the order is now version %s', c.version)
                   WHEN 'pending' THEN CASE c.waiting_for
                                       WHEN 'production' THEN 'Waiting for production to confirm it (a line is being made)'
                                       ELSE 'Waiting for approval: the new total needs it' END
                   WHEN 'declined' THEN 'Declined: the order stays as it was'
                   ELSE 'Abandoned: the order stays as it was' END,
        'waiting_for', c.waiting_for,
        'version', c.version,
        'reason', c.reason,
        'reprice', CASE WHEN c.reprice THEN 'all' ELSE 'changed lines' END,
        'diff', orderly.diff_doc(c.diff),
        'total_before', c.total_before,
        'total_after', c.total_after,
        'currency', c.currency,
        'reserved', c.reserved,
        'requested_by', orderly.username_of(c.requested_by),
        'requested_at', orderly.json_time(c.requested_at),
        'decided_by', orderly.username_of(c.decided_by),
        'decided_at', orderly.json_time(c.decided_at),
        'decision_reason', c.decision_reason,
        'customer_reason', c.customer_reason);
END
$$;

-- Who is told ---------------------------------------------------------------------------------------

-- round_before: the order's last approval round before the change was applied.
CREATE OR REPLACE FUNCTION orderly.notify_changed(o orderly.orders, c orderly.order_changes, actor_id bigint,
                                                  round_before integer DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lines   jsonb := coalesce(c.diff -> 'lines', '[]');
    v_payload jsonb := jsonb_build_object(
        'order', o.id, 'change', c.id, 'version', c.version, 'reason', c.reason,
        'customer', (SELECT x.name FROM orderly.customers x WHERE x.id = o.customer_id),
        'lines', v_lines, 'header', c.diff -> 'header',
        'total_before', c.total_before, 'total_after', c.total_after, 'currency', c.currency,
        'at', orderly.json_time(c.decided_at));
    v_picked  boolean := EXISTS (SELECT 1 FROM jsonb_array_elements(v_lines) e
                                 WHERE e ->> 'change' <> 'changed' OR e -> 'fields' ?| ARRAY['sku', 'qty', 'options']);
    v_made    boolean := EXISTS (SELECT 1 FROM jsonb_array_elements(v_lines) e
                                 JOIN orderly.products p ON p.code = e ->> 'product' WHERE orderly.line_needs_production(p.kind));
    r         record;
    a         orderly.order_approvals;
BEGIN
    -- Departments have work on the order only once it was approved.
    IF orderly.was_approved(o.id) THEN
        FOR r IN
            SELECT x.role FROM (VALUES (1, 'warehouse', v_picked), (2, 'production_manager', v_made),
                                       (3, 'logistics', (c.diff -> 'header') ?| ARRAY['ship_to', 'requested_date']),
                                       (4, 'finance_manager', c.total_before <> c.total_after)) x (n, role, told)
            WHERE x.told ORDER BY x.n
        LOOP
            PERFORM api.notify(NULL, r.role, 'order.changed', v_payload, actor_id);
        END LOOP;
    END IF;
    -- The creator, the requester and the customer's logins; a customer's login only when the
    -- change has something a customer sees (a line, the address or date, a note for it): an
    -- internal note alone would tell it an empty change and the staff's reason.
    FOR r IN SELECT p AS user_id FROM orderly.order_people(o, c.requested_by) p
             JOIN orderly.users u ON u.id = p
             WHERE orderly.own_customer(u) IS NULL OR jsonb_array_length(v_lines) > 0 OR c.diff -> 'header' <> '{}'
                OR EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(c.diff -> 'notes', '[]')) n WHERE n ->> 'visibility' = 'customer')
    LOOP
        PERFORM api.notify(r.user_id, NULL, 'order.changed', v_payload, actor_id);
    END LOOP;
    -- The change started the order's approval again (orderly.apply_change): the first step of
    -- the round newer than the change's request is asked for.
    SELECT * INTO a FROM orderly.order_approvals x
    WHERE x.order_id = o.id AND x.status = 'pending' AND x.change_id IS NULL AND x.round > round_before;
    IF a.id IS NOT NULL AND o.status = 'pending_approval' THEN
        PERFORM orderly.notify_step(a, o, 'approval.requested', now(), actor_id);
    END IF;
END
$$;

-- change.declined to the change's author and the customer's logins (the order did not change:
-- nobody else has news).
DROP FUNCTION IF EXISTS orderly.notify_declined(orderly.orders, orderly.order_changes, bigint);
CREATE OR REPLACE FUNCTION orderly.notify_declined(o orderly.orders, c orderly.order_changes, actor_id bigint,
                                                   actor_kind text DEFAULT 'user') RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n record;
BEGIN
    FOR n IN
        SELECT c.requested_by AS user_id WHERE c.requested_by IS NOT NULL
        UNION SELECT x.id FROM orderly.users x WHERE x.customer_id = o.customer_id
        ORDER BY 1
    LOOP
        PERFORM api.notify(n.user_id, NULL, 'change.declined',
                           jsonb_build_object('order', o.id, 'change', c.id, 'reason', c.decision_reason,
                                              'customer_reason', c.customer_reason,
                                              'at', orderly.json_time(c.decided_at)), actor_id, notify_declined.actor_kind);
    END LOOP;
END
$$;

-- What a waiting change asks for, and of whom: production confirms, or the first step's deciders.
CREATE OR REPLACE FUNCTION orderly.notify_waiting(o orderly.orders, c orderly.order_changes, actor_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a orderly.order_approvals;
BEGIN
    IF c.waiting_for = 'production' THEN
        PERFORM api.notify(NULL, 'production_manager', 'change.confirm',
                           jsonb_build_object('order', o.id, 'change', c.id, 'reason', c.reason, 'lines', c.diff -> 'lines',
                                              'requested_by', orderly.username_of(c.requested_by)), actor_id);
    ELSE
        SELECT * INTO a FROM orderly.order_approvals x WHERE x.change_id = c.id AND x.status = 'pending';
        PERFORM orderly.notify_step(a, orderly.approval_subject(a, o), 'approval.requested', now(), actor_id,
                                    extra => jsonb_build_object('change', c.id));
    END IF;
END
$$;

-- After production's confirmation (or none was needed): an approval round when the new total
-- needs one, else applied. Returns the change.
-- Applies a change once it was decided (its round's last approval, production's confirmation).
-- One the order has moved past while it waited (taking units off is a cancellation now, its line
-- is being made, the stock is short) is declined with why instead of failing the decision: its
-- author and the customer hear of it (change.declined), and it no longer blocks the next change.
CREATE OR REPLACE FUNCTION orderly.apply_decided_change(u orderly.users, o orderly.orders, c orderly.order_changes)
RETURNS orderly.order_changes
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_why text;
BEGIN
    -- A cancellation request waiting holds the decision back (it may cancel what the change is
    -- about): refused, the change stays.
    PERFORM orderly.check_no_cancel_request(o, c.actions);
    BEGIN
        RETURN orderly.apply_change(u, o, c);
    EXCEPTION WHEN SQLSTATE 'OL409' OR SQLSTATE 'OL403' THEN
        GET STACKED DIAGNOSTICS v_why = MESSAGE_TEXT;
    END;
    c := orderly.close_change(u, o, c, 'declined', left('it can no longer be applied: ' || regexp_replace(v_why, '[[:cntrl:]]', ' ', 'g'), 500),
                              'the order changed before this change could be made');
    PERFORM orderly.notify_declined(o, c, u.id);
    RETURN c;
END
$$;

DROP FUNCTION IF EXISTS orderly.advance_change(orderly.users, orderly.orders, orderly.order_changes);
-- decided: production confirmed it (CHANGE CONFIRM), so that a change it can no longer be is
-- declined rather than refused (apply_decided_change); at ORDER AMEND it is refused.
CREATE OR REPLACE FUNCTION orderly.advance_change(u orderly.users, o orderly.orders, c orderly.order_changes,
                                                  decided boolean DEFAULT false)
RETURNS orderly.order_changes
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_new orderly.orders := o;
    r     orderly.approval_rules;
    a     orderly.order_approvals;
BEGIN
    v_new.total := c.total_after;
    IF orderly.was_approved(o.id) AND o.status <> 'pending_approval' AND orderly.needs_reapproval(o, o.total, c.total_after) THEN
        r := orderly.rule_for_order(v_new, lock => true);
        UPDATE orderly.order_changes x SET waiting_for = 'approval' WHERE x.id = c.id RETURNING * INTO c;
        a := orderly.open_round(v_new, r, u.id, c.id);
        RETURN c;
    END IF;
    IF decided THEN
        RETURN orderly.apply_decided_change(u, o, c);
    END IF;
    RETURN orderly.apply_change(u, o, c);
END
$$;

-- Commands -------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION api.order_amend(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u          orderly.users := orderly.begin_command('ORDER AMEND', order_amend.actor, order_amend.args);
    v_replay   json := orderly.replay(u, order_amend.args);
    v_reason   text := btrim(orderly.arg_text(args, 'reason', true));
    v_actions  jsonb := orderly.arg_value(args, 'changes', true);
    v_reprice  text := coalesce(lower(btrim(orderly.arg_text(args, 'reprice'))), 'changed');
    v_bad      text;
    o          orderly.orders;
    c          orderly.order_changes;
    v_before   jsonb;
    v_after    jsonb;
    v_diff     jsonb;
    v_needs    jsonb;
    v_stage    jsonb;
    v_total    numeric;
    v_removed  bigint;
    v_held     jsonb;
    v_round    integer;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF length(v_reason) NOT BETWEEN 1 AND 500 OR v_reason ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'reason must be one line of 1 to 500 characters' USING ERRCODE = 'OL400';
    END IF;
    IF jsonb_typeof(v_actions) <> 'array' OR jsonb_array_length(v_actions) NOT BETWEEN 1 AND 50
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(v_actions) e WHERE jsonb_typeof(e) <> 'object') THEN
        RAISE EXCEPTION 'changes must be a JSON array of 1 to 50 actions, each like {"action":"set_line","line":2,"qty":5}; actions: add_line, set_line, remove_line, ship_to, requested_date, note'
            USING ERRCODE = 'OL400';
    END IF;
    -- A misspelt action is named ("setline"), not answered with the usage alone.
    SELECT coalesce(e ->> 'action', (e -> 'action')::text) INTO v_bad FROM jsonb_array_elements(v_actions) e
    WHERE coalesce(e ->> 'action', '') NOT IN ('add_line', 'set_line', 'remove_line', 'ship_to', 'requested_date', 'note') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unknown action "%"; actions: add_line, set_line, remove_line, ship_to, requested_date, note',
            orderly.for_message(coalesce(v_bad, '(none)')) USING ERRCODE = 'OL400';
    END IF;
    IF v_reprice NOT IN ('all', 'changed') THEN
        RAISE EXCEPTION 'reprice must be all (or left out: only changed lines take today''s prices)' USING ERRCODE = 'OL400';
    END IF;
    o := orderly.order_for(u, orderly.arg_bigint(args, 'id', true), true);
    SELECT coalesce(max(x.round), 0) INTO v_round FROM orderly.order_approvals x WHERE x.order_id = o.id;
    c := orderly.pending_change(o);
    IF c.id IS NOT NULL THEN
        RAISE EXCEPTION 'order % has change % waiting for %; it is decided, or abandoned with CHANGE ABANDON %, before another',
            o.id, c.id, c.waiting_for, c.id USING ERRCODE = 'OL409';
    END IF;
    PERFORM orderly.check_no_cancel_request(o, v_actions);

    -- Tried first, and rolled back: what the order would be, and what it would need.
    v_before := orderly.order_snapshot(o.id);
    BEGIN
        v_stage := orderly.stage_change(u, o, v_actions, v_reprice = 'all');
        v_after := orderly.order_snapshot(o.id);
        v_needs := orderly.open_stock_needs(o.id);
        SELECT x.total INTO v_total FROM orderly.orders x WHERE x.id = o.id;
        -- OL999, a code of its own: a class code (…000) would catch every OL error too.
        RAISE EXCEPTION USING ERRCODE = 'OL999';
    EXCEPTION WHEN SQLSTATE 'OL999' THEN
        NULL;
    END;
    v_diff := orderly.snapshot_diff(v_before, v_after);
    -- A change that changes nothing (the date it has, the address it ships to) would still be a
    -- version, tell everyone, and make its author one who changed the order (no approving it).
    IF NOT orderly.diff_changes_order(v_diff) AND v_diff -> 'notes' = '[]' THEN
        RAISE EXCEPTION 'this change leaves order % as it is: nothing to apply', o.id USING ERRCODE = 'OL409';
    END IF;
    -- The trial's locks went with it: the addresses the change prices for (the order's own, and a
    -- new ship-to) are locked again, to commit. ADDRESS REMOVE waits for this change and then
    -- finds it waiting; one removed while this waited is refused here.
    PERFORM 1 FROM orderly.addresses x
    WHERE x.id = o.ship_to_id
       OR x.id IN (SELECT (e ->> 'address')::bigint FROM jsonb_array_elements(v_actions) e WHERE e ->> 'action' = 'ship_to')
    ORDER BY x.id FOR SHARE;
    SELECT x.id INTO v_removed FROM jsonb_array_elements(v_actions) e JOIN orderly.addresses x ON x.id = (e ->> 'address')::bigint
    WHERE e ->> 'action' = 'ship_to' AND x.removed_at IS NOT NULL LIMIT 1;
    IF v_removed IS NOT NULL THEN
        RAISE EXCEPTION 'ship-to address % was removed; give another (ship_to)', v_removed USING ERRCODE = 'OL404';
    END IF;

    INSERT INTO orderly.order_changes (order_id, customer_id, status, waiting_for, reason, actions, reprice, diff,
                                       total_before, total_after, currency, requested_by, decided_by, decided_at)
    VALUES (o.id, o.customer_id, 'pending', 'production', v_reason, v_actions, v_reprice = 'all',
            v_diff, o.total, v_total, o.currency, u.id, NULL, NULL)
    RETURNING * INTO c;
    IF jsonb_array_length(v_stage -> 'production') = 0 THEN
        c := orderly.advance_change(u, o, c);
    END IF;
    IF c.status = 'pending' THEN
        -- Waiting, it holds what it will need (and keeps what it may give back).
        v_held := orderly.reconcile_reservation(o, orderly.needs_union(orderly.open_stock_needs(o.id), v_needs), u.id);
        UPDATE orderly.order_changes x SET reserved = v_held WHERE x.id = c.id RETURNING * INTO c;
        PERFORM orderly.audit(u.id, 'order.change_request', 'order', o.id::text, NULL,
                              jsonb_build_object('change', c.id, 'waiting_for', c.waiting_for, 'actions', v_actions,
                                                 'reason', v_reason, 'total_after', v_total));
    END IF;
    SELECT * INTO o FROM orderly.orders x WHERE x.id = o.id;
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order_change', orderly.change_doc(c), orderly.own_customer(u)));
    IF c.status = 'applied' THEN
        PERFORM orderly.notify_changed(o, c, u.id, v_round);
    ELSE
        PERFORM orderly.notify_waiting(o, c, u.id);
    END IF;
END
$$;

SELECT orderly.register_command('ORDER AMEND', 'api.order_amend', 'order.amend',
    arguments  => 'id:id! changes:array! reason:text! reprice:code',
    positional => '{id}',
    usage      => 'ORDER AMEND id changes=[{"action":"set_line","line":2,"qty":5},…] reason= [reprice=all]',
    summary    => 'Change a submitted order: add_line, set_line, remove_line, ship_to, requested_date, note. Applied at once as a new version, or waiting for production''s confirmation or a new approval.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.change_confirm(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('CHANGE CONFIRM', change_confirm.actor, change_confirm.args);
    v_replay json := orderly.replay(u, change_confirm.args);
    f        record;
    o        orderly.orders;
    c        orderly.order_changes;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    f := orderly.change_for(u, orderly.arg_bigint(args, 'id', true));
    o := f.o;
    c := f.c;
    IF c.status <> 'pending' OR c.waiting_for <> 'production' THEN
        RAISE EXCEPTION 'change % is %; only a change waiting for production is confirmed', c.id,
            CASE WHEN c.status = 'pending' THEN 'waiting for ' || c.waiting_for ELSE c.status END USING ERRCODE = 'OL409';
    END IF;
    PERFORM orderly.audit(u.id, 'order.change_confirm', 'order', o.id::text, NULL, jsonb_build_object('change', c.id));
    c := orderly.advance_change(u, o, c, decided => true);
    SELECT * INTO o FROM orderly.orders x WHERE x.id = o.id;
    RETURN NEXT orderly.remember(u, args, orderly.change_doc(c));
    IF c.status = 'applied' THEN
        PERFORM orderly.notify_changed(o, c, u.id);
    ELSIF c.status = 'pending' THEN
        PERFORM orderly.notify_waiting(o, c, u.id);
    END IF;
END
$$;

SELECT orderly.register_command('CHANGE CONFIRM', 'api.change_confirm', 'production.manage',
    arguments  => 'id:id!',
    positional => '{id}',
    usage      => 'CHANGE CONFIRM id',
    summary    => 'Confirm a change to a line in production: it is applied (or goes on to approval when its new total needs one).',
    changes    => true);

-- CHANGE DECLINE (production) and CHANGE ABANDON (its author, or staff) end a pending change.
CREATE OR REPLACE FUNCTION orderly.end_change(u orderly.users, args jsonb, status text) RETURNS json
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reason text := nullif(btrim(orderly.arg_text(args, 'reason', status = 'declined')), '');
    f        record;
    o        orderly.orders;
    c        orderly.order_changes;
BEGIN
    IF length(v_reason) > 500 OR v_reason ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'reason must be one line of at most 500 characters' USING ERRCODE = 'OL400';
    END IF;
    f := orderly.change_for(u, orderly.arg_bigint(args, 'id', true));
    o := f.o;
    c := f.c;
    IF c.status <> 'pending' THEN
        RAISE EXCEPTION 'change % is % already', c.id, c.status USING ERRCODE = 'OL409';
    END IF;
    IF status = 'declined' AND c.waiting_for <> 'production' THEN
        RAISE EXCEPTION 'change % waits for approval: an approver decides it (ORDER REJECT %)', c.id, o.id USING ERRCODE = 'OL409';
    END IF;
    IF status = 'abandoned' AND orderly.own_customer(u) IS NOT NULL AND c.requested_by IS DISTINCT FROM u.id
       AND NOT EXISTS (SELECT 1 FROM orderly.users x WHERE x.id = c.requested_by AND x.customer_id = orderly.own_customer(u)) THEN
        RAISE EXCEPTION 'change % was asked for by staff: only staff abandon it', c.id USING ERRCODE = 'OL403';
    END IF;
    c := orderly.close_change(u, o, c, status, coalesce(v_reason, 'abandoned by ' || u.username),
                              CASE WHEN orderly.own_customer(u) IS NOT NULL THEN coalesce(v_reason, 'withdrawn')
                                   WHEN status = 'declined' THEN 'declined by production'
                                   ELSE 'withdrawn by staff' END);
    IF status = 'declined' THEN
        PERFORM orderly.notify_declined(o, c, u.id);
    END IF;
    RETURN orderly.change_doc(c);
END
$$;

CREATE OR REPLACE FUNCTION api.change_decline(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('CHANGE DECLINE', change_decline.actor, change_decline.args);
    v_replay json := orderly.replay(u, change_decline.args);
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    RETURN NEXT orderly.remember(u, args, orderly.end_change(u, args, 'declined'));
END
$$;

SELECT orderly.register_command('CHANGE DECLINE', 'api.change_decline', 'production.manage',
    arguments  => 'id:id! reason:text!',
    positional => '{id}',
    usage      => 'CHANGE DECLINE id reason=',
    summary    => 'Decline a change to a line in production: the order stays as it was and the stock the change held goes back; the reason is sent to whoever asked and to the customer.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.change_abandon(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('CHANGE ABANDON', change_abandon.actor, change_abandon.args);
    v_replay json := orderly.replay(u, change_abandon.args);
    v_doc    json;
    c        orderly.order_changes;
    o        orderly.orders;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    v_doc := orderly.end_change(u, args, 'abandoned');
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order_change', v_doc, orderly.own_customer(u)));
    -- Withdrawn by someone else than its author (staff): the author and the customer's logins
    -- hear of it, in the customer's words "withdrawn by staff" (as change.declined does).
    SELECT * INTO c FROM orderly.order_changes x WHERE x.id = (v_doc ->> 'id')::bigint;
    IF c.requested_by IS DISTINCT FROM u.id THEN
        SELECT * INTO o FROM orderly.orders x WHERE x.id = c.order_id;
        PERFORM orderly.notify_declined(o, c, u.id);
    END IF;
END
$$;

SELECT orderly.register_command('CHANGE ABANDON', 'api.change_abandon', 'order.amend',
    arguments  => 'id:id! reason:text',
    positional => '{id}',
    usage      => 'CHANGE ABANDON id [reason=]',
    summary    => 'Withdraw a change that is still waiting: the order stays as it was and the stock the change held goes back.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.order_versions(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u     orderly.users := orderly.begin_command('ORDER VERSIONS', order_versions.actor, order_versions.args);
    o     orderly.orders := orderly.order_for(u, orderly.arg_bigint(args, 'id', true), false);
    v_own bigint := orderly.own_customer(u);
BEGIN
    RETURN QUERY
    SELECT orderly.visible_doc('order_version', json_build_object(
               'version', v.version, 'change', v.change_id, 'by', orderly.username_of(v.by_user), 'at', orderly.json_time(v.at),
               'reason', v.reason, 'total_before', v.total_before, 'total_after', v.total, 'currency', o.currency), v_own)
    FROM (SELECT x.version, x.change_id, x.created_by AS by_user, x.created_at AS at, x.total,
                 coalesce(c.reason, 'submitted') AS reason, c.total_before
          FROM orderly.order_versions x LEFT JOIN orderly.order_changes c ON c.id = x.change_id
          WHERE x.order_id = o.id
          UNION ALL
          -- Never changed: version 1 is the order as it stands.
          SELECT o.version, NULL, o.submitted_by, coalesce(o.submitted_at, o.created_at), o.total, 'submitted', NULL
          WHERE NOT EXISTS (SELECT 1 FROM orderly.order_versions x WHERE x.order_id = o.id)) v
    ORDER BY v.version;
END
$$;

SELECT orderly.register_command('ORDER VERSIONS', 'api.order_versions', 'order.read',
    arguments  => 'id:id!',
    positional => '{id}',
    usage      => 'ORDER VERSIONS id',
    summary    => 'An order''s versions, oldest first: who changed it, when, why, and the total before and after.');

-- CHANGE LIST: the changes of the orders one may see, newest first — with status=pending the
-- work list of those who decide them (waiting_for=production: CHANGE CONFIRM / DECLINE;
-- waiting_for=approval: ORDER APPROVE / REJECT), with order= one order's history of changes.
CREATE OR REPLACE FUNCTION api.change_list(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u         orderly.users := orderly.begin_command('CHANGE LIST', change_list.actor, change_list.args);
    v_status  text := lower(btrim(orderly.arg_text(args, 'status')));
    v_waiting text := lower(btrim(orderly.arg_text(args, 'waiting_for')));
    v_order   bigint := orderly.arg_bigint(args, 'order');
    v_limit   integer := orderly.arg_limit(args, 100, 1000);
    v_own     bigint := orderly.own_customer(u);
BEGIN
    IF v_status IS NOT NULL AND v_status NOT IN ('pending', 'applied', 'declined', 'abandoned') THEN
        RAISE EXCEPTION 'status must be pending, applied, declined or abandoned' USING ERRCODE = 'OL400';
    END IF;
    IF v_waiting IS NOT NULL AND v_waiting NOT IN ('production', 'approval') THEN
        RAISE EXCEPTION 'waiting_for must be production or approval' USING ERRCODE = 'OL400';
    END IF;
    IF v_waiting IS NOT NULL AND v_status IS DISTINCT FROM 'pending' AND v_status IS NOT NULL THEN
        RAISE EXCEPTION 'only a pending change waits for someone: waiting_for goes with status=pending or alone' USING ERRCODE = 'OL400';
    END IF;
    IF v_order IS NOT NULL THEN
        PERFORM orderly.order_for(u, v_order, false);
    END IF;
    RETURN QUERY
    SELECT orderly.visible_doc('order_change', orderly.change_doc(c), v_own)
    FROM orderly.order_changes c
    JOIN orderly.orders o ON o.id = c.order_id
    WHERE (v_status IS NULL OR c.status = v_status)
      AND (v_waiting IS NULL OR c.waiting_for = v_waiting)
      AND (v_order IS NULL OR c.order_id = v_order)
      AND orderly.order_visible(u, o)
    ORDER BY c.id DESC
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('CHANGE LIST', 'api.change_list', 'order.read',
    arguments  => 'status:code waiting_for:code order:id limit:integer',
    usage      => 'CHANGE LIST [status=pending|applied|declined|abandoned] [waiting_for=production|approval] [order=] [limit=]',
    summary    => 'Changes (ORDER AMEND) of the orders one may see, newest first: those waiting for a decision with status=pending.');

CREATE OR REPLACE FUNCTION api.order_diff(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u      orderly.users := orderly.begin_command('ORDER DIFF', order_diff.actor, order_diff.args);
    o      orderly.orders := orderly.order_for(u, orderly.arg_bigint(args, 'id', true), false);
    v_to   integer := coalesce(orderly.arg_int(args, 'to'), o.version);
    v_from integer := coalesce(orderly.arg_int(args, 'from'), greatest(coalesce(orderly.arg_int(args, 'to'), o.version) - 1, 1));
    v_a    jsonb;
    v_b    jsonb;
BEGIN
    IF v_from NOT BETWEEN 1 AND o.version OR v_to NOT BETWEEN 1 AND o.version THEN
        RAISE EXCEPTION 'order % has versions 1 to %', o.id, o.version USING ERRCODE = 'OL404';
    END IF;
    SELECT x.snapshot INTO v_a FROM orderly.order_versions x WHERE x.order_id = o.id AND x.version = v_from;
    SELECT x.snapshot INTO v_b FROM orderly.order_versions x WHERE x.order_id = o.id AND x.version = v_to;
    -- Never changed: its one version is the order as it stands.
    v_a := coalesce(v_a, orderly.order_snapshot(o.id));
    v_b := coalesce(v_b, orderly.order_snapshot(o.id));
    RETURN NEXT orderly.visible_doc('order_diff',
        orderly.json_extend(json_build_object('order', o.id, 'from', v_from, 'to', v_to),
                            orderly.diff_doc(orderly.snapshot_diff(v_a, v_b))),
        orderly.own_customer(u));
END
$$;

SELECT orderly.register_command('ORDER DIFF', 'api.order_diff', 'order.read',
    arguments  => 'id:id! from:integer to:integer',
    positional => '{id}',
    usage      => 'ORDER DIFF id [from=] [to=]',
    summary    => 'What changed between two versions of an order (default: the last change): lines added, removed or changed field by field, ship-to, date, notes, totals.');

-- Admins: the constraints --------------------------------------------------------------------------------

CREATE OR REPLACE VIEW admin.amendment_constraints AS
SELECT c.action, c.party, array_agg(c.status ORDER BY s.position) AS statuses
FROM orderly.amendment_constraints c JOIN orderly.order_statuses s ON s.code = c.status
GROUP BY c.action, c.party
ORDER BY c.action, c.party;

COMMENT ON VIEW admin.amendment_constraints IS 'Which ORDER AMEND action customers and staff may take at which statuses';

-- A change still waiting when the order reaches a status at which its actions are not allowed
-- (everything shipped while it waited for approval or production) is declined there and then:
-- approving it could only fail, and the stock it holds would stay held until someone rejected
-- it. Its author and the customer's logins are told why (change.declined).
CREATE OR REPLACE FUNCTION orderly.decline_outdated_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o        orderly.orders;
    c        orderly.order_changes;
    u        orderly.users;
    v_party  text;
    v_action text;
    v_reason text;
BEGIN
    SELECT * INTO o FROM orderly.orders x WHERE x.id = NEW.order_id;
    c := orderly.pending_change(o);
    IF c.id IS NULL THEN
        RETURN NULL;
    END IF;
    v_party := CASE WHEN (SELECT orderly.own_customer(r) FROM orderly.users r WHERE r.id = c.requested_by) IS NOT NULL
                    THEN 'customer' ELSE 'staff' END;
    SELECT a ->> 'action' INTO v_action FROM jsonb_array_elements(c.actions) a
    WHERE NOT EXISTS (SELECT 1 FROM orderly.amendment_constraints k
                      WHERE k.action = a ->> 'action' AND k.status = NEW.to_status AND k.party = v_party)
    LIMIT 1;
    IF v_action IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO u FROM orderly.users x WHERE x.id = NEW.changed_by;
    v_reason := format('the order became %s before the change was decided; %s is not allowed then', NEW.to_status, v_action);
    c := orderly.close_change(u, o, c, 'declined', v_reason, v_reason, CASE WHEN u.id IS NULL THEN 'system' ELSE 'user' END);
    PERFORM orderly.notify_declined(o, c, u.id, CASE WHEN u.id IS NULL THEN 'system' ELSE 'user' END);
    RETURN NULL;
END
$$;

-- Only where the shipped constraints allow no more than notes (which never wait): the statuses
-- an order reaches while a change may be waiting, at no cost to the others.
CREATE OR REPLACE TRIGGER order_change_outdated AFTER INSERT ON orderly.order_status_history
    FOR EACH ROW WHEN (NEW.to_status IN ('shipped', 'delivered', 'completed')) EXECUTE FUNCTION orderly.decline_outdated_change();

-- Allows (allowed => true) or forbids an action at a status for a party. Audited as the admin's.
CREATE OR REPLACE FUNCTION admin.set_amendment_constraint(action text, status text, party text, allowed boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
BEGIN
    IF action IS NULL OR action NOT IN ('add_line', 'set_line', 'remove_line', 'ship_to', 'requested_date', 'note') THEN
        RAISE EXCEPTION 'action must be add_line, set_line, remove_line, ship_to, requested_date or note' USING ERRCODE = 'OL400';
    END IF;
    IF party IS NULL OR party NOT IN ('customer', 'staff') THEN
        RAISE EXCEPTION 'party must be customer or staff' USING ERRCODE = 'OL400';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM orderly.order_statuses s WHERE s.code = set_amendment_constraint.status) THEN
        RAISE EXCEPTION 'unknown status "%"', orderly.for_message(status) USING ERRCODE = 'OL404';
    END IF;
    IF allowed IS NULL THEN
        RAISE EXCEPTION 'allowed must be true or false' USING ERRCODE = 'OL400';
    END IF;
    -- An amendment changes a submitted order whose lines are still to ship: not a draft or a
    -- rejected order (ORDER UPDATE changes those), not a final one (a cancelled order's reservation
    -- is gone, a completed one is history), and once everything has shipped, only a note.
    IF allowed AND (status IN ('draft', 'rejected')
                    OR (SELECT s.is_final FROM orderly.order_statuses s WHERE s.code = set_amendment_constraint.status)
                    OR (status IN ('shipped', 'delivered') AND action <> 'note')) THEN
        RAISE EXCEPTION '% cannot be allowed on an order that is %: %', action, status,
            CASE WHEN status IN ('draft', 'rejected') THEN 'ORDER UPDATE and ORDER LINE change it'
                 WHEN status IN ('shipped', 'delivered') THEN 'everything has shipped; only a note may be added'
                 ELSE 'the order is final' END
            USING ERRCODE = 'OL409';
    END IF;
    IF allowed THEN
        INSERT INTO orderly.amendment_constraints (action, status, party) VALUES (action, status, party) ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM orderly.amendment_constraints c
        WHERE c.action = set_amendment_constraint.action AND c.status = set_amendment_constraint.status
          AND c.party = set_amendment_constraint.party;
    END IF;
    IF FOUND THEN
        PERFORM orderly.audit(NULL, 'amendment_constraint.' || CASE WHEN allowed THEN 'allow' ELSE 'forbid' END,
                              'amendment_constraint', action || '/' || status || '/' || party, NULL,
                              jsonb_build_object('action', action, 'status', status, 'party', party, 'allowed', allowed),
                              actor_kind => 'admin_sql');
    END IF;
END
$$;

COMMENT ON FUNCTION admin.set_amendment_constraint(text, text, text, boolean) IS
    'Allow or forbid an ORDER AMEND action at an order status for customers or staff (audited)';
