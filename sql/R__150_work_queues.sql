-- Orderly: what the warehouse and production work from. The same rows twice: as analytics
-- views for BI tools and as PICK LIST / WORK QUEUE for staff on the protocol. Every note of an
-- order is carried along, so a delivery or packaging instruction reaches the people who act on
-- it.
--
-- Orders appear here once approved (by their approval chain, or at submission when no approval
-- rule applies): that is the status that releases an order to the floor. A pending or rejected
-- order is not picked or made.

CREATE OR REPLACE VIEW analytics.pick_list AS
SELECT o.id                  AS order_id,
       o.submitted_at,
       o.requested_date,
       o.type                AS order_type,
       c.name                AS customer_name,
       a.recipient,
       a.line1,
       a.line2,
       a.postal_code,
       a.city,
       a.region,
       a.country,
       r.line_no,
       s.code                AS sku,
       p.name                AS product_name,
       s.options             AS variant,
       r.qty,
       n.delivery_notes,
       n.packaging_notes,
       n.general_notes
FROM orderly.orders o
JOIN orderly.stock_reservations r ON r.order_id = o.id AND r.released_at IS NULL
JOIN orderly.skus s ON s.id = r.sku_id
JOIN orderly.products p ON p.id = s.product_id
JOIN orderly.customers c ON c.id = o.customer_id
LEFT JOIN orderly.addresses a ON a.id = o.ship_to_id
LEFT JOIN LATERAL (
    SELECT string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'delivery')  AS delivery_notes,
           string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'packaging') AS packaging_notes,
           string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'general')   AS general_notes
    FROM orderly.order_notes x
    WHERE x.order_id = o.id
) n ON true
WHERE o.status = 'approved';

COMMENT ON VIEW analytics.pick_list IS 'Stock to pick: one row per reserved SKU of each approved order, with its ship-to address and every note';
COMMENT ON COLUMN analytics.pick_list.order_id IS 'Order number';
COMMENT ON COLUMN analytics.pick_list.requested_date IS 'Delivery date the customer asked for, if any';
COMMENT ON COLUMN analytics.pick_list.line_no IS 'Order line (a bundle line lists each component SKU)';
COMMENT ON COLUMN analytics.pick_list.sku IS 'SKU code to pick';
COMMENT ON COLUMN analytics.pick_list.variant IS 'Variant options of the SKU (colour, storage, ...)';
COMMENT ON COLUMN analytics.pick_list.qty IS 'Units to pick for this line';
COMMENT ON COLUMN analytics.pick_list.delivery_notes IS 'Delivery notes of the order, oldest first, one per line';
COMMENT ON COLUMN analytics.pick_list.packaging_notes IS 'Packaging notes of the order, oldest first, one per line';
COMMENT ON COLUMN analytics.pick_list.general_notes IS 'Other notes of the order, oldest first, one per line';

CREATE OR REPLACE VIEW analytics.production_queue AS
SELECT o.id              AS order_id,
       o.submitted_at,
       o.requested_date,
       o.type            AS order_type,
       c.name            AS customer_name,
       l.line_no,
       p.code            AS product,
       p.name            AS product_name,
       p.kind,
       l.qty,
       l.priced -> 'options' AS options,
       l.priced -> 'params'  AS params,
       n.delivery_notes,
       n.packaging_notes,
       n.general_notes
FROM orderly.orders o
JOIN orderly.order_lines l ON l.order_id = o.id
JOIN orderly.products p ON p.id = l.product_id
JOIN orderly.customers c ON c.id = o.customer_id
LEFT JOIN LATERAL (
    SELECT string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'delivery')  AS delivery_notes,
           string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'packaging') AS packaging_notes,
           string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'general')   AS general_notes
    FROM orderly.order_notes x
    WHERE x.order_id = o.id
) n ON true
WHERE o.status = 'approved' AND p.kind IN ('custom', 'service');

COMMENT ON VIEW analytics.production_queue IS 'Work to make or perform: custom-made and service lines of approved orders, with their parameters and every note';
COMMENT ON COLUMN analytics.production_queue.params IS 'The parameters the customer gave (e.g. width_cm, height_cm)';
COMMENT ON COLUMN analytics.production_queue.options IS 'The options chosen for the line';

-- Both views as the protocol serves them: one row per order, notes as a list, earliest
-- requested date first (orders without one last), then by order number. after= is the last
-- order of the previous page.
CREATE OR REPLACE FUNCTION orderly.work_position(order_id bigint) RETURNS date
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d date;
BEGIN
    IF order_id IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(o.requested_date, 'infinity') INTO d FROM orderly.orders o WHERE o.id = order_id;
    IF d IS NULL THEN
        RAISE EXCEPTION 'order % not found', order_id USING ERRCODE = 'OL404';
    END IF;
    RETURN d;
END
$$;
CREATE OR REPLACE FUNCTION orderly.work_notes(order_id bigint) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(json_agg(json_build_object('kind', n.kind, 'text', n.text) ORDER BY n.id), '[]')
    FROM orderly.order_notes n WHERE n.order_id = $1
$$;

CREATE OR REPLACE FUNCTION api.pick_list(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u       orderly.users := orderly.begin_command('PICK LIST', pick_list.actor, pick_list.args);
    v_limit integer := orderly.arg_limit(args, 50, 500);
    v_after bigint := orderly.arg_bigint(args, 'after');
    v_after_date date;
BEGIN
    v_after_date := orderly.work_position(v_after);
    RETURN QUERY
    SELECT json_build_object(
        'order', p.order_id,
        'requested_date', p.requested_date,
        'customer', p.customer_name,
        'ship_to', json_build_object('recipient', p.recipient, 'line1', p.line1, 'line2', p.line2,
                                     'postal_code', p.postal_code, 'city', p.city, 'region', p.region,
                                     'country', p.country),
        'items', json_agg(json_build_object('line', p.line_no, 'sku', p.sku, 'name', p.product_name,
                                            'variant', p.variant, 'qty', p.qty) ORDER BY p.line_no, p.sku),
        'notes', orderly.work_notes(p.order_id))
    FROM analytics.pick_list p
    WHERE v_after IS NULL OR (coalesce(p.requested_date, 'infinity'), p.order_id) > (v_after_date, v_after)
    GROUP BY p.order_id, p.requested_date, p.submitted_at, p.customer_name, p.recipient, p.line1, p.line2,
             p.postal_code, p.city, p.region, p.country
    ORDER BY coalesce(p.requested_date, 'infinity'), p.order_id
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('PICK LIST', 'api.pick_list', 'order.read_all',
    arguments  => 'limit:integer after:id',
    usage      => 'PICK LIST [limit=50] [after=order]',
    summary    => 'Approved orders to pick: reserved SKUs, ship-to and every note, by requested date.');

CREATE OR REPLACE FUNCTION api.work_queue(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u       orderly.users := orderly.begin_command('WORK QUEUE', work_queue.actor, work_queue.args);
    v_limit integer := orderly.arg_limit(args, 50, 500);
    v_after bigint := orderly.arg_bigint(args, 'after');
    v_after_date date;
BEGIN
    v_after_date := orderly.work_position(v_after);
    RETURN QUERY
    SELECT json_build_object(
        'order', q.order_id,
        'requested_date', q.requested_date,
        'customer', q.customer_name,
        'type', q.order_type,
        'items', json_agg(json_build_object('line', q.line_no, 'product', q.product, 'name', q.product_name,
                                            'kind', q.kind, 'qty', q.qty, 'options', q.options, 'params', q.params)
                          ORDER BY q.line_no),
        'notes', orderly.work_notes(q.order_id))
    FROM analytics.production_queue q
    WHERE v_after IS NULL OR (coalesce(q.requested_date, 'infinity'), q.order_id) > (v_after_date, v_after)
    GROUP BY q.order_id, q.requested_date, q.submitted_at, q.customer_name, q.order_type
    ORDER BY coalesce(q.requested_date, 'infinity'), q.order_id
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('WORK QUEUE', 'api.work_queue', 'order.read_all',
    arguments  => 'limit:integer after:id',
    usage      => 'WORK QUEUE [limit=50] [after=order]',
    summary    => 'Custom-made and service lines of approved orders, with parameters and notes.');
