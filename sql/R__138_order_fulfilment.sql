-- Orderly: the after-approval part of an order's document (issue 12): what was paid and is still
-- open, the shipments with where to track them, and the timeline of milestones a customer cares
-- about. Plain reads of the V017__fulfilment.sql tables, before R__140_orders.sql so that
-- orderly.order_doc (and every command that replies with an order) includes them; the commands
-- that write these rows come later (payments R__180, production R__185, shipments R__190).

-- What the customer owes for the order: orderly.amount_owed (R__100_customers.sql, whose order
-- summary reads it first).
-- The next four are expressions over qualified names without SET search_path, so that the
-- planner inlines them (a SQL function with SET is planned again at every call: issue 16).

-- unpaid | partially_paid | paid | refund_due | refunded | partially_refunded, from the amounts
-- the payment functions keep on the order (orders.amount_paid / amount_refunded, in the order's
-- currency) and what it owes. refund_due: more was paid than is owed (after a cancellation). A
-- free order (its total 0: nothing ever to pay) is paid; an order cancelled unpaid stays unpaid.
CREATE OR REPLACE FUNCTION orderly.payment_status(o orderly.orders) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN ($1).amount_paid - ($1).amount_refunded > orderly.amount_owed($1) THEN 'refund_due'
        WHEN ($1).amount_refunded > 0 AND ($1).amount_refunded >= ($1).amount_paid THEN 'refunded'
        WHEN ($1).amount_paid - ($1).amount_refunded >= orderly.amount_owed($1) AND (($1).amount_paid > 0 OR ($1).total = 0) THEN 'paid'
        WHEN ($1).amount_refunded > 0 THEN 'partially_refunded'
        WHEN ($1).amount_paid > 0 THEN 'partially_paid'
        ELSE 'unpaid'
    END
$$;

-- What is still to pay: what is owed less what was paid, plus what was refunded.
CREATE OR REPLACE FUNCTION orderly.open_amount(o orderly.orders) RETURNS numeric
LANGUAGE sql STABLE
AS $$ SELECT greatest(orderly.amount_owed($1) - ($1).amount_paid + ($1).amount_refunded, 0.00) $$;

-- What is to be paid back: what was paid and not refunded, beyond what is owed.
CREATE OR REPLACE FUNCTION orderly.refund_due(o orderly.orders) RETURNS numeric
LANGUAGE sql STABLE
AS $$ SELECT greatest(($1).amount_paid - ($1).amount_refunded - orderly.amount_owed($1), 0.00) $$;

-- Where a parcel is tracked: the carrier's template with the tracking number, or NULL.
CREATE OR REPLACE FUNCTION orderly.tracking_url(template text, tracking_no text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT replace($1, '{tracking_no}', $2) $$;

-- The order's payments and refunds, oldest first. This and the next two are plpgsql, whose
-- plans are kept for the session (a SQL function with SET is planned at every call).
CREATE OR REPLACE FUNCTION orderly.order_payments(order_id bigint) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT coalesce(json_agg(json_build_object(
               'id', p.id, 'kind', p.kind, 'amount', p.amount, 'method', p.method, 'reference', p.reference,
               'received_at', orderly.json_time(p.received_at), 'recorded_by', (SELECT u.username FROM orderly.users u WHERE u.id = p.recorded_by))
           ORDER BY p.id), '[]')
    FROM orderly.payments p WHERE p.order_id = order_payments.order_id);
END
$$;

-- The order's shipments, oldest first, each with its carrier, tracking link and lines.
CREATE OR REPLACE FUNCTION orderly.order_shipments(order_id bigint) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT coalesce(json_agg(json_build_object(
               'id', s.id, 'carrier', json_build_object('code', c.code, 'name', c.name), 'service', s.service,
               'tracking_no', s.tracking_no, 'tracking_url', orderly.tracking_url(c.tracking_url_template, s.tracking_no),
               'parcels', s.parcels, 'status', s.status, 'shipped_at', orderly.json_time(s.shipped_at),
               'delivered_at', orderly.json_time(s.delivered_at), 'signed_by', s.signed_by,
               'tracking_code', s.tracking_code, 'tracking_at', orderly.json_time(s.tracking_at),
               'eta', (SELECT orderly.json_time(e.eta) FROM orderly.shipment_eta(s) e),
               'lines', (SELECT json_agg(json_build_object('line', sl.line_no, 'qty', sl.qty) ORDER BY sl.line_no)
                         FROM orderly.shipment_lines sl WHERE sl.shipment_id = s.id))
           ORDER BY s.id), '[]')
    FROM orderly.shipments s JOIN orderly.carriers c ON c.code = s.carrier
    WHERE s.order_id = order_shipments.order_id);
END
$$;

-- The milestones, oldest first: submitted, approved, paid (the payment that made it paid in
-- full), in production, each shipment shipped and delivered, completed, or cancelled. Each the first time it
-- happened (a hold released, or a ready order gone back, returns to approved later), but an
-- order submitted again after a rejection shows its last submission.
CREATE OR REPLACE FUNCTION orderly.order_timeline(o orderly.orders) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (WITH events AS (
        -- rank orders milestones of one moment (one transaction): paid before completed.
        SELECT h.to_status AS event,
               CASE h.to_status WHEN 'submitted' THEN max(h.changed_at) ELSE min(h.changed_at) END AS at, NULL::json AS detail,
               array_position(ARRAY['submitted', 'approved', 'paid', 'in_production', 'shipped', 'delivered', 'completed', 'cancelled'],
                              h.to_status) AS rank
        FROM orderly.order_status_history h
        WHERE h.order_id = (order_timeline.o).id AND h.to_status IN ('submitted', 'approved', 'in_production', 'completed', 'cancelled')
        GROUP BY h.to_status
        UNION ALL
        -- When the money was received, or recorded if that was earlier (a payment entered with
        -- its bank date keeps that date): the payment after which what was paid less refunded
        -- covers what is owed, and stays so (as analytics.order_stage_times says it).
        SELECT 'paid', min(paid.at), NULL, 3
        FROM (SELECT x.id, x.at, max(x.id) FILTER (WHERE x.running < orderly.amount_owed(order_timeline.o)) OVER () AS last_below
              FROM (SELECT p.id, least(p.received_at, p.recorded_at) AS at,
                           sum(CASE p.kind WHEN 'payment' THEN p.amount ELSE -p.amount END) OVER (ORDER BY p.id) AS running
                    FROM orderly.payments p WHERE p.order_id = (order_timeline.o).id) x) paid
        WHERE paid.id > coalesce(paid.last_below, 0)
          AND orderly.amount_owed(order_timeline.o) > 0 AND orderly.payment_status(order_timeline.o) = 'paid'
        HAVING min(paid.at) IS NOT NULL
        UNION ALL
        SELECT 'shipped', s.shipped_at,
               json_build_object('shipment', s.id, 'carrier', s.carrier, 'tracking_no', s.tracking_no,
                                 'tracking_url', orderly.tracking_url(c.tracking_url_template, s.tracking_no)), 5
        FROM orderly.shipments s JOIN orderly.carriers c ON c.code = s.carrier WHERE s.order_id = (order_timeline.o).id
        UNION ALL
        SELECT 'delivered', s.delivered_at, json_build_object('shipment', s.id, 'signed_by', s.signed_by), 6
        FROM orderly.shipments s WHERE s.order_id = (order_timeline.o).id AND s.delivered_at IS NOT NULL
        UNION ALL
        -- An order of services only is delivered without a shipment: when its services were performed.
        SELECT 'delivered', min(h.changed_at), NULL, 6
        FROM orderly.order_status_history h
        WHERE h.order_id = (order_timeline.o).id AND h.to_status = 'delivered'
          AND NOT EXISTS (SELECT 1 FROM orderly.shipments s WHERE s.order_id = (order_timeline.o).id)
        HAVING count(*) > 0
    ), firsts AS (
        SELECT DISTINCT ON (e.event, e.detail::text) e.* FROM events e ORDER BY e.event, e.detail::text, e.at
    )
    SELECT coalesce(json_agg(orderly.json_extend(json_build_object('event', f.event, 'at', orderly.json_time(f.at)),
                                                 coalesce(f.detail, '{}'::json)) ORDER BY f.at, f.rank), '[]')
    FROM firsts f);
END
$$;
