-- Orderly: what the warehouse and production work from. The same rows twice: as analytics
-- views for BI tools and as PICK LIST / WORK QUEUE for staff on the protocol. Every note of an
-- order is carried along, so a delivery or packaging instruction reaches the people who act on
-- it. After the shipments (R__190_shipments.sql), whose rules it shows: this file was
-- R__150_work_queues.sql until the pick list came to depend on them.
--
-- The pick list is what may ship now and has not shipped yet (issue 12): of every order released
-- to the warehouse (orderly.order_releasable: approved, in_production, ready or
-- partially_shipped, and paid when prepaid; never on hold), each line's ordered quantity less
-- what shipped, per SKU (a bundle line lists its components), once a make-to-order line is
-- produced. Stock lines of an order still in production may leave before its custom lines
-- (SHIPMENT CREATE allows it), so they are listed from approval on.
--
-- The work queue is what production makes or performs: the custom lines of orders approved, in
-- production or partially shipped while one of them is still to make, each with its production
-- state — not_started, in_production, done — and its times (R__185_production.sql), and the
-- service lines not yet performed of orders where SERVICE DONE would take them (released: in
-- production, ready, partly or wholly shipped, a prepaid order paid), whose state is null. An
-- order on hold is in neither list until it is released, but for what is being made.

-- The rows themselves are views of schema orderly, which PICK LIST and WORK QUEUE read (their
-- filters reach the tables); BI logins read them through analytics views over SECURITY DEFINER
-- functions, because the rules they apply are functions (orderly.order_releasable, open_lines,
-- production_state …) that BI logins may not execute.
CREATE OR REPLACE VIEW orderly.pick_list AS
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
       l.line_no,
       s.code                AS sku,
       coalesce(sp.name, p.name) AS product_name,
       s.options             AS variant,
       ((ol.open - q.asked) * k.per)::integer AS qty,
       n.delivery_notes,
       n.packaging_notes,
       n.general_notes,
       o.status,
       p.code                AS product,
       p.kind,
       ol.ordered,
       ol.shipped,
       ol.open               AS line_open,
       q.asked               AS cancel_requested
FROM orderly.orders o
JOIN orderly.customers c ON c.id = o.customer_id
CROSS JOIN LATERAL orderly.open_lines(o.id) ol
JOIN orderly.order_lines l ON l.order_id = o.id AND l.line_no = ol.line_no
LEFT JOIN orderly.line_pricings lp ON lp.digest = l.pricing
JOIN orderly.products p ON p.id = l.product_id
-- What to pick for one unit of the line: its SKU, a bundle's components, or (a make-to-order
-- line) the made item itself, which has no SKU.
CROSS JOIN LATERAL (
    SELECT u.sku_id, u.per FROM orderly.line_units(l) u
    UNION ALL
    SELECT NULL, 1 WHERE l.sku_id IS NULL AND jsonb_typeof(lp.body -> 'components') IS DISTINCT FROM 'array'
) k
CROSS JOIN LATERAL (SELECT orderly.cancel_asked(o.id, l.line_no, ol.open) AS asked) q
LEFT JOIN orderly.skus s ON s.id = k.sku_id
LEFT JOIN orderly.products sp ON sp.id = s.product_id
LEFT JOIN orderly.addresses a ON a.id = o.ship_to_id
LEFT JOIN LATERAL (
    SELECT string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'delivery')  AS delivery_notes,
           string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'packaging') AS packaging_notes,
           string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'general')   AS general_notes
    FROM orderly.order_notes x
    WHERE x.order_id = o.id
) n ON true
-- The status list narrows the scan; orderly.order_releasable decides (as SHIPMENT CREATE's does).
WHERE o.status IN ('approved', 'in_production', 'ready', 'partially_shipped')
  AND orderly.order_releasable(o)
  AND ol.open > q.asked
  AND ol.produced;

CREATE OR REPLACE FUNCTION analytics.pick_list_rows() RETURNS SETOF orderly.pick_list
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM orderly.pick_list $$;

REVOKE ALL ON FUNCTION analytics.pick_list_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.pick_list_rows() TO orderly_bi;
COMMENT ON FUNCTION analytics.pick_list_rows() IS 'The rows of analytics.pick_list';

CREATE OR REPLACE VIEW analytics.pick_list AS SELECT * FROM analytics.pick_list_rows();

COMMENT ON VIEW analytics.pick_list IS 'What is still to ship of each order released to the warehouse: one row per SKU of each open line (a made-to-order line once produced, without SKU), with its ship-to address and every note';
COMMENT ON COLUMN analytics.pick_list.order_id IS 'Order number';
COMMENT ON COLUMN analytics.pick_list.submitted_at IS 'When the order was submitted';
COMMENT ON COLUMN analytics.pick_list.order_type IS 'standard, custom or strategic';
COMMENT ON COLUMN analytics.pick_list.customer_name IS 'Customer of the order';
COMMENT ON COLUMN analytics.pick_list.recipient IS 'Ship-to recipient';
COMMENT ON COLUMN analytics.pick_list.line1 IS 'Ship-to street and number';
COMMENT ON COLUMN analytics.pick_list.line2 IS 'Ship-to address second line';
COMMENT ON COLUMN analytics.pick_list.postal_code IS 'Ship-to postal code';
COMMENT ON COLUMN analytics.pick_list.city IS 'Ship-to city';
COMMENT ON COLUMN analytics.pick_list.region IS 'Ship-to region';
COMMENT ON COLUMN analytics.pick_list.country IS 'Ship-to country (ISO 3166 alpha-2)';
COMMENT ON COLUMN analytics.pick_list.product_name IS 'Name of the SKU''s product (for a bundle: the component''s)';
COMMENT ON COLUMN analytics.pick_list.requested_date IS 'Delivery date the customer asked for, if any';
COMMENT ON COLUMN analytics.pick_list.line_no IS 'Order line (a bundle line lists each component SKU)';
COMMENT ON COLUMN analytics.pick_list.sku IS 'SKU code to pick (NULL for a made-to-order item)';
COMMENT ON COLUMN analytics.pick_list.variant IS 'Variant options of the SKU (colour, storage, ...)';
COMMENT ON COLUMN analytics.pick_list.qty IS 'Units of this SKU to pick for this line now (open quantity of the line, less what a waiting cancellation request asks for, times the units per line)';
COMMENT ON COLUMN analytics.pick_list.status IS 'Order status: approved, in_production, ready or partially_shipped';
COMMENT ON COLUMN analytics.pick_list.product IS 'Product code of the order line';
COMMENT ON COLUMN analytics.pick_list.kind IS 'Product kind of the order line: goods, bundle or custom';
COMMENT ON COLUMN analytics.pick_list.ordered IS 'Quantity ordered on the line';
COMMENT ON COLUMN analytics.pick_list.shipped IS 'Quantity of the line already shipped';
COMMENT ON COLUMN analytics.pick_list.line_open IS 'Quantity of the line still to ship (what SHIPMENT CREATE takes as qty)';
COMMENT ON COLUMN analytics.pick_list.delivery_notes IS 'Delivery notes of the order, oldest first, one per line';
COMMENT ON COLUMN analytics.pick_list.packaging_notes IS 'Packaging notes of the order, oldest first, one per line';
COMMENT ON COLUMN analytics.pick_list.general_notes IS 'Other notes of the order, oldest first, one per line';
COMMENT ON COLUMN analytics.pick_list.cancel_requested IS 'Open units of the line the customer asked to cancel (a request waiting for its decision): not to be picked until it is rejected';

CREATE OR REPLACE VIEW orderly.production_queue AS
SELECT o.id              AS order_id,
       o.submitted_at,
       o.requested_date,
       o.type            AS order_type,
       c.name            AS customer_name,
       l.line_no,
       p.code            AS product,
       p.name            AS product_name,
       p.kind,
       l.qty - l.cancelled_qty AS qty,
       lp.body -> 'options' AS options,
       lp.body -> 'params'  AS params,
       n.delivery_notes,
       n.packaging_notes,
       n.general_notes,
       o.status,
       CASE WHEN orderly.line_needs_production(p.kind) THEN coalesce(pl.status, 'not_started') END AS production,
       pl.started_at,
       orderly.username_of(pl.started_by) AS started_by,
       pl.done_at,
       orderly.username_of(pl.done_by) AS done_by
FROM orderly.orders o
JOIN orderly.order_lines l ON l.order_id = o.id
LEFT JOIN orderly.line_pricings lp ON lp.digest = l.pricing
JOIN orderly.products p ON p.id = l.product_id
JOIN orderly.customers c ON c.id = o.customer_id
LEFT JOIN orderly.production_lines pl ON pl.order_id = l.order_id AND pl.line_no = l.line_no
LEFT JOIN LATERAL (
    SELECT string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'delivery')  AS delivery_notes,
           string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'packaging') AS packaging_notes,
           string_agg(x.text, E'\n' ORDER BY x.id) FILTER (WHERE x.kind = 'general')   AS general_notes
    FROM orderly.order_notes x
    WHERE x.order_id = o.id
) n ON true
WHERE (p.kind = 'custom'
       AND o.status IN ('approved', 'in_production', 'partially_shipped')
       -- While something of the order is still to make: a made order waiting for its payment
       -- (approved) is not production's any more.
       AND orderly.has_lines_to_make(o.id))
   -- On hold, what is being made stays in sight (status on_hold): it may be finished and recorded.
   OR (p.kind = 'custom' AND o.status = 'on_hold' AND pl.status = 'in_production')
   -- A service until it is performed (SERVICE DONE), whether or not the goods have left.
   -- Once it may be performed (SERVICE DONE: released, a prepaid order paid; or in production).
   OR (p.kind = 'service' AND l.qty > l.cancelled_qty AND pl.order_id IS NULL
       AND o.status IN ('in_production', 'ready', 'partially_shipped', 'shipped') AND orderly.terms_release(o));

CREATE OR REPLACE FUNCTION analytics.production_queue_rows() RETURNS SETOF orderly.production_queue
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM orderly.production_queue $$;

REVOKE ALL ON FUNCTION analytics.production_queue_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.production_queue_rows() TO orderly_bi;
COMMENT ON FUNCTION analytics.production_queue_rows() IS 'The rows of analytics.production_queue';

CREATE OR REPLACE VIEW analytics.production_queue AS SELECT * FROM analytics.production_queue_rows();

COMMENT ON VIEW analytics.production_queue IS 'Work to make or perform: custom-made and service lines of orders approved or in production (or partially shipped with custom lines not done), with their production state, parameters and every note';
COMMENT ON COLUMN analytics.production_queue.order_id IS 'Order number';
COMMENT ON COLUMN analytics.production_queue.submitted_at IS 'When the order was submitted';
COMMENT ON COLUMN analytics.production_queue.requested_date IS 'Delivery date the customer asked for, if any';
COMMENT ON COLUMN analytics.production_queue.order_type IS 'standard, custom or strategic';
COMMENT ON COLUMN analytics.production_queue.customer_name IS 'Customer of the order';
COMMENT ON COLUMN analytics.production_queue.line_no IS 'Order line';
COMMENT ON COLUMN analytics.production_queue.product IS 'Product code';
COMMENT ON COLUMN analytics.production_queue.product_name IS 'Product name';
COMMENT ON COLUMN analytics.production_queue.kind IS 'custom (made to order) or service';
COMMENT ON COLUMN analytics.production_queue.qty IS 'Quantity ordered on the line';
COMMENT ON COLUMN analytics.production_queue.delivery_notes IS 'Delivery notes of the order, oldest first, one per line';
COMMENT ON COLUMN analytics.production_queue.packaging_notes IS 'Packaging notes of the order, oldest first, one per line';
COMMENT ON COLUMN analytics.production_queue.general_notes IS 'Other notes of the order, oldest first, one per line';
COMMENT ON COLUMN analytics.production_queue.params IS 'The parameters the customer gave (e.g. width_cm, height_cm)';
COMMENT ON COLUMN analytics.production_queue.options IS 'The options chosen for the line';
COMMENT ON COLUMN analytics.production_queue.status IS 'Order status';
COMMENT ON COLUMN analytics.production_queue.production IS 'Production state of a custom line: not_started, in_production or done (NULL for a service line)';
COMMENT ON COLUMN analytics.production_queue.started_at IS 'When production of the line started (PRODUCTION START)';
COMMENT ON COLUMN analytics.production_queue.started_by IS 'Who started it (username)';
COMMENT ON COLUMN analytics.production_queue.done_at IS 'When the line was finished (PRODUCTION DONE)';
COMMENT ON COLUMN analytics.production_queue.done_by IS 'Who finished it (username)';

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
        'status', p.status,
        'requested_date', p.requested_date,
        'customer', p.customer_name,
        'ship_to', json_build_object('recipient', p.recipient, 'line1', p.line1, 'line2', p.line2,
                                     'postal_code', p.postal_code, 'city', p.city, 'region', p.region,
                                     'country', p.country),
        'items', json_agg(json_build_object('line', p.line_no, 'sku', p.sku, 'name', p.product_name,
                                            'variant', p.variant, 'qty', p.qty, 'product', p.product, 'kind', p.kind,
                                            'line_open', p.line_open, 'cancel_requested', p.cancel_requested)
                          ORDER BY p.line_no, p.sku),
        'notes', orderly.work_notes(p.order_id))
    FROM orderly.pick_list p
    WHERE v_after IS NULL OR (coalesce(p.requested_date, 'infinity'), p.order_id) > (v_after_date, v_after)
    GROUP BY p.order_id, p.status, p.requested_date, p.submitted_at, p.customer_name, p.recipient, p.line1, p.line2,
             p.postal_code, p.city, p.region, p.country
    ORDER BY coalesce(p.requested_date, 'infinity'), p.order_id
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('PICK LIST', 'api.pick_list', 'order.read_all',
    arguments  => 'limit:integer after:id',
    usage      => 'PICK LIST [limit=50] [after=order]',
    -- Every customer's open orders and addresses: the warehouse's, never a customer's, whatever
    -- an admin marks for customers.
    staff_only => 'the pick list is the warehouse''s',
    summary    => 'What is still to ship of orders released to the warehouse: SKUs and open quantities per line, ship-to and every note, by requested date.');

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
                                            'kind', q.kind, 'qty', q.qty, 'options', q.options, 'params', q.params,
                                            'production', q.production, 'started_at', orderly.json_time(q.started_at),
                                            'started_by', q.started_by, 'done_at', orderly.json_time(q.done_at),
                                            'done_by', q.done_by)
                          ORDER BY q.line_no),
        'notes', orderly.work_notes(q.order_id),
        'status', q.status,
        'issues', (SELECT coalesce(json_agg(orderly.production_issue_doc(i) ORDER BY i.id), '[]')
                   FROM orderly.production_issues i WHERE i.order_id = q.order_id AND i.resolved_at IS NULL))
    FROM orderly.production_queue q
    WHERE v_after IS NULL OR (coalesce(q.requested_date, 'infinity'), q.order_id) > (v_after_date, v_after)
    GROUP BY q.order_id, q.status, q.requested_date, q.submitted_at, q.customer_name, q.order_type
    ORDER BY coalesce(q.requested_date, 'infinity'), q.order_id
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('WORK QUEUE', 'api.work_queue', 'order.read_all',
    arguments  => 'limit:integer after:id',
    usage      => 'WORK QUEUE [limit=50] [after=order]',
    staff_only => 'the work queue is production''s',
    summary    => 'Custom-made and service lines to make: each line''s production state and times, open production issues, parameters and notes.');
