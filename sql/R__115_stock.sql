-- Orderly: stock — what each SKU has (skus.stock_on_hand and stock_reserved, V006__catalog.sql)
-- and what orders hold of it (stock_reservations, V008__orders.sql). Once a SKU exists (SKU
-- CREATE gives it its first stock), its stock moves only here: STOCK SET and STOCK ADJUST
-- (catalog.manage) change the stock on hand, never below what is reserved; a submitted order
-- reserves its units at the very end of the submission (orderly.take_stock moves the counters,
-- then orderly.reserve_stock writes its rows) and a rejected one gives them back
-- (orderly.release_stock). After the catalog, whose SKU helpers it uses; before the orders and
-- approvals that reserve and release.

-- Stock on hand --------------------------------------------------------------------------------

-- Stock: both lock the SKU row and refuse to go below what is reserved (the CHECK would refuse
-- too; this says why).
CREATE OR REPLACE FUNCTION orderly.stock_change(actor_id bigint, sku_code text, new_on_hand bigint, action text, reason text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s        orderly.skus := orderly.sku_for_update(sku_code);
    v_before jsonb := orderly.sku_doc(s);
    v_after  jsonb;
BEGIN
    IF reason IS NOT NULL AND (length(reason) > 500 OR reason ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'reason must be at most 500 characters on one line' USING ERRCODE = 'OL400';
    END IF;
    IF new_on_hand < 0 OR new_on_hand > 100000000 THEN
        RAISE EXCEPTION 'stock on hand must stay between 0 and 100000000 (it would be %)', new_on_hand USING ERRCODE = 'OL400';
    END IF;
    IF new_on_hand < s.stock_reserved THEN
        RAISE EXCEPTION 'SKU % has % reserved: stock on hand cannot go below that', s.code, s.stock_reserved USING ERRCODE = 'OL409';
    END IF;
    UPDATE orderly.skus x SET stock_on_hand = new_on_hand, updated_at = now() WHERE x.id = s.id RETURNING * INTO s;
    v_after := orderly.sku_doc(s);
    PERFORM orderly.audit(actor_id, action, 'sku', s.code, v_before,
                          v_after || CASE WHEN reason IS NOT NULL THEN jsonb_build_object('reason', reason) ELSE '{}' END);
    RETURN v_after;
END
$$;

-- STOCK SET sku=CODE on_hand=N [reason=...]
CREATE OR REPLACE FUNCTION api.stock_set(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('STOCK SET', stock_set.actor, stock_set.args);
    v_replay json := orderly.replay(u, stock_set.args);
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    RETURN NEXT orderly.remember(u, args, orderly.stock_change(
        u.id, orderly.arg_code(stock_set.args, 'sku', true), orderly.arg_bigint(stock_set.args, 'on_hand', true),
        'stock.set', nullif(btrim(orderly.arg_text(stock_set.args, 'reason')), ''))::json);
END
$$;

SELECT orderly.register_command('STOCK SET', 'api.stock_set', 'catalog.manage',
    arguments  => 'sku:code! on_hand:integer! reason:text',
    usage      => 'STOCK SET sku= on_hand=N [reason=]',
    summary    => 'Set a SKU''s stock on hand (never below what is reserved).',
    changes    => true);

-- STOCK ADJUST sku=CODE delta=+N|-N [reason=...]
CREATE OR REPLACE FUNCTION api.stock_adjust(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('STOCK ADJUST', stock_adjust.actor, stock_adjust.args);
    v_replay json := orderly.replay(u, stock_adjust.args);
    v_code   text := orderly.arg_code(stock_adjust.args, 'sku', true);
    v_delta  bigint := orderly.arg_bigint(stock_adjust.args, 'delta', true);
    s        orderly.skus;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    s := orderly.sku_for_update(v_code);
    IF abs(v_delta) > 100000000 THEN
        RAISE EXCEPTION 'delta must be between -100000000 and 100000000' USING ERRCODE = 'OL400';
    END IF;
    RETURN NEXT orderly.remember(u, args, orderly.stock_change(
        u.id, v_code, s.stock_on_hand + v_delta, 'stock.adjust',
        nullif(btrim(orderly.arg_text(stock_adjust.args, 'reason')), ''))::json);
END
$$;

SELECT orderly.register_command('STOCK ADJUST', 'api.stock_adjust', 'catalog.manage',
    arguments  => 'sku:code! delta:integer! reason:text',
    usage      => 'STOCK ADJUST sku= delta=N [reason=]',
    summary    => 'Add to or take from a SKU''s stock on hand (never below what is reserved).',
    changes    => true);

-- Reservations ---------------------------------------------------------------------------------

-- What an order takes from stock: goods lines their SKU, bundle lines their components;
-- services and custom products are made to order and take nothing. Cancelled units
-- (order_lines.cancelled_qty) take nothing either. No SET search_path (every name is qualified),
-- so that it is inlined into the caller's query instead of planned per call.
CREATE OR REPLACE FUNCTION orderly.order_stock_needs(order_id bigint)
RETURNS TABLE (line_no integer, sku_id bigint, qty integer)
LANGUAGE sql STABLE
AS $$
    SELECT l.line_no, u.sku_id, (l.qty - l.cancelled_qty) * u.per
    FROM orderly.order_lines l
    CROSS JOIN LATERAL orderly.line_units(l) u
    WHERE l.order_id = $1 AND l.qty > l.cancelled_qty
$$;

-- Records what the order reserves (its stock_reservations rows) and audits it. Called right after
-- orderly.take_stock has moved the SKU counters (orderly.finish_submit, R__170): the rows' foreign
-- key then locks SKU rows this transaction has locked already, which costs nothing; before it,
-- those KEY SHARE locks of every concurrent submission piled up into MultiXacts on the hot rows.
DROP FUNCTION IF EXISTS orderly.reserve_stock(orderly.orders);
CREATE OR REPLACE FUNCTION orderly.reserve_stock(o orderly.orders, actor_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A resubmitted (once rejected) order finds its released rows: they hold the new reservation.
    INSERT INTO orderly.stock_reservations AS x (order_id, line_no, sku_id, customer_id, qty)
    SELECT o.id, n.line_no, n.sku_id, o.customer_id, sum(n.qty)
    FROM orderly.order_stock_needs(o.id) n
    GROUP BY n.line_no, n.sku_id
    ON CONFLICT ON CONSTRAINT stock_reservations_pkey DO UPDATE
    SET qty = excluded.qty, reserved_at = now(), released_at = NULL
    WHERE x.released_at IS NOT NULL;
    IF FOUND THEN
        PERFORM orderly.audit(actor_id, 'order.stock_reserve', 'order', o.id::text, NULL,
                              (SELECT jsonb_object_agg(k.code, t.units)
                               FROM (SELECT x.sku_id, sum(x.qty) AS units FROM orderly.stock_reservations x
                                     WHERE x.order_id = o.id AND x.released_at IS NULL GROUP BY x.sku_id) t
                               JOIN orderly.skus k ON k.id = t.sku_id));
    END IF;
END
$$;

-- Takes everything the order needs from stock, SKU by SKU in id order (so concurrent submissions
-- lock SKUs in one order and cannot deadlock), each by a guarded UPDATE that succeeds only while
-- enough is available. The CHECK on skus is the backstop. All or nothing: a shortage raises,
-- which rolls back the whole submission.
CREATE OR REPLACE FUNCTION orderly.take_stock(order_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    need record;
    s    orderly.skus;
BEGIN
    FOR need IN
        SELECT n.sku_id, sum(n.qty)::integer AS qty FROM orderly.order_stock_needs(take_stock.order_id) n
        GROUP BY n.sku_id ORDER BY n.sku_id
    LOOP
        UPDATE orderly.skus x SET stock_reserved = x.stock_reserved + need.qty, updated_at = now()
        WHERE x.id = need.sku_id AND x.stock_on_hand - x.stock_reserved >= need.qty
        RETURNING * INTO s;
        IF NOT FOUND THEN
            SELECT * INTO s FROM orderly.skus x WHERE x.id = need.sku_id;
            RAISE EXCEPTION 'not enough stock for SKU %: % requested, % available', s.code, need.qty,
                greatest(s.stock_on_hand - s.stock_reserved, 0) USING ERRCODE = 'OL409';
        END IF;
    END LOOP;
END
$$;

-- Gives back what an order holds (rejection, cancellation: later issues call this). Returns
-- the units released; calling it again releases nothing. actor_id: the user who rejects or
-- cancels (no default: the audit row names its actor).
DROP FUNCTION IF EXISTS orderly.release_stock(bigint);
DROP FUNCTION IF EXISTS orderly.release_stock(bigint, bigint);
CREATE OR REPLACE FUNCTION orderly.release_stock(order_id bigint, actor_id bigint) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r     record;
    total integer := 0;
BEGIN
    FOR r IN
        WITH released AS (
            UPDATE orderly.stock_reservations x SET released_at = now()
            WHERE x.order_id = release_stock.order_id AND x.released_at IS NULL
            RETURNING x.sku_id, x.qty)
        SELECT sku_id, sum(qty)::integer AS qty FROM released GROUP BY sku_id ORDER BY sku_id
    LOOP
        UPDATE orderly.skus x SET stock_reserved = x.stock_reserved - r.qty, updated_at = now() WHERE x.id = r.sku_id;
        total := total + r.qty;
    END LOOP;
    IF total > 0 THEN
        PERFORM orderly.audit(actor_id, 'order.stock_release', 'order', order_id::text, NULL,
                              jsonb_build_object('units', total));
    END IF;
    RETURN total;
END
$$;
