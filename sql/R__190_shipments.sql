-- Orderly: carriers and shipments (issue 12, item 5). Tables in V017__fulfilment.sql.
--
-- Carriers are rows, managed by admins in SQL (admin.set_carrier, admin.carriers); the demo
-- carriers come with admin.load_demo_catalog (R__130_demo_catalog.sql).
--
--   SHIPMENT CREATE order= lines=[{"line":1,"qty":2},…] carrier= [service=] [tracking_no=] [parcels=]
--   SHIPMENT SHOW id · SHIPMENT LIST [order=] [status=] [carrier=] · SHIPMENT DELIVERED id [signed_by=] [at=]
--
-- What may ship (orderly.order_releasable, orderly.check_shippable): an order that is approved,
-- in_production, ready or partially_shipped — stock lines may leave before the make-to-order
-- lines are made, as the transitions approved/in_production → partially_shipped of V017 allow —
-- and, on prepaid terms, paid. Never an order on hold, a draft, one waiting for approval or
-- rejected. Of each line: never more than ordered minus already shipped; a make-to-order line
-- only once produced; a service line never (nothing ships).
--
-- A shipment consumes the order's reservation (R__115_stock.sql): for every goods line its SKU,
-- for a bundle line its components, stock_on_hand and stock_reserved both go down by the units
-- shipped, SKU by SKU in id order, each a guarded UPDATE (never below zero, never more than is
-- reserved), and the order's stock_reservations rows go down with them: a row is what is still
-- held; a row whose units have all shipped is released (released_at) and keeps its last qty, so
-- that stock_reserved stays the sum of the unreleased rows. Make-to-order lines hold no stock.
-- Then orderly.advance moves the order: partially_shipped, shipped; SHIPMENT DELIVERED: every
-- shipment delivered → delivered, and paid → completed.
--
-- Locks: the order's row first (orderly.order_for), then the shipment's, then SKUs by id.
-- Two clerks shipping the last units of one line queue on the order's row: the second sees the
-- first's shipment and is refused.
--
-- order.ready_to_ship: to the warehouse and logistics roles whenever an order becomes ready,
-- whichever command made it so (PRODUCTION DONE, an approval, a payment, a hold released): a
-- trigger on the status history, the one place every status change passes through.

-- Carriers ---------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION orderly.carrier_doc(c orderly.carriers) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object('code', ($1).code, 'name', ($1).name,
                              'tracking_url_template', ($1).tracking_url_template, 'active', ($1).active)
$$;

-- Creates or changes a carrier; returns it. Audited as the admin's (actor_kind admin_sql).
-- A template or active left out (NULL) keeps what the carrier has (a new one: no template,
-- active): renaming a carrier must not take the tracking links out of its shipments' documents
-- and e-mails, nor wake an inactive one. '' takes the template away.
CREATE OR REPLACE FUNCTION admin.set_carrier(code text, name text, tracking_url_template text DEFAULT NULL,
                                             active boolean DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_code     text := lower(btrim(set_carrier.code));
    v_name     text := btrim(set_carrier.name);
    v_template text := btrim(set_carrier.tracking_url_template);
    v_before   jsonb;
    c          orderly.carriers;
BEGIN
    IF v_code IS NULL OR v_code !~ '^[a-z][a-z0-9_]{1,31}$' THEN
        RAISE EXCEPTION 'carrier code must be 2 to 32 lowercase letters, digits or "_", starting with a letter'
            USING ERRCODE = 'OL400';
    END IF;
    IF v_name IS NULL OR length(v_name) NOT BETWEEN 1 AND 100 OR NOT orderly.shows_on_one_line(v_name) THEN
        RAISE EXCEPTION 'carrier name must be 1 to 100 characters on one line, without direction-override characters' USING ERRCODE = 'OL400';
    END IF;
    -- The URL goes into customers' documents and e-mails: only characters a URL is made of (no
    -- quote, angle bracket or backslash that would end an attribute), braces only in the
    -- placeholder.
    IF v_template <> '' AND (v_template !~ '^https://[^[:space:]]+$' OR position('{tracking_no}' IN v_template) = 0
                                   OR replace(v_template, '{tracking_no}', '') !~ '^https://[A-Za-z0-9._~!$&()*+,;=:@%/?#\[\]-]+$') THEN
        RAISE EXCEPTION 'tracking_url_template must be an https:// URL containing {tracking_no} (no quotes, spaces or angle brackets)'
            USING ERRCODE = 'OL400';
    END IF;
    -- https://www.dhl.com@evil.example/… goes to evil.example while a reader of the e-mail sees
    -- dhl.com: no user or password before the host.
    IF v_template <> '' AND substring(v_template FROM '^https://([^/?#]*)') LIKE '%@%' THEN
        RAISE EXCEPTION 'tracking_url_template may not hold a user or password before its host ("@"): it would hide the host it goes to'
            USING ERRCODE = 'OL400';
    END IF;
    SELECT orderly.carrier_doc(x) INTO v_before FROM orderly.carriers x WHERE x.code = v_code FOR UPDATE;
    INSERT INTO orderly.carriers AS x (code, name, tracking_url_template, active)
    VALUES (v_code, v_name, nullif(v_template, ''), coalesce(set_carrier.active, true))
    ON CONFLICT ON CONSTRAINT carriers_pkey DO UPDATE
    SET name = excluded.name,
        tracking_url_template = CASE WHEN v_template IS NULL THEN x.tracking_url_template ELSE nullif(v_template, '') END,
        active = coalesce(set_carrier.active, x.active)
    RETURNING * INTO c;
    PERFORM orderly.audit(NULL, 'carrier.set', 'carrier', c.code, v_before, orderly.carrier_doc(c), actor_kind => 'admin_sql');
    RETURN orderly.carrier_doc(c);
END
$$;

COMMENT ON FUNCTION admin.set_carrier(text, text, text, boolean) IS
    'Create or change a carrier: code, name, https tracking URL template with {tracking_no} ('''' removes it), active; what is left out is kept (audited)';

CREATE OR REPLACE VIEW admin.carriers AS
SELECT c.code,
       c.name,
       c.tracking_url_template,
       c.active,
       (SELECT count(*) FROM orderly.shipments s WHERE s.carrier = c.code) AS shipments,
       (SELECT max(s.shipped_at) FROM orderly.shipments s WHERE s.carrier = c.code) AS last_shipped_at
FROM orderly.carriers c;

COMMENT ON VIEW admin.carriers IS 'Carriers goods ship with, how many shipments each carried and when the last left';

-- orderly.tracking_url: R__138_order_fulfilment.sql (the order document needs it).

-- What may ship ----------------------------------------------------------------------------------

-- Released to the warehouse: open for shipping and, on prepaid terms, paid. The pick list
-- (R__195_work_queues.sql) shows exactly these orders.
CREATE OR REPLACE FUNCTION orderly.order_releasable(o orderly.orders) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN o.status IN ('approved', 'in_production', 'ready', 'partially_shipped') AND orderly.terms_release(o);
END
$$;

-- The order may ship now, or why not (OL409).
CREATE OR REPLACE FUNCTION orderly.check_shippable(o orderly.orders) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF o.status = 'on_hold' THEN
        RAISE EXCEPTION 'order % is on hold (%): it ships once released', o.id, o.hold_reason USING ERRCODE = 'OL409';
    END IF;
    IF o.status NOT IN ('approved', 'in_production', 'ready', 'partially_shipped') THEN
        RAISE EXCEPTION 'order % is %; only an approved order (in production, ready or partially shipped) ships', o.id, o.status
            USING ERRCODE = 'OL409';
    END IF;
    IF NOT orderly.order_releasable(o) THEN
        RAISE EXCEPTION 'order % is prepaid and not paid yet (% % open): it ships once paid', o.id,
            orderly.open_amount(o), o.currency USING ERRCODE = 'OL409';
    END IF;
END
$$;

-- orderly.open_lines: R__155_fulfilment_flow.sql (orderly.advance reads it too).

-- SHIPMENT CREATE's lines=[{"line":1,"qty":2},…], checked against what is still open: one row
-- per line. Under the order's row lock, so "already shipped" cannot change meanwhile.
CREATE OR REPLACE FUNCTION orderly.shipment_request(o orderly.orders, lines jsonb)
RETURNS TABLE (line_no integer, qty integer)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e      jsonb;
    v_seen integer[] := '{}';
    v_no   integer;
    v_qty  integer;
    v_asked integer;
    v_cancelled integer;
    l      record;
BEGIN
    IF lines IS NULL OR jsonb_typeof(lines) <> 'array' OR jsonb_array_length(lines) = 0 OR jsonb_array_length(lines) > 1000 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array, like lines=[{"line":1,"qty":2}]' USING ERRCODE = 'OL400';
    END IF;
    FOR e IN SELECT x FROM jsonb_array_elements(lines) x LOOP
        IF jsonb_typeof(e) <> 'object' OR EXISTS (SELECT 1 FROM jsonb_object_keys(e) k WHERE k NOT IN ('line', 'qty'))
           OR jsonb_typeof(e -> 'line') IS DISTINCT FROM 'number' OR (e ->> 'line') !~ '^[1-9][0-9]{0,8}$'
           OR jsonb_typeof(e -> 'qty') IS DISTINCT FROM 'number' OR (e ->> 'qty') !~ '^[1-9][0-9]{0,8}$' THEN
            RAISE EXCEPTION 'each line must be like {"line":1,"qty":2} (a line number and a quantity of at least 1)'
                USING ERRCODE = 'OL400';
        END IF;
        v_no := (e ->> 'line')::integer;
        v_qty := (e ->> 'qty')::integer;
        IF v_no = ANY (v_seen) THEN
            RAISE EXCEPTION 'line % is listed twice', v_no USING ERRCODE = 'OL400';
        END IF;
        v_seen := v_seen || v_no;
        SELECT * INTO l FROM orderly.open_lines(o.id) x WHERE x.line_no = v_no;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'order % has no line %', o.id, v_no USING ERRCODE = 'OL404';
        END IF;
        IF NOT orderly.line_ships(l.kind) THEN
            RAISE EXCEPTION 'line % is a % line: nothing ships', v_no, l.kind USING ERRCODE = 'OL409';
        END IF;
        IF NOT l.produced THEN
            RAISE EXCEPTION 'line % is made to order and not produced yet', v_no USING ERRCODE = 'OL409';
        END IF;
        IF v_qty > l.open THEN
            -- ordered counts what is still ordered: units cancelled are said apart ("0 ordered" of
            -- a line of 7 read as a line never ordered).
            SELECT x.cancelled_qty INTO v_cancelled FROM orderly.order_lines x WHERE x.order_id = o.id AND x.line_no = v_no;
            RAISE EXCEPTION 'line %: % ordered%, % shipped, % still to ship; cannot ship %', v_no,
                l.ordered + v_cancelled,
                CASE WHEN v_cancelled > 0 THEN format(', %s cancelled', v_cancelled) ELSE '' END,
                l.shipped, l.open, v_qty USING ERRCODE = 'OL409';
        END IF;
        v_asked := orderly.cancel_asked(o.id, v_no, l.open);
        IF v_qty > l.open - v_asked THEN
            RAISE EXCEPTION 'line %: % of its % open unit(s) are asked to be cancelled (request %); they ship only if it is rejected: CANCEL APPROVE % or CANCEL REJECT % first',
                v_no, v_asked, l.open,
                (SELECT x.id FROM orderly.order_cancellations x WHERE x.order_id = o.id AND x.status = 'requested'), o.id, o.id
                USING ERRCODE = 'OL409';
        END IF;
        line_no := v_no;
        qty := v_qty;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Takes the shipped units out of stock and out of the order's reservation: SKUs in id order,
-- each a guarded UPDATE. Returns {sku code: units}. Raises (OL409) when a reservation does not
-- hold the units: the whole shipment is rolled back.
CREATE OR REPLACE FUNCTION orderly.ship_stock(o orderly.orders, shipment_id bigint) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    need    record;
    s       orderly.skus;
    n       integer;
    v_needs jsonb;
    v_out   jsonb := '{}';
BEGIN
    -- Units per (line, SKU) of this shipment: a goods line its SKU, a bundle line its components.
    SELECT coalesce(jsonb_agg(jsonb_build_object('line_no', t.line_no, 'sku_id', t.sku_id, 'qty', t.qty)), '[]')
    INTO v_needs
    FROM (SELECT x.line_no, x.sku_id, sum(x.qty)::integer AS qty
          FROM (SELECT l.line_no, u.sku_id, sl.qty * u.per AS qty
                FROM orderly.shipment_lines sl
                JOIN orderly.order_lines l ON l.order_id = sl.order_id AND l.line_no = sl.line_no
                CROSS JOIN LATERAL orderly.line_units(l) u
                WHERE sl.shipment_id = ship_stock.shipment_id) x
          GROUP BY x.line_no, x.sku_id) t;

    -- The order's own rows (under its lock): what is still held goes down; all shipped, released.
    UPDATE orderly.stock_reservations x
    SET qty = CASE WHEN x.qty > t.qty THEN x.qty - t.qty ELSE x.qty END,
        released_at = CASE WHEN x.qty = t.qty THEN now() END
    FROM jsonb_to_recordset(v_needs) AS t(line_no integer, sku_id bigint, qty integer)
    WHERE x.order_id = o.id AND x.line_no = t.line_no AND x.sku_id = t.sku_id
      AND x.released_at IS NULL AND x.qty >= t.qty;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> jsonb_array_length(v_needs) THEN
        RAISE EXCEPTION 'order % does not hold the stock reserved for what it ships', o.id USING ERRCODE = 'OL409';
    END IF;

    FOR need IN SELECT t.sku_id, sum(t.qty)::integer AS qty
                FROM jsonb_to_recordset(v_needs) AS t(line_no integer, sku_id bigint, qty integer)
                GROUP BY t.sku_id ORDER BY t.sku_id LOOP
        UPDATE orderly.skus x
        SET stock_on_hand = x.stock_on_hand - need.qty, stock_reserved = x.stock_reserved - need.qty, updated_at = now()
        WHERE x.id = need.sku_id AND x.stock_reserved >= need.qty AND x.stock_on_hand >= need.qty
        RETURNING * INTO s;
        IF NOT FOUND THEN
            SELECT * INTO s FROM orderly.skus x WHERE x.id = need.sku_id;
            RAISE EXCEPTION 'SKU %: % to ship, but only % reserved and % on hand', s.code, need.qty, s.stock_reserved, s.stock_on_hand
                USING ERRCODE = 'OL409';
        END IF;
        v_out := v_out || jsonb_build_object(s.code, need.qty);
    END LOOP;
    RETURN v_out;
END
$$;

-- Documents --------------------------------------------------------------------------------------

-- SHIPMENT SHOW, LIST and CREATE's reply; a customer login sees it through the allow-list
-- (orderly.customer_shape 'shipment'). plpgsql: planned once a session.
CREATE OR REPLACE FUNCTION orderly.shipment_doc(s orderly.shipments) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c orderly.carriers;
    e record;
BEGIN
    SELECT * INTO c FROM orderly.carriers x WHERE x.code = s.carrier;
    SELECT * INTO e FROM orderly.shipment_eta(s);
    RETURN json_build_object(
        'id', s.id,
        'order', s.order_id,
        'order_status', (SELECT o.status FROM orderly.orders o WHERE o.id = s.order_id),
        'status', s.status,
        'carrier', json_build_object('code', c.code, 'name', c.name),
        'service', s.service,
        'tracking_no', s.tracking_no,
        'tracking_url', orderly.tracking_url(c.tracking_url_template, s.tracking_no),
        'parcels', s.parcels,
        'lines', (SELECT coalesce(json_agg(json_build_object(
                         'line', sl.line_no, 'product', p.body -> 'product', 'sku', p.body -> 'sku',
                         'name', p.body -> 'name', 'qty', sl.qty) ORDER BY sl.line_no), '[]')
                  FROM orderly.shipment_lines sl
                  JOIN orderly.order_lines l ON l.order_id = sl.order_id AND l.line_no = sl.line_no
                  -- By its key, never a scan of every pricing (LIMIT keeps it a lookup; see order_doc).
                  LEFT JOIN LATERAL (SELECT x.body FROM orderly.line_pricings x WHERE x.digest = l.pricing LIMIT 1) p ON true
                  WHERE sl.shipment_id = s.id),
        'shipped_at', orderly.json_time(s.shipped_at),
        'shipped_by', orderly.username_of(s.shipped_by),
        'delivered_at', orderly.json_time(s.delivered_at),
        'signed_by', s.signed_by,
        -- Tracking (R__192_tracking.sql) and the ETA (R__137_shipment_eta.sql).
        'tracking', CASE WHEN s.tracking_code IS NOT NULL THEN
                        json_build_object('code', s.tracking_code, 'at', orderly.json_time(s.tracking_at),
                                          'location', s.tracking_location) END,
        'eta', orderly.json_time(e.eta),
        'eta_source', e.eta_source,
        'eta_basis', e.basis,
        'lane', json_build_object('from', s.origin_country, 'to', s.dest_country, 'region', s.dest_region));
END
$$;

-- The shipment, visible to u as its order is (ORDER SHOW's rule); locked with its order first
-- when for_update. Unknown and invisible shipments get the same answer.
CREATE OR REPLACE FUNCTION orderly.shipment_for(u orderly.users, shipment_id bigint, for_update boolean) RETURNS orderly.shipments
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s orderly.shipments;
    o orderly.orders;
BEGIN
    SELECT * INTO s FROM orderly.shipments x WHERE x.id = shipment_for.shipment_id;
    IF FOUND THEN
        SELECT * INTO o FROM orderly.orders x WHERE x.id = s.order_id;
    END IF;
    IF s.id IS NULL OR NOT orderly.order_visible(u, o) THEN
        RAISE EXCEPTION 'shipment % not found', shipment_id USING ERRCODE = 'OL404';
    END IF;
    IF for_update THEN
        PERFORM orderly.order_for(u, s.order_id, true);
        SELECT * INTO s FROM orderly.shipments x WHERE x.id = shipment_for.shipment_id FOR UPDATE;
    END IF;
    RETURN s;
END
$$;

-- Commands ---------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION api.shipment_create(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u          orderly.users := orderly.begin_command('SHIPMENT CREATE', shipment_create.actor, shipment_create.args);
    v_replay   json := orderly.replay(u, shipment_create.args);
    v_carrier  text := lower(btrim(orderly.arg_text(shipment_create.args, 'carrier', true)));
    v_service  text := nullif(btrim(orderly.arg_text(shipment_create.args, 'service')), '');
    v_tracking text := nullif(btrim(orderly.arg_text(shipment_create.args, 'tracking_no')), '');
    v_parcels  integer := coalesce(orderly.arg_int(shipment_create.args, 'parcels'), 1);
    v_lines    jsonb := orderly.arg_value(shipment_create.args, 'lines', true);
    o          orderly.orders;
    c          orderly.carriers;
    s          orderly.shipments;
    v_nos      integer[];
    v_qtys     integer[];
    v_stock    jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF v_service IS NOT NULL AND (length(v_service) > 100 OR v_service ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'service must be at most 100 characters on one line' USING ERRCODE = 'OL400';
    END IF;
    IF v_tracking IS NOT NULL AND v_tracking !~ '^[A-Za-z0-9-]{1,64}$' THEN
        RAISE EXCEPTION 'tracking_no must be 1 to 64 letters, digits or "-"' USING ERRCODE = 'OL400';
    END IF;
    IF v_parcels NOT BETWEEN 1 AND 999 THEN
        RAISE EXCEPTION 'parcels must be between 1 and 999' USING ERRCODE = 'OL400';
    END IF;
    o := orderly.order_for(u, orderly.arg_bigint(args, 'order', true), true);
    PERFORM orderly.check_shippable(o);
    SELECT * INTO c FROM orderly.carriers x WHERE x.code = v_carrier;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'carrier "%" not found', orderly.for_message(v_carrier) USING ERRCODE = 'OL404';
    ELSIF NOT c.active THEN
        RAISE EXCEPTION 'carrier % is not active', c.code USING ERRCODE = 'OL409';
    END IF;
    SELECT array_agg(r.line_no ORDER BY r.line_no), array_agg(r.qty ORDER BY r.line_no) INTO v_nos, v_qtys
    FROM orderly.shipment_request(o, v_lines) r;
    BEGIN
        INSERT INTO orderly.shipments (order_id, customer_id, carrier, service, tracking_no, parcels, shipped_by)
        VALUES (o.id, o.customer_id, c.code, v_service, v_tracking, v_parcels, u.id)
        RETURNING * INTO s;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'carrier % already has a shipment with tracking number %', c.code, v_tracking USING ERRCODE = 'OL409';
    END;
    INSERT INTO orderly.shipment_lines (shipment_id, order_id, line_no, qty)
    SELECT s.id, o.id, r.line_no, r.qty FROM unnest(v_nos, v_qtys) AS r(line_no, qty);
    v_stock := orderly.ship_stock(o, s.id);
    IF v_stock <> '{}' THEN
        PERFORM orderly.audit(u.id, 'order.stock_ship', 'order', o.id::text, NULL,
                              jsonb_build_object('shipment', s.id, 'units', v_stock));
    END IF;
    PERFORM orderly.audit(u.id, 'shipment.create', 'shipment', s.id::text, NULL,
                          orderly.shipment_doc(s)::jsonb - 'order_status');
    o := orderly.advance(o, u.id);
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('shipment', orderly.shipment_doc(s), orderly.own_customer(u)));
END
$$;

SELECT orderly.register_command('SHIPMENT CREATE', 'api.shipment_create', 'shipment.manage',
    arguments  => 'order:id! lines:array! carrier:text! service:text tracking_no:text parcels:integer',
    usage      => 'SHIPMENT CREATE order= lines=[{"line":1,"qty":2},…] carrier= [service=] [tracking_no=] [parcels=1]',
    summary    => 'Ship part or all of what is still open of an order; stock and its reservation go down; the order becomes partially_shipped or shipped.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.shipment_show(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('SHIPMENT SHOW', shipment_show.actor, shipment_show.args);
BEGIN
    RETURN NEXT orderly.visible_doc('shipment',
        orderly.shipment_doc(orderly.shipment_for(u, orderly.arg_bigint(args, 'id', true), false)), orderly.own_customer(u));
END
$$;

SELECT orderly.register_command('SHIPMENT SHOW', 'api.shipment_show', 'order.read',
    arguments  => 'id:id!',
    positional => '{id}',
    usage      => 'SHIPMENT SHOW id',
    summary    => 'A shipment: its order, carrier, tracking number and URL, parcels, lines, delivery.');

-- Newest first, keyset paginated like ORDER LIST: pass the last id seen as after=.
CREATE OR REPLACE FUNCTION api.shipment_list(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u         orderly.users := orderly.begin_command('SHIPMENT LIST', shipment_list.actor, shipment_list.args);
    v_order   bigint := orderly.arg_bigint(shipment_list.args, 'order');
    v_status  text := nullif(lower(btrim(orderly.arg_text(shipment_list.args, 'status'))), '');
    v_carrier text := nullif(lower(btrim(orderly.arg_text(shipment_list.args, 'carrier'))), '');
    v_after   bigint := orderly.arg_bigint(shipment_list.args, 'after');
    v_limit   integer := orderly.arg_limit(shipment_list.args, 50, 200);
    v_own     bigint := orderly.own_customer(u);
BEGIN
    IF v_order IS NOT NULL THEN
        PERFORM orderly.order_for(u, v_order, false);
    END IF;
    IF v_status IS NOT NULL AND v_status NOT IN ('shipped', 'delivered') THEN
        RAISE EXCEPTION 'status must be shipped or delivered' USING ERRCODE = 'OL400';
    END IF;
    IF v_carrier IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orderly.carriers c WHERE c.code = v_carrier) THEN
        RAISE EXCEPTION 'carrier "%" not found', orderly.for_message(v_carrier) USING ERRCODE = 'OL404';
    END IF;
    RETURN QUERY
    SELECT orderly.visible_doc('shipment', orderly.shipment_doc(s), v_own)
    FROM orderly.shipments s
    JOIN orderly.orders o ON o.id = s.order_id
    WHERE (v_after IS NULL OR s.id < v_after)
      AND (v_order IS NULL OR s.order_id = v_order)
      AND (v_status IS NULL OR s.status = v_status)
      AND (v_carrier IS NULL OR s.carrier = v_carrier)
      AND orderly.order_visible(u, o)
    ORDER BY s.id DESC
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('SHIPMENT LIST', 'api.shipment_list', 'order.read',
    arguments  => 'order:id status:text carrier:text limit:integer after:id',
    usage      => 'SHIPMENT LIST [order=] [status=shipped|delivered] [carrier=] [limit=50] [after=id]',
    summary    => 'Shipments of the orders you may see, newest first; pass the last id as after= for the next page.');

CREATE OR REPLACE FUNCTION api.shipment_delivered(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u         orderly.users := orderly.begin_command('SHIPMENT DELIVERED', shipment_delivered.actor, shipment_delivered.args);
    v_replay  json := orderly.replay(u, shipment_delivered.args);
    v_signed  text := nullif(btrim(orderly.arg_text(shipment_delivered.args, 'signed_by')), '');
    v_at      timestamptz := orderly.arg_time(shipment_delivered.args, 'at');
    s         orderly.shipments;
    o         orderly.orders;
    v_before  jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF v_signed IS NOT NULL AND (length(v_signed) > 200 OR v_signed ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'signed_by must be at most 200 characters on one line' USING ERRCODE = 'OL400';
    END IF;
    s := orderly.shipment_for(u, orderly.arg_bigint(args, 'id', true), true);
    IF s.status = 'delivered' THEN
        RAISE EXCEPTION 'shipment % was delivered at %', s.id, orderly.json_time(s.delivered_at) USING ERRCODE = 'OL409';
    END IF;
    v_at := coalesce(v_at, now());
    IF v_at > now() + interval '5 minutes' THEN
        RAISE EXCEPTION 'at cannot be in the future' USING ERRCODE = 'OL400';
    END IF;
    IF v_at < s.shipped_at THEN
        RAISE EXCEPTION 'at cannot be before the shipment left (%)', orderly.json_time(s.shipped_at) USING ERRCODE = 'OL400';
    END IF;
    -- Delivered before the carrier's latest scan would leave the shipment delivered while its
    -- tracking says it was still on its way afterwards.
    IF v_at < s.tracking_at THEN
        RAISE EXCEPTION 'at cannot be before the carrier''s latest event (% at %): a parcel is delivered after it',
            s.tracking_code, orderly.json_time(s.tracking_at) USING ERRCODE = 'OL400';
    END IF;
    v_before := jsonb_build_object('status', s.status);
    UPDATE orderly.shipments x SET status = 'delivered', delivered_at = v_at, signed_by = v_signed
    WHERE x.id = s.id
    RETURNING * INTO s;
    PERFORM orderly.audit(u.id, 'shipment.deliver', 'shipment', s.id::text, v_before,
                          jsonb_build_object('status', s.status, 'delivered_at', orderly.json_time(s.delivered_at),
                                             'signed_by', s.signed_by));
    SELECT * INTO o FROM orderly.orders x WHERE x.id = s.order_id;
    o := orderly.advance(o, u.id);
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('shipment', orderly.shipment_doc(s), orderly.own_customer(u)));
END
$$;

SELECT orderly.register_command('SHIPMENT DELIVERED', 'api.shipment_delivered', 'shipment.manage',
    arguments  => 'id:id! signed_by:text at:timestamp',
    positional => '{id}',
    usage      => 'SHIPMENT DELIVERED id [signed_by=] [at=]',
    summary    => 'Record a shipment''s proof of delivery; with every shipment delivered the order is delivered (and, paid, completed).',
    changes    => true);

-- order.ready_to_ship --------------------------------------------------------------------------

-- Every status change is a row of the history (orderly.change_status): an order that becomes
-- ready is announced to the warehouse and logistics roles, in the same transaction, by whoever
-- caused it (NULL: the system) — unless nothing of it ships (services only: production performs
-- them, from WORK QUEUE).
CREATE OR REPLACE FUNCTION orderly.announce_ready_to_ship() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o orderly.orders;
    r text;
BEGIN
    SELECT * INTO o FROM orderly.orders x WHERE x.id = NEW.order_id;
    IF NOT EXISTS (SELECT 1 FROM orderly.order_lines l JOIN orderly.products p ON p.id = l.product_id
                   WHERE l.order_id = o.id AND orderly.line_ships(p.kind) AND l.qty > l.cancelled_qty) THEN
        RETURN NULL;
    END IF;
    FOREACH r IN ARRAY ARRAY['warehouse', 'logistics'] LOOP
        PERFORM api.notify(NULL, r, 'order.ready_to_ship',
                           jsonb_build_object('order', o.id, 'customer', o.customer_id,
                                              'customer_name', (SELECT c.name FROM orderly.customers c WHERE c.id = o.customer_id),
                                              'requested_date', o.requested_date),
                           NEW.changed_by, CASE WHEN NEW.changed_by IS NULL THEN 'system' ELSE 'user' END);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER order_ready_to_ship AFTER INSERT ON orderly.order_status_history
    FOR EACH ROW WHEN (NEW.to_status = 'ready') EXECUTE FUNCTION orderly.announce_ready_to_ship();
